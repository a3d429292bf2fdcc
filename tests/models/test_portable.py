"""Models and errors travel: they pickle, copy, and round-trip through Postal's dict shape."""

from __future__ import annotations

import copy
import email.message
import json
import pickle
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import postal_sdk.webhooks
from postal_sdk import Attachment, Message, MessageInfo, RawMessage, SendResult
from postal_sdk._serde import converter
from postal_sdk.cli._jsonl import read_messages
from postal_sdk.errors import (
    ERROR_CLASSES,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BatchAborted,
    ClientClosedError,
    ConfigurationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidServerAPIKey,
    JournalError,
    MessageNotFound,
    MessageRejectedError,
    ParameterError,
    PostalError,
    SendInDoubt,
    UnexpectedResponseError,
    WebhookTooOldError,
)
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal

# Text Postal takes in a header-like field: no CR or LF, something that is not blank.
header_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30).filter(
    str.strip
)
body_text = st.text(st.characters(codec="utf-8"), max_size=200).filter(str.strip)
addresses = st.from_regex(r"[a-z][a-z0-9.]{0,10}@[a-z]{1,10}\.example", fullmatch=True)
address_lists = st.lists(addresses, max_size=4)
header_names = st.from_regex(r"X-[A-Za-z0-9-]{1,12}", fullmatch=True)
non_blank_bytes = st.binary(max_size=300).filter(bytes.strip)

attachments = st.builds(
    Attachment,
    name=header_text,
    data=non_blank_bytes,
    content_type=st.sampled_from(["text/plain", "application/pdf", "image/png"]),
)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    to, cc, bcc = draw(address_lists), draw(address_lists), draw(address_lists)
    if not (to or cc or bcc):
        to = [draw(addresses)]
    plain_body, html_body = draw(st.none() | body_text), draw(st.none() | body_text)
    if plain_body is None and html_body is None:
        plain_body = draw(body_text)
    return Message(
        from_=draw(addresses),
        to=to,
        cc=cc,
        bcc=bcc,
        subject=draw(st.none() | header_text),
        plain_body=plain_body,
        html_body=html_body,
        sender=draw(st.none() | addresses),
        reply_to=draw(st.none() | addresses),
        tag=draw(st.none() | header_text),
        bounce=draw(st.none() | st.booleans()),
        headers=draw(st.dictionaries(header_names, header_text, max_size=3)),
        attachments=draw(st.lists(attachments, max_size=2)),
    )


raw_messages = st.builds(
    RawMessage,
    mail_from=addresses,
    rcpt_to=st.lists(addresses, min_size=1, max_size=4),
    data=non_blank_bytes,
    bounce=st.none() | st.booleans(),
)


@given(messages())
def test_a_message_pickles_and_copies_to_an_equal_message(message: Message) -> None:
    restored = pickle.loads(pickle.dumps(message))  # noqa: S301 - our own bytes

    assert restored == message
    assert copy.deepcopy(message) == message
    with pytest.raises(TypeError):
        restored.headers["X-Added"] = "1"  # still read-only


@given(raw_messages, attachments)
def test_raw_messages_and_attachments_pickle(raw: RawMessage, attachment: Attachment) -> None:
    assert pickle.loads(pickle.dumps(raw)) == raw  # noqa: S301
    assert pickle.loads(pickle.dumps(attachment)) == attachment  # noqa: S301


@given(messages())
def test_a_message_round_trips_through_its_dict_and_json(message: Message) -> None:
    data = message.to_dict()

    assert "from_" not in data
    assert data["from"] == message.from_
    assert Message.from_dict(data) == message
    assert Message.from_dict(json.loads(json.dumps(data))) == message


@given(raw_messages, attachments)
def test_raw_messages_and_attachments_round_trip_through_json(
    raw: RawMessage, attachment: Attachment
) -> None:
    assert RawMessage.from_dict(json.loads(json.dumps(raw.to_dict()))) == raw
    assert Attachment.from_dict(json.loads(json.dumps(attachment.to_dict()))) == attachment


@given(st.lists(messages() | raw_messages, min_size=1, max_size=5))
def test_the_cli_reads_what_to_dict_writes(items: list[Message | RawMessage]) -> None:
    lines = [json.dumps(item.to_dict()) + "\n" for item in items]

    assert [message for _, message in read_messages(lines)] == items


def test_to_dict_leaves_unset_fields_out_and_uses_postals_names() -> None:
    message = Message(
        from_="App <app@example.com>",
        to="a@example.org, b@example.org",
        plain_body="Hi",
        bounce=False,
        attachments=[Attachment("a.txt", b"hello")],
    )

    assert message.to_dict() == {
        "from": "App <app@example.com>",
        "to": ["a@example.org", "b@example.org"],
        "plain_body": "Hi",
        "bounce": False,
        "attachments": [{"name": "a.txt", "data": "aGVsbG8=", "content_type": "text/plain"}],
    }


def test_to_dict_is_a_request_body_postal_accepts() -> None:
    fake = FakePostal()
    mime = email.message.EmailMessage()
    mime["From"] = "app@example.com"
    mime["Subject"] = "Raw"
    mime.set_content("Raw body")
    message = Message(
        from_="app@example.com",
        to=["a@example.org"],
        subject="Hi",
        plain_body="Hello",
        headers={"X-Campaign": "spring"},
        attachments=[Attachment("a.txt", b"hello")],
    )
    raw = RawMessage("app@example.com", ["b@example.org"], mime)

    with httpx.Client(
        transport=fake.transport(),
        base_url="http://postal.test",
        headers={"X-Server-API-Key": DEFAULT_API_KEY},
    ) as http:
        for path, item in (("message", message), ("raw", raw)):
            reply = http.post(f"/api/v1/send/{path}", json=item.to_dict()).json()
            assert reply["status"] == "success", reply

    sent, sent_raw = fake.outbox
    assert sent.params["headers"] == {"X-Campaign": "spring"}
    assert sent.created[0].attachments[0].data == b"hello"
    assert sent_raw.raw_message == raw.data


@pytest.mark.parametrize(
    ("data", "error", "text"),
    [
        ({"to": ["a@example.org"], "plain_body": "x"}, InvalidArgumentError, "from: is required"),
        (
            {"from": 3, "to": ["a@example.org"], "plain_body": "x"},
            InvalidArgumentTypeError,
            "from: expected a string",
        ),
        (
            {"from": "a@example.com", "to": ["b@example.org"], "plain_body": "x", "subjcet": "x"},
            InvalidArgumentError,
            "subjcet: unknown field",
        ),
        (
            {
                "from": "a@example.com",
                "to": "b@example.org",
                "plain_body": "x",
                "attachments": [{}],
            },
            InvalidArgumentError,
            "attachments[0].name: is required",
        ),
        (
            {
                "from": "a@example.com",
                "to": ["b@example.org"],
                "plain_body": "x",
                "attachments": [{"name": "a.txt", "data": ""}],
            },
            InvalidArgumentError,
            "attachments[0].data: is empty",
        ),
        (
            {"from": "a@example.com", "to": ["b@example.org"], "plain_body": "x", "bounce": "no"},
            InvalidArgumentTypeError,
            "bounce: expected true or false",
        ),
        (
            {"from": "a@example.com", "to": ["b@example.org"]},
            InvalidArgumentError,
            "plain_body: no content",
        ),
        (["not", "a", "dict"], InvalidArgumentTypeError, "Message: expected a dict"),
    ],
)
def test_from_dict_names_the_bad_field_as_the_dict_spells_it(
    data: Any, error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as raised:
        Message.from_dict(data)

    assert str(raised.value).startswith(text)


def test_send_results_and_stored_messages_pickle() -> None:
    result = converter.structure(
        {"message_id": "abc@example.com", "messages": {"a@example.org": {"id": 1, "token": "t"}}},
        SendResult,
    )
    info = converter.structure(
        {"id": 1, "token": "t", "headers": {"subject": ["Hi"]}, "plain_body": "x"}, MessageInfo
    )

    assert pickle.loads(pickle.dumps(result)) == result  # noqa: S301
    assert pickle.loads(pickle.dumps(info)) == info  # noqa: S301


def _examples() -> list[PostalError]:
    """One instance of every PostalError subclass, its constructor's arguments filled in."""
    examples: list[PostalError] = [
        code_class("Code", "a message", {"id": 7, "token": "[REDACTED]"})
        for code_class in ERROR_CLASSES.values()
    ]
    examples += [
        APIError("SomethingNew", None, {"detail": [1, 2]}),
        AuthenticationError("InvalidServerAPIKey", "no key", {}),
        MessageRejectedError("NoRecipients", "none", {}),
        ParameterError("id is required", {}),
        InvalidArgumentError("to[0]", "must not be blank"),
        InvalidArgumentTypeError("bounce", "must be a bool"),
        ConfigurationError("api_key", "no API key"),
        ClientClosedError("the client is closed"),
        UnexpectedResponseError(502, "<html>", "not JSON"),
        APIConnectionError("connection refused"),
        APITimeoutError("read timeout"),
        postal_sdk.webhooks.WebhookError("some_reason", "text"),
        postal_sdk.webhooks.WebhookParseError("not_json", "not JSON"),
        postal_sdk.webhooks.WebhookVerificationError("bad_signature", "no match"),
        postal_sdk.webhooks.UnknownKeyError("kid-1", ["kid-0"]),
        postal_sdk.webhooks.WebhookKeyError("not a PEM"),
        JournalError("the journal is read-only"),
        SendInDoubt("welcome:42"),
        BatchAborted(InvalidServerAPIKey("InvalidServerAPIKey", "no key", {}), submitted=12),
        WebhookTooOldError(datetime(2026, 1, 1, tzinfo=timezone.utc), age=4000.0, max_age=3600.0),
    ]
    return examples


def _subclasses(cls: type[PostalError]) -> set[type[PostalError]]:
    found = set(cls.__subclasses__())
    for subclass in list(found):
        found |= _subclasses(subclass)
    return found


def test_every_postal_error_has_an_example_here() -> None:
    covered = {type(example) for example in _examples()}

    missing = {cls.__qualname__ for cls in _subclasses(PostalError) - covered}
    assert not missing, f"add an example of {sorted(missing)} to _examples()"


@pytest.mark.parametrize("error", _examples(), ids=lambda error: type(error).__name__)
def test_every_postal_error_pickles_with_its_attributes(error: PostalError) -> None:
    copies = [pickle.loads(pickle.dumps(error)), copy.copy(error)]  # noqa: S301
    for restored in copies:
        assert type(restored) is type(error)
        assert str(restored) == str(error)
        assert restored.args == error.args
        assert vars(restored).keys() == vars(error).keys()
        for name, value in vars(error).items():
            if isinstance(value, BaseException):
                assert (type(vars(restored)[name]), str(vars(restored)[name])) == (
                    type(value),
                    str(value),
                )
            else:
                assert vars(restored)[name] == value
        if isinstance(restored, APIError):
            assert isinstance(restored.data, MappingProxyType)  # still read-only
        if isinstance(restored, MessageNotFound):
            assert restored.id == 7
