"""The fake's webhooks: Postal's signed event requests, retries, and its JWKS (contract §5).

Only this module touches `cryptography` (the `webhooks` extra), and only when a webhook
or the JWKS is used, so the rest of the fake works without it.

How requests go out: every event a webhook subscribes to becomes a `WebhookRequest`
with its own uuid, queued in `pending_webhooks`. Nothing runs in the background: a
webhook whose transport can be driven synchronously (`None`, real HTTP, or any
`httpx.BaseTransport`) gets its first attempt at once, inside the call that scripted
the event; everything else (an async-only transport such as `httpx.ASGITransport`, and
every retry) waits for `flush_webhooks()` or `await flush_webhooks_async()`, which let
Postal's retry schedule run until each request has succeeded or used its attempts.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import attrs
import httpx

from postal_sdk.testing._exchange import HTTPResponse
from postal_sdk.testing._records import FakeClick, FakeDelivery, FakeEvent, FakeLoad, FakeMessage
from postal_sdk.testing._responses import JSON_CONTENT_TYPE
from postal_sdk.testing._ruby import rails_json
from postal_sdk.testing._state import FakeServer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

WEBHOOK_RETRY_DELAYS: tuple[float, ...] = (120.0, 180.0, 360.0, 600.0, 900.0)
"""Postal's waits, in seconds, after failed attempts 1 to 5; it gives up after the 6th."""

WEBHOOK_TIMEOUT = 5.0
"""Seconds Postal waits for a webhook's answer."""

USER_AGENT = "Postal/3.3.6"
"""The User-Agent of the fake's webhook requests: the Postal version the contract follows."""

Transport = httpx.BaseTransport | httpx.AsyncBaseTransport
"""What a webhook's requests go through: any httpx transport, sync or async."""

_DELIVERY_EVENTS: Mapping[str, str] = {
    "Sent": "MessageSent",
    "SoftFail": "MessageDelayed",
    "HardFail": "MessageDeliveryFailed",
    "Held": "MessageHeld",
}
EVENTS = frozenset(
    {
        "MessageSent",
        "MessageDelayed",
        "MessageDeliveryFailed",
        "MessageHeld",
        "MessageBounced",
        "MessageLinkClicked",
        "MessageLoaded",
        "DomainDNSError",
        "SendLimitApproaching",
        "SendLimitExceeded",
    }
)
"""Postal's webhook events. Listed here rather than read from `postal_sdk.webhooks`, whose
import needs `cryptography`: the fake itself runs without the `webhooks` extra."""

ALL_EVENTS_ONLY = frozenset({"SendLimitApproaching", "SendLimitExceeded"})
"""Events a webhook cannot choose in Postal (`WebhookEvent::EVENTS` lacks them): only
webhooks for all events receive them."""

# `Webhook#url`'s format, with `%` and `@` as newer Postal versions allow.
_URL_FORMAT = re.compile(r"https?://[a-z0-9\-._?=&/+:%@]+", re.IGNORECASE)


def _check_url(url: str) -> str:
    if not isinstance(url, str) or not _URL_FORMAT.fullmatch(url):
        raise ValueError(f"Postal accepts only http(s) URLs of plain characters, not {url!r}")
    return url


def _check_events(events: Iterable[str] | None) -> frozenset[str] | None:
    if events is None:
        return None
    chosen = frozenset([events] if isinstance(events, str) else events)
    unknown = sorted(chosen - EVENTS)
    if unknown:
        raise ValueError(f"unknown webhook events {unknown}; Postal's are {sorted(EVENTS)}")
    unselectable = sorted(chosen & ALL_EVENTS_ONLY)
    if unselectable:
        raise ValueError(
            f"Postal sends {unselectable} only to webhooks for all events (events=None): "
            "a webhook cannot choose them"
        )
    if not chosen:
        raise ValueError("a webhook needs at least one event, or events=None for all of them")
    return chosen


def _check_timeout(timeout: float) -> float:
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def _check_retry_delays(delays: Sequence[float]) -> tuple[float, ...]:
    checked = tuple(delays)
    if not all(isinstance(d, (int, float)) and math.isfinite(d) and d >= 0 for d in checked):
        raise ValueError(f"retry_delays must be seconds, none negative, not {delays!r}")
    return tuple(float(delay) for delay in checked)


def _check_transport(transport: Transport | None) -> Transport | None:
    if transport is not None and not isinstance(
        transport, (httpx.BaseTransport, httpx.AsyncBaseTransport)
    ):
        raise TypeError(f"transport must be an httpx transport, not {type(transport).__name__}")
    return transport


@attrs.frozen
class FakeWebhook:
    """A webhook configured on a fake server: where its events go, and how.

    `events` are the event names it receives (`None`: all of them). `transport` is the
    httpx transport requests go through (`None`: real HTTP). Each attempt may take
    `timeout` seconds; after a failed attempt the next waits `retry_delays[n]`, and
    after `len(retry_delays) + 1` attempts the request is given up.
    """

    url: str = attrs.field(converter=_check_url)
    server: str
    events: frozenset[str] | None = attrs.field(default=None, converter=_check_events)
    transport: Transport | None = attrs.field(
        default=None, converter=_check_transport, eq=False, repr=False
    )
    timeout: float = attrs.field(default=WEBHOOK_TIMEOUT, converter=_check_timeout)
    retry_delays: tuple[float, ...] = attrs.field(
        default=WEBHOOK_RETRY_DELAYS, converter=_check_retry_delays
    )

    @property
    def max_attempts(self) -> int:
        """How many times a request is tried before it is given up."""
        return len(self.retry_delays) + 1

    @property
    def is_sync(self) -> bool:
        """Whether requests can go out synchronously, at once, when the event happens."""
        return self.transport is None or isinstance(self.transport, httpx.BaseTransport)

    def receives(self, event: str) -> bool:
        """Whether this webhook is sent `event`."""
        return self.events is None or event in self.events


@attrs.frozen
class WebhookRequest:
    """One event for one webhook, as every attempt sends it again.

    `body` is the envelope as Rails serializes it (`<`, `>` and `&` escaped): the exact
    bytes that are signed. Retries send the same `uuid`, `timestamp` and `payload`.
    """

    webhook: FakeWebhook
    event: str
    uuid: str
    timestamp: float
    payload: Mapping[str, Any] = attrs.field(eq=False)
    body: bytes = attrs.field(eq=False, repr=False)


@attrs.frozen
class WebhookAttempt:
    """One POST of a webhook request, as Postal logs it.

    `attempt` counts from 1 for each request. `status_code` is the reply's status, or
    `None` when there was no reply; then `error` says why (a timeout, a refused
    connection). `headers` and `body` are what was sent; `will_retry` tells whether
    another attempt follows.
    """

    url: str
    event: str
    uuid: str
    attempt: int
    status_code: int | None
    error: str | None
    will_retry: bool
    timestamp: float
    headers: Mapping[str, str] = attrs.field(eq=False, repr=False)
    body: bytes = attrs.field(eq=False, repr=False)

    @property
    def succeeded(self) -> bool:
        """Whether the webhook answered with a 2xx status, which is all Postal asks."""
        return self.status_code is not None and 200 <= self.status_code < 300


class SigningKey:
    """The installation's RSA signing key: given, or generated (2048 bits) on first use."""

    def __init__(self, key: rsa.RSAPrivateKey | None = None) -> None:
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None
        if key is not None:
            self.replace(key)

    def get(self) -> rsa.RSAPrivateKey:
        """The current key."""
        with self._lock:
            if self._key is None:
                self._key = _generate_key()
            return self._key

    def replace(self, key: rsa.RSAPrivateKey) -> None:
        """Sign with `key` from now on, as after an operator replaces `signing.key`."""
        _require_cryptography()
        from cryptography.hazmat.primitives.asymmetric import rsa

        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError(f"Postal signs with an RSA private key, not {type(key).__name__}")
        with self._lock:
            self._key = key

    def jwks_response(self) -> HTTPResponse:
        """`WellKnownController#jwks`: the public half of the key as a JWK Set."""
        from postal_sdk.webhooks._keys import jwks_document

        body = rails_json(jwks_document(self.get().public_key()))
        return HTTPResponse(
            200, (("content-type", JSON_CONTENT_TYPE), ("content-length", str(len(body)))), body
        )

    def headers(self, body: bytes) -> dict[str, str]:
        """`Postal::HTTP.post` with `sign: true`: the request headers for `body`."""
        from postal_sdk.webhooks._keys import sign_webhook_body

        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **sign_webhook_body(body, self.get()),
        }


def _require_cryptography() -> None:
    try:
        import postal_sdk.webhooks._keys  # noqa: F401 (imported for its check)
    except ImportError as exc:
        raise ImportError(
            "the fake Postal's webhooks and JWKS need the 'cryptography' package; "
            "install it with: pip install 'postal-sdk[webhooks]'"
        ) from exc


def _generate_key() -> rsa.RSAPrivateKey:
    _require_cryptography()
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def server_hash(server: FakeServer) -> dict[str, Any]:
    """`Server#webhook_hash`: the server object of the domain and send-limit events."""
    return {
        "uuid": server.uuid,
        "name": server.name,
        "permalink": server.permalink,
        "organization": server.organization,
    }


def message_hash(message: FakeMessage) -> dict[str, Any]:
    """`Message#webhook_hash`: the message object the events embed."""
    return {
        "id": message.id,
        "token": message.token,
        "direction": message.direction,
        "message_id": message.message_id,
        "to": message.rcpt_to,
        "from": message.mail_from,
        "subject": message.subject,
        "timestamp": message.timestamp,
        "spam_status": "NotChecked",
        "tag": message.tag,
    }


def _delivery_payload(message: FakeMessage, delivery: FakeDelivery) -> dict[str, Any]:
    """`Delivery#webhook_hash`."""
    return {
        "message": message_hash(message),
        "status": delivery.status,
        "details": delivery.details,
        "output": delivery.output or "",
        "sent_with_ssl": delivery.sent_with_ssl,
        "timestamp": delivery.timestamp,
        "time": delivery.time,
    }


def _link_token(message: FakeMessage, url: str) -> str:
    # Postal gives each tracked link of a message one token; derive it so it stays the same.
    return hashlib.sha256(f"{message.token} {url}".encode()).hexdigest()[:16]


def _store_bounce(
    server: FakeServer, original: FakeMessage, when: float, return_path_domain: str
) -> FakeMessage:
    """The bounce Postal received for `original`, stored on `server` as an incoming message."""
    domain = (original.rcpt_to or "").rpartition("@")[2] or "example.org"
    raw = (
        f"From: Mail Delivery System <MAILER-DAEMON@{domain}>\r\n"
        f"To: {original.mail_from or ''}\r\n"
        "Subject: Mail delivery failed: returning message to sender\r\n"
        f"Message-ID: <{uuid.uuid4()}@{domain}>\r\n"
        "\r\n"
        f"This message could not be delivered to {original.rcpt_to}.\r\n"
    ).encode()
    stored = server.store_message(
        rcpt_to=f"{server.name}@{return_path_domain}", mail_from="", raw=raw, tag=None, bounce=True
    )
    bounce = attrs.evolve(stored, direction="incoming", timestamp=when)
    server.update_message(bounce)
    return bounce


@attrs.define(eq=False)
class _Pending:
    """A request still to be delivered: how many attempts it had, when the next is due."""

    request: WebhookRequest
    attempts: int = 0
    due: float = 0.0  # time.monotonic()
    claimed: bool = False  # a delivery (an inline attempt or a flush) is working on it


class WebhookDispatcher:
    """A fake installation's webhooks: turns events into requests, signs and sends them."""

    def __init__(self, signing_key: SigningKey, return_path_domain: str) -> None:
        self._signing_key = signing_key
        self._return_path_domain = return_path_domain
        self._lock = threading.Lock()
        self._webhooks: list[FakeWebhook] = []
        self._pending: list[_Pending] = []
        self._log: list[WebhookAttempt] = []

    @property
    def webhooks(self) -> tuple[FakeWebhook, ...]:
        """Every configured webhook, oldest first."""
        with self._lock:
            return tuple(self._webhooks)

    @property
    def pending(self) -> tuple[WebhookRequest, ...]:
        """The requests not yet delivered nor given up, oldest first."""
        with self._lock:
            return tuple(pending.request for pending in self._pending)

    @property
    def log(self) -> tuple[WebhookAttempt, ...]:
        """Every attempt made, in the order they ended."""
        with self._lock:
            return tuple(self._log)

    def add(self, webhook: FakeWebhook) -> FakeWebhook:
        """Start sending events to `webhook`."""
        _require_cryptography()
        with self._lock:
            self._webhooks.append(webhook)
        return webhook

    def trigger(self, server: FakeServer, message: FakeMessage, event: FakeEvent) -> None:
        """`WebhookRequest.trigger` for what just happened to `message`.

        Queues one request per webhook of the server that receives the event, then makes
        the first attempt of those whose transport is synchronous.
        """
        webhooks = self._webhooks_of(server)
        if not webhooks:
            return
        found = self._event(server, message, event, webhooks)
        if found is not None:
            self._send(webhooks, *found)

    def trigger_server_event(self, server: FakeServer, name: str, payload: dict[str, Any]) -> None:
        """`trigger` for an event about the server itself, not one of its messages."""
        self._send(self._webhooks_of(server), name, payload)

    def remove(self, webhook: FakeWebhook) -> None:
        """Stop sending events to `webhook`, and drop its requests not yet delivered."""
        with self._lock:
            if not any(configured is webhook for configured in self._webhooks):
                raise ValueError(f"{webhook!r} is not a webhook of this fake")
            self._webhooks = [
                configured for configured in self._webhooks if configured is not webhook
            ]
            self._pending = [p for p in self._pending if p.request.webhook is not webhook]

    def _webhooks_of(self, server: FakeServer) -> list[FakeWebhook]:
        with self._lock:
            return [webhook for webhook in self._webhooks if webhook.server == server.name]

    def _send(self, webhooks: Sequence[FakeWebhook], name: str, payload: dict[str, Any]) -> None:
        """Queue one request per webhook that receives `name`; try the synchronous ones."""
        timestamp = time.time()
        created = []
        for webhook in webhooks:
            if webhook.receives(name):
                request_uuid = str(uuid.uuid4())
                # The key order of `WebhookDeliveryService#generate_payload`.
                envelope = {"event": name, "timestamp": timestamp, "payload": payload}
                body = rails_json({**envelope, "uuid": request_uuid})
                request = WebhookRequest(webhook, name, request_uuid, timestamp, payload, body)
                created.append(_Pending(request, claimed=webhook.is_sync))
        with self._lock:
            self._pending.extend(created)
        inline = [pending for pending in created if pending.claimed]
        try:
            for pending in inline:
                self._settle(pending, self._attempt(pending))
        finally:
            self._release(inline)

    def _event(
        self,
        server: FakeServer,
        message: FakeMessage,
        event: FakeEvent,
        webhooks: Sequence[FakeWebhook],
    ) -> tuple[str, dict[str, Any]] | None:
        """The event name and payload Postal sends for `event`, if it sends one."""
        if isinstance(event, FakeLoad):
            return "MessageLoaded", {
                "message": message_hash(message),
                "ip_address": event.ip_address,
                "user_agent": event.user_agent,
            }
        if isinstance(event, FakeClick):
            return "MessageLinkClicked", {
                "message": message_hash(message),
                "url": event.url,
                "token": _link_token(message, event.url),
                "ip_address": event.ip_address,
                "user_agent": event.user_agent,
            }
        if event.status == "Bounced":
            # A Bounced row is what `Message#bounce!` writes when a bounce arrives. The
            # fake has no incoming mail, so it stores the bounce only for a webhook to see.
            if not any(webhook.receives("MessageBounced") for webhook in webhooks):
                return None
            bounce = _store_bounce(server, message, event.timestamp, self._return_path_domain)
            return "MessageBounced", {
                "original_message": message_hash(message),
                "bounce": message_hash(bounce),
            }
        name = _DELIVERY_EVENTS.get(event.status)
        return None if name is None else (name, _delivery_payload(message, event))

    def flush(self) -> tuple[WebhookAttempt, ...]:
        """Deliver every pending request, sleeping out the retry delays; the attempts made."""
        with self._lock:
            blocked = {
                p.request.webhook.url for p in self._pending if not p.request.webhook.is_sync
            }
        if blocked:
            raise TypeError(
                f"the webhooks {sorted(blocked)} have async transports: "
                "use `await fake.flush_webhooks_async()`"
            )
        made: list[WebhookAttempt] = []
        owned: list[_Pending] = []
        try:
            while True:
                owned = [*self._still_pending(owned), *self._claim()]
                if not owned:
                    return tuple(made)
                wait = min(pending.due for pending in owned) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                    continue
                for pending in _due(owned):
                    result = self._attempt(pending)
                    made.append(result)
                    if self._settle(pending, result):
                        owned.remove(pending)
        finally:
            self._release(owned)

    async def flush_async(self) -> tuple[WebhookAttempt, ...]:
        """`flush` for async code; the attempts that are due at once run concurrently."""
        made: list[WebhookAttempt] = []
        owned: list[_Pending] = []

        async def attempt(pending: _Pending) -> None:
            result = await self._attempt_async(pending)
            made.append(result)
            if self._settle(pending, result):
                owned.remove(pending)

        try:
            while True:
                owned = [*self._still_pending(owned), *self._claim()]
                if not owned:
                    return tuple(made)
                wait = min(pending.due for pending in owned) - time.monotonic()
                if wait > 0:
                    await anyio.sleep(wait)
                    continue
                async with anyio.create_task_group() as group:
                    for pending in _due(owned):
                        group.start_soon(attempt, pending)
        finally:
            self._release(owned)

    def _claim(self) -> list[_Pending]:
        with self._lock:
            free = [pending for pending in self._pending if not pending.claimed]
            for pending in free:
                pending.claimed = True
            return free

    def _still_pending(self, claimed: Iterable[_Pending]) -> list[_Pending]:
        # A request of a webhook removed meanwhile is not attempted again.
        with self._lock:
            return [pending for pending in claimed if pending in self._pending]

    def _release(self, claimed: Iterable[_Pending]) -> None:
        with self._lock:
            for pending in claimed:
                pending.claimed = False

    def _settle(self, pending: _Pending, attempt: WebhookAttempt) -> bool:
        """Log the attempt and schedule the next; whether the request is done with."""
        with self._lock:
            self._log.append(attempt)
            pending.attempts = attempt.attempt
            if pending not in self._pending:
                return True  # its webhook was removed meanwhile
            if attempt.will_retry:
                delays = pending.request.webhook.retry_delays
                pending.due = time.monotonic() + delays[attempt.attempt - 1]
                return False
            self._pending.remove(pending)
            return True

    def _attempt(self, pending: _Pending) -> WebhookAttempt:
        request = pending.request
        webhook = request.webhook
        headers = self._signing_key.headers(request.body)
        transport = None if webhook.transport is None else _Borrowed(webhook.transport)
        try:
            with httpx.Client(transport=transport, timeout=webhook.timeout) as client:
                response = client.post(webhook.url, content=request.body, headers=headers)
        except httpx.HTTPError as exc:
            return self._outcome(pending, headers, None, _describe(exc, webhook.timeout))
        return self._outcome(pending, headers, response.status_code, None)

    async def _attempt_async(self, pending: _Pending) -> WebhookAttempt:
        request = pending.request
        webhook = request.webhook
        if not isinstance(webhook.transport, (httpx.AsyncBaseTransport, type(None))):
            return await anyio.to_thread.run_sync(self._attempt, pending)
        headers = self._signing_key.headers(request.body)
        transport = None if webhook.transport is None else _Borrowed(webhook.transport)
        status_code: int | None = None
        error: str | None = _no_answer(webhook.timeout)
        # httpx's timeouts do not reach an in-process app (ASGITransport): bound it here.
        with anyio.move_on_after(webhook.timeout):
            try:
                async with httpx.AsyncClient(
                    transport=transport, timeout=webhook.timeout
                ) as client:
                    response = await client.post(webhook.url, content=request.body, headers=headers)
            except httpx.HTTPError as exc:
                error = _describe(exc, webhook.timeout)
            else:
                status_code, error = response.status_code, None
        return self._outcome(pending, headers, status_code, error)

    def _outcome(
        self,
        pending: _Pending,
        headers: Mapping[str, str],
        status_code: int | None,
        error: str | None,
    ) -> WebhookAttempt:
        request = pending.request
        number = pending.attempts + 1
        succeeded = status_code is not None and 200 <= status_code < 300
        return WebhookAttempt(
            url=request.webhook.url,
            event=request.event,
            uuid=request.uuid,
            attempt=number,
            status_code=status_code,
            error=error,
            will_retry=not succeeded and number < request.webhook.max_attempts,
            timestamp=time.time(),
            headers=headers,
            body=request.body,
        )


def _due(owned: Sequence[_Pending]) -> list[_Pending]:
    now = time.monotonic()
    return [pending for pending in owned if pending.due <= now]


def _no_answer(timeout: float) -> str:
    return f"no answer within {timeout:g} s"


def _describe(error: httpx.HTTPError, timeout: float) -> str:
    if isinstance(error, httpx.TimeoutException):
        return _no_answer(timeout)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class _Borrowed(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The caller's transport, lent to a client for one attempt: closing it is theirs."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Pass the request on to the caller's sync transport."""
        assert isinstance(self._transport, httpx.BaseTransport)
        return self._transport.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Pass the request on to the caller's async transport."""
        assert isinstance(self._transport, httpx.AsyncBaseTransport)
        return await self._transport.handle_async_request(request)
