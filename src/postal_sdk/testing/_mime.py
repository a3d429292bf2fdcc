"""RFC 2822 messages: building send/message's, and reading stored ones back.

Messages are built and parsed with the `compat32` policy, which stores header values as
given instead of parsing them, so odd input that Postal accepts never makes the fake
raise.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import email.utils
import hashlib
import re
from collections.abc import Iterator, Mapping
from email.header import decode_header, make_header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any, Literal

import attrs

from postal_sdk.testing._ruby import encode64, to_s

_POLICY = email.policy.compat32.clone(linesep="\r\n", max_line_length=0)
_SEPARATOR = b"\r\n\r\n"
_FIELD_NAME = re.compile(r"[!-9;-~]+")
_MIME_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# The builder owns the MIME structure; custom headers cannot replace it.
_STRUCTURAL_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})


@attrs.frozen
class FakeAttachment:
    """A file attached to a stored message, decoded."""

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        """The size of `data` in bytes."""
        return len(self.data)

    @property
    def hash(self) -> str:
        """The SHA-1 hex digest of `data`, as Postal reports it."""
        return hashlib.sha1(self.data, usedforsecurity=False).hexdigest()

    def as_json(self) -> dict[str, Any]:
        """The `attachments` expansion entry for this file."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "data": encode64(self.data),
            "size": self.size,
            "hash": self.hash,
        }


@attrs.frozen
class Composition:
    """The parts of a send/message request that go into the message."""

    to: str | None
    cc: str | None
    from_: Any
    sender: Any
    subject: Any
    reply_to: Any
    plain_body: str | None
    html_body: str | None
    custom_headers: Mapping[str, Any]
    attachments: list[FakeAttachment]
    received: str
    message_id: str


def build_message(parts: Composition) -> bytes:
    """`OutgoingMessagePrototype#raw_message`: the message every recipient gets."""
    message = MIMEMultipart("mixed", policy=_POLICY)
    for name, value in parts.custom_headers.items():
        if _FIELD_NAME.fullmatch(name) and name.lower() not in _STRUCTURAL_HEADERS:
            _set_header(message, name, value)
    # Custom To and Cc survive when the list is empty; the others are always set.
    if parts.to is not None:
        _set_header(message, "To", parts.to)
    if parts.cc is not None:
        _set_header(message, "Cc", parts.cc)
    for name, value in (
        ("From", parts.from_),
        ("Sender", parts.sender),
        ("Subject", parts.subject),
        ("Reply-To", parts.reply_to),
    ):
        _set_header(message, name, value)
    message.attach(_alternative(parts.plain_body, parts.html_body))
    for attachment in parts.attachments:
        message.attach(_attachment_part(attachment))
    _set_header(message, "Received", parts.received)
    _set_header(message, "Date", email.utils.formatdate(usegmt=True))
    _set_header(message, "Message-ID", f"<{parts.message_id}>")
    return message.as_bytes()


def _set_header(message: Message, name: str, value: Any) -> None:
    """Mail's `mail[name] = value`: replaces the header, or removes it for `nil`."""
    del message[name]
    if value is None:
        return
    text = re.sub(r"[\r\n]+", " ", to_s(value))
    message[name] = text if text.isascii() else _encoded_word(text)


def _encoded_word(text: str) -> str:
    """RFC 2047 in one piece: `email.header.Header` would split at U+2028 and kin."""
    return f"=?utf-8?b?{base64.b64encode(text.encode('utf-8')).decode('ascii')}?="


def _alternative(plain_body: str | None, html_body: str | None) -> MIMEMultipart:
    alternative = MIMEMultipart("alternative", policy=_POLICY)
    if plain_body is not None:
        alternative.attach(MIMEText(plain_body, "plain", "utf-8", policy=_POLICY))
    if html_body is not None:
        alternative.attach(MIMEText(html_body, "html", "utf-8", policy=_POLICY))
    return alternative


def _attachment_part(attachment: FakeAttachment) -> MIMEBase:
    content_type = attachment.content_type.strip()
    if not _MIME_TYPE.fullmatch(content_type):
        content_type = "application/octet-stream"
    maintype, subtype = content_type.split("/")
    part = MIMEBase(maintype, subtype, policy=_POLICY)
    part.set_payload(encode64(attachment.data))
    part["Content-Transfer-Encoding"] = "base64"
    part.add_header("Content-Disposition", "attachment", filename=attachment.filename)
    return part


def as_stored(raw: bytes) -> bytes:
    """The message as Postal stores it: headers and body kept apart, joined by CRLF CRLF."""
    headers, _, body = raw.partition(_SEPARATOR)
    return headers + _SEPARATOR + body


def header_block(raw: bytes) -> bytes:
    """The part of a raw message Postal reads headers from: up to the first CRLF CRLF."""
    return raw.partition(_SEPARATOR)[0]


def read_headers(raw: bytes) -> dict[str, list[str]]:
    """Every header of the block, by lower-case name, decoded, in order."""
    parsed = _parse(header_block(raw) + _SEPARATOR)
    headers: dict[str, list[str]] = {}
    for name, value in parsed.items():
        headers.setdefault(name.lower(), []).append(_decoded(value))
    return headers


def addresses(raw: bytes, header: str) -> list[str]:
    """The addresses (no display names) in every `header` field of the header block."""
    values = read_headers(raw).get(header.lower(), [])
    return [address for _, address in email.utils.getaddresses(values)]


def bare_message_id(value: str) -> str:
    """A Message-ID header value without its angle brackets."""
    return re.sub(r">.*", "", re.sub(r".*<", "", value)).strip()


def read_body(raw: bytes, kind: Literal["plain", "html"]) -> str | None:
    """The first text/plain or text/html part that is not an attachment, decoded."""
    for part in _leaf_parts(raw):
        if part.get_content_type() == f"text/{kind}" and part.get_filename() is None:
            return _text(part)
    return None


def read_attachments(raw: bytes) -> list[FakeAttachment]:
    """Every part with a file name, decoded."""
    return [
        FakeAttachment(_decoded(filename), part.get_content_type(), _payload(part))
        for part in _leaf_parts(raw)
        if (filename := part.get_filename()) is not None
    ]


def _parse(raw: bytes) -> Message:
    return email.parser.BytesParser(policy=_POLICY).parsebytes(raw)


def _leaf_parts(raw: bytes) -> Iterator[Message]:
    return (part for part in _parse(raw).walk() if not part.is_multipart())


def _decoded(value: str) -> str:
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", value)
    try:
        return str(make_header(decode_header(unfolded)))
    except (LookupError, UnicodeDecodeError, ValueError):
        return unfolded


def _payload(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _text(part: Message) -> str:
    charset = part.get_content_charset() or "utf-8"
    try:
        return _payload(part).decode(charset, "replace")
    except LookupError:
        return _payload(part).decode("utf-8", "replace")
