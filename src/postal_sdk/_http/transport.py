"""The httpx clients the SDK builds for itself when the user does not pass one.

Why the default client spreads its connections over small pools: httpcore's connection
pool re-examines every connection it holds (and every queued request) each time a request
starts or a response is closed, and for each idle connection it also counts all the
connections again and polls the socket to see whether the server closed it. That is
O(n) to O(n**2) Python work per request for n pooled connections, so with one pool of
64 connections throughput *falls* as concurrency rises (measured on 2 cores: about 1,200
requests/s with 1 in flight, 410/s with 64; about 100/s when the pool keeps all 64
connections alive). Spreading requests over many pools of `SHARD_SIZE` connections keeps that
work constant per request, and picking the least busy pool means a request never queues
behind a busy pool while another has a free connection.

Why the async client under asyncio uses no httpcore pool at all: even sharded, httpcore
and h11 cost some 300 us of CPU per request, more than the rest of a send together, and
with a 20 ms server and 32 sends in flight the replies come in bursts that one core works
through in series, so that CPU became latency (on 2 cores: 0.92x raw aiohttp's throughput).
There, `postal_sdk._http.asyncio_pool`, the SDK's own HTTP/1.1 pool on asyncio's protocols,
with an O(1) pool and no anyio cancel scopes or h11 state machine on the request path,
does the work (1.01x raw aiohttp in the same benchmark). Under trio the sharded httpcore
pools do it, on httpcore's own trio backend, as httpx's would. The sync pools stay plain
`httpx.HTTPTransport`s.

The optional `aiohttp` backend is httpx-aiohttp's transport, with its request path
replaced: it reads the whole reply at once (the SDK always does) and maps aiohttp's errors to
the httpx errors the retry policy in `postal_sdk._retry` reads. httpx-aiohttp's own mapping
turns a dropped connection into `httpx.ConnectTimeout`, which would make a send that reached
Postal look as if it never left, and so be sent twice.

Proxies (`proxy=`, or the environment's, see `postal_sdk._http.connecting`) are mounted on
the client as httpx mounts its own: one transport per URL pattern, chosen per request by
httpx's own pattern matching, so NO_PROXY and the precedence of patterns are httpx's. The
proxied transports are sharded httpcore pools, each pool connecting through the proxy (a
single httpcore pool's throughput falls with concurrency, see above), or aiohttp's own
proxy support on the aiohttp backend. Direct requests keep the default transport.
"""

from __future__ import annotations

import asyncio
import base64
import math
import ssl
import threading
import time
from typing import Any, Literal

import httpcore
import httpx
import sniffio

from postal_sdk._config import DEFAULT_MAX_RESPONSE_SIZE
from postal_sdk._http import fork
from postal_sdk._http.asyncio_pool import AsyncioPoolTransport
from postal_sdk._http.connecting import Connecting, check_connecting
from postal_sdk._http.pool_transport import AsyncPoolTransport, PoolTransport, head_size, too_large
from postal_sdk._http.reply import Reply
from postal_sdk.errors import ConfigurationError

__all__ = [
    "HTTP_BACKENDS",
    "SHARD_SIZE",
    "AsyncDefaultTransport",
    "AsyncPooledClient",
    "AsyncShardedTransport",
    "HTTPBackend",
    "PooledClient",
    "ShardedTransport",
    "async_pooled_client",
    "check_http_backend",
    "pooled_client",
]

HTTPBackend = Literal["httpx", "aiohttp"]
"""How the SDK's own client talks HTTP: pure httpx, or httpx over aiohttp (asyncio only)."""

HTTP_BACKENDS: tuple[HTTPBackend, ...] = ("httpx", "aiohttp")

SHARD_SIZE = 4
"""Connections per pool: small enough that httpcore's per-request scans cost nothing."""

_KEEPALIVE_EXPIRY = 5.0

_NO_REUSE_SPAN = 10.0
"""Seconds the aiohttp backend asks for fresh connections to a server seen closing them."""


def _limits(max_connections: int) -> httpx.Limits:
    # Every connection may stay alive: the client's limiter already caps requests in flight,
    # so a pool sized to it never closes a connection that the next request would reuse.
    return httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=_KEEPALIVE_EXPIRY,
    )


def _shard_count(max_connections: int) -> int:
    return math.ceil(max_connections / SHARD_SIZE)


class _AsyncShard:
    __slots__ = ("busy", "transport")

    def __init__(self, transport: AsyncPoolTransport) -> None:
        self.transport = transport
        self.busy = 0


class AsyncShardedTransport(httpx.AsyncBaseTransport):
    """Spreads requests over pools of `SHARD_SIZE` connections, least busy pool first.

    Each pool is an `AsyncPoolTransport`: httpcore's pool, as in httpx's own transport, with
    the same TLS context, keep-alive and httpx errors; only the choice of pool is made here.
    In a forked child the pools are new, and the parent's left untouched. With `proxy`,
    every pool connects through it.
    """

    def __init__(
        self,
        max_connections: int,
        tls: ssl.SSLContext | None = None,
        *,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        # One TLS context for all: building one loads the CA bundle, some 25 ms each.
        self._tls = tls or httpx.create_ssl_context()
        self._max_connections = max_connections
        self._max_response_size = max_response_size
        self._proxy = proxy
        self._new_shards()

    def _new_shards(self) -> None:
        self._generation = fork.current()
        self._shards = [
            _AsyncShard(
                AsyncPoolTransport(
                    self._tls, _limits(SHARD_SIZE), self._max_response_size, self._proxy
                )
            )
            for _ in range(_shard_count(self._max_connections))
        ]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the pool with the fewest replies in flight."""
        if self._generation != fork.current():
            fork.abandon(self._shards)
            self._new_shards()
        shard = min(self._shards, key=_busy)
        shard.busy += 1
        try:
            return await shard.transport.handle_async_request(request)
        finally:
            shard.busy -= 1

    async def aclose(self) -> None:
        """Close every pool."""
        if self._generation != fork.current():
            fork.abandon(self._shards)
            self._new_shards()
        for shard in self._shards:
            await shard.transport.aclose()


class AsyncDefaultTransport(httpx.AsyncBaseTransport):
    """The SDK's own pool under asyncio, the sharded httpcore pools under trio.

    Chosen at each request: the client is built outside any event loop, and one client
    may serve several loops in turn.
    """

    def __init__(
        self,
        max_connections: int,
        tls: ssl.SSLContext | None = None,
        *,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        tls = tls or httpx.create_ssl_context()
        self._asyncio = AsyncioPoolTransport(
            tls, max_connections, _KEEPALIVE_EXPIRY, max_response_size
        )
        self._sharded = AsyncShardedTransport(
            max_connections, tls, max_response_size=max_response_size
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the pool for the running event loop."""
        direct = self.direct()
        if direct is not None:
            return await direct.handle_async_request(request)
        return await self._sharded.handle_async_request(request)

    def direct(self) -> AsyncioPoolTransport | None:
        """The SDK's own pool, if requests go through it now (under asyncio, unmocked)."""
        if sniffio.current_async_library() == "asyncio" and not _httpcore_intercepted():
            return self._asyncio
        return None

    async def aclose(self) -> None:
        """Close both pools."""
        await self._asyncio.aclose()
        await self._sharded.aclose()


_HTTPCORE_POOL_SEND = httpcore.AsyncConnectionPool.handle_async_request


def _httpcore_intercepted() -> bool:
    # respx, and mocking libraries like it, intercept httpx by patching httpcore's pool.
    # While one does, requests go through httpcore, so that tests of code that uses the
    # SDK see every request in their mock, as they would with httpx's own transport.
    return httpcore.AsyncConnectionPool.handle_async_request is not _HTTPCORE_POOL_SEND


class _Shard:
    __slots__ = ("busy", "transport")

    def __init__(self, transport: PoolTransport) -> None:
        self.transport = transport
        self.busy = 0


class ShardedTransport(httpx.BaseTransport):
    """The thread-safe twin of `AsyncShardedTransport`, for the sync `Postal`."""

    def __init__(
        self,
        max_connections: int,
        tls: ssl.SSLContext | None = None,
        *,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        self._tls = tls or httpx.create_ssl_context()
        self._max_connections = max_connections
        self._max_response_size = max_response_size
        self._proxy = proxy
        self._lock = threading.Lock()
        self._new_shards()

    def _new_shards(self) -> None:
        self._generation = fork.current()
        self._shards = [
            _Shard(
                PoolTransport(self._tls, _limits(SHARD_SIZE), self._max_response_size, self._proxy)
            )
            for _ in range(_shard_count(self._max_connections))
        ]

    def _current_shards(self) -> list[_Shard]:
        # Under the lock. In a forked child, threads that held it in the parent are gone:
        # the child's copy of the lock is replaced before it is taken (`handle_request`).
        if self._generation != fork.current():
            fork.abandon(self._shards)
            self._new_shards()
        return self._shards

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the pool with the fewest replies in flight; read it whole."""
        if self._generation != fork.current():
            self._lock = threading.Lock()
        with self._lock:
            shard = min(self._current_shards(), key=_busy)
            shard.busy += 1
        try:
            return shard.transport.handle_request(request)
        finally:
            with self._lock:
                shard.busy -= 1

    def close(self) -> None:
        """Close every pool."""
        with self._lock:
            shards = self._current_shards()
        for shard in shards:
            shard.transport.close()


def _busy(shard: _AsyncShard | _Shard) -> int:
    return shard.busy


def check_http_backend(backend: object) -> HTTPBackend:
    """`http_backend` checked: one of `HTTP_BACKENDS`."""
    for known in HTTP_BACKENDS:
        if backend == known:
            return known
    raise ConfigurationError(
        "http_backend", f"must be one of {', '.join(map(repr, HTTP_BACKENDS))}, not {backend!r}"
    )


def async_pooled_client(
    max_connections: int,
    timeout: httpx.Timeout,
    backend: HTTPBackend = "httpx",
    connecting: Connecting | None = None,
    *,
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
) -> AsyncPooledClient:
    """An `httpx.AsyncClient` for `max_connections` requests in flight, on `backend`.

    It connects as `connecting` says (by default as `httpx.AsyncClient()` would). Its
    requests may carry a `total_timeout` extension (seconds); replies larger than
    `max_response_size` bytes end in `ResponseTooLargeError`.
    """
    connecting = connecting or _default_connecting()
    tls = connecting.tls
    transport: httpx.AsyncBaseTransport
    if check_http_backend(backend) == "aiohttp":
        transport = _aiohttp_transport(max_connections, tls, max_response_size)
    else:
        transport = AsyncDefaultTransport(max_connections, tls, max_response_size=max_response_size)

    def through(proxy: httpx.Proxy) -> httpx.AsyncBaseTransport:
        if backend == "aiohttp" and proxy.url.scheme == "http":
            return _aiohttp_transport(max_connections, tls, max_response_size, proxy)
        return AsyncShardedTransport(
            max_connections, tls, max_response_size=max_response_size, proxy=proxy
        )

    mounts = {
        pattern: None if proxy is None else through(proxy)
        for pattern, proxy in connecting.proxies.items()
    }
    return AsyncPooledClient(transport=transport, mounts=mounts, timeout=timeout)


def pooled_client(
    max_connections: int,
    timeout: httpx.Timeout,
    backend: HTTPBackend = "httpx",
    connecting: Connecting | None = None,
    *,
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
) -> PooledClient:
    """An `httpx.Client` for `max_connections` requests in flight (pure httpx only).

    It connects as `connecting` says (by default as `httpx.Client()` would).
    """
    if check_http_backend(backend) == "aiohttp":
        raise ConfigurationError(
            "http_backend",
            "'aiohttp' is for AsyncPostal under asyncio; the sync Postal uses 'httpx'",
        )
    connecting = connecting or _default_connecting()
    tls = connecting.tls

    def sharded(proxy: httpx.Proxy | None) -> ShardedTransport:
        return ShardedTransport(
            max_connections, tls, max_response_size=max_response_size, proxy=proxy
        )

    mounts = {
        pattern: None if proxy is None else sharded(proxy)
        for pattern, proxy in connecting.proxies.items()
    }
    return PooledClient(transport=sharded(None), mounts=mounts, timeout=timeout)


def _default_connecting() -> Connecting:
    connecting = check_connecting(
        verify=True, cert=None, proxy=None, trust_env=True, own_client=True
    )
    assert connecting is not None
    return connecting


class _Cookies(httpx.Cookies):
    """httpx's cookie store, without its cookiejar round trip for replies that set none.

    httpx hands every reply to `http.cookiejar` (wrapping it and its request in urllib
    look-alikes) even when there is no `Set-Cookie`: a tenth of a request's CPU. Postal's
    API sets no cookies, but a reply that does is still handled as httpx would.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _CookieStore:
    """Makes an httpx client keep its cookies in `_Cookies`."""

    _sdk_cookies: _Cookies

    @property
    def cookies(self) -> httpx.Cookies:
        return self._sdk_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:  # httpx's CookieTypes, which it does not export
        self._sdk_cookies = _Cookies(cookies)


class AsyncPooledClient(_CookieStore, httpx.AsyncClient):
    """The SDK's own `httpx.AsyncClient`, which can send a request without its models."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cookies = None

    async def exchange(
        self,
        method: str,
        url: httpx.URL,
        body: bytes | None,
        headers: httpx.Headers,
        timeout: httpx.Timeout,
        total_timeout: float | None,
    ) -> Reply:
        """Send one request as `send(httpx.Request(...))` would, redirects not followed.

        Through the SDK's own asyncio pool, where the URL's transport is it, the request
        goes straight to the pool: httpx's client layers and its request and response
        models cost as much CPU per send as everything else the client does (see
        `postal_sdk._http.reply`). The transport is chosen per request as httpx chooses it
        (`_transport_for_url`, which proxy mounts and mocking libraries rely on).
        """
        transport = self._transport_for_url(url)
        if isinstance(transport, AsyncDefaultTransport):
            direct = transport.direct()
            if direct is not None:
                return await direct.exchange(
                    method, url, headers, body, timeout.as_dict(), total_timeout
                )
        request = _request(method, url, body, headers, timeout, total_timeout)
        return Reply.of(await self.send(request, follow_redirects=False))


class PooledClient(_CookieStore, httpx.Client):
    """The SDK's own `httpx.Client`; the twin of `AsyncPooledClient`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cookies = None

    def exchange(
        self,
        method: str,
        url: httpx.URL,
        body: bytes | None,
        headers: httpx.Headers,
        timeout: httpx.Timeout,
        total_timeout: float | None,
    ) -> Reply:
        """Send one request as `send(httpx.Request(...))` would, redirects not followed."""
        request = _request(method, url, body, headers, timeout, total_timeout)
        return Reply.of(self.send(request, follow_redirects=False))


def _request(
    method: str,
    url: httpx.URL,
    body: bytes | None,
    headers: httpx.Headers,
    timeout: httpx.Timeout,
    total_timeout: float | None,
) -> httpx.Request:
    # Built directly: the SDK's own client has no defaults to merge (headers, cookies,
    # params, auth), and `build_request` would cost a tenth of httpx's work per send.
    return httpx.Request(
        method,
        url,
        content=body,
        headers=headers,
        extensions={"timeout": timeout.as_dict(), "total_timeout": total_timeout},
    )


def _aiohttp_transport(
    max_connections: int,
    tls: ssl.SSLContext,
    max_response_size: int,
    proxy: httpx.Proxy | None = None,
) -> httpx.AsyncBaseTransport:
    # Imported here: aiohttp is an optional extra, and slow to import for those without it.
    try:
        import aiohttp
        from httpx_aiohttp import AiohttpTransport
    except ImportError:
        raise ConfigurationError(
            "http_backend", "'aiohttp' needs the extra: pip install 'postal-sdk[aiohttp]'"
        ) from None

    # Most specific first: ClientConnectorError is a ClientOSError, and the timeouts are
    # ServerConnectionErrors. Only connect failures prove that nothing was sent.
    error_map: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
        (aiohttp.ClientConnectorError, httpx.ConnectError),
        (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
        # Before Python 3.11 asyncio.TimeoutError, aiohttp's timeouts' base, is no TimeoutError.
        (asyncio.TimeoutError, httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
        (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
        (aiohttp.ClientConnectionError, httpx.ReadError),
        (aiohttp.ClientError, httpx.TransportError),
    )

    # aiohttp's own proxy support, for http:// proxies only (the caller's choice): CONNECT
    # for https:// URLs, absolute-form requests for http:// ones, like httpcore's.
    # The credentials go as a header, encoded as httpcore encodes them (aiohttp 3.14 has
    # deprecated its BasicAuth). aiohttp sends `proxy_headers` with CONNECT only: an
    # absolute-form request (an http:// URL) carries them itself, as httpcore's does.
    proxy_url = None if proxy is None else str(proxy.url)
    proxy_headers = None if proxy is None else dict(proxy.headers)
    if proxy is not None and proxy.raw_auth is not None:
        assert proxy_headers is not None
        credentials = base64.b64encode(b":".join(proxy.raw_auth)).decode("ascii")
        proxy_headers["Proxy-Authorization"] = f"Basic {credentials}"
    forwarded_headers = list((proxy_headers or {}).items())

    class _AiohttpTransport(AiohttpTransport):
        """httpx-aiohttp's transport, reading each reply whole and mapping errors truly."""

        _generation = fork.current()
        _no_reuse_until: dict[tuple[bytes, bytes, int | None], float]
        _closing: aiohttp.ClientSession | None = None
        """A session that closes each connection after its reply, for the servers that do."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            timeout = request.extensions.get("timeout", {})
            total = request.extensions.get("total_timeout")
            headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in request.headers.raw
            ]
            url = request.url
            if url.scheme == "http":
                headers += forwarded_headers
            origin = (url.raw_scheme, url.raw_host, url.port)
            session = self._session()
            if self._no_reuse_until and self._no_reuse_until.get(origin, 0.0) > time.monotonic():
                # aiohttp reuses a connection the server closed as its last reply ended, if
                # the loop has not yet read the close: a send written on it fails, and may
                # have been delivered. Connections closed after each reply are never reused.
                session = self._closing_session()
            try:
                async with session.request(
                    request.method,
                    str(url),
                    headers=headers,
                    data=request.content or None,
                    allow_redirects=False,
                    proxy=proxy_url,
                    proxy_headers=proxy_headers,
                    auto_decompress=False,
                    compress=False,
                    timeout=aiohttp.ClientTimeout(
                        total=total,
                        sock_connect=timeout.get("connect"),
                        sock_read=timeout.get("read"),
                        connect=timeout.get("pool"),
                    ),
                ) as reply:
                    size = head_size(reply.raw_headers)
                    chunks = []
                    async for chunk in reply.content.iter_any():
                        size += len(chunk)
                        if size > max_response_size:
                            # Leaving the block unread closes the connection, not pools it.
                            raise too_large(max_response_size, reply.status, request)
                        chunks.append(chunk)
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                if isinstance(
                    error, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
                ) and not isinstance(error, aiohttp.ClientConnectorError):
                    # The connection was closed under the request (aiohttp found it closing
                    # as it wrote, or no reply came): a server that closes each connection
                    # after its reply. Stop reusing its connections for a while.
                    self._no_reuse_until[origin] = time.monotonic() + _NO_REUSE_SPAN
                kind = next(target for source, target in error_map if isinstance(error, source))
                message = f"{type(error).__name__}: {error}"
                if kind is httpx.ReadTimeout and total is not None and not str(error):
                    message = f"the request took longer than total_timeout ({total:g} s)"
                raise kind(message, request=request) from error
            response = httpx.Response(
                reply.status,
                headers=reply.raw_headers,
                stream=httpx.ByteStream(b"".join(chunks)),
                extensions={"http_version": b"HTTP/1.1"},
            )
            response.read()
            return response

        def _session(self) -> aiohttp.ClientSession:
            if self._generation != fork.current():
                # A forked child: the parent's session, its connections and loop are not
                # ours to touch.
                fork.abandon((self.client, self._closing))
                self.client = self._closing = None
                self._generation = fork.current()
            if isinstance(self.client, aiohttp.ClientSession):
                return self.client
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                raise ConfigurationError(
                    "http_backend", "'aiohttp' runs only under asyncio; under trio use 'httpx'"
                ) from None
            self.client = self.get_client()
            return self.client

        def _closing_session(self) -> aiohttp.ClientSession:
            if self._closing is None:
                connector = aiohttp.TCPConnector(ssl=self.ssl_context, force_close=True)
                self._closing = aiohttp.ClientSession(connector=connector)
            return self._closing

        async def aclose(self) -> None:
            if self._generation != fork.current():
                fork.abandon((self.client, self._closing))
                self.client = self._closing = None
                self._generation = fork.current()
            if self._closing is not None:
                await self._closing.close()
            await super().aclose()

    transport = _AiohttpTransport(verify=tls, limits=_limits(max_connections))
    transport._no_reuse_until = {}
    return transport
