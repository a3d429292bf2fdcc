"""Scripting what happens after a send, and what the fake records: outbox and requests."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from postal_sdk.testing import (
    HOLD_EXPIRY_SECONDS,
    FakeClick,
    FakeDelivery,
    FakeEvent,
    FakeLoad,
    FakeMessage,
    FakePostal,
    OutboxEntry,
)

Call = Callable[..., httpx.Response]


def status_of(call: Call, message_id: int) -> dict[str, Any]:
    reply = call("messages/message", {"id": message_id, "_expansions": ["status"]}).json()
    status: dict[str, Any] = reply["data"]["status"]
    return status


def test_a_delivery_sets_the_status_and_last_attempt(
    fake: FakePostal, call: Call, sent_id: int
) -> None:
    delivery = fake.deliver(sent_id, "Sent", timestamp=1000.5)

    assert status_of(call, sent_id) == {
        "status": "Sent",
        "last_delivery_attempt": 1000.5,
        "held": False,
        "hold_expiry": None,
    }
    assert fake.message(sent_id).deliveries == (delivery,)


def test_a_held_message_is_held_for_seven_days_until_the_next_delivery(
    fake: FakePostal, call: Call, sent_id: int
) -> None:
    fake.deliver(sent_id, "Held", timestamp=1000.0)
    held = status_of(call, sent_id)
    fake.deliver(sent_id, "Sent", timestamp=2000.0)

    assert held == {
        "status": "Held",
        "last_delivery_attempt": 1000.0,
        "held": True,
        "hold_expiry": 1000.0 + HOLD_EXPIRY_SECONDS,
    }
    assert status_of(call, sent_id)["held"] is False
    assert status_of(call, sent_id)["hold_expiry"] is None


@pytest.mark.parametrize(
    ("status", "has_log_id"),
    [
        ("Sent", True),
        ("SoftFail", True),
        ("HardFail", True),
        ("Held", False),
        ("HoldCancelled", False),
        ("Bounced", False),
        ("Processed", False),
        ("Error", False),
    ],
)
def test_deliveries_get_fitting_defaults(
    fake: FakePostal, sent_id: int, status: Any, has_log_id: bool
) -> None:
    delivery = fake.deliver(sent_id, status)

    assert delivery.status == status
    assert delivery.details
    assert (delivery.log_id is not None) is has_log_id
    if delivery.log_id is not None:
        assert re.fullmatch(r"[A-Z0-9]{8}", delivery.log_id)
    assert delivery.output is None
    assert delivery.sent_with_ssl is False
    assert delivery.time is None


def test_details_and_output_are_cut_to_250_characters(fake: FakePostal, sent_id: int) -> None:
    delivery = fake.deliver(sent_id, "HardFail", details="d" * 300, output="  " + "o" * 300)

    assert delivery.details == "d" * 250
    assert delivery.output == "o" * 250


def test_a_message_on_another_server_is_scripted_through_its_record(fake: FakePostal) -> None:
    other = fake.add_server("other", api_keys=["other-key"], domains=["other.org"])
    headers = {"X-Server-API-Key": "other-key"}
    params = {"to": "a@example.org", "from": "x@other.org", "plain_body": "hi"}
    with httpx.Client(transport=fake.transport(), base_url="http://p", headers=headers) as http:
        http.post("/api/v1/send/message", json=params)
        [message] = other.messages
        fake.deliver(message, "Bounced")
        fake.load(1, server=other)
        fake.click(message, "https://example.org")
        reply = http.post("/api/v1/messages/message", json={"id": 1, "_expansions": True}).json()

    assert reply["data"]["status"]["status"] == "Bounced"
    assert len(reply["data"]["activity_entries"]["loads"]) == 1
    assert len(reply["data"]["activity_entries"]["clicks"]) == 1
    assert fake.message(1, server=other).status == "Bounced"
    assert fake.servers["other"] is other


def test_scripting_an_unknown_message_raises_key_error(fake: FakePostal) -> None:
    with pytest.raises(KeyError):
        fake.deliver(99)


def test_send_hooks_get_each_accepted_send_as_it_is_recorded(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    seen: list[OutboxEntry] = []
    # The outbox already holds the send when its hook runs.
    fake.send_hooks.append(lambda entry: seen.append(entry) or None)
    fake.send_hooks.append(lambda entry: None if entry in fake.outbox else pytest.fail("late"))

    call("send/message", message_params)
    call("send/message", {**message_params, "to": []})  # refused: NoRecipients
    raw = base64.b64encode(b"From: app@example.com\r\nTo: a@example.org\r\n\r\nHi").decode()
    call("send/raw", {"mail_from": "app@example.com", "rcpt_to": ["a@example.org"], "data": raw})

    assert seen == list(fake.outbox)
    assert [entry.endpoint for entry in seen] == ["send/message", "send/raw"]


def test_event_hooks_get_the_updated_message_and_each_event(fake: FakePostal, sent_id: int) -> None:
    seen: list[tuple[FakeMessage, FakeEvent]] = []
    fake.event_hooks.append(lambda message, event: seen.append((message, event)))

    delivery = fake.deliver(sent_id, "SoftFail")
    load = fake.load(sent_id)
    click = fake.click(sent_id, "https://example.org")

    assert [event for _, event in seen] == [delivery, load, click]
    assert isinstance(seen[0][1], FakeDelivery)
    assert isinstance(seen[1][1], FakeLoad)
    assert isinstance(seen[2][1], FakeClick)
    assert seen[0][0].status == "SoftFail"
    assert seen[2][0].clicks == (click,)


def test_an_event_hook_can_script_further_events(fake: FakePostal, sent_id: int) -> None:
    def retry_soft_failures(message: FakeMessage, event: FakeEvent) -> None:
        if isinstance(event, FakeDelivery) and event.status == "SoftFail":
            fake.deliver(message, "Sent")

    fake.event_hooks.append(retry_soft_failures)
    fake.deliver(sent_id, "SoftFail")

    assert [delivery.status for delivery in fake.message(sent_id).deliveries] == [
        "SoftFail",
        "Sent",
    ]


def test_the_outbox_records_each_accepted_send(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    call("send/message", {**message_params, "cc": "Mary <mary@example.org>", "tag": "t"})
    call("send/message", {**message_params, "to": []})
    data = "RnJvbTogYXBwQGV4YW1wbGUuY29tDQoNCkhp"
    call("send/raw", {"mail_from": "app@example.com", "rcpt_to": ["x@example.org"], "data": data})

    first, second = fake.outbox
    assert first.endpoint == "send/message"
    assert first.server == "main"
    assert first.params["tag"] == "t"
    assert first.recipients == ("john@example.org", "mary@example.org")
    assert list(first.messages) == ["john@example.org", "mary@example.org"]
    assert first.messages["john@example.org"] == fake.message(1)
    assert first.message_id == fake.message(1).message_id
    assert first.raw_message == fake.message(1).raw_message
    assert second.endpoint == "send/raw"
    assert second.raw_message == b"From: app@example.com\r\n\r\nHi"
    assert second.message_id is None


def test_the_request_log_records_every_request_in_order(
    fake: FakePostal, call: Call, http: httpx.Client, message_params: dict[str, Any]
) -> None:
    call("send/message", message_params)
    http.get("/elsewhere?x=1", headers={"X-Custom": "yes"})

    send, other = fake.requests
    assert send.method == "POST"
    assert send.endpoint == "send/message"
    assert send.json() == message_params
    assert send.headers["x-server-api-key"] == "fake-postal-api-key"
    assert (send.processed, send.fault, send.status_code) == (True, None, 200)
    assert other.endpoint is None
    assert (other.path, other.query) == ("/elsewhere", "x=1")
    assert other.headers["X-Custom"] == "yes"
    assert other.status_code == 404


def test_a_send_is_received_exactly_once(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    call("send/message", message_params)

    sends = [request for request in fake.requests if request.endpoint == "send/message"]
    assert len(sends) == 1


def test_a_server_exposes_its_configuration(fake: FakePostal) -> None:
    fake.server.add_domain("any.example.net", use_for_any=True)

    assert fake.hostname is None
    assert fake.return_path_domain == "rp.postal.example.com"
    assert fake.server.name == "main"
    assert fake.server.api_keys == ("fake-postal-api-key",)
    assert [domain.name for domain in fake.server.domains] == ["example.com", "any.example.net"]
    assert fake.server.domains[1].use_for_any
    assert repr(fake.server) == "<FakeServer 'main'>"
    assert repr(fake) == "<FakePostal servers=['main']>"
