"""messages/message and messages/deliveries: ids, expansions and their type quirks."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from postal_sdk.testing import FakePostal

Call = Callable[..., httpx.Response]

ALL_EXPANSIONS = [
    "status",
    "details",
    "inspection",
    "plain_body",
    "html_body",
    "attachments",
    "headers",
    "raw_message",
    "activity_entries",
]
ISO_MILLISECONDS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def lookup(call: Call, message_id: Any, expansions: Any = None) -> dict[str, Any]:
    params = {"id": message_id}
    if expansions is not None:
        params["_expansions"] = expansions
    reply: dict[str, Any] = call("messages/message", params).json()
    return reply


def test_without_expansions_only_id_and_token_come_back(call: Call, sent_id: int) -> None:
    data = lookup(call, sent_id)["data"]

    assert list(data) == ["id", "token"]
    assert data["id"] == sent_id


def test_expansions_true_gives_all_nine_in_order(call: Call, sent_id: int) -> None:
    data = lookup(call, sent_id, True)["data"]

    assert list(data) == ["id", "token", *ALL_EXPANSIONS]


@pytest.mark.parametrize("expansions", [False, "status", "true", {"status": True}, 1])
def test_anything_but_true_or_a_list_gives_no_expansion(
    call: Call, sent_id: int, expansions: Any
) -> None:
    assert list(lookup(call, sent_id, expansions)["data"]) == ["id", "token"]


def test_a_list_gives_the_named_expansions_in_postal_order(call: Call, sent_id: int) -> None:
    data = lookup(call, sent_id, ["headers", "nonsense", 3, "status"])["data"]

    assert list(data) == ["id", "token", "status", "headers"]


def test_a_new_message_is_pending_with_typed_details(call: Call, sent_id: int) -> None:
    data = lookup(call, sent_id, ["status", "details", "inspection"])["data"]

    assert data["status"] == {
        "status": "Pending",
        "last_delivery_attempt": None,
        "held": False,
        "hold_expiry": None,
    }
    details = data["details"]
    assert details["rcpt_to"] == "john@example.org"
    assert details["mail_from"] == "app@example.com"
    assert details["subject"] == "Hi"
    assert details["direction"] == "outgoing"
    assert isinstance(details["size"], str)
    assert int(details["size"]) > 0
    assert isinstance(details["timestamp"], float)
    assert details["bounce"] is False
    assert details["bounce_for_id"] == 0
    assert details["tag"] is None
    assert details["received_with_ssl"] is True
    assert data["inspection"] == {
        "inspected": False,
        "spam": False,
        "spam_score": 0.0,
        "threat": False,
        "threat_details": None,
    }


def test_bodies_attachments_and_headers_come_from_the_built_message(
    call: Call, message_params: dict[str, Any]
) -> None:
    content = b"x" * 100
    params = {
        **message_params,
        "html_body": "<p>Hello</p>",
        "attachments": [{"name": "x.bin", "data": base64.b64encode(content).decode()}],
    }
    sent = call("send/message", params).json()["data"]["messages"]["john@example.org"]

    data = lookup(call, sent["id"], True)["data"]

    assert data["plain_body"] == "Hello"
    assert data["html_body"] == "<p>Hello</p>"
    [attachment] = data["attachments"]
    assert attachment == {
        "filename": "x.bin",
        "content_type": "application/octet-stream",
        "data": attachment["data"],
        "size": 100,
        "hash": hashlib.sha1(content, usedforsecurity=False).hexdigest(),
    }
    assert base64.b64decode(attachment["data"]) == content
    assert attachment["data"].endswith("\n")
    assert all(len(line) <= 60 for line in attachment["data"].splitlines())
    assert data["headers"]["subject"] == ["Hi"]
    assert all(name == name.lower() for name in data["headers"])
    assert all(isinstance(values, list) for values in data["headers"].values())


def test_raw_message_is_mime_wrapped_base64_of_the_stored_message(
    fake: FakePostal, call: Call, sent_id: int
) -> None:
    raw_message = lookup(call, sent_id, ["raw_message"])["data"]["raw_message"]

    lines = raw_message.split("\n")
    assert lines[-1] == ""
    assert all(len(line) == 60 for line in lines[:-2])
    assert base64.b64decode(raw_message) == fake.message(sent_id).raw_message


def test_a_message_without_bodies_has_null_bodies(call: Call) -> None:
    data = base64.b64encode(b"From: app@example.com\r\nContent-Type: image/png\r\n\r\nxx").decode()
    call("send/raw", {"mail_from": "a@example.com", "rcpt_to": ["b@example.org"], "data": data})

    reply = lookup(call, 1, ["plain_body", "html_body", "attachments"])["data"]

    assert reply["plain_body"] is None
    assert reply["html_body"] is None
    assert reply["attachments"] == []


def test_activity_timestamps_are_iso_strings_with_milliseconds(
    fake: FakePostal, call: Call, sent_id: int
) -> None:
    fake.click(sent_id, "https://example.org/b", timestamp=20.0)
    fake.load(sent_id, ip_address="203.0.113.9", user_agent="Mail/1.0", timestamp=30.0)
    fake.click(sent_id, "https://example.org/a", timestamp=10.5)

    activity = lookup(call, sent_id, ["activity_entries"])["data"]["activity_entries"]

    assert activity["loads"] == [
        {
            "ip_address": "203.0.113.9",
            "user_agent": "Mail/1.0",
            "timestamp": "1970-01-01T00:00:30.000Z",
        }
    ]
    assert [click["url"] for click in activity["clicks"]] == [
        "https://example.org/a",
        "https://example.org/b",
    ]
    assert activity["clicks"][0]["timestamp"] == "1970-01-01T00:00:10.500Z"
    assert all(ISO_MILLISECONDS.fullmatch(click["timestamp"]) for click in activity["clicks"])


@pytest.mark.parametrize("endpoint", ["messages/message", "messages/deliveries"])
@pytest.mark.parametrize("message_id", [0, 123, -1])
def test_an_unknown_id_is_message_not_found_carrying_the_id(
    call: Call, endpoint: str, message_id: int
) -> None:
    data = call(endpoint, {"id": message_id}).json()["data"]

    assert data == {
        "message": "No message found matching provided ID",
        "id": message_id,
        "code": "MessageNotFound",
    }


@pytest.mark.parametrize("endpoint", ["messages/message", "messages/deliveries"])
@pytest.mark.parametrize("params", [{}, {"id": None}, {"id": ""}, {"id": False}, {"id": []}])
def test_a_blank_id_is_a_parameter_error(call: Call, endpoint: str, params: Any) -> None:
    reply = call(endpoint, params).json()

    assert reply["status"] == "parameter-error"
    assert reply["data"] == {"message": "`id` parameter is required but is missing"}


@pytest.mark.parametrize("endpoint", ["messages/message", "messages/deliveries"])
@pytest.mark.parametrize("message_id", ["1", 1.0, True, [1], {"token": "x"}])
def test_an_id_that_is_not_an_integer_gives_500(
    call: Call, sent_id: int, endpoint: str, message_id: Any
) -> None:
    assert call(endpoint, {"id": message_id}).status_code == 500


def test_deliveries_are_an_empty_array_while_pending(call: Call, sent_id: int) -> None:
    reply = call("messages/deliveries", {"id": sent_id}).json()

    assert reply["status"] == "success"
    assert reply["data"] == []


def test_deliveries_are_an_array_ordered_by_timestamp(
    fake: FakePostal, call: Call, sent_id: int
) -> None:
    fake.deliver(sent_id, "Sent", output="250 OK  ", time=0.42, timestamp=200.0, sent_with_ssl=True)
    fake.deliver(sent_id, "SoftFail", details="no server", output=None, timestamp=100.0)

    rows = call("messages/deliveries", {"id": sent_id}).json()["data"]

    assert [row["status"] for row in rows] == ["SoftFail", "Sent"]
    assert list(rows[0]) == [
        "id",
        "status",
        "details",
        "output",
        "sent_with_ssl",
        "log_id",
        "time",
        "timestamp",
    ]
    assert rows[0]["details"] == "no server"
    assert rows[1]["output"] == "250 OK"
    assert rows[1]["sent_with_ssl"] is True
    assert rows[1]["time"] == 0.42
    assert rows[1]["timestamp"] == 200.0
    assert [row["id"] for row in rows] == [2, 1]
