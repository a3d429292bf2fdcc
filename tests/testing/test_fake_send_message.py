"""send/message: validation order, recipients, results, and the message Postal builds."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from postal_sdk.testing import FakePostal, VerifiedDomain

Call = Callable[..., httpx.Response]

MESSAGES = {
    "NoRecipients": "There are no recipients defined to receive this message",
    "TooManyToAddresses": "The maximum number of To addresses has been reached (maximum 50)",
    "TooManyCCAddresses": "The maximum number of CC addresses has been reached (maximum 50)",
    "TooManyBCCAddresses": "The maximum number of BCC addresses has been reached (maximum 50)",
    "NoContent": "There is no content defined for this e-mail",
    "FromAddressMissing": "The From address is missing and is required",
    "UnauthenticatedFromAddress": (
        "The From address is not authorised to send mail from this server"
    ),
    "AttachmentMissingName": "An attachment is missing a name",
    "AttachmentMissingData": "An attachment is missing data",
}
MANY = [f"user{number}@example.org" for number in range(51)]
GOOD_FILE = {"name": "a.txt", "data": base64.b64encode(b"data").decode()}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"to": [], "cc": [], "bcc": []}, "NoRecipients"),
        ({"to": MANY}, "TooManyToAddresses"),
        ({"cc": MANY}, "TooManyCCAddresses"),
        ({"bcc": MANY}, "TooManyBCCAddresses"),
        ({"plain_body": " \n", "html_body": ""}, "NoContent"),
        ({"from": None}, "FromAddressMissing"),
        ({"from": "someone@elsewhere.org"}, "UnauthenticatedFromAddress"),
        ({"attachments": [{"name": " ", "data": b64(b"x")}]}, "AttachmentMissingName"),
        ({"attachments": [{"name": "a.txt", "data": None}]}, "AttachmentMissingData"),
        ({"attachments": [{"name": "a.txt", "data": b64(b"  \n")}]}, "AttachmentMissingData"),
    ],
)
def test_each_validation_error_has_its_code_and_message(
    call: Call, message_params: dict[str, Any], changes: dict[str, Any], code: str
) -> None:
    response = call("send/message", {**message_params, **changes})

    assert response.status_code == 200
    assert response.json()["status"] == "error"
    assert response.json()["data"] == {"message": MESSAGES[code], "code": code}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"to": [], "plain_body": None, "from": None}, "NoRecipients"),
        ({"to": MANY, "cc": MANY, "bcc": MANY, "plain_body": None}, "TooManyToAddresses"),
        ({"cc": MANY, "bcc": MANY}, "TooManyCCAddresses"),
        ({"bcc": MANY, "plain_body": None}, "TooManyBCCAddresses"),
        ({"plain_body": None, "from": ""}, "NoContent"),
        ({"from": "", "attachments": [{"name": ""}]}, "FromAddressMissing"),
        ({"from": "x@elsewhere.org", "attachments": [{"name": ""}]}, "UnauthenticatedFromAddress"),
        ({"attachments": [{"name": "a.txt"}, {"name": ""}]}, "AttachmentMissingData"),
        ({"attachments": [{"data": b64(b"x")}, {"name": "b.txt"}]}, "AttachmentMissingName"),
        ({"attachments": [{"name": ""}, {"name": ""}, {"name": "c.txt"}]}, "AttachmentMissingName"),
    ],
)
def test_send_message_returns_only_the_first_validation_error(
    call: Call, message_params: dict[str, Any], changes: dict[str, Any], code: str
) -> None:
    response = call("send/message", {**message_params, **changes})

    assert response.json()["data"]["code"] == code


def test_fifty_addresses_per_list_are_allowed_counted_before_dedupe(
    call: Call, message_params: dict[str, Any]
) -> None:
    fifty_same = ["same@example.org"] * 50

    accepted = call("send/message", {**message_params, "to": fifty_same, "cc": fifty_same})
    refused = call("send/message", {**message_params, "to": [*fifty_same, "same@example.org"]})

    assert list(accepted.json()["data"]["messages"]) == ["same@example.org"]
    assert refused.json()["data"]["code"] == "TooManyToAddresses"


def test_recipients_can_be_one_comma_separated_string(
    call: Call, message_params: dict[str, Any]
) -> None:
    response = call(
        "send/message",
        {**message_params, "to": "a@example.org,b@example.org,   c@example.org,", "cc": ""},
    )

    assert list(response.json()["data"]["messages"]) == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]


def test_result_keys_are_stripped_of_names_and_comments_keeping_case(
    call: Call, message_params: dict[str, Any]
) -> None:
    response = call(
        "send/message",
        {
            **message_params,
            "to": ['"Doe, John" <John.Doe@Example.org>'],
            "cc": ["  mary@example.org (Mary)  "],
            "bcc": "Boss <boss@example.org>",
        },
    )

    assert list(response.json()["data"]["messages"]) == [
        "John.Doe@Example.org",
        "mary@example.org",
        "boss@example.org",
    ]


def test_a_repeated_address_creates_two_messages_and_the_last_one_is_returned(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    response = call(
        "send/message",
        {**message_params, "to": ["a@example.org"], "cc": ["b@example.org", "A <a@example.org>"]},
    )

    messages = response.json()["data"]["messages"]
    assert messages["a@example.org"]["id"] == 3
    assert [message.rcpt_to for message in fake.server.messages] == [
        "a@example.org",
        "b@example.org",
        "a@example.org",
    ]
    assert len(fake.outbox[0].created) == 3


def test_messages_get_increasing_ids_and_sixteen_character_tokens(
    call: Call, message_params: dict[str, Any]
) -> None:
    first = call("send/message", {**message_params, "to": ["a@example.org", "b@example.org"]})
    second = call("send/message", message_params)

    sent = [*first.json()["data"]["messages"].values(), *second.json()["data"]["messages"].values()]
    assert [message["id"] for message in sent] == [1, 2, 3]
    assert all(re.fullmatch(r"[A-Za-z0-9]{16}", message["token"]) for message in sent)
    assert len({message["token"] for message in sent}) == 3


def test_the_message_id_is_a_uuid_at_the_return_path_domain_without_brackets(
    call: Call, message_params: dict[str, Any], fake: FakePostal
) -> None:
    message_id = call("send/message", message_params).json()["data"]["message_id"]

    assert re.fullmatch(r"[0-9a-f-]{36}@rp\.postal\.example\.com", message_id)
    assert fake.message(1).headers["message-id"] == [f"<{message_id}>"]


def test_the_return_path_domain_can_be_configured() -> None:
    fake = FakePostal(return_path_domain="rp.mail.test")
    headers = {"X-Server-API-Key": "fake-postal-api-key"}
    params = {"to": "a@example.org", "from": "x@example.com", "plain_body": "hi"}
    with httpx.Client(transport=fake.transport(), base_url="http://p", headers=headers) as http:
        reply = http.post("/api/v1/send/message", json=params).json()

    assert reply["data"]["message_id"].endswith("@rp.mail.test")


@pytest.mark.parametrize(
    ("domains", "from_", "accepted"),
    [
        (["example.com"], "App <app@EXAMPLE.com>", True),
        (["example.com"], "app@sub.example.com", False),
        ([VerifiedDomain("zz.example.net", use_for_any=True)], "app@anything.org", True),
        ([VerifiedDomain("catch.example.net", use_for_any=True)], "no-at-sign", False),
        ([], "app@example.com", False),
    ],
)
def test_the_from_domain_must_be_verified_or_a_use_for_any_domain_must_exist(
    domains: list[str | VerifiedDomain], from_: str, accepted: bool
) -> None:
    fake = FakePostal(domains=domains)
    headers = {"X-Server-API-Key": "fake-postal-api-key"}
    params = {"to": "a@example.org", "from": from_, "plain_body": "hi"}
    with httpx.Client(transport=fake.transport(), base_url="http://p", headers=headers) as http:
        reply = http.post("/api/v1/send/message", json=params).json()

    assert (reply["status"] == "success") is accepted


def test_the_sender_authenticates_only_when_the_server_allows_it(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    params = {**message_params, "from": "x@elsewhere.org", "sender": "app@example.com"}

    refused = call("send/message", params)
    fake.server.allow_sender = True
    accepted = call("send/message", params)

    assert refused.json()["data"]["code"] == "UnauthenticatedFromAddress"
    assert accepted.json()["status"] == "success"
    assert fake.message(1).headers["sender"] == ["app@example.com"]


def test_a_sender_cannot_stand_in_for_a_missing_from(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    fake.server.allow_sender = True

    response = call("send/message", {**message_params, "from": None, "sender": "a@example.com"})

    assert response.json()["data"]["code"] == "FromAddressMissing"


@pytest.mark.parametrize(
    ("bounce", "stored"),
    [(None, False), (False, False), (True, True), (0, True), ("", True), ("false", True)],
)
def test_bounce_follows_ruby_truthiness(
    fake: FakePostal, call: Call, message_params: dict[str, Any], bounce: Any, stored: bool
) -> None:
    call("send/message", {**message_params, "bounce": bounce})

    assert fake.message(1).bounce is stored


def test_the_tag_is_stored_on_every_message(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    call("send/message", {**message_params, "cc": "b@example.org", "tag": "welcome"})

    assert [message.tag for message in fake.server.messages] == ["welcome", "welcome"]


def test_attachments_that_are_not_objects_are_skipped(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    for attachments in ([123, "string", None], {"name": "a.txt"}, False):
        call("send/message", {**message_params, "attachments": attachments})

    assert [message.attachments for message in fake.server.messages] == [[], [], []]


def test_attachments_are_decoded_leniently_with_a_default_content_type(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    wrapped = base64.encodebytes(b"report " * 20).decode()
    attachments = [
        {"name": "report.txt", "data": wrapped},
        {"name": "page.html", "content_type": "text/html", "data": b64(b"<p>")},
        {"name": "odd.bin", "content_type": "not a type", "data": b64(b"\x00")},
    ]

    call("send/message", {**message_params, "attachments": attachments})

    assert [
        (item.filename, item.content_type, item.data) for item in fake.message(1).attachments
    ] == [
        ("report.txt", "application/octet-stream", b"report " * 20),
        ("page.html", "text/html", b"<p>"),
        ("odd.bin", "application/octet-stream", b"\x00"),
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"to": 5},
        {"cc": True},
        {"bcc": False},
        {"from": ["app@example.com"]},
        {"from": 5},
        {"attachments": "file.txt"},
        {"attachments": [{"name": "a.txt", "data": 5}]},
    ],
)
def test_known_crash_paths_give_500(
    fake: FakePostal, call: Call, message_params: dict[str, Any], changes: dict[str, Any]
) -> None:
    response = call("send/message", {**message_params, **changes})

    assert response.status_code == 500
    assert fake.server.messages == ()
    assert fake.outbox == ()


def test_a_non_string_recipient_crashes_after_the_earlier_messages_were_created(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    response = call("send/message", {**message_params, "to": ["a@example.org", 5, "b@example.org"]})

    assert response.status_code == 500
    assert [message.rcpt_to for message in fake.server.messages] == ["a@example.org"]
    assert fake.outbox == ()


def test_a_non_string_sender_crashes_when_it_is_consulted(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    fake.server.allow_sender = True

    response = call("send/message", {**message_params, "from": "x@elsewhere.org", "sender": 1})

    assert response.status_code == 500


def test_recipients_given_as_an_object_become_key_value_pairs(
    call: Call, message_params: dict[str, Any]
) -> None:
    response = call("send/message", {**message_params, "to": {"a@example.org": "b@example.org"}})

    assert list(response.json()["data"]["messages"]) == ["a@example.org", "b@example.org"]


def test_the_message_is_a_real_rfc_2822_message(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    call(
        "send/message",
        {
            **message_params,
            "to": ["John <john@example.org>", "b@example.org"],
            "cc": "c@example.org",
            "bcc": ["hidden@example.org"],
            "reply_to": "help@example.com",
            "subject": "Grüße",
            "html_body": "<p>Hello</p>",
            "attachments": [{"name": "a.txt", "content_type": "text/plain", "data": b64(b"hi")}],
        },
    )

    parsed = email.message_from_bytes(fake.message(1).raw_message, policy=email.policy.default)
    assert parsed["To"] == "John <john@example.org>, b@example.org"
    assert parsed["Cc"] == "c@example.org"
    assert parsed["Bcc"] is None
    assert parsed["From"] == "App <app@example.com>"
    assert parsed["Reply-To"] == "help@example.com"
    assert parsed["Subject"] == "Grüße"
    assert parsed.get_body(("plain",)).get_content() == "Hello"  # type: ignore[union-attr]
    assert parsed.get_body(("html",)).get_content() == "<p>Hello</p>"  # type: ignore[union-attr]
    [attachment] = parsed.iter_attachments()
    assert attachment.get_filename() == "a.txt"
    assert attachment.get_content() == "hi"
    assert fake.message(1).plain_body == "Hello"
    assert fake.message(1).html_body == "<p>Hello</p>"


def test_custom_headers_are_added_and_lose_to_the_parameters(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    call(
        "send/message",
        {
            **message_params,
            "to": [],
            "bcc": ["hidden@example.org"],
            "headers": {
                "X-Number": 5,
                "X-Flag": True,
                "X-Injected": "a\r\nBcc: victim@example.org",
                "To": "list@example.org",
                "From": "spoof@example.org",
                "Reply-To": "ignored@example.org",
                "Content-Type": "text/plain",
                "Bad Name": "dropped",
            },
        },
    )

    headers = fake.message(1).headers
    assert headers["x-number"] == ["5"]
    assert headers["x-flag"] == ["true"]
    assert headers["x-injected"] == ["a Bcc: victim@example.org"]
    assert headers["to"] == ["list@example.org"]
    assert headers["from"] == ["App <app@example.com>"]
    assert "reply-to" not in headers
    assert headers["content-type"][0].startswith("multipart/mixed")
    assert "bad name" not in headers


def test_headers_that_are_not_an_object_are_ignored(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    call("send/message", {**message_params, "headers": ["X-A: b"]})

    assert "x-a" not in fake.message(1).headers


def test_an_html_only_message_has_no_plain_body(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    call("send/message", {**message_params, "plain_body": None, "html_body": "<p>Hi</p>"})

    assert fake.message(1).plain_body is None
    assert fake.message(1).html_body == "<p>Hi</p>"


def test_structured_header_values_are_turned_into_text(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    call("send/message", {**message_params, "headers": {"X-List": [1, "a"], "X-Null": None}})

    headers = fake.message(1).headers
    assert headers["x-list"] == ['[1, "a"]']
    assert "x-null" not in headers


def test_the_stored_subject_is_cut_to_200_characters(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    call("send/message", {**message_params, "subject": "s" * 250})

    assert fake.message(1).subject == "s" * 200
    assert fake.message(1).headers["subject"] == ["s" * 250]
