# Generated from tests/client/_async/test_endpoints.py by scripts/unasync.py: do not edit by hand.
# Edit the async source and run `nox -s unasync`.
"""The four endpoints: the request each one sends and the typed reply it returns."""

from __future__ import annotations

import base64
import email.message
import json
from datetime import datetime, timezone

import httpx
import pytest
import respx

from postal_sdk import (
    EXPANSIONS,
    Attachment,
    Delivery,
    Message,
    Postal,
    RawMessage,
    SentMessage,
)
from tests.client.support import (
    API_KEY,
    DELIVERIES_URL,
    MESSAGE_URL,
    SEND_DATA,
    SEND_MESSAGE_URL,
    SEND_RAW_URL,
    envelope,
)

pytestmark = pytest.mark.sync

FULL_MESSAGE = {
    "id": 14,
    "token": "Xk2J9qLm0PaZr7Tb",
    "status": {
        "status": "Sent",
        "last_delivery_attempt": 1713450642.512,
        "held": False,
        "hold_expiry": None,
    },
    "details": {
        "rcpt_to": "john@example.com",
        "mail_from": "app@example.org",
        "subject": "Hi",
        "message_id": "7f0e@rp.postal.example.com",
        "timestamp": 1713450640.101,
        "direction": "outgoing",
        "size": "1432",
        "bounce": False,
        "bounce_for_id": 0,
        "tag": "welcome",
        "received_with_ssl": True,
    },
    "inspection": {
        "inspected": True,
        "spam": False,
        "spam_score": 0.4,
        "threat": False,
        "threat_details": None,
    },
    "plain_body": "Hello",
    "html_body": "<p>Hello</p>",
    "attachments": [
        {
            "filename": "report.pdf",
            "content_type": "application/pdf",
            "data": base64.encodebytes(b"%PDF" * 40).decode(),
            "size": 160,
            "hash": "0" * 40,
        }
    ],
    "headers": {"to": ["john@example.com"], "received": ["one", "two"]},
    "raw_message": base64.encodebytes(b"From: a@b\r\n\r\nHello" * 10).decode(),
    "activity_entries": {
        "loads": [
            {"ip_address": "1.2.3.4", "user_agent": "Mail", "timestamp": "2024-04-18T14:30:42.123Z"}
        ],
        "clicks": [
            {
                "url": "https://example.com",
                "ip_address": "1.2.3.4",
                "user_agent": "Mail",
                "timestamp": "2024-04-18T14:31:00.000Z",
            }
        ],
    },
    "a_field_from_a_newer_postal": {"ignored": True},
}


def sent_json(route: respx.Route) -> dict[str, object]:
    body = json.loads(route.calls.last.request.content)
    assert isinstance(body, dict)
    return body


def test_send_message_posts_json_with_the_key_and_wire_names(
    postal: Postal, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(SEND_MESSAGE_URL).mock(
        return_value=httpx.Response(200, json=envelope(SEND_DATA))
    )
    postal.send_message(
        Message(
            from_="App <app@example.com>",
            to=["john@example.com"],
            subject="Hi",
            plain_body="Hello",
            attachments=[Attachment(name="report.pdf", data=b"%PDF-1.4")],
            headers={"X-Campaign": "spring"},
            bounce=False,
        )
    )
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.headers["X-Server-API-Key"] == API_KEY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert sent_json(route) == {
        "from": "App <app@example.com>",
        "to": ["john@example.com"],
        "subject": "Hi",
        "plain_body": "Hello",
        "bounce": False,
        "headers": {"X-Campaign": "spring"},
        "attachments": [
            {
                "name": "report.pdf",
                "content_type": "application/pdf",
                "data": base64.b64encode(b"%PDF-1.4").decode(),
            }
        ],
    }


def test_send_message_returns_one_sent_message_per_recipient(
    postal: Postal, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(SEND_MESSAGE_URL).mock(
        return_value=httpx.Response(200, json=envelope(SEND_DATA))
    )
    sent = postal.send_message(
        Message(from_="app@example.com", to="john@example.com, Mary@Example.com", plain_body="x")
    )
    assert sent.message_id == SEND_DATA["message_id"]
    assert sent.messages["john@example.com"] == SentMessage(id=37171, token="Xk2J9qLm0PaZr7Tb")
    assert sent.for_recipient("mary@example.com").id == 37172


def test_send_raw_base64_encodes_an_email_message_with_crlf(
    postal: Postal, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(SEND_RAW_URL).mock(
        return_value=httpx.Response(200, json=envelope({"message_id": None, "messages": {}}))
    )
    mail = email.message.EmailMessage()
    mail["From"] = "app@example.com"
    mail["To"] = "john@example.com"
    mail.set_content("Hello")
    sent = postal.send_raw(
        RawMessage(mail_from="app@example.com", rcpt_to=["john@example.com"], data=mail)
    )
    body = sent_json(route)
    assert body["mail_from"] == "app@example.com"
    assert body["rcpt_to"] == ["john@example.com"]
    raw = base64.b64decode(str(body["data"]))
    assert raw.startswith(b"From: app@example.com\r\nTo: john@example.com\r\n")
    assert b"\r\n\r\nHello" in raw
    assert sent.message_id is None


def test_get_message_sends_an_integer_id_and_the_listed_expansions(
    postal: Postal, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(MESSAGE_URL).mock(
        return_value=httpx.Response(200, json=envelope({"id": 14, "token": "t"}))
    )
    info = postal.get_message(14, expansions=["status", "details"])
    assert sent_json(route) == {"id": 14, "_expansions": ["status", "details"]}
    assert (info.id, info.token, info.status, info.details) == (14, "t", None, None)


def test_get_message_with_expansions_true_asks_for_all(
    postal: Postal, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(MESSAGE_URL).mock(
        return_value=httpx.Response(200, json=envelope(FULL_MESSAGE))
    )
    info = postal.get_message(14, expansions=True)
    assert sent_json(route) == {"id": 14, "_expansions": True}
    assert info.status is not None
    assert info.status.last_delivery_attempt == datetime.fromtimestamp(
        1713450642.512, tz=timezone.utc
    )
    assert info.details is not None
    assert info.details.size == 1432
    assert info.details.bounce_for_id is None
    assert info.inspection is not None
    assert info.inspection.spam_score == 0.4
    assert info.attachments is not None
    assert info.attachments[0].data == b"%PDF" * 40
    assert info.headers == {"to": ("john@example.com",), "received": ("one", "two")}
    assert info.raw_message == b"From: a@b\r\n\r\nHello" * 10
    assert info.activity_entries is not None
    assert info.activity_entries.loads[0].timestamp == datetime(
        2024, 4, 18, 14, 30, 42, 123000, tzinfo=timezone.utc
    )
    assert info.activity_entries.clicks[0].url == "https://example.com"
    assert (info.plain_body, info.html_body) == ("Hello", "<p>Hello</p>")


def test_get_message_without_expansions_sends_only_the_id(
    postal: Postal, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(MESSAGE_URL).mock(
        return_value=httpx.Response(200, json=envelope({"id": 3, "token": "t"}))
    )
    postal.get_message(3)
    assert sent_json(route) == {"id": 3}


def test_every_named_expansion_is_accepted(postal: Postal, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(MESSAGE_URL).mock(
        return_value=httpx.Response(200, json=envelope(FULL_MESSAGE))
    )
    postal.get_message(14, expansions=EXPANSIONS)
    assert sent_json(route)["_expansions"] == list(EXPANSIONS)


def test_get_deliveries_returns_the_array_as_typed_deliveries(
    postal: Postal, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(DELIVERIES_URL).mock(
        return_value=httpx.Response(
            200,
            json=envelope(
                [
                    {
                        "id": 1,
                        "status": "SoftFail",
                        "details": "no server found",
                        "output": "404",
                        "sent_with_ssl": True,
                        "log_id": "1234",
                        "time": 1.2,
                        "timestamp": 1713450640.12,
                    },
                    {
                        "id": 2,
                        "status": "Held",
                        "details": None,
                        "output": None,
                        "sent_with_ssl": False,
                        "log_id": None,
                        "time": None,
                        "timestamp": 1713450700.55,
                    },
                ]
            ),
        )
    )
    deliveries = postal.get_deliveries(14)
    assert sent_json(route) == {"id": 14}
    assert [delivery.status for delivery in deliveries] == ["SoftFail", "Held"]
    assert isinstance(deliveries[0], Delivery)
    assert deliveries[1].timestamp == datetime.fromtimestamp(1713450700.55, tz=timezone.utc)


def test_a_pending_message_has_no_deliveries(postal: Postal, respx_mock: respx.MockRouter) -> None:
    respx_mock.post(DELIVERIES_URL).mock(return_value=httpx.Response(200, json=envelope([])))
    assert postal.get_deliveries(14) == []


def test_extra_headers_go_with_every_request(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(DELIVERIES_URL).mock(
        return_value=httpx.Response(200, json=envelope([]))
    )
    with Postal("https://postal.test", API_KEY, headers={"X-Trace": "abc"}) as client:
        client.get_deliveries(1)
        client.with_options(headers={"X-Other": "1"}).get_deliveries(1)
    assert route.calls[0].request.headers["X-Trace"] == "abc"
    assert route.calls[1].request.headers["X-Trace"] == "abc"
    assert route.calls[1].request.headers["X-Other"] == "1"
