"""The SDK's default async transport over real sockets, on asyncio and on trio alike.

Under asyncio requests go through the SDK's own pool (`postal_sdk._http.asyncio_pool`), under
trio through the sharded httpcore pools: the same failure must take the same httpx type on
both, because the retry policy reads it. Only a failure to connect may say that nothing
was sent.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx

from postal_sdk._http.transport import (
    AsyncDefaultTransport,
    AsyncPooledClient,
    PooledClient,
    _Cookies,
    async_pooled_client,
    pooled_client,
)
from tests.transport.support import (
    UVLOOP,
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


@pytest.fixture(params=["asyncio", "trio", UVLOOP])
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """Both event loops the SDK supports, and asyncio on uvloop too."""
    return request.param


SHORT = httpx.Timeout(5.0, read=0.2, write=0.2)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncPooledClient(transport=AsyncDefaultTransport(4), timeout=SHORT) as client:
        yield client


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_each_event_loop_gets_its_own_pool(anyio_backend: str) -> None:
    transport = AsyncDefaultTransport(4)
    with ScriptedServer(keep_alive) as server:
        async with AsyncPooledClient(transport=transport) as http:
            assert (await http.get(server.url)).content == b"{}"
            native = transport._asyncio._open == 1
            shards = sum(shard.busy for shard in transport._sharded._shards)
            pooled = sum(
                len(shard.transport._pool.connections) for shard in transport._sharded._shards
            )
    assert shards == 0
    assert (native, pooled) == ((True, 0) if anyio_backend == "asyncio" else (False, 1))


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
    async with AsyncPooledClient(transport=AsyncDefaultTransport(4, client_tls)) as http:
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


def cookie_reply(request: httpx.Request) -> httpx.Response:
    headers = {"Set-Cookie": "session=abc; Path=/"} if request.url.path == "/login" else {}
    return httpx.Response(200, headers=headers, json={})


def test_the_sdks_client_keeps_the_cookies_a_reply_sets_and_skips_the_jar_otherwise() -> None:
    with PooledClient(transport=httpx.MockTransport(cookie_reply)) as client:
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
    async with AsyncPooledClient(transport=httpx.MockTransport(cookie_reply)) as client:
        await client.get("http://postal.test/login")
        assert client.cookies["session"] == "abc"
    http = async_pooled_client(4, httpx.Timeout(5.0))
    assert isinstance(http.cookies, _Cookies)
    await http.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_respx_mock_sees_every_request_then_the_own_pool_takes_over_again(
    anyio_backend: str,
) -> None:
    transport = AsyncDefaultTransport(4)
    async with AsyncPooledClient(transport=transport) as http:
        with respx.mock(assert_all_called=True) as mock:
            route = mock.get("http://postal.test/").respond(json={"mocked": True})
            assert (await http.get("http://postal.test/")).json() == {"mocked": True}
        assert route.call_count == 1
        assert transport._asyncio._open == 0
        with ScriptedServer(keep_alive) as server:
            assert (await http.get(server.url)).content == b"{}"
            assert transport._asyncio._open == 1
