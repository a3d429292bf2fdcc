"""`FakePostal`: the in-memory Postal users configure, script and inspect."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from time import time as unix_time
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from postal_sdk.testing._asgi import FakeASGIApp
from postal_sdk.testing._exchange import Exchange, HTTPRequest, HTTPResponse
from postal_sdk.testing._faults import Fault, FaultRule
from postal_sdk.testing._pipeline import Installation
from postal_sdk.testing._records import (
    DNS_STATUSES,
    DeliveryStatus,
    DNSStatus,
    EventHook,
    FakeClick,
    FakeDelivery,
    FakeEvent,
    FakeLoad,
    FakeMessage,
    LoggedRequest,
    OutboxEntry,
    SendHook,
    SendLimitEventName,
    VerifiedDomain,
)
from postal_sdk.testing._routes import fault_key
from postal_sdk.testing._ruby import rails_time
from postal_sdk.testing._state import Directory, FakeServer, new_log_id
from postal_sdk.testing._transport import FakeTransport
from postal_sdk.testing._webhooks import (
    WEBHOOK_RETRY_DELAYS,
    WEBHOOK_TIMEOUT,
    FakeWebhook,
    SigningKey,
    Transport,
    WebhookAttempt,
    WebhookDispatcher,
    WebhookRequest,
    server_hash,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_API_KEY = "fake-postal-api-key"
"""The API key of the server a `FakePostal` starts with, unless another is given."""

HOLD_EXPIRY_SECONDS = 7 * 24 * 3600
"""Postal's default `maximum_hold_expiry_days`: a held message is held for 7 days."""

_DEFAULT_DETAILS: Mapping[DeliveryStatus, str] = {
    "Sent": "Message for {rcpt_to} accepted by the fake Postal's remote server",
    "SoftFail": "The remote server for {rcpt_to} is unavailable; the message will be retried",
    "HardFail": "Permanent SMTP delivery error when sending to {rcpt_to}",
    "Held": "Credential is configured to hold all messages authenticated by it.",
    "HoldCancelled": "The hold on this message has been removed without action.",
    "Bounced": "We've received a bounce message for this e-mail.",
    "Processed": "This message has been processed.",
    "Error": "An internal error occurred while sending this message; it will be retried.",
}
# Only the SMTP and HTTP senders' attempts carry a log id.
_SENDER_STATUSES = frozenset({"Sent", "SoftFail", "HardFail"})


class FakePostal:
    """An in-memory Postal that answers the HTTP API as the real one does.

    It starts with one server, `server`, opened by `api_key` and allowed to send from
    `domains`; add more with `add_server`. Talk to it in-process through `transport()`
    (for `httpx.Client` and `httpx.AsyncClient`), or over real HTTP with `serve()` /
    `serve_async()` (needs uvicorn, the `testing` extra), or mount `asgi_app` yourself.

    `outbox` holds every accepted send (and `send_hooks` are called with each), `requests`
    every request received. Script what happens to a message afterwards with `deliver`,
    `load` and `click`; each calls the `event_hooks` and sends the webhooks added with
    `add_webhook`. Make requests fail
    with `add_fault`.

    `hostname`, when set, is Postal's configured web hostname: a request with another
    `Host` gets HTTP 403 with an empty body, as Rails' host authorization does.
    `signing_key` is the installation's RSA key for webhooks and the JWKS at
    `/.well-known/jwks.json` (generated on first use when not given; both need the
    `webhooks` extra).
    """

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        domains: Iterable[str | VerifiedDomain] = ("example.com",),
        allow_sender: bool = False,
        hostname: str | None = None,
        return_path_domain: str = "rp.postal.example.com",
        signing_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self._directory = Directory()
        self.event_hooks: list[EventHook] = []
        """Callbacks run, in order, with the message and the event after each event."""
        self.send_hooks: list[SendHook] = []
        """Callbacks run, in order, with each accepted send's `OutboxEntry` as it is recorded
        (from the thread serving the request, which waits for them: keep them quick)."""
        self._outbox: list[OutboxEntry] = []
        self._requests: list[LoggedRequest] = []
        self._fault_rules: list[FaultRule] = []
        self._signing_key = SigningKey(signing_key)
        self._webhooks = WebhookDispatcher(self._signing_key, return_path_domain)
        self._installation = Installation(
            self._directory, hostname, return_path_domain, self._record_send, self._signing_key
        )
        self._server = self.add_server(
            "main", api_keys=[api_key], domains=domains, allow_sender=allow_sender
        )
        self._asgi_app = FakeASGIApp(self._exchange)

    def __repr__(self) -> str:
        return f"<FakePostal servers={list(self.servers)}>"

    @property
    def hostname(self) -> str | None:
        """Postal's configured web hostname, if requests must use it."""
        return self._installation.hostname

    @property
    def return_path_domain(self) -> str:
        """The domain of every send/message Message-ID (`uuid@return_path_domain`)."""
        return self._installation.return_path_domain

    @property
    def server(self) -> FakeServer:
        """The server the fake started with, called "main"."""
        return self._server

    @property
    def servers(self) -> Mapping[str, FakeServer]:
        """Every server, by name."""
        with self._directory.lock:
            return dict(self._directory.servers)

    def add_server(
        self,
        name: str,
        *,
        api_keys: Iterable[str] = (),
        domains: Iterable[str | VerifiedDomain] = (),
        allow_sender: bool = False,
    ) -> FakeServer:
        """Add a server opened by `api_keys` and allowed to send from `domains`."""
        server = self._directory.add_server(name)
        for key in api_keys:
            server.add_api_key(key)
        for domain in domains:
            server.add_domain(domain)
        server.allow_sender = allow_sender
        return server

    @property
    def outbox(self) -> tuple[OutboxEntry, ...]:
        """Every accepted send (send/message and send/raw), oldest first."""
        with self._directory.lock:
            return tuple(self._outbox)

    @property
    def requests(self) -> tuple[LoggedRequest, ...]:
        """Every request received, handled or not, oldest first."""
        with self._directory.lock:
            return tuple(self._requests)

    def message(self, message_id: int, *, server: FakeServer | None = None) -> FakeMessage:
        """A message as it is now, by id on `server` (the main one by default)."""
        return (server or self._server).message(message_id)

    def deliver(
        self,
        message: int | FakeMessage,
        status: DeliveryStatus = "Sent",
        *,
        details: str | None = None,
        output: str | None = None,
        sent_with_ssl: bool = False,
        log_id: str | None = None,
        time: float | None = None,
        timestamp: float | None = None,
        server: FakeServer | None = None,
    ) -> FakeDelivery:
        """Record a delivery attempt, as Postal's `create_delivery` does.

        Appends a row to the message's deliveries and sets its status, `held` (for
        "Held", with a hold expiry 7 days on) and `last_delivery_attempt`. `details`
        defaults to a text fitting `status`; `log_id` defaults to a random id for the
        sender statuses (Sent, SoftFail, HardFail). `timestamp` defaults to now.
        `message` is an id on `server` (the main one by default) or a `FakeMessage`.
        """
        with self._directory.lock:
            owner, current = self._resolve(message, server)
            when = unix_time() if timestamp is None else timestamp
            if details is None:
                details = _DEFAULT_DETAILS[status].format(rcpt_to=current.rcpt_to)
            if log_id is None and status in _SENDER_STATUSES:
                log_id = new_log_id()
            delivery = FakeDelivery(
                id=owner.next_delivery_id(),
                status=status,
                details=details[:250],
                output=None if output is None else output.strip()[:250],
                sent_with_ssl=sent_with_ssl,
                log_id=log_id,
                time=time,
                timestamp=when,
            )
            updated = attrs.evolve(
                current,
                status=status,
                held=status == "Held",
                hold_expiry=when + HOLD_EXPIRY_SECONDS if status == "Held" else None,
                last_delivery_attempt=when,
                deliveries=(*current.deliveries, delivery),
            )
            owner.update_message(updated)
        self._notify(updated, delivery)
        return delivery

    def load(
        self,
        message: int | FakeMessage,
        *,
        ip_address: str | None = "192.0.2.1",
        user_agent: str | None = "Mozilla/5.0 (fake Postal)",
        timestamp: float | None = None,
        server: FakeServer | None = None,
    ) -> FakeLoad:
        """Record an open of the message (its tracking image loaded)."""
        event = FakeLoad(ip_address, user_agent, unix_time() if timestamp is None else timestamp)
        with self._directory.lock:
            owner, current = self._resolve(message, server)
            updated = attrs.evolve(current, loads=(*current.loads, event))
            owner.update_message(updated)
        self._notify(updated, event)
        return event

    def click(
        self,
        message: int | FakeMessage,
        url: str,
        *,
        ip_address: str | None = "192.0.2.1",
        user_agent: str | None = "Mozilla/5.0 (fake Postal)",
        timestamp: float | None = None,
        server: FakeServer | None = None,
    ) -> FakeClick:
        """Record a click on a tracked link to `url` in the message."""
        when = unix_time() if timestamp is None else timestamp
        event = FakeClick(url, ip_address, user_agent, when)
        with self._directory.lock:
            owner, current = self._resolve(message, server)
            updated = attrs.evolve(current, clicks=(*current.clicks, event))
            owner.update_message(updated)
        self._notify(updated, event)
        return event

    def check_dns(
        self,
        domain: str,
        *,
        spf_status: DNSStatus = "OK",
        spf_error: str | None = None,
        dkim_status: DNSStatus = "OK",
        dkim_error: str | None = None,
        mx_status: DNSStatus = "OK",
        mx_error: str | None = None,
        return_path_status: DNSStatus = "OK",
        return_path_error: str | None = None,
        checked_at: float | None = None,
        server: FakeServer | None = None,
    ) -> bool:
        """Run Postal's scheduled DNS check of one of `server`'s domains, with these results.

        Each status is "OK", "Missing" or "Invalid", and its error the text Postal shows
        for a problem (`None` with "OK"). A check that finds a problem sends the
        DomainDNSError webhook; one that finds none sends nothing. `checked_at` defaults
        to now. Returns whether a problem was found.
        """
        owner = server or self._server
        found = next((known for known in owner.domains if known.name == domain), None)
        if found is None:
            raise ValueError(f"the server {owner.name!r} has no domain {domain!r}")
        checks = {
            "spf": (spf_status, spf_error),
            "dkim": (dkim_status, dkim_error),
            "mx": (mx_status, mx_error),
            "return_path": (return_path_status, return_path_error),
        }
        payload: dict[str, Any] = {
            "server": server_hash(owner),
            "domain": found.name,
            "uuid": found.uuid,
            "dns_checked_at": rails_time(unix_time() if checked_at is None else checked_at),
        }
        for record, (status, error) in checks.items():
            if status not in DNS_STATUSES:
                raise ValueError(
                    f"{record}_status must be one of {', '.join(DNS_STATUSES)}, not {status!r}"
                )
            if error is not None and not isinstance(error, str):
                raise TypeError(f"{record}_error must be a str or None, not {type(error).__name__}")
            payload[f"{record}_status"] = status
            payload[f"{record}_error"] = error
        problem = any(status != "OK" for status, _ in checks.values())
        if problem:
            self._webhooks.trigger_server_event(owner, "DomainDNSError", payload)
        return problem

    def check_send_limit(
        self, volume: int, limit: int, *, server: FakeServer | None = None
    ) -> SendLimitEventName | None:
        """Run Postal's scheduled send-limit notice: `volume` messages in the last hour.

        At `limit` or more it sends SendLimitExceeded; at 90% of `limit` or more,
        SendLimitApproaching; below, nothing. Postal sends these only to webhooks for all
        events. Returns the event sent, if any. (The fake does not hold messages over the
        limit: script that with `deliver(..., "Held")`.)
        """
        for name, value in (("volume", volume), ("limit", limit)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, not {value!r}")
        if limit == 0:
            raise ValueError("a server with a send limit of 0 has no limit")
        event: SendLimitEventName | None = None
        if volume >= limit:
            event = "SendLimitExceeded"
        elif volume >= 0.9 * limit:
            event = "SendLimitApproaching"
        if event is not None:
            owner = server or self._server
            payload = {"server": server_hash(owner), "volume": volume, "limit": limit}
            self._webhooks.trigger_server_event(owner, event, payload)
        return event

    @property
    def signing_key(self) -> rsa.RSAPrivateKey:
        """The RSA key webhooks are signed with, and whose public half the JWKS serves.

        Set it to rotate the key, as an operator replacing Postal's `signing.key` does:
        later attempts, retries included, are signed with the new key.
        """
        return self._signing_key.get()

    @signing_key.setter
    def signing_key(self, key: rsa.RSAPrivateKey) -> None:
        self._signing_key.replace(key)

    def add_webhook(
        self,
        url: str,
        *,
        events: Iterable[str] | None = None,
        transport: Transport | None = None,
        timeout: float = WEBHOOK_TIMEOUT,
        retry_delays: Sequence[float] = WEBHOOK_RETRY_DELAYS,
        server: FakeServer | None = None,
    ) -> FakeWebhook:
        """Send `server`'s message events (the main server's by default) to `url`.

        `events` names the events to send (`None`: all). Each event becomes a request
        with its own uuid, signed with `signing_key` (`X-Postal-Signature`, `-256` and
        `-KID`) and POSTed through `transport`: `None` for real HTTP, or any httpx
        transport, such as `httpx.ASGITransport(app)` for an app in the same process.
        Any 2xx answer is a success; anything else, or no answer within `timeout`
        seconds, is retried with the same body after `retry_delays` (Postal's 2, 3, 6,
        10 and 15 minutes unless shortened), up to `len(retry_delays) + 1` attempts.

        With a synchronous transport (or `None`) the first attempt is made at once, by
        the `deliver`, `load` or `click` that caused it. Requests over an async-only
        transport (in async code, `httpx.AsyncHTTPTransport()` keeps real HTTP off the
        event loop), and every retry, wait in `pending_webhooks` for `flush_webhooks()`
        or `await flush_webhooks_async()`. An exception other than an httpx error (a bug
        in the receiving app) is raised where the attempt was made (in an exception group
        from `flush_webhooks_async`), and the request stays pending.

        Events: `deliver` with Sent, SoftFail, HardFail or Held sends MessageSent,
        MessageDelayed, MessageDeliveryFailed or MessageHeld; with Bounced it sends
        MessageBounced, and stores the incoming bounce message it describes (other
        statuses send nothing, as in Postal); `load` sends MessageLoaded; `click` sends
        MessageLinkClicked; `check_dns` that finds a problem sends DomainDNSError;
        `check_send_limit` sends SendLimitApproaching or SendLimitExceeded, which Postal
        sends only to webhooks for all events, so `events` cannot name them. Needs the
        `webhooks` extra.
        """
        owner = server or self._server
        webhook = FakeWebhook(url, owner.name, events, transport, timeout, retry_delays)
        return self._webhooks.add(webhook)

    @property
    def webhooks(self) -> tuple[FakeWebhook, ...]:
        """Every webhook added with `add_webhook`, oldest first."""
        return self._webhooks.webhooks

    def remove_webhook(self, webhook: FakeWebhook) -> None:
        """Stop sending events to `webhook` (as `add_webhook` returned it).

        Its requests not yet delivered are dropped with it, as Postal deletes a webhook's
        queued requests with the webhook. `ValueError` if it is not a webhook of this fake.
        """
        self._webhooks.remove(webhook)

    @property
    def pending_webhooks(self) -> tuple[WebhookRequest, ...]:
        """The webhook requests neither delivered nor given up yet, oldest first."""
        return self._webhooks.pending

    @property
    def webhook_log(self) -> tuple[WebhookAttempt, ...]:
        """Every webhook attempt, as Postal's webhook log shows it, in the order they ended."""
        return self._webhooks.log

    def flush_webhooks(self) -> tuple[WebhookAttempt, ...]:
        """Deliver every pending webhook request, retrying on schedule; the attempts made.

        Returns when each request has succeeded or used all its attempts, sleeping out
        the retry delays in between (shorten them with `add_webhook(retry_delays=...)`).
        For webhooks with an async transport, use `flush_webhooks_async`.
        """
        return self._webhooks.flush()

    async def flush_webhooks_async(self) -> tuple[WebhookAttempt, ...]:
        """`flush_webhooks` for async code (asyncio or trio), for any transport.

        Attempts that are due together run concurrently; an attempt that gets no answer
        within its timeout fails, even from an in-process app that never answers.
        """
        return await self._webhooks.flush_async()

    def add_fault(
        self, fault: Fault, *, path: str | None = None, times: int | None = None
    ) -> FaultRule:
        """Apply `fault` to the next `times` requests (all of them when `None`).

        `path` limits it to one action (`"send/message"` or `"/api/v1/send/message"`) or
        any other path; `None` means every path. Rules are tried in the order they were
        added, and the first one that applies is used.
        """
        rule = FaultRule(fault, path, times)
        with self._directory.lock:
            self._fault_rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        with self._directory.lock:
            self._fault_rules.clear()

    def transport(self) -> FakeTransport:
        """An httpx transport to this fake, for `httpx.Client` and `httpx.AsyncClient`."""
        return FakeTransport(self._exchange)

    @property
    def asgi_app(self) -> FakeASGIApp:
        """This fake as a plain ASGI application."""
        return self._asgi_app

    @contextmanager
    def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve the fake over HTTP with uvicorn in a background thread.

        Yields the base URL (`http://127.0.0.1:PORT`, on a free port unless `port` is
        given) once the server accepts connections, and stops it on exit.
        """
        from postal_sdk.testing._server import serve_in_thread

        with serve_in_thread(self._asgi_app, host=host, port=port) as base_url:
            yield base_url

    @asynccontextmanager
    async def serve_async(self, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """`serve()` for async code: starts and stops the server without blocking the loop."""
        from postal_sdk.testing._server import serve_in_thread_async

        async with serve_in_thread_async(self._asgi_app, host=host, port=port) as base_url:
            yield base_url

    def _resolve(
        self, message: int | FakeMessage, server: FakeServer | None
    ) -> tuple[FakeServer, FakeMessage]:
        if isinstance(message, FakeMessage):
            owner = self._directory.servers[message.server]
            return owner, owner.message(message.id)
        owner = server or self._server
        return owner, owner.message(message)

    def _record_send(self, entry: OutboxEntry) -> None:
        self._outbox.append(entry)
        for hook in list(self.send_hooks):
            hook(entry)

    def _notify(self, message: FakeMessage, event: FakeEvent) -> None:
        # Webhooks first: events a hook scripts in turn are then queued after this one.
        self._webhooks.trigger(self._directory.servers[message.server], message, event)
        for hook in list(self.event_hooks):
            hook(message, event)

    def _exchange(self, request: HTTPRequest) -> Exchange:
        """Run one request through the faults and Postal, and log it."""
        processed = False

        def respond() -> HTTPResponse:
            nonlocal processed
            processed = True
            return self._installation.respond(request)

        with self._directory.lock:
            key = fault_key(request.path)
            rule = next((rule for rule in self._fault_rules if rule.matches(key)), None)
            if rule is None:
                exchange = Exchange(respond())
            else:
                rule.used += 1
                exchange = rule.fault.apply(respond)
            answered = exchange.response
            self._requests.append(
                LoggedRequest(
                    method=request.method,
                    path=request.path,
                    query=request.query,
                    headers=httpx.Headers(list(request.headers)),
                    body=request.body,
                    processed=processed,
                    fault=None if rule is None else rule.fault,
                    status_code=None if answered is None else answered.status_code,
                )
            )
            return exchange
