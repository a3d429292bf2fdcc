"""`AsyncPoolTransport`, the httpcore pool the SDK's client uses under trio.

Its behaviour over sockets is pinned in test_default_transport.py; here, that each of
httpcore's errors becomes httpx's own, and how it hands request bodies to httpcore.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpcore
import httpx
import pytest

from postal_sdk._http.pool_transport import AsyncPoolTransport, _body

pytestmark = pytest.mark.anyio

LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4, keepalive_expiry=5.0)


ERRORS = [
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
]


@pytest.mark.parametrize(("raised", "expected"), ERRORS)
async def test_each_httpcore_error_becomes_httpxs_own(
    monkeypatch: pytest.MonkeyPatch,
    raised: type[Exception],
    expected: type[httpx.TransportError],
) -> None:
    transport = AsyncPoolTransport(httpx.create_ssl_context(), LIMITS)

    async def fail(request: httpcore.Request) -> httpcore.Response:
        raise raised("boom")

    monkeypatch.setattr(transport._pool, "handle_async_request", fail)
    request = httpx.Request("GET", "http://postal.test/")
    with pytest.raises(expected) as caught:
        await transport.handle_async_request(request)
    assert type(caught.value) is expected
    assert caught.value.request is request
    assert isinstance(caught.value.__cause__, raised)
    await transport.aclose()


async def test_any_other_error_is_not_disguised(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = AsyncPoolTransport(httpx.create_ssl_context(), LIMITS)

    async def fail(request: httpcore.Request) -> httpcore.Response:
        raise RuntimeError("a bug")

    monkeypatch.setattr(transport._pool, "handle_async_request", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        await transport.handle_async_request(httpx.Request("GET", "http://postal.test/"))


@pytest.mark.anyio
async def test_a_body_in_memory_is_yielded_again_each_time_httpcore_starts_over() -> None:
    body = _body(httpx.Request("POST", "http://postal.test", content=b"{}"))
    assert [chunk async for chunk in body] == [b"{}"]
    assert [chunk async for chunk in aiter(aiter(body))] == [b"{}"]
    empty = _body(httpx.Request("GET", "http://postal.test"))
    assert [chunk async for chunk in empty] == []


def test_a_streamed_body_is_handed_to_httpcore_as_it_is() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"{}"

    request = httpx.Request("POST", "http://postal.test", content=chunks())
    assert _body(request) is request.stream
