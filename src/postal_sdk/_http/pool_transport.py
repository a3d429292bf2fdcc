"""An httpx transport over one httpcore connection pool: under trio, and through proxies.

It is the few lines of `httpx.AsyncHTTPTransport` the SDK needs: httpx's request in,
httpx's response out, and httpcore's errors turned into httpx's; with the request body
handed over so that a cancelled send leaves no async generator behind (see `_body`).
The retry policy in `postal_sdk._retry` reads the errors' types, so the table below must
keep httpx's meaning exactly: only a failure to connect says that nothing was sent.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator

import httpcore
import httpx

__all__ = ["AsyncPoolTransport"]

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


class _ResponseStream(httpx.AsyncByteStream):
    """The reply's body, read from httpcore; closing it gives the connection back."""

    def __init__(self, response: httpcore.Response, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream = self._response.stream
        assert isinstance(stream, AsyncIterable)
        try:
            async for chunk in stream:
                yield chunk
        except _HTTPCORE_ERRORS as error:
            raise _httpx_error(error, self._request) from error

    async def aclose(self) -> None:
        await self._response.aclose()


class AsyncPoolTransport(httpx.AsyncBaseTransport):
    """One httpcore pool (HTTP/1.1, `ssl_context`, `limits`) on httpcore's network backend.

    With `proxy`, the pool connects through it, as `httpx.AsyncHTTPTransport(proxy=...)`'s:
    an HTTP(S) proxy (CONNECT for https:// URLs, absolute-form requests for http:// ones)
    or a SOCKS5 proxy (which needs socksio, checked when the client is built).
    """

    def __init__(
        self, ssl_context: ssl.SSLContext, limits: httpx.Limits, proxy: httpx.Proxy | None = None
    ) -> None:
        self._pool = _pool(ssl_context, limits, proxy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on a pooled connection; the reply's body is read later."""
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
        try:
            response = await self._pool.handle_async_request(core_request)
        except _HTTPCORE_ERRORS as error:
            raise _httpx_error(error, request) from error
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close every connection in the pool."""
        await self._pool.aclose()


def _pool(
    ssl_context: ssl.SSLContext, limits: httpx.Limits, proxy: httpx.Proxy | None
) -> httpcore.AsyncConnectionPool:
    if proxy is None:
        return httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )
    proxy_url = httpcore.URL(
        scheme=proxy.url.raw_scheme,
        host=proxy.url.raw_host,
        port=proxy.url.port,
        target=proxy.url.raw_path,
    )
    if proxy.url.scheme in ("socks5", "socks5h"):
        return httpcore.AsyncSOCKSProxy(
            proxy_url=proxy_url,
            proxy_auth=proxy.raw_auth,
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )
    return httpcore.AsyncHTTPProxy(
        proxy_url=proxy_url,
        proxy_auth=proxy.raw_auth,
        proxy_headers=proxy.headers.raw,
        ssl_context=ssl_context,
        proxy_ssl_context=proxy.ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
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
