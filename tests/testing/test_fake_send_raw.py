"""send/raw: parameter checks, header-block authentication, and keys exactly as sent."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from postal_sdk.testing import FakePostal

Call = Callable[..., httpx.Response]

RAW = (
    b"From: App <app@example.com>\r\nTo: john@example.org\r\nSubject: Raw\r\n"
    b"Message-ID: <abc.123@example.com>\r\n\r\nHello\r\n"
)


def raw_params(data: bytes = RAW, **changes: Any) -> dict[str, Any]:
    params = {
        "mail_from": "app@example.com",
        "rcpt_to": ["john@example.org"],
        "data": base64.b64encode(data).decode(),
    }
    return {**params, **changes}


@pytest.mark.parametrize(
    ("params", "missing"),
    [
        ({}, "rcpt_to"),
        ({"rcpt_to": "john@example.org", "mail_from": "", "data": ""}, "rcpt_to"),
        ({"rcpt_to": {"a": "b"}}, "rcpt_to"),
        ({"rcpt_to": [], "mail_from": " ", "data": ""}, "mail_from"),
        ({"rcpt_to": [], "mail_from": "a@example.com"}, "data"),
        ({"rcpt_to": [], "mail_from": "a@example.com", "data": "  "}, "data"),
    ],
)
def test_missing_parameters_are_checked_in_order(
    call: Call, params: dict[str, Any], missing: str
) -> None:
    response = call("send/raw", params)

    assert response.json()["status"] == "parameter-error"
    assert response.json()["data"] == {
        "message": f"`{missing}` parameter is required but is missing"
    }


def test_an_empty_recipient_list_creates_nothing(call: Call, fake: FakePostal) -> None:
    response = call("send/raw", raw_params(rcpt_to=[]))

    assert response.json()["data"] == {"message_id": None, "messages": {}}
    assert fake.server.messages == ()


def test_keys_are_the_recipients_exactly_as_sent_without_duplicates(
    call: Call, fake: FakePostal
) -> None:
    recipients = [
        "John <John@Example.org>",
        "a@example.org",
        "John <John@Example.org>",
        "A@example.org",
    ]

    response = call("send/raw", raw_params(rcpt_to=recipients))

    assert list(response.json()["data"]["messages"]) == [
        "John <John@Example.org>",
        "a@example.org",
        "A@example.org",
    ]
    assert [message.id for message in fake.server.messages] == [1, 2, 3]


def test_there_is_no_maximum_number_of_recipients(call: Call) -> None:
    recipients = [f"user{number}@example.org" for number in range(120)]

    response = call("send/raw", raw_params(rcpt_to=recipients))

    assert len(response.json()["data"]["messages"]) == 120


def test_the_message_id_comes_from_the_raw_message_header(call: Call, fake: FakePostal) -> None:
    response = call("send/raw", raw_params(rcpt_to=["a@example.org", "b@example.org"]))

    assert response.json()["data"]["message_id"] == "abc.123@example.com"
    assert fake.message(2).message_id == "abc.123@example.com"


def test_the_message_id_is_null_without_a_message_id_header(call: Call) -> None:
    data = b"From: app@example.com\r\n\r\nHello"

    response = call("send/raw", raw_params(data))

    assert response.json()["data"]["message_id"] is None


def test_the_raw_message_is_stored_as_sent(call: Call, fake: FakePostal) -> None:
    call("send/raw", raw_params(bounce="no"))

    message = fake.message(1)
    assert message.raw_message == RAW
    assert message.size == len(RAW)
    assert message.mail_from == "app@example.com"
    assert message.subject == "Raw"
    assert message.bounce is True
    assert message.tag is None
    assert fake.outbox[0].raw_message == RAW


def test_data_is_decoded_leniently(call: Call, fake: FakePostal) -> None:
    data = base64.encodebytes(RAW).decode().replace("\n", "\n\t")

    call("send/raw", {**raw_params(), "data": data})

    assert fake.message(1).raw_message == RAW


@pytest.mark.parametrize(
    "data",
    [
        b"From: someone@elsewhere.org\r\n\r\nHi",
        b"To: john@example.org\r\n\r\nNo From header",
        b"From: a@example.com, b@elsewhere.org\r\n\r\nOne of two",
        b"From: Undisclosed\r\n\r\nNo address",
        b"Subject: x\r\n\r\nFrom: app@example.com\r\n",
    ],
)
def test_every_from_address_in_the_header_block_must_be_authenticated(
    call: Call, data: bytes
) -> None:
    response = call("send/raw", raw_params(data))

    assert response.json()["status"] == "error"
    assert response.json()["data"] == {"code": "UnauthenticatedFromAddress"}


def test_several_authenticated_from_addresses_are_accepted(call: Call) -> None:
    data = b"From: a@example.com, B <b@Example.com>\r\n\r\nHi"

    assert call("send/raw", raw_params(data)).json()["status"] == "success"


def test_mail_from_is_not_checked(call: Call) -> None:
    response = call("send/raw", raw_params(mail_from="bounces@elsewhere.org"))

    assert response.json()["status"] == "success"


def test_the_sender_header_authenticates_when_the_server_allows_it(
    fake: FakePostal, call: Call
) -> None:
    data = b"From: boss@elsewhere.org\r\nSender: app@example.com\r\n\r\nHi"

    refused = call("send/raw", raw_params(data))
    fake.server.allow_sender = True
    accepted = call("send/raw", raw_params(data))

    assert refused.json()["data"]["code"] == "UnauthenticatedFromAddress"
    assert accepted.json()["status"] == "success"


def test_a_message_without_a_blank_line_is_all_headers(call: Call, fake: FakePostal) -> None:
    data = b"From: app@example.com\r\nSubject: Only headers"

    call("send/raw", raw_params(data))

    assert fake.message(1).raw_message == data + b"\r\n\r\n"
    assert fake.message(1).subject == "Only headers"


@pytest.mark.parametrize("data", [5, ["eA=="]])
def test_data_that_is_not_a_string_gives_500(call: Call, data: Any) -> None:
    response = call("send/raw", {**raw_params(), "data": data})

    assert response.status_code == 500


def test_non_string_recipients_are_keyed_by_their_text(call: Call) -> None:
    response = call("send/raw", raw_params(rcpt_to=[5, 5, 5.0, True]))

    assert list(response.json()["data"]["messages"]) == ["5", "5.0", "true"]


def test_form_mode_null_recipients_are_keyed_by_an_empty_string(
    api: httpx.Client, fake: FakePostal
) -> None:
    params = raw_params(rcpt_to=[None])

    response = api.post("/api/v1/send/raw", data={"params": json.dumps(params)})

    assert list(response.json()["data"]["messages"]) == [""]
    assert fake.message(1).rcpt_to is None


def test_undecodable_headers_and_bodies_are_read_as_well_as_possible(
    call: Call, fake: FakePostal
) -> None:
    data = (
        b"From: app@example.com\r\nSubject: =?x-unknown?q?caf=E9?=\r\n"
        b"Content-Type: text/plain; charset=x-unknown\r\n\r\ncaf\xc3\xa9"
    )

    call("send/raw", raw_params(data))

    assert fake.message(1).subject == "=?x-unknown?q?caf=E9?="
    assert fake.message(1).plain_body == "café"
