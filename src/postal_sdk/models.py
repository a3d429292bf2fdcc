"""Requests and responses of Postal's HTTP API as frozen, typed attrs classes.

Request models (`Message`, `RawMessage`, `Attachment`) check, when they are built,
everything Postal would reject for a reason the SDK can see, and raise an
`InvalidArgumentError` naming the field. Response models hold proper Python types: the
wire quirks (sizes as strings, MIME-wrapped base64, ISO or float timestamps) are absorbed
by the converter in `postal_sdk._serde`.
"""

from __future__ import annotations

import email.message
import email.policy
import mimetypes
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import attrs

from postal_sdk.errors import InvalidArgumentError, InvalidArgumentTypeError

__all__ = [
    "EXPANSIONS",
    "ActivityEntries",
    "Attachment",
    "Click",
    "Delivery",
    "Expansion",
    "Load",
    "Message",
    "MessageAttachment",
    "MessageDetails",
    "MessageInfo",
    "MessageInspection",
    "MessageStatus",
    "RawMessage",
    "SendResult",
    "SentMessage",
]

MAX_RECIPIENTS_PER_LIST = 50
"""Postal's limit for each of `to`, `cc` and `bcc` on send/message."""

Expansion = Literal[
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
"""The name of one expansion of `get_message`."""

EXPANSIONS: tuple[Expansion, ...] = (
    "status",
    "details",
    "inspection",
    "plain_body",
    "html_body",
    "attachments",
    "headers",
    "raw_message",
    "activity_entries",
)
"""All nine expansions, in the order Postal adds them."""


_Model = TypeVar("_Model", "Message", "RawMessage", "Attachment")


def _is_blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _check_text(field: str, value: object, *, required: bool = False) -> None:
    if value is None:
        if required:
            raise InvalidArgumentError(field, "is required")
        return
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(field, f"must be a str, not {type(value).__name__}")
    if required and not value.strip():
        raise InvalidArgumentError(field, "must not be blank")


def _check_header_safe(field: str, value: str | None) -> None:
    if value is not None and ("\r" in value or "\n" in value):
        raise InvalidArgumentError(field, "must not contain CR or LF (header injection)")


def _addresses(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Accept a list of addresses, or one string of comma-separated ones as Postal does."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(value)


def _check_addresses(field: str, addresses: tuple[str, ...]) -> None:
    if len(addresses) > MAX_RECIPIENTS_PER_LIST:
        raise InvalidArgumentError(
            field,
            f"has {len(addresses)} addresses; Postal accepts at most {MAX_RECIPIENTS_PER_LIST}",
        )
    for position, address in enumerate(addresses):
        where = f"{field}[{position}]"
        _check_text(where, address, required=True)
        _check_header_safe(where, address)


def _to_bytes(value: bytes | bytearray | memoryview) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise InvalidArgumentTypeError("data", f"must be bytes, not {type(value).__name__}")


def _guess_content_type(attachment: Attachment) -> str:
    guessed, _ = mimetypes.guess_type(attachment.name, strict=False)
    return guessed or "application/octet-stream"


@attrs.frozen
class Attachment:
    """A file attached to a `Message`.

    `data` is the raw file content; the SDK base64-encodes it on the wire. When
    `content_type` is not given it is guessed from `name` (falling back to
    `application/octet-stream`).
    """

    name: str
    data: bytes = attrs.field(converter=_to_bytes)
    content_type: str = attrs.field(default=attrs.Factory(_guess_content_type, takes_self=True))

    def __attrs_post_init__(self) -> None:
        _check_text("name", self.name, required=True)
        _check_header_safe("name", self.name)
        _check_text("content_type", self.content_type, required=True)
        _check_header_safe("content_type", self.content_type)
        if not self.data.strip():
            raise InvalidArgumentError("data", "is empty; Postal rejects attachments without data")

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        content_type: str | None = None,
    ) -> Attachment:
        """Read a file into an attachment named after the file (or `name`)."""
        with open(path, "rb") as file:
            data = file.read()
        attachment_name = name if name is not None else os.path.basename(os.fspath(path))
        if content_type is None:
            return cls(name=attachment_name, data=data)
        return cls(name=attachment_name, data=data, content_type=content_type)

    def to_dict(self) -> dict[str, Any]:
        """The attachment as Postal's API takes it: `name`, `content_type`, base64 `data`."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attachment:
        """An attachment from its `to_dict()` form (base64 `data`), checked as `__init__` does.

        Raises:
            InvalidArgumentError, InvalidArgumentTypeError: A missing, unknown or bad field.
        """
        return _from_dict(data, cls)


def _headers(value: Mapping[str, str] | None) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise InvalidArgumentTypeError("headers", f"must be a mapping, not {type(value).__name__}")
    return MappingProxyType(dict(value))


def _attachments(value: Iterable[Attachment] | None) -> tuple[Attachment, ...]:
    return () if value is None else tuple(value)


@attrs.frozen
class Message:
    """A message for `send_message`: Postal builds the MIME message from these parts.

    `to`, `cc` and `bcc` take a list of addresses (or one comma-separated string);
    each holds at most 50. At least one recipient, a `from_` and a plain or HTML body
    are required. `bounce` must be a real bool: Postal treats `0` and `"false"` as true.
    """

    from_: str
    to: tuple[str, ...] = attrs.field(default=(), converter=_addresses)
    cc: tuple[str, ...] = attrs.field(default=(), converter=_addresses)
    bcc: tuple[str, ...] = attrs.field(default=(), converter=_addresses)
    subject: str | None = None
    plain_body: str | None = None
    html_body: str | None = None
    sender: str | None = None
    reply_to: str | None = None
    tag: str | None = None
    bounce: bool | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers)
    attachments: tuple[Attachment, ...] = attrs.field(default=(), converter=_attachments)

    def __attrs_post_init__(self) -> None:
        if not (self.to or self.cc or self.bcc):
            raise InvalidArgumentError("to", "no recipient: give at least one of to, cc or bcc")
        for field in ("to", "cc", "bcc"):
            _check_addresses(field, getattr(self, field))
        _check_text("from_", self.from_, required=True)
        for field in ("from_", "subject", "sender", "reply_to", "tag"):
            value = getattr(self, field)
            _check_text(field, value)
            _check_header_safe(field, value)
        _check_text("plain_body", self.plain_body)
        _check_text("html_body", self.html_body)
        if _is_blank(self.plain_body) and _is_blank(self.html_body):
            raise InvalidArgumentError("plain_body", "no content: give a plain_body or html_body")
        if self.bounce is not None and not isinstance(self.bounce, bool):
            raise InvalidArgumentTypeError(
                "bounce", f"must be a bool, not {type(self.bounce).__name__}"
            )
        for name, value in self.headers.items():
            where = f"headers[{name!r}]"
            _check_text(where, name, required=True)
            _check_text(where, value)
            _check_header_safe(where, name)
            _check_header_safe(where, value)
            if ":" in name or " " in name:
                raise InvalidArgumentError(where, "a header name cannot contain ':' or spaces")
        for position, attachment in enumerate(self.attachments):
            if not isinstance(attachment, Attachment):
                raise InvalidArgumentTypeError(
                    f"attachments[{position}]",
                    f"must be an Attachment, not {type(attachment).__name__}",
                )

    def __reduce__(self) -> tuple[Any, ...]:
        # `headers` is a read-only mappingproxy, which pickle refuses: rebuild from a dict.
        fields = {field.name: getattr(self, field.name) for field in attrs.fields(Message)}
        fields["headers"] = dict(self.headers)
        return (_rebuild, (type(self), fields))

    def to_dict(self) -> dict[str, Any]:
        """The message as Postal's send/message takes it (and `postal send-many` reads it).

        `from_` is `from`; fields left unset are left out; attachment data is base64.
        JSON-ready: `json.dumps(message.to_dict())` is a request body Postal accepts.
        """
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """A message from its `to_dict()` form (Postal's send/message parameters).

        `to`, `cc` and `bcc` may be lists or comma-separated strings, as Postal takes them.

        Raises:
            InvalidArgumentError, InvalidArgumentTypeError: A missing, unknown or bad field,
                named as in the dict (`from`, `attachments[0].data`, ...).
        """
        return _from_dict(data, cls)


def _rcpt_to(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise InvalidArgumentTypeError(
            "rcpt_to", "must be a list of addresses, not a str (Postal rejects a string here)"
        )
    return tuple(value)


def _raw_data(value: bytes | bytearray | memoryview | email.message.EmailMessage) -> bytes:
    if isinstance(value, email.message.EmailMessage):
        # Postal finds the header block by splitting at the first CRLF CRLF.
        return value.as_bytes(policy=value.policy.clone(linesep="\r\n"))
    return _to_bytes(value)


@attrs.frozen
class RawMessage:
    """A complete RFC 2822 message for `send_raw`, sent as-is to envelope recipients.

    `data` takes bytes or an `email.message.EmailMessage` (serialised with CRLF line
    endings). Postal checks that every `From:` address in it is on a verified domain;
    tag a raw message with an `X-Postal-Tag` header.
    """

    mail_from: str
    rcpt_to: tuple[str, ...] = attrs.field(converter=_rcpt_to)
    data: bytes = attrs.field(converter=_raw_data)
    bounce: bool | None = None

    def __attrs_post_init__(self) -> None:
        _check_text("mail_from", self.mail_from, required=True)
        _check_header_safe("mail_from", self.mail_from)
        if not self.rcpt_to:
            raise InvalidArgumentError("rcpt_to", "no recipient: give at least one address")
        for position, address in enumerate(self.rcpt_to):
            where = f"rcpt_to[{position}]"
            _check_text(where, address, required=True)
            _check_header_safe(where, address)
        if not self.data.strip():
            raise InvalidArgumentError("data", "is empty")
        if self.bounce is not None and not isinstance(self.bounce, bool):
            raise InvalidArgumentTypeError(
                "bounce", f"must be a bool, not {type(self.bounce).__name__}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The message as Postal's send/raw takes it: `mail_from`, `rcpt_to`, base64 `data`."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RawMessage:
        """A raw message from its `to_dict()` form (Postal's send/raw parameters).

        Raises:
            InvalidArgumentError, InvalidArgumentTypeError: A missing, unknown or bad field.
        """
        return _from_dict(data, cls)


def _rebuild(cls: type[_Model], fields: dict[str, Any]) -> _Model:
    return cls(**fields)


def _to_dict(model: Message | RawMessage | Attachment) -> dict[str, Any]:
    # Imported here: the converter is built from these classes, so it imports this module.
    from postal_sdk._serde import unstructure_request

    return unstructure_request(model)


def _from_dict(data: Mapping[str, Any], cls: type[_Model]) -> _Model:
    from postal_sdk._serde import structure_request

    return structure_request(data, cls)


@attrs.frozen
class SentMessage:
    """The message Postal queued for one recipient."""

    id: int
    token: str


@attrs.frozen
class SendResult:
    """The reply to a send: one queued message per recipient.

    `messages` is keyed by recipient address as Postal returns it: for `send_message`
    the address with any display name stripped, letter case kept; for `send_raw` the
    `rcpt_to` strings exactly as sent. An address given twice is keyed once (the last
    message). `message_id` is the `Message-ID` shared by all of them, without angle
    brackets; for `send_raw` it is `None` when the raw message has no `Message-ID`.

    `replayed` is `True` when a send with an idempotency key was answered from the
    client's journal (an earlier run sent it) instead of by Postal; it is not part of
    Postal's reply, nor of equality. A key resolved as sent without a known result is
    replayed as an empty result (`message_id` `None`, no `messages`).
    """

    message_id: str | None
    messages: Mapping[str, SentMessage]
    replayed: bool = attrs.field(default=False, kw_only=True, eq=False)

    def for_recipient(self, address: str) -> SentMessage:
        """The message queued for `address`, matched without regard to letter case."""
        found = self.messages.get(address)
        if found is not None:
            return found
        folded = address.casefold()
        for key, message in self.messages.items():
            if key.casefold() == folded:
                return message
        raise KeyError(address)


@attrs.frozen
class MessageStatus:
    """The `status` expansion: where the message is in its delivery."""

    status: str
    last_delivery_attempt: datetime | None
    held: bool
    hold_expiry: datetime | None


@attrs.frozen
class MessageDetails:
    """The `details` expansion. `size` is the byte count (`None` once the raw data is purged)."""

    rcpt_to: str
    mail_from: str
    subject: str | None
    message_id: str | None
    timestamp: datetime
    direction: str
    size: int | None
    bounce: bool
    bounce_for_id: int | None
    tag: str | None
    received_with_ssl: bool | None


@attrs.frozen
class MessageInspection:
    """The `inspection` expansion: spam and threat checks."""

    inspected: bool
    spam: bool
    spam_score: float
    threat: bool
    threat_details: str | None


@attrs.frozen
class MessageAttachment:
    """An attachment of a stored message (the `attachments` expansion), decoded to bytes."""

    filename: str
    content_type: str
    data: bytes
    size: int
    hash: str


@attrs.frozen
class Load:
    """A tracked open of the message."""

    ip_address: str | None
    user_agent: str | None
    timestamp: datetime


@attrs.frozen
class Click:
    """A tracked link click in the message."""

    url: str
    ip_address: str | None
    user_agent: str | None
    timestamp: datetime


@attrs.frozen
class ActivityEntries:
    """The `activity_entries` expansion: opens and clicks."""

    loads: tuple[Load, ...] = ()
    clicks: tuple[Click, ...] = ()


@attrs.frozen
class MessageInfo:
    """A stored message from `get_message`.

    `id` and `token` are always present; every other attribute is `None` unless its
    expansion was asked for (the body attributes are also `None` when the message has
    no such part or its raw data was purged). `headers` maps lower-case names to every
    value of that header.
    """

    id: int
    token: str
    status: MessageStatus | None = None
    details: MessageDetails | None = None
    inspection: MessageInspection | None = None
    plain_body: str | None = None
    html_body: str | None = None
    attachments: tuple[MessageAttachment, ...] | None = None
    headers: Mapping[str, tuple[str, ...]] | None = None
    raw_message: bytes | None = None
    activity_entries: ActivityEntries | None = None


@attrs.frozen
class Delivery:
    """One delivery attempt of a message, from `get_deliveries`."""

    id: int
    status: str
    details: str | None
    output: str | None
    sent_with_ssl: bool
    log_id: str | None
    time: float | None
    timestamp: datetime
