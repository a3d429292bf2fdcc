"""The ten webhook events of Postal as typed models, and `parse_event` to read one.

The models mirror the wire (contract §5.2, §5.3): every event has the envelope's `event`,
`uuid` and `timestamp`, and its `payload` as a typed object. The JSON work is done here by
the shared converter, with two rules for every webhook model: a plain `str` field refuses
`null` (cattrs would otherwise turn it into the text "None"), and timestamps are read from
float Unix seconds, a numeric string (Rails writes MySQL decimals as strings) or ISO-8601.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from postal_sdk._serde import converter
from postal_sdk.errors import (
    InvalidArgumentTypeError,
    WebhookError,
    WebhookParseError,
    WebhookParseFailure,
)

__all__ = [
    "EVENT_TYPES",
    "BouncePayload",
    "DeliveryEvent",
    "DeliveryPayload",
    "DomainDNSError",
    "DomainDNSErrorPayload",
    "LinkClickPayload",
    "LoadPayload",
    "MessageBounced",
    "MessageDelayed",
    "MessageDeliveryFailed",
    "MessageHeld",
    "MessageLinkClicked",
    "MessageLoaded",
    "MessageSent",
    "SendLimitApproaching",
    "SendLimitEvent",
    "SendLimitExceeded",
    "SendLimitPayload",
    "UnknownEvent",
    "WebhookError",
    "WebhookEvent",
    "WebhookEventBase",
    "WebhookMessage",
    "WebhookParseError",
    "WebhookParseFailure",
    "WebhookServer",
    "parse_event",
]


@attrs.frozen
class WebhookServer:
    """The Postal mail server an event is about; `organization` is its organization's permalink."""

    uuid: str
    name: str
    permalink: str
    organization: str | None


@attrs.frozen
class WebhookMessage:
    """A message as webhooks describe it (`from_` is `from` on the wire).

    `direction` is `"outgoing"` or `"incoming"`; `spam_status` is `"NotChecked"`,
    `"Spam"` or `"NotSpam"`; `message_id` has no angle brackets.
    """

    id: int
    token: str
    direction: str
    message_id: str | None
    to: str
    from_: str
    subject: str | None
    timestamp: datetime
    spam_status: str
    tag: str | None


@attrs.frozen
class DeliveryPayload:
    """One delivery attempt: the payload of the four delivery events.

    `status` is the delivery status (`Sent`, `SoftFail`, `HardFail`, `Held`), `output` the
    remote server's reply (`""` when there was none), `time` the seconds the attempt took.
    """

    message: WebhookMessage
    status: str
    details: str | None
    output: str
    sent_with_ssl: bool | None
    timestamp: datetime
    time: float | None


@attrs.frozen
class BouncePayload:
    """A bounce linked to a message that was sent earlier."""

    original_message: WebhookMessage
    bounce: WebhookMessage


@attrs.frozen
class LinkClickPayload:
    """A click on a tracked link; `token` identifies the link."""

    message: WebhookMessage
    url: str
    token: str
    ip_address: str | None
    user_agent: str | None


@attrs.frozen
class LoadPayload:
    """A load of the tracking pixel (sent for every load, not only the first)."""

    message: WebhookMessage
    ip_address: str | None
    user_agent: str | None


@attrs.frozen
class DomainDNSErrorPayload:
    """A scheduled DNS check of a server's domain that found a problem.

    Each `*_status` is `"OK"`, `"Missing"` or `"Invalid"`; the matching `*_error` explains
    a problem and is `None` when there is none. `uuid` is the domain's.
    """

    server: WebhookServer
    domain: str
    uuid: str
    dns_checked_at: datetime | None
    spf_status: str
    spf_error: str | None
    dkim_status: str
    dkim_error: str | None
    mx_status: str
    mx_error: str | None
    return_path_status: str
    return_path_error: str | None


@attrs.frozen
class SendLimitPayload:
    """The server's outgoing `volume` in the last 60 minutes and its send `limit`."""

    server: WebhookServer
    volume: int
    limit: int


@attrs.frozen(kw_only=True)
class WebhookEventBase:
    """What every event has: the envelope's `event` name, `uuid` and `timestamp`.

    Postal resends the same `uuid` on every retry of a request (one request per
    configured webhook endpoint), so deduplicate on `idempotency_key`.
    """

    event: str
    uuid: str
    timestamp: datetime

    @property
    def idempotency_key(self) -> str:
        """The key to deduplicate deliveries of this event on: its `uuid`."""
        return self.uuid


@attrs.frozen(kw_only=True)
class DeliveryEvent(WebhookEventBase):
    """One of the four delivery events (sent, delayed, failed, held)."""

    payload: DeliveryPayload


@attrs.frozen(kw_only=True)
class MessageSent(DeliveryEvent):
    """A message was delivered: the remote server (or HTTP endpoint) accepted it."""

    event: Literal["MessageSent"] = attrs.field(default="MessageSent", init=False)


@attrs.frozen(kw_only=True)
class MessageDelayed(DeliveryEvent):
    """A delivery attempt failed temporarily and will be retried (sent on every retry)."""

    event: Literal["MessageDelayed"] = attrs.field(default="MessageDelayed", init=False)


@attrs.frozen(kw_only=True)
class MessageDeliveryFailed(DeliveryEvent):
    """A delivery failed permanently."""

    event: Literal["MessageDeliveryFailed"] = attrs.field(
        default="MessageDeliveryFailed", init=False
    )


@attrs.frozen(kw_only=True)
class MessageHeld(DeliveryEvent):
    """A message was held (development mode, suppression list, send limit, ...)."""

    event: Literal["MessageHeld"] = attrs.field(default="MessageHeld", init=False)


@attrs.frozen(kw_only=True)
class MessageBounced(WebhookEventBase):
    """A bounce arrived for a message sent earlier."""

    event: Literal["MessageBounced"] = attrs.field(default="MessageBounced", init=False)
    payload: BouncePayload


@attrs.frozen(kw_only=True)
class MessageLinkClicked(WebhookEventBase):
    """A recipient clicked a tracked link."""

    event: Literal["MessageLinkClicked"] = attrs.field(default="MessageLinkClicked", init=False)
    payload: LinkClickPayload


@attrs.frozen(kw_only=True)
class MessageLoaded(WebhookEventBase):
    """A recipient's mail client loaded the tracking pixel."""

    event: Literal["MessageLoaded"] = attrs.field(default="MessageLoaded", init=False)
    payload: LoadPayload


@attrs.frozen(kw_only=True)
class DomainDNSError(WebhookEventBase):
    """A scheduled DNS check found a problem with one of the server's domains."""

    event: Literal["DomainDNSError"] = attrs.field(default="DomainDNSError", init=False)
    payload: DomainDNSErrorPayload


@attrs.frozen(kw_only=True)
class SendLimitEvent(WebhookEventBase):
    """One of the two send-limit events (only "all events" webhooks receive them)."""

    payload: SendLimitPayload


@attrs.frozen(kw_only=True)
class SendLimitApproaching(SendLimitEvent):
    """The server's outgoing volume reached 90% of its send limit."""

    event: Literal["SendLimitApproaching"] = attrs.field(default="SendLimitApproaching", init=False)


@attrs.frozen(kw_only=True)
class SendLimitExceeded(SendLimitEvent):
    """The server reached its send limit: further messages are held."""

    event: Literal["SendLimitExceeded"] = attrs.field(default="SendLimitExceeded", init=False)


@attrs.frozen(kw_only=True)
class UnknownEvent(WebhookEventBase):
    """An event this SDK does not know (from a newer Postal), with its payload as JSON data."""

    payload: Mapping[str, Any]


WebhookEvent: TypeAlias = (
    MessageSent
    | MessageDelayed
    | MessageDeliveryFailed
    | MessageHeld
    | MessageBounced
    | MessageLinkClicked
    | MessageLoaded
    | DomainDNSError
    | SendLimitApproaching
    | SendLimitExceeded
    | UnknownEvent
)
"""Any event `parse_event` returns; `match` on the class, or on `.event`."""

EVENT_TYPES: Mapping[str, type[WebhookEvent]] = MappingProxyType(
    {
        cls.__name__: cls
        for cls in (
            MessageSent,
            MessageDelayed,
            MessageDeliveryFailed,
            MessageHeld,
            MessageBounced,
            MessageLinkClicked,
            MessageLoaded,
            DomainDNSError,
            SendLimitApproaching,
            SendLimitExceeded,
        )
    }
)
"""The ten events Postal sends, by wire name."""

_ENVELOPE_KEYS = ("event", "timestamp", "uuid", "payload")


def parse_event(body: bytes | str) -> WebhookEvent:
    """Read a webhook body into its event, without checking any signature.

    Only for bodies that are already trusted; use `WebhookVerifier.verify` for requests.
    An event name this SDK does not know gives an `UnknownEvent`; unknown fields are
    ignored. Raises `WebhookParseError` for anything that is not a Postal event.
    """
    if not isinstance(body, (bytes, str)):
        raise InvalidArgumentTypeError("body", f"must be bytes or str, not {type(body).__name__}")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad JSON and undecodable bytes; RecursionError deep nesting.
        raise WebhookParseError("not_json", f"the body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise WebhookParseError("not_an_envelope", "the body is not a JSON object")
    missing = [key for key in _ENVELOPE_KEYS if key not in document]
    if missing:
        raise WebhookParseError("not_an_envelope", f"the body has no {', '.join(missing)}")
    name, payload = document["event"], document["payload"]
    if not isinstance(name, str):
        raise WebhookParseError("not_an_envelope", "the event name is not a string")
    if not isinstance(payload, dict):
        raise WebhookParseError("not_an_envelope", f"the {name} payload is not a JSON object")
    event_type: type[WebhookEvent] = EVENT_TYPES.get(name, UnknownEvent)
    try:
        return converter.structure(document, event_type)
    except (cattrs.BaseValidationError, ValueError, TypeError, OverflowError) as exc:
        problems = "; ".join(cattrs.transform_error(exc))
        raise WebhookParseError("invalid_event", f"{name} does not match: {problems}") from exc


converter.register_structure_hook(
    WebhookMessage,
    make_dict_structure_fn(WebhookMessage, converter, from_=override(rename="from")),
)
