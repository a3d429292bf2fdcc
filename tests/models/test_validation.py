"""A message Postal would reject for a reason the SDK can see is refused when it is built."""

from __future__ import annotations

import email.message
from pathlib import Path
from typing import Any

import pytest

from postal_sdk import (
    Attachment,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    Message,
    PostalError,
    RawMessage,
)

VALID: dict[str, Any] = {"from_": "app@example.com", "to": ["john@example.com"], "plain_body": "Hi"}


def build(**changes: Any) -> Message:
    return Message(**{**VALID, **changes})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"to": []}, "to"),
        ({"to": None}, "to"),
        ({"to": [f"u{n}@example.com" for n in range(51)]}, "to"),
        ({"cc": [f"u{n}@example.com" for n in range(51)]}, "cc"),
        ({"bcc": [f"u{n}@example.com" for n in range(51)]}, "bcc"),
        ({"to": ["john@example.com", "  "]}, "to[1]"),
        ({"to": ["john@example.com\r\nBcc: x@evil.example"]}, "to[0]"),
        ({"plain_body": None}, "plain_body"),
        ({"plain_body": " \n\t "}, "plain_body"),
        ({"plain_body": "", "html_body": "   "}, "plain_body"),
        ({"from_": ""}, "from_"),
        ({"from_": "   "}, "from_"),
        ({"from_": None}, "from_"),
        ({"from_": "app@example.com\nBcc: x@evil.example"}, "from_"),
        ({"subject": "Hi\r\nBcc: x@evil.example"}, "subject"),
        ({"reply_to": "a@b\n"}, "reply_to"),
        ({"sender": "a@b\r"}, "sender"),
        ({"headers": {"X-Ok": "fine\r\nBcc: x@evil.example"}}, "headers['X-Ok']"),
        ({"headers": {"X-Bad\n": "value"}}, "headers['X-Bad\\n']"),
        ({"headers": {"X Bad": "value"}}, "headers['X Bad']"),
        ({"headers": {"X:Bad": "value"}}, "headers['X:Bad']"),
        ({"headers": {"": "value"}}, "headers['']"),
    ],
)
def test_a_message_postal_would_reject_is_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        build(**changes)
    assert caught.value.argument == field
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bounce": 0}, "bounce"),
        ({"bounce": "false"}, "bounce"),
        ({"subject": 5}, "subject"),
        ({"plain_body": b"bytes"}, "plain_body"),
        ({"headers": [("X-A", "1")]}, "headers"),
        ({"headers": {"X-A": 1}}, "headers['X-A']"),
        ({"attachments": [{"name": "a.txt", "data": "eA=="}]}, "attachments[0]"),
        ({"to": [1]}, "to[0]"),
    ],
)
def test_a_wrong_type_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgumentTypeError) as caught:
        build(**changes)
    assert caught.value.argument == field
    assert isinstance(caught.value, PostalError)


def test_fifty_recipients_in_each_list_are_accepted() -> None:
    addresses = [f"u{n}@example.com" for n in range(50)]
    message = build(to=addresses, cc=addresses, bcc=addresses)
    assert len(message.to) == len(message.cc) == len(message.bcc) == 50


def test_a_comma_separated_string_is_split_like_postal_does() -> None:
    assert build(to="a@example.com,b@example.com,  c@example.com").to == (
        "a@example.com",
        "b@example.com",
        "c@example.com",
    )


def test_a_message_with_only_bcc_or_only_html_is_valid() -> None:
    message = build(to=None, bcc=["hidden@example.com"], plain_body=None, html_body="<p>x</p>")
    assert message.bcc == ("hidden@example.com",)


def test_headers_are_a_read_only_copy() -> None:
    headers = {"X-A": "1"}
    message = build(headers=headers)
    headers["X-B"] = "2"
    assert dict(message.headers) == {"X-A": "1"}
    with pytest.raises(TypeError):
        message.headers["X-C"] = "3"  # type: ignore[index]


def test_an_attachment_guesses_its_content_type_from_the_name() -> None:
    assert Attachment(name="report.pdf", data=b"%PDF").content_type == "application/pdf"
    assert Attachment(name="notes", data=b"x").content_type == "application/octet-stream"
    assert Attachment(name="a.pdf", data=b"x", content_type="text/plain").content_type == (
        "text/plain"
    )
    assert Attachment(name="a.bin", data=bytearray(b"xy")).data == b"xy"


@pytest.mark.parametrize(
    ("kwargs", "field", "error"),
    [
        ({"name": "", "data": b"x"}, "name", InvalidArgumentError),
        ({"name": "  ", "data": b"x"}, "name", InvalidArgumentError),
        ({"name": "a\r\nb.txt", "data": b"x"}, "name", InvalidArgumentError),
        ({"name": "a.txt", "data": b""}, "data", InvalidArgumentError),
        ({"name": "a.txt", "data": b" \r\n "}, "data", InvalidArgumentError),
        ({"name": "a.txt", "data": "text"}, "data", InvalidArgumentTypeError),
        (
            {"name": "a.txt", "data": b"x", "content_type": "text/plain\r\n"},
            "content_type",
            InvalidArgumentError,
        ),
    ],
)
def test_an_attachment_without_name_or_data_is_refused(
    kwargs: dict[str, Any], field: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        Attachment(**kwargs)
    assert caught.value.argument == field  # type: ignore[attr-defined]


def test_an_attachment_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "invoice.csv"
    path.write_bytes(b"a,b\n1,2\n")
    attachment = Attachment.from_path(path)
    assert (attachment.name, attachment.data, attachment.content_type) == (
        "invoice.csv",
        b"a,b\n1,2\n",
        "text/csv",
    )
    renamed = Attachment.from_path(str(path), name="x.bin", content_type="application/x-foo")
    assert (renamed.name, renamed.content_type) == ("x.bin", "application/x-foo")


def test_a_raw_message_serialises_an_email_message_with_crlf() -> None:
    mail = email.message.EmailMessage()
    mail["From"] = "app@example.com"
    mail["Subject"] = "Hi"
    mail.set_content("line one\nline two\n")
    raw = RawMessage(mail_from="app@example.com", rcpt_to=["j@example.com"], data=mail)
    head, _, body = raw.data.partition(b"\r\n\r\n")
    assert b"Subject: Hi\r\n" in head + b"\r\n"
    assert body == b"line one\r\nline two\r\n"


@pytest.mark.parametrize(
    ("kwargs", "field", "error"),
    [
        ({"rcpt_to": []}, "rcpt_to", InvalidArgumentError),
        ({"rcpt_to": "a@example.com"}, "rcpt_to", InvalidArgumentTypeError),
        ({"rcpt_to": ["a@example.com", ""]}, "rcpt_to[1]", InvalidArgumentError),
        ({"rcpt_to": ["a@example.com\r\n"]}, "rcpt_to[0]", InvalidArgumentError),
        ({"mail_from": ""}, "mail_from", InvalidArgumentError),
        ({"mail_from": "a@b\n"}, "mail_from", InvalidArgumentError),
        ({"data": b""}, "data", InvalidArgumentError),
        ({"data": "From: a@b\r\n\r\nx"}, "data", InvalidArgumentTypeError),
        ({"bounce": "no"}, "bounce", InvalidArgumentTypeError),
    ],
)
def test_a_raw_message_postal_would_reject_is_refused(
    kwargs: dict[str, Any], field: str, error: type[Exception]
) -> None:
    valid: dict[str, Any] = {
        "mail_from": "app@example.com",
        "rcpt_to": ["j@example.com"],
        "data": b"From: app@example.com\r\n\r\nHi",
    }
    with pytest.raises(error) as caught:
        RawMessage(**{**valid, **kwargs})
    assert caught.value.argument == field  # type: ignore[attr-defined]


def test_models_are_frozen() -> None:
    message = build()
    with pytest.raises(AttributeError):
        message.subject = "changed"  # type: ignore[misc]
