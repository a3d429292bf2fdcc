"""`AsyncPostal`: one method per endpoint of Postal's HTTP API."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import cattrs
import httpx

from postal_sdk import __version__
from postal_sdk._async.fanout import AsyncMessageSource, AsyncSendMany, KeyFunction, ProgressHook
from postal_sdk._async.journaling import async_send_keyed
from postal_sdk._async.pace import async_pace
from postal_sdk._async.webhook_keys import AsyncWebhookKeys
from postal_sdk._config import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    DEFAULT_TOTAL_TIMEOUT,
    check_max_concurrency,
    check_max_response_size,
    check_max_retries,
    check_timeout,
    check_total_timeout,
    resolve_api_key,
    resolve_base_url,
)
from postal_sdk._envelope import excerpt, redirect_error, unwrap
from postal_sdk._http.connecting import (
    CertTypes,
    Connecting,
    ProxyTypes,
    VerifyTypes,
    check_connecting,
)
from postal_sdk._http.reply import Reply
from postal_sdk._http.transport import (
    AsyncPooledClient,
    HTTPBackend,
    async_pooled_client,
    check_http_backend,
)
from postal_sdk._retry import (
    Backoff,
    certificate_failure,
    retry_after_seconds,
    should_retry_error,
    should_retry_status,
)
from postal_sdk._serde import converter
from postal_sdk._synchronization import AsyncLimiter, async_sleep
from postal_sdk._tracing import Tracing, make_tracing
from postal_sdk.errors import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    ConfigurationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    UnexpectedResponseError,
    redact,
)
from postal_sdk.journal import Journal, fingerprint
from postal_sdk.models import (
    EXPANSIONS,
    Delivery,
    Expansion,
    Message,
    MessageInfo,
    RawMessage,
    SendResult,
)
from postal_sdk.pacing import Pacer

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from postal_sdk.webhooks import HeadersLike, WebhookEvent, WebhookKeySet

__all__ = ["AsyncPostal"]

logger = logging.getLogger("postal_sdk")

_T = TypeVar("_T")

_SEND_MESSAGE = "/api/v1/send/message"
_SEND_RAW = "/api/v1/send/raw"
_GET_MESSAGE = "/api/v1/messages/message"
_GET_DELIVERIES = "/api/v1/messages/deliveries"
_JWKS = "/.well-known/jwks.json"
_USER_AGENT = f"postal-sdk/{__version__} (python)"
_WEBHOOK_KEYS_REFETCH_INTERVAL = 60.0


@attrs.define
class _Connection:
    """What every copy made by `with_options` shares: the pool, the limiter, the closed flag."""

    http: httpx.AsyncClient
    limiter: AsyncLimiter
    owns_http: bool
    webhook_keys: AsyncWebhookKeys | None = None
    closed: bool = False
    pacer: Pacer | None = None
    journal: Journal | None = None
    tracing: Tracing | None = None
    connecting: Connecting | None = None
    """How the SDK's own pool connects (`verify`, `cert`, `proxy`, `trust_env`), kept for
    the sync `send_many`, which builds an async pool like it."""
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE
    """The SDK's own pool's bound on replies, kept for the same reason."""


@attrs.frozen
class _Options:
    base_url: str
    api_key: str = attrs.field(repr=False)
    timeout: httpx.Timeout
    max_retries: int
    backoff: Backoff
    headers: Mapping[str, str]
    # None with the caller's own http_client, which carries its own bounds.
    total_timeout: float | None = None


class AsyncPostal:
    """An asynchronous client for one Postal server's HTTP API.

    Use one per event loop, for the life of the application, and close it with
    `async with` or `aclose()`: it holds a pool of keep-alive connections.

    Args:
        base_url: The Postal web host, like `https://postal.example.com` (no `/api/v1`).
            Defaults to the `POSTAL_BASE_URL` environment variable.
        api_key: The server's API credential. Defaults to `POSTAL_API_KEY`.
        timeout: Seconds, or an `httpx.Timeout`. The default allows 5 s to connect and
            30 s to read, since Postal's send does a reverse-DNS lookup per request.
        max_retries: How many times a request may be repeated (see `Backoff`): sends only
            when the request never reached Postal or Postal asked for a retry, reads also
            after timeouts, dropped connections and 5xx replies.
        max_concurrency: The most requests in flight at once, across every caller that
            shares this client (and its `with_options` copies).
        http_client: Your own `httpx.AsyncClient` (proxies, mTLS, event hooks). The SDK
            uses it as it is and never closes it.
        headers: Extra headers sent with every request.
        backoff: How long to wait between retries.
        http_backend: How the SDK's own client talks HTTP (not with `http_client`):
            `"httpx"` (the default), or `"aiohttp"`, the faster path for bulk sending under
            asyncio, which needs the `postal-sdk[aiohttp]` extra. Errors, timeouts and
            retries are the same on both, except that aiohttp enforces no write timeout.
        verify: As httpx's: True (certifi's CA bundle, or `SSL_CERT_FILE`/`SSL_CERT_DIR`
            with `trust_env`), a CA bundle file or directory (a private CA), an
            `ssl.SSLContext` (used as it is), or False to skip verification.
        cert: A client certificate, as httpx's `cert`: a PEM file holding key and
            certificate, `(cert_file, key_file)` or `(cert_file, key_file, password)`.
        proxy: A proxy URL (`http://`, `https://`, `socks5://` with the `socks` extra) or an
            `httpx.Proxy`, for every request; the environment's proxies are then not read.
        trust_env: Read `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY` and
            `SSL_CERT_FILE`/`SSL_CERT_DIR` as `httpx.AsyncClient()` reads them, when the client
            is built. Proxied requests go through their own pools; direct ones keep the fast
            path. `verify`, `cert`, `proxy` and `trust_env` configure the SDK's own client:
            with `http_client` they are a `ConfigurationError`.
        rate_limit: Paces every send of this client and its `with_options` copies, across
            tasks: a `RateLimit` (this process) or `postal_sdk.redis.RedisRateLimit`.
        journal: Records keyed sends (`idempotency_key=`, `send_many(key=...)`) so that
            none is sent twice: a `postal_sdk.journal.SQLiteJournal` or
            `postal_sdk.redis.RedisJournal`. The client never closes it.
        tracing: `True` to make an OpenTelemetry span for each API call with the global
            tracer provider, or the `TracerProvider` to use; needs the `postal-sdk[otel]`
            extra. Retries are events of the call's span; no key or message content is
            recorded.
        total_timeout: The most seconds one attempt of a request may take, from waiting for
            a connection to the reply's last byte, however slowly the server sends it
            (`timeout` bounds each read, not the reply): past it, `APITimeoutError`.
            Default 120 s, four times the default read timeout: Postal's slowest send,
            then the largest reply read at under 1 MB/s. Not with `http_client`.
        max_response_size: The most bytes a reply may hold, head included; a larger one
            ends the request with `ResponseTooLargeError` as soon as it passes the limit,
            so memory stays bounded. Default 64 MiB: the largest reply Postal gives is
            `get_message` with every expansion of a 14 MiB message (Postal's default
            maximum message size): `raw_message` is its base64 with a newline every 60
            characters (19.3 MiB as JSON), attachments as much again, and the text bodies
            up to 14 MiB, about 53 MiB in all. Not with `http_client`.

    Raises:
        ConfigurationError: A missing or malformed base URL or API key, or a bad option.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        http_client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
        backoff: Backoff | None = None,
        http_backend: HTTPBackend = "httpx",
        verify: VerifyTypes = True,
        cert: CertTypes | None = None,
        proxy: ProxyTypes | None = None,
        trust_env: bool = True,
        rate_limit: Pacer | None = None,
        journal: Journal | None = None,
        tracing: bool | TracerProvider = False,
        total_timeout: float | None = None,
        max_response_size: int | None = None,
    ) -> None:
        checked_timeout = check_timeout(timeout)
        for option, value in (
            ("total_timeout", total_timeout),
            ("max_response_size", max_response_size),
        ):
            if value is not None and http_client is not None:
                raise ConfigurationError(
                    option,
                    "applies to the SDK's own client; give your http_client its own bounds",
                )
        self._options = _Options(
            base_url=resolve_base_url(base_url),
            api_key=resolve_api_key(api_key),
            timeout=checked_timeout,
            max_retries=check_max_retries(max_retries),
            backoff=_check_backoff(backoff),
            headers=_check_headers(headers),
            total_timeout=None
            if http_client is not None
            else check_total_timeout(
                DEFAULT_TOTAL_TIMEOUT if total_timeout is None else total_timeout
            ),
        )
        response_size = check_max_response_size(
            DEFAULT_MAX_RESPONSE_SIZE if max_response_size is None else max_response_size
        )
        concurrency = check_max_concurrency(max_concurrency)
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise InvalidArgumentTypeError(
                "http_client", f"must be an httpx.AsyncClient, not {type(http_client).__name__}"
            )
        if check_http_backend(http_backend) != "httpx" and http_client is not None:
            raise ConfigurationError(
                "http_backend", "applies to the SDK's own client: pass http_client or http_backend"
            )
        connecting = check_connecting(
            verify=verify,
            cert=cert,
            proxy=proxy,
            trust_env=trust_env,
            own_client=http_client is None,
        )
        self._connection = _Connection(
            http=http_client
            or async_pooled_client(
                concurrency,
                checked_timeout,
                http_backend,
                connecting,
                max_response_size=response_size,
            ),
            limiter=AsyncLimiter(concurrency),
            owns_http=http_client is None,
            pacer=_check_pacer(rate_limit, "rate_limit"),
            journal=_check_journal(journal),
            tracing=make_tracing(tracing),
            connecting=connecting,
            max_response_size=response_size,
        )
        self._request_headers = _request_headers(self._options)
        self._urls: dict[str, httpx.URL] = {}
        self._is_copy = False

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        backoff: Backoff | None = None,
        total_timeout: float | None = None,
    ) -> AsyncPostal:
        """A copy of this client with some options changed, sharing its connections.

        For per-call overrides: `await postal.with_options(max_retries=0).send_message(m)`.
        Closing the original closes the copies; closing a copy does nothing.
        """
        options = self._options
        changes: dict[str, Any] = {}
        if timeout is not None:
            changes["timeout"] = check_timeout(timeout)
        if max_retries is not None:
            changes["max_retries"] = check_max_retries(max_retries)
        if headers is not None:
            changes["headers"] = {**options.headers, **_check_headers(headers)}
        if backoff is not None:
            changes["backoff"] = _check_backoff(backoff)
        if total_timeout is not None:
            if not self._connection.owns_http:
                raise ConfigurationError(
                    "total_timeout",
                    "applies to the SDK's own client; give your http_client its own bounds",
                )
            changes["total_timeout"] = check_total_timeout(total_timeout)
        copy = object.__new__(type(self))
        copy._options = attrs.evolve(options, **changes)
        copy._connection = self._connection
        copy._request_headers = _request_headers(copy._options)
        copy._urls = self._urls
        copy._is_copy = True
        return copy

    @property
    def base_url(self) -> str:
        """The Postal web host this client talks to."""
        return self._options.base_url

    @property
    def max_concurrency(self) -> int:
        """The most requests this client has in flight at once."""
        return self._connection.limiter.total

    @property
    def is_closed(self) -> bool:
        """Whether `aclose()` was called (or the `async with` block ended)."""
        return self._connection.closed

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._options.base_url!r}, api_key='***')"

    async def __aenter__(self) -> AsyncPostal:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless it is the caller's own `http_client`).

        Safe to call more than once. Later calls of any method raise `ClientClosedError`.
        """
        if self._is_copy or self._connection.closed:
            return
        self._connection.closed = True
        if self._connection.owns_http:
            await self._connection.http.aclose()

    async def send_message(
        self, message: Message, *, idempotency_key: str | None = None
    ) -> SendResult:
        """Send a message that Postal builds from its parts; one queued message per recipient.

        Retried only when the request provably never reached Postal, or when Postal
        answers 429/503 with `Retry-After`: a send is never repeated after it was sent.
        Waits first for a slot of the client's `rate_limit`, if it has one.

        With an `idempotency_key` (which needs the client's `journal`), the message is
        sent at most once for that key, by any run that shares the journal: a key sent
        before returns the recorded result, with `replayed` set, and sends nothing; a key
        whose earlier send may or may not have reached Postal raises `SendInDoubt`; a key
        being sent by another task or process waits for that send's result.

        Raises:
            MessageRejectedError: Postal refused the message (a subclass names the code).
            AuthenticationError, ServerSuspended: The key or the server is not usable.
            UnexpectedResponseError, APIConnectionError, APITimeoutError: see `PostalError`.
            SendInDoubt: The key's earlier send may have reached Postal (not resent).
            JournalError: The journal could not record the intent (nothing was sent).
            ConfigurationError: An `idempotency_key` and no journal.
        """
        _require(message, Message, "message")
        return await self._send(message, idempotency_key, None)

    async def send_raw(
        self, message: RawMessage, *, idempotency_key: str | None = None
    ) -> SendResult:
        """Send a complete RFC 2822 message as-is to its envelope recipients.

        Retried, paced and keyed under the same rules as `send_message`.
        """
        _require(message, RawMessage, "message")
        return await self._send(message, idempotency_key, None)

    def send_many(
        self,
        messages: AsyncMessageSource,
        *,
        concurrency: int | None = None,
        ordered: bool = False,
        on_progress: ProgressHook | None = None,
        rate_limit: Pacer | None = None,
        key: KeyFunction | None = None,
    ) -> AsyncSendMany:
        """Send many messages, `concurrency` at a time, with one outcome for each.

        `messages` is any iterable or async iterable of `Message` and `RawMessage`, taken
        lazily: memory stays proportional to `concurrency`, not to the number of messages.
        `concurrency` defaults to, and never goes above, the client's `max_concurrency`.
        Each send follows the rules of `send_message`/`send_raw` (retries included), and a
        message that fails is an outcome with its error, never an exception that ends the
        batch. Outcomes come in completion order, or in input order with `ordered=True`.
        `on_progress` is called with a `SendProgress` after each outcome is yielded.

        `rate_limit` paces this batch, within the client's own `rate_limit` (both apply).
        `key(index, message)` names each message's idempotency key (the client needs a
        `journal`): a message sent by an earlier run is not sent again, and its outcome
        has `replayed` set; one whose earlier send is in doubt gets a `SendInDoubt`
        outcome. The batch stops early, with `BatchAborted` from the loop, when every
        later send would fail the same way (see `AsyncSendMany`).

            async with postal.send_many(messages, concurrency=50) as outcomes:
                async for outcome in outcomes:
                    ...  # outcome.index, .message, .result or .error

        Raises:
            InvalidArgumentError, InvalidArgumentTypeError: A bad `concurrency`,
                `messages`, `rate_limit` or `key` (at the call, before anything is sent).
            ConfigurationError: A `key` and no journal.
            ClientClosedError: On entering the block, if the client is closed.
        """
        return AsyncSendMany(
            self,
            messages,
            concurrency=concurrency,
            ordered=ordered,
            on_progress=on_progress,
            rate_limit=_check_pacer(rate_limit, "rate_limit"),
            key=self._check_key_function(key),
        )

    async def get_message(
        self, message_id: int, *, expansions: Iterable[Expansion] | bool = ()
    ) -> MessageInfo:
        """Look up a message by the id a send returned.

        `expansions` names the parts to include (see `EXPANSIONS`), or `True` for all.

        Raises:
            MessageNotFound: No such message on this server (or removed by retention).
        """
        payload: dict[str, Any] = {"id": _check_message_id(message_id)}
        wanted = _check_expansions(expansions)
        if wanted:
            payload["_expansions"] = wanted
        data = await self._post(_GET_MESSAGE, payload, idempotent=True)
        return self._structure(data, MessageInfo)

    async def get_deliveries(self, message_id: int) -> list[Delivery]:
        """The delivery attempts of a message, oldest first (empty while it is pending).

        Raises:
            MessageNotFound: No such message on this server (or removed by retention).
        """
        payload = {"id": _check_message_id(message_id)}
        data = await self._post(_GET_DELIVERIES, payload, idempotent=True)
        return self._structure(data, list[Delivery])

    async def fetch_webhook_keys(self) -> WebhookKeySet:
        """Fetch the keys Postal signs webhooks with, from its `/.well-known/jwks.json`.

        Needs the `webhooks` extra and Postal 3.2 or newer (older versions serve no JWKS:
        load the key from the DKIM record with `postal_sdk.webhooks` instead).

        Raises:
            UnexpectedResponseError: The host serves no JWK Set.
        """
        from postal_sdk.webhooks import WebhookKeySet, WebhookVerificationError

        self._check_open()
        headers = httpx.Headers({"Accept": "application/json", "User-Agent": _USER_AGENT})
        tracing = self._connection.tracing
        if tracing is None:
            response = await self._request("GET", _JWKS, None, headers, idempotent=True)
        else:
            with tracing.call("GET", self._url(_JWKS), None) as call:
                response = await self._request("GET", _JWKS, None, headers, idempotent=True)
                call.responded(response.status_code)
        if response.status_code != 200:
            raise UnexpectedResponseError(
                response.status_code,
                excerpt(response.content, self._options.api_key),
                "no JWK Set at /.well-known/jwks.json (Postal before 3.2.0 has none)",
            )
        try:
            return WebhookKeySet.from_jwks(response.content)
        except WebhookVerificationError as error:
            raise UnexpectedResponseError(
                200, excerpt(response.content, self._options.api_key), f"a bad JWK Set: {error}"
            ) from error

    async def verify_webhook(
        self,
        body: bytes | bytearray | memoryview,
        headers: HeadersLike,
        *,
        allow_legacy_sha1: bool = False,
        max_body_size: int = 1_000_000,
        max_age: float | timedelta | None = None,
    ) -> WebhookEvent:
        """Verify a webhook request from this Postal and parse it into a typed event.

        The keys come from the host's `/.well-known/jwks.json`, fetched on first use and
        cached by the client (and its `with_options` copies); a request signed with a key
        the cache does not know makes the client fetch them again, at most once a minute.
        `body` must be the raw request body, exactly as received. Needs the `webhooks` extra.
        `max_age` (seconds or a `timedelta`) refuses events older than that, as replays:
        see `WebhookVerifier`.

        Raises:
            WebhookVerificationError: The signature is missing, malformed or wrong, or the
                key is unknown even after fetching the keys again.
            WebhookTooOldError: The event is older than `max_age`.
            WebhookParseError: The verified body is not a Postal webhook.
        """
        self._check_open()
        connection = self._connection
        if connection.webhook_keys is None:
            connection.webhook_keys = AsyncWebhookKeys(self, _WEBHOOK_KEYS_REFETCH_INTERVAL)
        return await connection.webhook_keys.verify(
            body,
            headers,
            allow_legacy_sha1=allow_legacy_sha1,
            max_body_size=max_body_size,
            max_age=max_age,
        )

    def _check_open(self) -> None:
        if self._connection.closed:
            raise ClientClosedError(f"this {type(self).__name__} is closed")

    def _check_key_function(self, key: KeyFunction | None) -> KeyFunction | None:
        if key is None:
            return None
        if not callable(key):
            raise InvalidArgumentTypeError(
                "key", f"must be a function (index, message) -> str, not {type(key).__name__}"
            )
        self._journal_for("key")
        return key

    def _journal_for(self, argument: str) -> Journal:
        journal = self._connection.journal
        if journal is None:
            raise ConfigurationError(
                argument,
                f"needs a journal to record keyed sends: "
                f"{type(self).__name__}(journal=SQLiteJournal('sends.db'))",
            )
        return journal

    async def _send(
        self,
        message: Message | RawMessage,
        key: str | None,
        batch_pacer: Pacer | None,
    ) -> SendResult:
        """One send: paced, and under its idempotency key when it has one."""
        journal = None if key is None else self._journal_for("idempotency_key")
        if key is not None and (not isinstance(key, str) or not key):
            raise InvalidArgumentTypeError(
                "idempotency_key", f"must be a non-empty str, not {key!r}"
            )
        self._check_open()
        path = _SEND_MESSAGE if isinstance(message, Message) else _SEND_RAW
        payload = converter.unstructure(message)
        pacers = tuple(p for p in (batch_pacer, self._connection.pacer) if p is not None)
        if journal is None or key is None:
            await async_pace(pacers)
            return await self._deliver(path, payload)
        return await async_send_keyed(
            self, journal, key, fingerprint(message), path, payload, pacers
        )

    async def _deliver(self, path: str, payload: Mapping[str, Any]) -> SendResult:
        data = await self._post(path, payload, idempotent=False)
        return self._structure(data, SendResult)

    async def _post(self, path: str, payload: Mapping[str, Any], *, idempotent: bool) -> Any:
        self._check_open()
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        tracing = self._connection.tracing
        if tracing is not None:
            return await self._traced_post(tracing, path, payload, body, idempotent=idempotent)
        response = await self._request(
            "POST", path, body, self._request_headers, idempotent=idempotent
        )
        return unwrap(response.status_code, response.content, self._options.api_key)

    async def _traced_post(
        self,
        tracing: Tracing,
        path: str,
        payload: Mapping[str, Any],
        body: bytes,
        *,
        idempotent: bool,
    ) -> Any:
        with tracing.call("POST", self._url(path), payload) as call:
            response = await self._request(
                "POST", path, body, self._request_headers, idempotent=idempotent
            )
            call.responded(response.status_code)
            data = unwrap(response.status_code, response.content, self._options.api_key)
            call.succeeded(data)
            return data

    async def _request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: httpx.Headers,
        *,
        idempotent: bool,
    ) -> Reply:
        """One request under the concurrency limit, retried as the retry policy allows."""
        options = self._options
        retry = 0
        while True:
            try:
                async with self._connection.limiter:
                    # The client may have closed while this waited for a slot.
                    self._check_open()
                    # Redirects are never followed, whatever a user's client would do: the
                    # redirect's target would get the API key and the message.
                    response = await self._exchange(method, path, body, headers)
            except httpx.HTTPError as error:
                if retry < options.max_retries and should_retry_error(error, idempotent=idempotent):
                    await self._before_retry(path, retry, None, _describe(error))
                    retry += 1
                    continue
                kind = (
                    APITimeoutError
                    if isinstance(error, httpx.TimeoutException)
                    else APIConnectionError
                )
                message = f"{method} {path} failed: {_describe(error)}"
                raise kind(redact(message, options.api_key)) from error
            if response.status_code != 200 and retry < options.max_retries:
                retry_after = retry_after_seconds(response.headers)
                if should_retry_status(response.status_code, retry_after, idempotent=idempotent):
                    await self._before_retry(
                        path, retry, retry_after, f"HTTP {response.status_code}"
                    )
                    retry += 1
                    continue
            logger.debug("%s %s: HTTP %d", method, path, response.status_code)
            if response.is_redirect:
                raise redirect_error(response.status_code, response.headers, options.api_key)
            return response

    async def _exchange(
        self, method: str, path: str, body: bytes | None, headers: httpx.Headers
    ) -> Reply:
        http, url, options = self._connection.http, self._url(path), self._options
        if isinstance(http, AsyncPooledClient):
            return await http.exchange(
                method, url, body, headers, options.timeout, options.total_timeout
            )
        # A user's client: its defaults (headers, auth, event hooks) apply as to its own
        # requests; only redirects are never followed.
        request = http.build_request(
            method, url, content=body, headers=headers, timeout=options.timeout
        )
        return Reply.of(await http.send(request, follow_redirects=False))

    def _url(self, path: str) -> httpx.URL:
        # Parsing the URL is a tenth of httpx's work per request: do it once per endpoint.
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self._options.base_url + path)
        return url

    async def _before_retry(
        self, path: str, retry: int, retry_after: float | None, cause: str
    ) -> None:
        delay = self._options.backoff.delay(retry, retry_after)
        cause = redact(cause, self._options.api_key)
        logger.info(
            "%s failed (%s); retry %d of %d in %.2f s",
            path,
            cause,
            retry + 1,
            self._options.max_retries,
            delay,
        )
        if self._connection.tracing is not None:
            self._connection.tracing.on_retry(retry + 1, delay, cause)
        await async_sleep(delay)
        self._check_open()

    def _structure(self, data: Any, cls: type[_T]) -> _T:
        try:
            return converter.structure(data, cls)
        except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError):
            content = json.dumps(data, default=str).encode()
            raise UnexpectedResponseError(
                200,
                excerpt(content, self._options.api_key),
                f"the reply's data does not match Postal's contract for {cls}",
            ) from None


def _describe(error: httpx.HTTPError) -> str:
    refused = certificate_failure(error)
    if refused is not None:
        # Said whatever the transport's own text: some (trio's) have none.
        return f"{type(error).__name__}: TLS certificate verification failed ({refused})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _request_headers(options: _Options) -> httpx.Headers:
    # Built once per client: httpx would otherwise normalise a dict on every request.
    headers = httpx.Headers(options.headers)
    # Assigning replaces a user header of the same name in any letter case: a second
    # X-Server-API-Key would reach Postal as the two values joined, an unknown key.
    headers["X-Server-API-Key"] = options.api_key
    headers["Content-Type"] = "application/json"
    headers["Accept"] = "application/json"
    headers["User-Agent"] = _USER_AGENT
    return headers


def _check_headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidArgumentTypeError(
            "headers", f"must be a mapping, not {type(headers).__name__}"
        )
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidArgumentTypeError("headers", "names and values must be str")
    return dict(headers)


def _check_pacer(pacer: Pacer | None, argument: str) -> Pacer | None:
    if pacer is not None and not isinstance(pacer, Pacer):
        raise InvalidArgumentTypeError(
            argument, f"must be a RateLimit (or another Pacer), not {type(pacer).__name__}"
        )
    return pacer


def _check_journal(journal: Journal | None) -> Journal | None:
    if journal is not None and not isinstance(journal, Journal):
        raise InvalidArgumentTypeError(
            "journal", f"must be a Journal such as SQLiteJournal, not {type(journal).__name__}"
        )
    return journal


def _check_backoff(backoff: Backoff | None) -> Backoff:
    if backoff is None:
        return Backoff()
    return _require(backoff, Backoff, "backoff")


def _require(value: _T, cls: type[_T], argument: str) -> _T:
    if not isinstance(value, cls):
        raise InvalidArgumentTypeError(
            argument, f"must be a {cls.__name__}, not {type(value).__name__}"
        )
    return value


def _check_message_id(message_id: int) -> int:
    if isinstance(message_id, bool) or not isinstance(message_id, int):
        # Postal answers HTTP 500 for anything but a JSON integer.
        raise InvalidArgumentTypeError(
            "message_id", f"must be an int, not {type(message_id).__name__}"
        )
    if message_id < 1:
        raise InvalidArgumentError("message_id", f"must be a positive id, not {message_id}")
    return message_id


def _check_expansions(expansions: Iterable[Expansion] | bool) -> list[str] | bool:
    if isinstance(expansions, bool):
        return expansions
    if isinstance(expansions, str):
        # Postal silently ignores a string here; a one-name list is what was meant.
        raise InvalidArgumentTypeError(
            "expansions", f"must be a list of names or True, not the str {expansions!r}"
        )
    wanted: list[str] = list(expansions)
    unknown = [name for name in wanted if name not in EXPANSIONS]
    if unknown:
        raise InvalidArgumentError(
            "expansions", f"unknown {unknown!r}; Postal knows {', '.join(EXPANSIONS)}"
        )
    return wanted
