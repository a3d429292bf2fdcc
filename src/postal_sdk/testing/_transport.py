"""The fake as an httpx transport: in-process, no sockets, for sync and async clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import httpx

from postal_sdk.testing._exchange import Exchange, HTTPRequest

Handler = Callable[[HTTPRequest], Exchange]
"""Runs one request through the fake."""


class FakeTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport that hands each request to a `FakePostal`.

    Works with `httpx.Client` and `httpx.AsyncClient` alike; get one from
    `FakePostal.transport()`. Faults surface as the exceptions a real connection gives:
    a dropped connection or a cut body raises `httpx.RemoteProtocolError`, and latency
    beyond the client's read timeout raises `httpx.ReadTimeout`. Latency sleeps with
    `time.sleep` in a sync client and with the event loop's sleep in an async one.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer a request from a sync client."""
        exchange = self._handler(_fake_request(request, request.read()))
        wait, timed_out = _waiting_time(exchange, request)
        time.sleep(wait)
        return _httpx_response(exchange, request, timed_out=timed_out)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer a request from an async client."""
        exchange = self._handler(_fake_request(request, await request.aread()))
        wait, timed_out = _waiting_time(exchange, request)
        await anyio.sleep(wait)
        return _httpx_response(exchange, request, timed_out=timed_out)


def _fake_request(request: httpx.Request, body: bytes) -> HTTPRequest:
    headers = tuple(
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw
    )
    query = request.url.query.decode("latin-1")
    return HTTPRequest(request.method, request.url.path, query, headers, body)


def _waiting_time(exchange: Exchange, request: httpx.Request) -> tuple[float, bool]:
    """How long to wait before answering, and whether the read timeout runs out first."""
    read_timeout = request.extensions.get("timeout", {}).get("read")
    if read_timeout is not None and exchange.delay > read_timeout:
        return read_timeout, True
    return exchange.delay, False


def _httpx_response(
    exchange: Exchange, request: httpx.Request, *, timed_out: bool
) -> httpx.Response:
    if timed_out:
        raise httpx.ReadTimeout("The read operation timed out", request=request)
    response = exchange.response
    if response is None:
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    stream: httpx.SyncByteStream | httpx.AsyncByteStream = httpx.ByteStream(response.body)
    if exchange.cut_at is not None:
        stream = _IncompleteStream(response.body[: exchange.cut_at], len(response.body), request)
    return httpx.Response(response.status_code, headers=list(response.headers), stream=stream)


class _IncompleteStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that stops short of its Content-Length, then the connection is gone."""

    def __init__(self, received: bytes, expected: int, request: httpx.Request) -> None:
        self._received = received
        self._expected = expected
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        yield self._received
        raise self._error()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._received
        raise self._error()

    def _error(self) -> httpx.RemoteProtocolError:
        return httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body "
            f"(received {len(self._received)} bytes, expected {self._expected})",
            request=self._request,
        )
