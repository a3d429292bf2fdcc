"""Every endpoint, end to end: the SDK over real HTTP to the fake Postal under uvicorn."""

from __future__ import annotations

import email.message
import hashlib
from datetime import datetime, timezone

import pytest

from postal_sdk import (
    EXPANSIONS,
    AsyncPostal,
    Attachment,
    Message,
    MessageNotFound,
    RawMessage,
)
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal
from tests.e2e.support import NO_WAIT, message, on

pytestmark = pytest.mark.anyio

PDF = bytes(range(256)) * 9  # Binary, and long enough for MIME-wrapped base64 both ways.
CSV = "name,city\nJosé,Zürich\n".encode()


async def test_send_message_round_trips_every_part_through_get_message(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    sent_message = Message(
        from_="App <app@example.com>",
        to=["John <john@example.org>", "Mary@Example.org"],
        cc=["cc@example.net"],
        bcc=["audit@example.net"],
        subject="Héllo ✓",
        plain_body="Hello, John",
        html_body="<p>Hello, <b>John</b></p>",
        reply_to="support@example.com",
        tag="welcome",
        headers={"X-Campaign": "spring"},
        attachments=[
            Attachment(name="report.pdf", data=PDF),
            Attachment(name="cities.csv", data=CSV, content_type="text/csv"),
        ],
    )

    sent = await async_postal.send_message(sent_message)
    john = sent.messages["john@example.org"]
    info = await async_postal.get_message(john.id, expansions=True)

    # Keys are the addresses with the display name stripped, letter case kept.
    assert set(sent.messages) == {
        "john@example.org",
        "Mary@Example.org",
        "cc@example.net",
        "audit@example.net",
    }
    assert sent.message_id is not None
    assert sent.message_id.endswith("@rp.postal.example.com")
    assert len({m.id for m in sent.messages.values()}) == 4
    assert sent.for_recipient("mary@example.org") == sent.messages["Mary@Example.org"]
    [entry] = fake.outbox
    assert entry.recipients == (
        "john@example.org",
        "Mary@Example.org",
        "cc@example.net",
        "audit@example.net",
    )

    assert (info.id, info.token) == (john.id, john.token)
    assert info.plain_body is not None
    assert info.plain_body.strip() == "Hello, John"
    assert info.html_body is not None
    assert info.html_body.strip() == "<p>Hello, <b>John</b></p>"
    assert info.attachments is not None
    assert [(a.filename, a.content_type, a.data, a.size) for a in info.attachments] == [
        ("report.pdf", "application/pdf", PDF, len(PDF)),
        ("cities.csv", "text/csv", CSV, len(CSV)),
    ]
    assert [a.hash for a in info.attachments] == [
        hashlib.sha1(PDF).hexdigest(),  # noqa: S324 - Postal's attachment hash is SHA-1
        hashlib.sha1(CSV).hexdigest(),  # noqa: S324
    ]
    assert info.headers is not None
    assert info.headers["subject"] == ("Héllo ✓",)
    assert info.headers["x-campaign"] == ("spring",)
    assert info.headers["reply-to"] == ("support@example.com",)
    assert info.headers["message-id"] == (f"<{sent.message_id}>",)
    assert "audit@example.net" not in " ".join(info.headers["to"] + info.headers["cc"])
    assert info.details is not None
    stored = fake.message(john.id)
    assert info.details.size == len(stored.raw_message)
    assert isinstance(info.details.size, int)
    assert info.details.rcpt_to == "john@example.org"
    assert info.details.mail_from == "app@example.com"
    assert info.details.subject == "Héllo ✓"
    assert info.details.message_id == sent.message_id
    assert info.details.tag == "welcome"
    assert info.details.direction == "outgoing"
    assert info.details.bounce is False
    assert info.details.timestamp.tzinfo is not None
    assert info.status is not None
    assert (info.status.status, info.status.held, info.status.hold_expiry) == (
        "Pending",
        False,
        None,
    )
    assert info.inspection is not None
    assert info.raw_message == stored.raw_message
    assert info.activity_entries is not None
    assert (info.activity_entries.loads, info.activity_entries.clicks) == ((), ())


async def test_fifty_addresses_in_each_list_is_as_many_as_postal_takes(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    lists = {field: [f"{field}{n}@example.org" for n in range(50)] for field in ("to", "cc", "bcc")}

    sent = await async_postal.send_message(message(**lists))

    assert len(sent.messages) == 150
    [entry] = fake.outbox
    assert entry.recipients == (*lists["to"], *lists["cc"], *lists["bcc"])


async def test_get_message_returns_only_the_expansions_asked_for(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    sent = await async_postal.send_message(message())
    message_id = sent.messages["john@example.org"].id
    bare = await async_postal.get_message(message_id)
    some = await async_postal.get_message(message_id, expansions=["status", "plain_body"])
    every = await async_postal.get_message(message_id, expansions=list(EXPANSIONS))

    assert [bare.status, bare.details, bare.plain_body, bare.headers] == [None] * 4
    assert some.status is not None
    assert some.plain_body is not None
    assert [some.details, some.html_body, some.attachments, some.raw_message] == [None] * 4
    assert all(getattr(every, name) is not None for name in EXPANSIONS if name != "html_body")
    assert [request.json().get("_expansions") for request in on(fake, "messages/message")] == [
        None,
        ["status", "plain_body"],
        list(EXPANSIONS),
    ]


async def test_send_raw_takes_the_message_id_from_the_header_and_keys_as_sent(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    mime = email.message.EmailMessage()
    mime["From"] = "App <app@example.com>"
    mime["To"] = "john@example.org"
    mime["Subject"] = "Raw hello"
    mime["Message-ID"] = "<raw-1@example.com>"
    mime.set_content("Hello from a raw message\n")
    raw = RawMessage(
        mail_from="app@example.com",
        rcpt_to=["John@Example.ORG", "Mary <mary@example.org>"],
        data=mime,
    )

    sent = await async_postal.send_raw(raw)
    info = await async_postal.get_message(
        sent.messages["John@Example.ORG"].id, expansions=["details", "plain_body"]
    )

    assert sent.message_id == "raw-1@example.com"
    assert set(sent.messages) == {"John@Example.ORG", "Mary <mary@example.org>"}
    [entry] = fake.outbox
    assert entry.endpoint == "send/raw"
    assert entry.raw_message == raw.data
    assert b"\r\n\r\n" in raw.data  # Postal finds the header block at the first CRLF CRLF.
    assert info.details is not None
    assert info.details.message_id == "raw-1@example.com"
    assert info.details.rcpt_to == "John@Example.ORG"
    assert info.plain_body is not None
    assert info.plain_body.strip() == "Hello from a raw message"


async def test_send_raw_without_a_message_id_header_gives_none(
    async_postal: AsyncPostal,
) -> None:
    data = b"From: app@example.com\r\nTo: john@example.org\r\nSubject: x\r\n\r\nHello\r\n"
    raw = RawMessage(mail_from="app@example.com", rcpt_to=["john@example.org"], data=data)

    sent = await async_postal.send_raw(raw)

    assert sent.message_id is None
    assert list(sent.messages) == ["john@example.org"]


async def test_get_deliveries_lists_scripted_attempts_oldest_first(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    sent = await async_postal.send_message(message())
    message_id = sent.messages["john@example.org"].id
    pending = await async_postal.get_deliveries(message_id)
    # Scripted out of order: the reply is ordered by timestamp, not by insertion.
    fake.deliver(message_id, "Sent", output="250 2.0.0 OK", time=0.42, timestamp=2000.5)
    fake.deliver(message_id, "SoftFail", output=" 451 try later ", timestamp=1000.25)
    deliveries = await async_postal.get_deliveries(message_id)
    info = await async_postal.get_message(message_id, expansions=["status"])

    assert pending == []
    assert [(d.status, d.output, d.time) for d in deliveries] == [
        ("SoftFail", "451 try later", None),
        ("Sent", "250 2.0.0 OK", 0.42),
    ]
    assert [d.timestamp for d in deliveries] == [
        datetime.fromtimestamp(1000.25, timezone.utc),
        datetime.fromtimestamp(2000.5, timezone.utc),
    ]
    assert all(d.log_id is not None and len(d.log_id) == 8 for d in deliveries)
    assert deliveries[0].details is not None
    assert "john@example.org" in deliveries[0].details
    assert len({d.id for d in deliveries}) == 2
    assert info.status is not None
    assert info.status.status == "SoftFail"  # The last one scripted, not the latest.


async def test_held_message_status_carries_its_hold_expiry(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    sent = await async_postal.send_message(message())
    message_id = sent.messages["john@example.org"].id
    fake.deliver(message_id, "Held", timestamp=1_700_000_000.0)
    info = await async_postal.get_message(message_id, expansions=["status"])

    assert info.status is not None
    assert info.status.held is True
    assert info.status.hold_expiry == datetime.fromtimestamp(1_700_604_800.0, timezone.utc)
    assert info.status.last_delivery_attempt == datetime.fromtimestamp(
        1_700_000_000.0, timezone.utc
    )


async def test_activity_entries_come_back_as_typed_loads_and_clicks(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    sent = await async_postal.send_message(message())
    message_id = sent.messages["john@example.org"].id
    fake.load(message_id, timestamp=1_713_450_642.123)
    fake.click(message_id, "https://example.com/offer", timestamp=1_713_450_700.5)
    info = await async_postal.get_message(message_id, expansions=["activity_entries"])

    assert info.activity_entries is not None
    [load] = info.activity_entries.loads
    [click] = info.activity_entries.clicks
    assert load.timestamp == datetime(2024, 4, 18, 14, 30, 42, 123000, tzinfo=timezone.utc)
    assert (click.url, click.ip_address) == ("https://example.com/offer", "192.0.2.1")
    assert click.timestamp == datetime(2024, 4, 18, 14, 31, 40, 500000, tzinfo=timezone.utc)


@pytest.mark.parametrize("lookup", ["get_message", "get_deliveries"])
async def test_unknown_message_id_raises_message_not_found_with_the_id(
    async_postal: AsyncPostal, fake: FakePostal, lookup: str
) -> None:
    with pytest.raises(MessageNotFound) as raised:
        await getattr(async_postal, lookup)(424242)

    assert raised.value.id == 424242
    assert raised.value.code == "MessageNotFound"
    assert raised.value.message == "No message found matching provided ID"
    assert len(fake.requests) == 1  # An answer from Postal is never retried.


async def test_message_ids_are_scoped_to_the_server_the_key_opens(
    base_url: str, fake: FakePostal
) -> None:
    other = fake.add_server("other", api_keys=["other-server-key"], domains=["example.com"])

    async with (
        AsyncPostal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT) as main_postal,
        AsyncPostal(base_url, "other-server-key", backoff=NO_WAIT) as other_postal,
    ):
        on_main = await main_postal.send_message(message("main"))
        on_main_again = await main_postal.send_message(message("main again"))
        on_other = await other_postal.send_message(message("other"))
        with pytest.raises(MessageNotFound):
            await other_postal.get_message(on_main_again.messages["john@example.org"].id)

    assert on_main.messages["john@example.org"].id == on_other.messages["john@example.org"].id
    assert [m.subject for m in other.messages] == ["other"]
