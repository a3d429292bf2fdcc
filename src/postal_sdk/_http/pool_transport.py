"""An httpx transport over one httpcore connection pool: under trio, for the sync client,
and through proxies.

It is the few lines of `httpx.AsyncHTTPTransport` the SDK needs: httpx's request in,
httpx's response out, and httpcore's errors turned into httpx's; with the request body
handed over so that a cancelled send leaves no async generator behind (see `_body`).
The retry policy in `postal_sdk._retry` reads the errors' types, so the table below must
keep httpx's meaning exactly: only a failure to connect says that nothing was sent.

The reply is read whole here. Its bytes, head included, are counted against
`max_response_size` as they are read, and the request's `total_timeout` is kept, by the
network backends below (see `bounded`).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx
import sniffio

from postal_sdk._config import DEFAULT_MAX_RESPONSE_SIZE
from postal_sdk._http.http11 import ResponseTooLarge
from postal_sdk.errors import ResponseTooLargeError

__all__ = [
    "AsyncDeadlineBackend",
    "AsyncPoolTransport",
    "DeadlineBackend",
    "PoolTransport",
    "bounded",
    "head_size",
    "too_large",
]


class _Bounds:
    """What one request may still take: time (to `deadline`) and bytes (to `limit`)."""

    __slots__ = ("deadline", "limit", "total", "used")

    def __init__(self, request: httpx.Request, limit: int) -> None:
        total: float | None = request.extensions.get("total_timeout")
        self.total = total
        self.deadline = None if total is None else time.monotonic() + total
        self.limit = limit
        self.used = 0

    def error(self, error: Exception, request: httpx.Request) -> Exception:
        """httpcore's `error` as httpx's; a timeout that ran into the total, said to."""
        mapped = _httpx_error(error, request)
        if (
            isinstance(mapped, httpx.TimeoutException)
            and self.deadline is not None
            and time.monotonic() >= self.deadline
        ):
            message = f"the request took longer than total_timeout ({self.total:g} s)"
            return type(mapped)(message, request=request)
        return mapped


_bounds: ContextVar[_Bounds | None] = ContextVar("_bounds", default=None)
"""The bounds of the request that the running task or thread is sending."""


@contextmanager
def bounded(bounds: _Bounds) -> Iterator[None]:
    """Bound what is sent and read inside by `bounds`: a request's time and bytes.

    httpcore reads a timeout once per step (the whole head, the whole body), so a server
    that trickles a byte within each read timeout would never be stopped by it; and
    stopping to read a body midway leaves httpcore's async generators to the collector.
    So the pools' network streams (`DeadlineBackend`, `AsyncDeadlineBackend`) cut every
    read and write to the time left, and count the bytes read: past the limit, the read
    itself fails, and httpcore drops the connection.
    """
    token = _bounds.set(bounds)
    try:
        yield
    finally:
        _bounds.reset(token)


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    bounds = _bounds.get()
    if bounds is None or bounds.deadline is None:
        return timeout
    left = bounds.deadline - time.monotonic()
    if left <= 0:
        raise error(f"the request took longer than total_timeout ({bounds.total:g} s)")
    return left if timeout is None else min(timeout, left)


def _count(data: bytes) -> bytes:
    bounds = _bounds.get()
    if bounds is not None:
        bounds.used += len(data)
        if bounds.used > bounds.limit:
            raise ResponseTooLarge(bounds.limit, 0)
    return data


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _count(await self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout)))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _AsyncStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend for the running library, keeping `total_timeout`."""

    def __init__(self) -> None:
        self._trio: httpcore.AsyncNetworkBackend | None = None
        self._anyio = httpcore.AnyIOBackend()

    def _backend(self) -> httpcore.AsyncNetworkBackend:
        if sniffio.current_async_library() != "trio":
            return self._anyio
        if self._trio is None:
            # Made on first use under trio: httpcore refuses to make one where trio is not
            # installed, and most programs that build a client never run trio.
            self._trio = httpcore.TrioBackend()
        return self._trio

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        stream = await self._backend().connect_tcp(
            host, port, timeout, local_address, socket_options
        )
        return _AsyncStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _AsyncStream(
            await self._backend().connect_unix_socket(path, timeout, socket_options)
        )

    async def sleep(self, seconds: float) -> None:
        await self._backend().sleep(seconds)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _count(self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout)))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's blocking network backend, keeping `total_timeout`."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(
            self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def head_size(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """About the bytes a reply's headers took on the wire: counted against the size limit."""
    return sum(len(name) + len(value) + 4 for name, value in headers)


def too_large(limit: int, status: int, request: httpx.Request) -> ResponseTooLargeError:
    """The error for a reply to `request` larger than `limit` bytes."""
    return ResponseTooLargeError(limit, status, f"{request.method} {request.url.path}")


# Most specific first: the first match wins.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)

_HTTPCORE_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)
"""The roots of every error in `_ERRORS`; anything else is a bug and propagates as is."""


def _httpx_error(error: Exception, request: httpx.Request) -> httpx.TransportError:
    kind = next(target for source, target in _ERRORS if isinstance(error, source))
    return kind(_reason(error), request=request)


def _reason(error: BaseException) -> str:
    # httpcore's trio backend raises ConnectError from trio's BrokenResourceError, neither
    # with any text: the reason (say, a certificate that failed verification) is further
    # down the chain, and the user must read it in the SDK's error.
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if str(cause):
            return str(cause)
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return ""


class AsyncPoolTransport(httpx.AsyncBaseTransport):
    """One httpcore pool (HTTP/1.1, `ssl_context`, `limits`) on httpcore's network backend.

    Replies larger than `max_response_size` bytes end in `ResponseTooLargeError`. With
    `proxy`, the pool connects through it, as `httpx.AsyncHTTPTransport(proxy=...)`'s: an
    HTTP(S) proxy (CONNECT for https:// URLs, absolute-form requests for http:// ones) or
    a SOCKS5 proxy (which needs socksio, checked when the client is built).
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        limits: httpx.Limits,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        self._max_response_size = max_response_size
        options = _pool_options(ssl_context, limits)
        backend = AsyncDeadlineBackend()
        self._pool: httpcore.AsyncConnectionPool
        if proxy is None:
            self._pool = httpcore.AsyncConnectionPool(**options, network_backend=backend)
        elif _is_socks(proxy):
            self._pool = httpcore.AsyncSOCKSProxy(
                **options, **_socks_options(proxy), network_backend=backend
            )
        else:
            self._pool = httpcore.AsyncHTTPProxy(
                **options, **_proxy_options(proxy), network_backend=backend
            )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on a pooled connection and read the whole reply."""
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=_body(request),
            extensions=request.extensions,
        )
        status = 0
        bounds = _Bounds(request, self._max_response_size)
        try:
            with bounded(bounds):
                response = await self._pool.handle_async_request(core_request)
                status = response.status
                try:
                    chunks = [chunk async for chunk in _stream(response)]
                finally:
                    await response.aclose()
        except _HTTPCORE_ERRORS as error:
            raise bounds.error(error, request) from error
        except ResponseTooLarge as error:
            raise too_large(error.limit, status, request) from None
        reply = _response(response, chunks)
        reply.read()
        return reply

    async def aclose(self) -> None:
        """Close every connection in the pool."""
        await self._pool.aclose()


class PoolTransport(httpx.BaseTransport):
    """The blocking twin of `AsyncPoolTransport`, for the sync `Postal`."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        limits: httpx.Limits,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        self._max_response_size = max_response_size
        options = _pool_options(ssl_context, limits)
        backend = DeadlineBackend()
        self._pool: httpcore.ConnectionPool
        if proxy is None:
            self._pool = httpcore.ConnectionPool(**options, network_backend=backend)
        elif _is_socks(proxy):
            self._pool = httpcore.SOCKSProxy(
                **options, **_socks_options(proxy), network_backend=backend
            )
        else:
            self._pool = httpcore.HTTPProxy(
                **options, **_proxy_options(proxy), network_backend=backend
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on a pooled connection and read the whole reply."""
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        status = 0
        bounds = _Bounds(request, self._max_response_size)
        try:
            with bounded(bounds):
                response = self._pool.handle_request(core_request)
                status = response.status
                try:
                    chunks = list(response.iter_stream())
                finally:
                    response.close()
        except _HTTPCORE_ERRORS as error:
            raise bounds.error(error, request) from error
        except ResponseTooLarge as error:
            raise too_large(error.limit, status, request) from None
        reply = _response(response, chunks)
        reply.read()
        return reply

    def close(self) -> None:
        """Close every connection in the pool."""
        self._pool.close()


def _pool_options(ssl_context: ssl.SSLContext, limits: httpx.Limits) -> dict[str, Any]:
    return {
        "ssl_context": ssl_context,
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }


def _is_socks(proxy: httpx.Proxy) -> bool:
    return proxy.url.scheme in ("socks5", "socks5h")


def _proxy_url(proxy: httpx.Proxy) -> httpcore.URL:
    url = proxy.url
    return httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )


def _socks_options(proxy: httpx.Proxy) -> dict[str, Any]:
    return {"proxy_url": _proxy_url(proxy), "proxy_auth": proxy.raw_auth}


def _proxy_options(proxy: httpx.Proxy) -> dict[str, Any]:
    return {
        "proxy_url": _proxy_url(proxy),
        "proxy_auth": proxy.raw_auth,
        "proxy_headers": proxy.headers.raw,
        "proxy_ssl_context": proxy.ssl_context,
    }


def _stream(response: httpcore.Response) -> AsyncIterable[bytes]:
    stream = response.stream
    assert isinstance(stream, AsyncIterable)
    return stream


def _response(response: httpcore.Response, chunks: list[bytes]) -> httpx.Response:
    # A stream, not `content=`: that would add a Content-Length the server did not send.
    return httpx.Response(
        status_code=response.status,
        headers=response.headers,
        stream=httpx.ByteStream(b"".join(chunks)),
        extensions=response.extensions,
    )


def _body(request: httpx.Request) -> AsyncIterable[bytes]:
    # httpx's own request stream is an async generator: a send cancelled while writing it
    # would leave it for the garbage collector to finalise, outside any task (trio warns;
    # encode/httpx#3686). The SDK's bodies are bytes, so hand httpcore plain iterators.
    try:
        content = request.content
    except httpx.RequestNotRead:
        return request.stream  # type: ignore[return-value]
    return _Body(content)


class _Body:
    """A body already in memory; each iteration (httpcore may start over) yields it once."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def __aiter__(self) -> _Chunks:
        return _Chunks([self._content] if self._content else [])


class _Chunks:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        if not self._chunks:
            raise StopAsyncIteration
        return self._chunks.pop()
