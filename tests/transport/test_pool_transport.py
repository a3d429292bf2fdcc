"""`AsyncPoolTransport` over real sockets: httpx's errors, on asyncio and on trio alike.

The retry policy reads the type of each error, so these pin the type each failure takes:
only a failure to connect may say that nothing was sent.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpcore
import httpx
import pytest

from postal_sdk._asyncio_network import AutoBackend
from postal_sdk._pool_transport import AsyncPoolTransport, _body
from postal_sdk._transport import (
    _AsyncClient,
    _Client,
    _Cookies,
    async_pooled_client,
    pooled_client,
)
from tests.transport.support import (
    ScriptedServer,
    answer_once,
    keep_alive,
    read_and_stall,
    read_request,
    reset,
    stall,
    tls_contexts,
    truncate,
)

pytestmark = pytest.mark.anyio

LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4, keepalive_expiry=5.0)
SHORT = httpx.Timeout(5.0, read=0.2, write=0.2)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    transport = AsyncPoolTransport(httpx.create_ssl_context(), LIMITS, AutoBackend())
    async with httpx.AsyncClient(transport=transport, timeout=SHORT) as client:
        yield client


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    http: httpx.AsyncClient,
) -> None:
    with ScriptedServer(answer_once) as server:
        assert (await http.get(server.url)).status_code == 200
        # Blocking, so the event loop has not yet seen the server's FIN: only the
        # socket itself can tell that the pooled connection is stale.
        assert server.closed.wait(5)
        assert (await http.get(server.url)).status_code == 200
    assert server.connections == 2


async def test_a_live_connection_is_reused(http: httpx.AsyncClient) -> None:
    with ScriptedServer(keep_alive) as server:
        for _ in range(3):
            assert (await http.get(server.url)).content == b"{}"
    assert server.connections == 1


async def test_a_refused_connection_is_a_connect_error(http: httpx.AsyncClient) -> None:
    with ScriptedServer(stall) as server:
        url = server.url
    with pytest.raises(httpx.ConnectError):
        await http.get(url)


async def test_no_answer_is_a_read_timeout(http: httpx.AsyncClient) -> None:
    with ScriptedServer(read_and_stall) as server, pytest.raises(httpx.ReadTimeout):
        await http.get(server.url)


async def test_a_body_cut_short_is_a_remote_protocol_error(http: httpx.AsyncClient) -> None:
    with ScriptedServer(truncate) as server, pytest.raises(httpx.RemoteProtocolError):
        await http.get(server.url)


async def test_a_reset_after_the_request_is_a_read_error_not_a_connect_error(
    http: httpx.AsyncClient,
) -> None:
    with ScriptedServer(reset) as server, pytest.raises(httpx.TransportError) as caught:
        await http.post(server.url, content=b"{}")
    assert isinstance(caught.value, (httpx.ReadError, httpx.RemoteProtocolError))


# Under trio, httpcore leaves the request body's async generator for the garbage collector
# to close after a write fails; plain httpx does the same.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_server_that_reads_nothing_is_a_write_timeout(http: httpx.AsyncClient) -> None:
    with ScriptedServer(stall) as server, pytest.raises(httpx.WriteTimeout):
        await http.post(server.url, content=b"x" * (16 * 1024 * 1024))


async def test_a_body_larger_than_the_socket_buffers_is_sent_whole(
    http: httpx.AsyncClient,
) -> None:
    with ScriptedServer(keep_alive) as server:
        response = await http.post(server.url, content=b"x" * (8 * 1024 * 1024), timeout=5)
    assert response.status_code == 200


async def test_a_reply_larger_than_the_read_buffer_is_read_whole(
    http: httpx.AsyncClient,
) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB

    def big(connection: socket.socket, stopping: threading.Event) -> None:
        if read_request(connection):
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            connection.sendall(body)

    with ScriptedServer(big) as server:
        response = await http.get(server.url, timeout=5)
    assert response.content == body


async def test_tls_works_with_the_context_it_is_given(tmp_path: Path) -> None:
    server_tls, client_tls = tls_contexts(tmp_path)
    transport = AsyncPoolTransport(client_tls, LIMITS, AutoBackend())
    async with httpx.AsyncClient(transport=transport) as http:
        with ScriptedServer(keep_alive, tls=server_tls) as server:
            assert (await http.get(server.url)).content == b"{}"
            assert (await http.get(server.url)).content == b"{}"
    assert server.connections == 1


async def test_an_untrusted_certificate_is_a_connect_error(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    server_tls, _ = tls_contexts(tmp_path)
    with ScriptedServer(keep_alive, tls=server_tls) as server, pytest.raises(httpx.ConnectError):
        await http.get(server.url)


async def test_a_tls_handshake_that_never_ends_is_a_connect_timeout(
    http: httpx.AsyncClient,
) -> None:
    with ScriptedServer(stall) as server, pytest.raises(httpx.ConnectTimeout):
        await http.get(server.url.replace("http:", "https:"), timeout=httpx.Timeout(0.2))


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
    transport = AsyncPoolTransport(httpx.create_ssl_context(), LIMITS, AutoBackend())

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
    transport = AsyncPoolTransport(httpx.create_ssl_context(), LIMITS, AutoBackend())

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


def cookie_reply(request: httpx.Request) -> httpx.Response:
    headers = {"Set-Cookie": "session=abc; Path=/"} if request.url.path == "/login" else {}
    return httpx.Response(200, headers=headers, json={})


def test_the_sdks_client_keeps_the_cookies_a_reply_sets_and_skips_the_jar_otherwise() -> None:
    with _Client(transport=httpx.MockTransport(cookie_reply)) as client:
        client.get("http://postal.test/api")
        assert len(client.cookies.jar) == 0
        client.get("http://postal.test/login")
        assert client.cookies["session"] == "abc"
        client.cookies = {"other": "1"}
        assert dict(client.cookies) == {"other": "1"}
    with pooled_client(4, httpx.Timeout(5.0)) as http:
        assert isinstance(http.cookies, _Cookies)


@pytest.mark.anyio
async def test_the_sdks_async_client_keeps_the_cookies_a_reply_sets() -> None:
    async with _AsyncClient(transport=httpx.MockTransport(cookie_reply)) as client:
        await client.get("http://postal.test/login")
        assert client.cookies["session"] == "abc"
    http = async_pooled_client(4, httpx.Timeout(5.0))
    assert isinstance(http.cookies, _Cookies)
    await http.aclose()
