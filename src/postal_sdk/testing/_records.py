"""The typed records the fake hands to tests: messages, their events, sends, requests.

All are frozen snapshots. A message's later deliveries and activity produce a new
`FakeMessage`; look it up again (`fake.message(id)`) to see the current state.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import httpx

from postal_sdk.testing import _mime
from postal_sdk.testing._faults import Fault
from postal_sdk.testing._routes import Endpoint, endpoint_of

DeliveryStatus = Literal[
    "Sent", "SoftFail", "HardFail", "Held", "HoldCancelled", "Bounced", "Processed", "Error"
]
"""A delivery row's status: Postal's message status vocabulary, without `Pending`."""

DNSStatus = Literal["OK", "Missing", "Invalid"]
"""What Postal's DNS check found for one record of a domain."""

DNS_STATUSES: tuple[DNSStatus, ...] = ("OK", "Missing", "Invalid")

SendLimitEventName = Literal["SendLimitApproaching", "SendLimitExceeded"]
"""The webhook events of a server's send limit."""


@attrs.frozen
class VerifiedDomain:
    """A verified sending domain of a fake server.

    A From address on `name` (any letter case) is authenticated. With `use_for_any`,
    the domain also authenticates From addresses on every other domain, as Postal's
    "use for any" option does.
    """

    name: str
    use_for_any: bool = False
    uuid: str = attrs.field(factory=lambda: str(uuid.uuid4()), eq=False, repr=False)
    """The domain's uuid, as its DomainDNSError webhooks name it."""


@attrs.frozen
class FakeDelivery:
    """One row of `messages/deliveries`: a delivery attempt or a status change."""

    id: int
    status: DeliveryStatus
    details: str | None
    output: str | None
    sent_with_ssl: bool
    log_id: str | None
    time: float | None
    timestamp: float


@attrs.frozen
class FakeLoad:
    """A tracked open of a message (an `activity_entries.loads` entry)."""

    ip_address: str | None
    user_agent: str | None
    timestamp: float


@attrs.frozen
class FakeClick:
    """A tracked link click in a message (an `activity_entries.clicks` entry)."""

    url: str
    ip_address: str | None
    user_agent: str | None
    timestamp: float


FakeEvent = FakeDelivery | FakeLoad | FakeClick
"""Something that happened to a message after it was queued."""


@attrs.frozen
class FakeMessage:
    """A message stored on a fake server, one per recipient of a send.

    `raw_message` is the RFC 2822 message as stored; the body and header attributes are
    read from it. Timestamps are float Unix seconds. `status`, `held`, `hold_expiry` and
    `last_delivery_attempt` change as deliveries are scripted with `FakePostal.deliver`.
    """

    server: str
    id: int
    token: str
    rcpt_to: str | None
    mail_from: str | None
    raw_message: bytes
    size: int
    message_id: str | None
    subject: str | None
    tag: str | None
    bounce: bool
    timestamp: float
    status: str = "Pending"
    held: bool = False
    hold_expiry: float | None = None
    last_delivery_attempt: float | None = None
    deliveries: tuple[FakeDelivery, ...] = ()
    loads: tuple[FakeLoad, ...] = ()
    clicks: tuple[FakeClick, ...] = ()
    direction: Literal["outgoing", "incoming"] = "outgoing"
    received_with_ssl: bool | None = True

    @property
    def headers(self) -> dict[str, list[str]]:
        """Every header, by lower-case name, as decoded values in message order."""
        return _mime.read_headers(self.raw_message)

    @property
    def plain_body(self) -> str | None:
        """The text/plain body, or `None` when the message has none."""
        return _mime.read_body(self.raw_message, "plain")

    @property
    def html_body(self) -> str | None:
        """The text/html body, or `None` when the message has none."""
        return _mime.read_body(self.raw_message, "html")

    @property
    def attachments(self) -> list[_mime.FakeAttachment]:
        """The attached files, decoded."""
        return _mime.read_attachments(self.raw_message)


EventHook = Callable[[FakeMessage, FakeEvent], None]
"""Called with the updated message and the new event, after the fake's state changed."""

SendHook = Callable[["OutboxEntry"], None]
"""Called with each accepted send as it is recorded, before its reply is sent."""


@attrs.frozen
class OutboxEntry:
    """One accepted send: what was asked for and what the fake created for it.

    `params` are the request's parameters as Postal parsed them. `messages` is keyed as
    the response's `messages` object (so a duplicated address appears once, holding the
    last message); `created` holds every message, duplicates included, in creation
    order. `raw_message` is the RFC 2822 message built (send/message) or received
    (send/raw).
    """

    endpoint: Literal["send/message", "send/raw"]
    server: str
    params: Mapping[str, Any]
    message_id: str | None
    messages: Mapping[str, FakeMessage]
    created: tuple[FakeMessage, ...]
    raw_message: bytes

    @property
    def recipients(self) -> tuple[str | None, ...]:
        """The envelope recipient of each created message, in creation order."""
        return tuple(message.rcpt_to for message in self.created)


@attrs.frozen
class LoggedRequest:
    """One HTTP request the fake received, and what became of it.

    `processed` tells whether Postal's code ran (a send recorded, a lookup made);
    `fault` is the fault that was applied to it, if any; `status_code` is the status
    sent back, or `None` when the connection was dropped before a response.
    """

    method: str
    path: str
    query: str
    headers: httpx.Headers
    body: bytes
    processed: bool
    fault: Fault | None
    status_code: int | None

    @property
    def endpoint(self) -> Endpoint | None:
        """The API action the path routes to, or `None` for any other path."""
        return endpoint_of(self.path)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)
