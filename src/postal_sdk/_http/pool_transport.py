"""An httpx transport over one httpcore connection pool, for the SDK's client under trio.

It is the few lines of `httpx.AsyncHTTPTransport` the SDK needs: httpx's request in,
httpx's response out, and httpcore's errors turned into httpx's; with the request body
handed over so that a cancelled send leaves no async generator behind (see `_body`).
The retry policy in `postal_sdk._retry` reads the errors' types, so the table below must
keep httpx's meaning exactly: only a failure to connect says that nothing was sent.

The reply is read whole here, counted against `max_response_size` as it comes (its head
is bounded by h11, at 100 KiB), and the request's `total_timeout` is kept by `Deadline`,
the timeouts httpcore reads before each step, each cut to what is left of the total.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterable, Iterable

import httpcore
import httpx

from postal_sdk._config import DEFAULT_MAX_RESPONSE_SIZE
from postal_sdk.errors import ResponseTooLargeError

__all__ = [
    "AsyncPoolTransport",
    "Deadline",
    "head_size",
    "too_large",
    "total_timeout_error",
    "with_deadline",
]

_LEAST_TIMEOUT = 1e-6
"""Seconds given to a step once the deadline has passed: it times out unless already done."""


class Deadline(dict[str, "float | None"]):
    """httpx's timeouts for one request, each cut to what is left of its `total_timeout`.

    httpcore reads the timeout of each step (pool, connect, every read and write) from the
    request's `timeout` extension as the step starts: a trickling server meets the total
    at its next read, with no cancel scope on the request's path.
    """

    __slots__ = ("deadline", "total")

    def __init__(self, timeouts: dict[str, float | None], total: float) -> None:
        super().__init__(timeouts)
        self.total = total
        self.deadline = time.monotonic() + total

    def get(self, key: str, default: float | None = None) -> float | None:  # type: ignore[override]
        timeout = super().get(key, default)
        left = max(self.deadline - time.monotonic(), _LEAST_TIMEOUT)
        return left if timeout is None else min(timeout, left)

    def passed(self) -> bool:
        """Whether the total is spent."""
        return time.monotonic() >= self.deadline


def with_deadline(request: httpx.Request) -> Deadline | None:
    """Give `request` a `Deadline` for its `total_timeout` extension, if it has one."""
    total = request.extensions.get("total_timeout")
    if total is None:
        return None
    deadline = Deadline(request.extensions.get("timeout", {}), total)
    request.extensions = {**request.extensions, "timeout": deadline}
    return deadline


def total_timeout_error(
    error: httpx.TimeoutException, deadline: Deadline | None, request: httpx.Request
) -> httpx.TimeoutException:
    """`error`, said to be the `total_timeout`'s when that is what ran out."""
    if deadline is None or not deadline.passed():
        return error
    return type(error)(
        f"the request took longer than total_timeout ({deadline.total:g} s)", request=request
    )


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
    return kind(str(error), request=request)


class AsyncPoolTransport(httpx.AsyncBaseTransport):
    """One httpcore pool (HTTP/1.1, `ssl_context`, `limits`) on httpcore's network backend.

    Replies larger than `max_response_size` bytes end in `ResponseTooLargeError`.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        limits: httpx.Limits,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self._max_response_size = max_response_size
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on a pooled connection and read the whole reply."""
        deadline = with_deadline(request)
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
        limit = self._max_response_size
        try:
            response = await self._pool.handle_async_request(core_request)
            try:
                size = head_size(response.headers)
                chunks = []
                stream = response.stream
                assert isinstance(stream, AsyncIterable)
                async for chunk in stream:
                    size += len(chunk)
                    if size > limit:
                        # Closed before the body ends, httpcore drops the connection.
                        raise too_large(limit, response.status, request)
                    chunks.append(chunk)
            finally:
                await response.aclose()
        except _HTTPCORE_ERRORS as error:
            mapped = _httpx_error(error, request)
            if isinstance(mapped, httpx.TimeoutException):
                mapped = total_timeout_error(mapped, deadline, request)
            raise mapped from error
        reply = httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=httpx.ByteStream(b"".join(chunks)),
            extensions=response.extensions,
        )
        reply.read()
        return reply

    async def aclose(self) -> None:
        """Close every connection in the pool."""
        await self._pool.aclose()


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
