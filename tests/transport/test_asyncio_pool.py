"""`AsyncioPoolTransport` over real sockets on 127.0.0.1: its pool, its HTTP/1.1, its errors.

The retry policy reads the type of each error, so these pin the type each failure takes:
only a failure before one byte of the request was written may say that nothing was sent.
The pool's own promises (no more connections than allowed, a slot freed whatever ends a
request, no connection reused that could hand the next request a stale reply) are pinned
from the server's side, by counting and watching the connections it sees. What it must do
just as trio's path does is pinned on both loops in test_default_transport.py.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import socket
import ssl
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from postal_sdk._http import asyncio_pool
from postal_sdk._http.asyncio_pool import AsyncioPoolTransport
from tests.transport.support import (
    OK,
    UVLOOP,
    Gate,
    Script,
    ScriptedServer,
    abort,
    in_turn,
    keep_alive,
    read_and_stall,
    reset,
    stall,
    tls_contexts,
    truncate,
)

pytestmark = pytest.mark.anyio

TLS = httpx.create_ssl_context()
TIMEOUT = httpx.Timeout(5.0)
"""For what must succeed: generous, so that a slow machine is not a failure."""
SHORT = 0.2
"""Seconds, for the one timeout a test expects to expire."""
LARGE = b"x" * (16 * 1024 * 1024)
"""A request body larger than the socket buffers on both sides of a loopback connection."""
BIG = bytes(range(256)) * (16 * 1024)
"""A 4 MiB reply body: well past the transport's 256 KiB read buffer."""


@pytest.fixture(params=["asyncio", UVLOOP])
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """The transport is asyncio's alone, on asyncio's own loop and on uvloop's."""
    return request.param


@pytest.fixture
async def make_pool() -> AsyncIterator[Callable[..., AsyncioPoolTransport]]:
    """Builds transports, and closes them after the test, so no socket outlives it."""
    made: list[AsyncioPoolTransport] = []

    def make(
        max_connections: int = 4, keepalive_expiry: float = 5.0, tls: ssl.SSLContext = TLS
    ) -> AsyncioPoolTransport:
        made.append(AsyncioPoolTransport(tls, max_connections, keepalive_expiry))
        return made[-1]

    yield make
    for transport in made:
        await transport.aclose()


@pytest.fixture
async def http(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> AsyncIterator[httpx.AsyncClient]:
    async with client(make_pool()) as http:
        yield http


def client(transport: AsyncioPoolTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=TIMEOUT)


def request(
    method: str, url: str, *, timeout: httpx.Timeout = TIMEOUT, **kwargs: Any
) -> httpx.Request:
    """A request as httpx's client builds it, timeouts included, to hand the transport."""
    return httpx.Request(method, url, extensions={"timeout": timeout.as_dict()}, **kwargs)


async def failure(transport: AsyncioPoolTransport, request: httpx.Request) -> httpx.RequestError:
    """The error that sending `request` raises, checked to carry that request.

    Sent to the transport itself: httpx's client attaches the request to whatever error
    passes through it, and would hide a transport that forgot to.
    """
    with pytest.raises(httpx.RequestError) as caught:
        await transport.handle_async_request(request)
    assert caught.value.request is request
    return caught.value


async def eventually(condition: Callable[[], bool]) -> None:
    """Let the event loop run until `condition`, which a server thread makes true, holds."""
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.005)


def closed_port() -> str:
    """The URL of a port on 127.0.0.1 that nothing listens on any more."""
    with ScriptedServer(stall) as server:
        return server.url


# What the server sees.


async def test_a_request_reaches_the_server_as_http11_with_its_host_length_and_body(
    http: httpx.AsyncClient,
) -> None:
    script = Script(OK)
    with ScriptedServer(script) as server:
        response = await http.post(
            server.url + "messages?x=1", content=b'{"to":1}', headers={"X-Server-API-Key": "k"}
        )
    assert (response.status_code, response.content) == (200, b"{}")
    assert (response.http_version, response.reason_phrase) == ("HTTP/1.1", "OK")
    ((head, body),) = script.requests
    request_line, *lines = head.split(b"\r\n")
    assert request_line == b"POST /messages?x=1 HTTP/1.1"
    headers = dict(line.split(b": ", 1) for line in lines)
    assert headers[b"Host"] == b"127.0.0.1:%d" % server.port
    assert headers[b"Content-Length"] == b"8"
    assert headers[b"X-Server-API-Key"] == b"k"
    assert b"Transfer-Encoding" not in headers
    assert body == b'{"to":1}'


async def test_a_streamed_body_without_a_length_is_sent_in_chunks(http: httpx.AsyncClient) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"hello"
        yield b""  # as a chunk, empty would end the body here
        yield b" world"

    script = Script(OK)
    with ScriptedServer(script) as server:
        assert (await http.post(server.url, content=parts())).status_code == 200
    ((head, body),) = script.requests
    assert b"\r\nTransfer-Encoding: chunked" in head
    assert b"Content-Length" not in head
    assert body == b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"


async def test_a_streamed_body_with_a_content_length_is_sent_as_it_is(
    http: httpx.AsyncClient,
) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"hello"
        yield b" world"

    script = Script(OK)
    with ScriptedServer(script) as server:
        response = await http.post(server.url, content=parts(), headers={"Content-Length": "11"})
    assert response.status_code == 200
    ((head, body),) = script.requests
    assert b"\r\nContent-Length: 11" in head
    assert b"Transfer-Encoding" not in head
    assert body == b"hello world"


@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "streamed"])
async def test_a_body_larger_than_the_socket_buffers_is_sent_whole(
    http: httpx.AsyncClient, streamed: bool
) -> None:
    # 8 MiB: more than the sockets hold, so the transport must wait to write it all.
    pieces = [bytes([n]) * (1024 * 1024) for n in range(8)]

    async def parts() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    script = Script(OK)
    with ScriptedServer(script) as server:
        response = await http.post(server.url, content=parts() if streamed else b"".join(pieces))
    assert response.status_code == 200
    ((_, sent),) = script.requests
    if streamed:
        assert sent == b"".join(b"100000\r\n%b\r\n" % piece for piece in pieces) + b"0\r\n\r\n"
    else:
        assert sent == b"".join(pieces)


# Reuse, and when not to reuse.


async def test_requests_one_after_another_share_one_connection(http: httpx.AsyncClient) -> None:
    with ScriptedServer(keep_alive) as server:
        for _ in range(3):
            assert (await http.get(server.url)).content == b"{}"
    assert server.connections == 1


async def test_tls_connections_are_verified_with_the_context_given_and_reused(
    tmp_path: Path, make_pool: Callable[..., AsyncioPoolTransport]
) -> None:
    server_tls, client_tls = tls_contexts(tmp_path)
    async with client(make_pool(tls=client_tls)) as http:
        with ScriptedServer(keep_alive, tls=server_tls) as server:
            for _ in range(2):
                assert (await http.get(server.url)).content == b"{}"
    assert server.connections == 1


REPLIES_THAT_END_THEIR_CONNECTION = {
    "connection-close": b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    "http-1.0": b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    "bytes-after-the-reply": OK + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
    "keep-alive-timeout-0": (
        b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=0\r\nContent-Length: 2\r\n\r\n{}"
    ),
}


@pytest.mark.parametrize(
    "reply",
    REPLIES_THAT_END_THEIR_CONNECTION.values(),
    ids=REPLIES_THAT_END_THEIR_CONNECTION.keys(),
)
async def test_a_connection_whose_reply_ends_it_is_closed_by_the_client_not_reused(
    http: httpx.AsyncClient, reply: bytes
) -> None:
    # The server leaves the connection open: only the client can close it.
    script = Script(reply, close=False)
    with ScriptedServer(in_turn(script, keep_alive)) as server:
        assert (await http.get(server.url)).content == b"{}"
        # At once, not when the next request finds it unfit.
        await eventually(script.client_closed.is_set)
        assert (await http.get(server.url)).content == b"{}"
    assert server.connections == 2


async def test_a_connection_idle_past_the_servers_keep_alive_timeout_is_closed_not_reused(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    # Keep-Alive: timeout=2 leaves a second of margin: reused within 1 s, not after.
    reply = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2, max=100\r\nContent-Length: 2\r\n\r\n{}"
    transport = make_pool(keepalive_expiry=60.0)
    script = Script(reply, reply, close=False)
    with ScriptedServer(in_turn(script, keep_alive)) as server:
        async with client(transport) as http:
            await http.get(server.url)
            await http.get(server.url)
            assert server.connections == 1
            (connection,) = next(iter(transport._idle.values()))
            assert connection.expiry == 1.0
            connection.idle_since -= 1.0  # as if idle for a second
            await http.get(server.url)
    assert server.connections == 2


async def test_a_connection_idle_past_its_keepalive_expiry_is_closed_not_reused(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    script = Script(OK, close=False)
    async with client(make_pool(keepalive_expiry=0.01)) as http:
        with ScriptedServer(in_turn(script, keep_alive)) as server:
            assert (await http.get(server.url)).status_code == 200
            await asyncio.sleep(0.05)
            assert (await http.get(server.url)).status_code == 200
            await eventually(script.client_closed.is_set)
    assert server.connections == 2


# The first run leaves its connection open as its loop closes; asyncio reports that when the
# transport is collected, which this test makes happen here, not in some later test.
@pytest.mark.filterwarnings("ignore:unclosed:ResourceWarning")
@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_connection_left_by_an_earlier_event_loop_is_closed_not_reused(
    tmp_path: Path, tls: bool
) -> None:
    server_tls, client_tls = tls_contexts(tmp_path) if tls else (None, TLS)
    transport = AsyncioPoolTransport(client_tls, 4, 5.0)
    script = Script(OK, close=False)

    async def get(url: str) -> int:
        return (await transport.handle_async_request(request("GET", url))).status_code

    # The collector would close the first connection whenever it ran: only the pool may.
    gc.disable()
    try:
        with ScriptedServer(in_turn(script, keep_alive), tls=server_tls) as server:
            assert asyncio.run(get(server.url)) == 200
            assert asyncio.run(get(server.url)) == 200
            assert script.client_closed.wait(5)
            asyncio.run(transport.aclose())
    finally:
        gc.enable()
        gc.collect()
    assert server.connections == 2


# Reading replies.


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
)


async def test_a_chunked_reply_is_read_whole_and_its_connection_reused(
    http: httpx.AsyncClient,
) -> None:
    with ScriptedServer(Script(CHUNKED, CHUNKED)) as server:
        for _ in range(2):
            response = await http.get(server.url, timeout=None)
            assert response.content == b"hello world"
            # The headers are the server's: none made up for the body read whole.
            assert list(response.headers.items()) == [("transfer-encoding", "chunked")]
    assert server.connections == 1


async def test_a_compressed_reply_is_decoded_and_a_corrupt_one_is_a_decoding_error(
    http: httpx.AsyncClient,
) -> None:
    packed = gzip.compress(b'{"status":"success"}')
    good = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%b"
    bad = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope"
    with ScriptedServer(Script(good % (len(packed), packed), bad)) as server:
        assert (await http.get(server.url)).content == b'{"status":"success"}'
        with pytest.raises(httpx.DecodingError) as caught:
            await http.get(server.url)
    assert caught.value.request.url == server.url


async def test_interim_replies_are_passed_over_for_the_final_one(http: httpx.AsyncClient) -> None:
    interim = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    )
    with ScriptedServer(Script(interim + OK, OK)) as server:
        response = await http.get(server.url)
        assert (response.status_code, response.content) == (200, b"{}")
        assert "link" not in response.headers
        assert (await http.get(server.url)).content == b"{}"
    assert server.connections == 1


async def test_a_reply_without_a_length_is_read_until_the_server_closes(
    http: httpx.AsyncClient,
) -> None:
    with ScriptedServer(Script(b"HTTP/1.1 200 OK\r\n\r\nall of it, ")) as server:
        for _ in range(2):
            assert (await http.get(server.url)).content == b"all of it, "
    assert server.connections == 2


@pytest.mark.parametrize(
    ("method", "reply"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n"),
    ],
    ids=["head", "204", "304"],
)
async def test_a_reply_that_has_no_body_is_not_waited_on_for_one(
    http: httpx.AsyncClient, method: str, reply: bytes
) -> None:
    # Were a body awaited, the next reply would be read as it, or the read would time out.
    with ScriptedServer(Script(reply, OK)) as server:
        response = await http.request(method, server.url)
        assert response.content == b""
        assert (await http.get(server.url)).content == b"{}"
    assert server.connections == 1


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
async def test_a_reply_larger_than_the_read_buffer_is_read_whole_and_its_connection_reused(
    tmp_path: Path, make_pool: Callable[..., AsyncioPoolTransport], tls: bool, chunked: bool
) -> None:
    if chunked:
        chunks = [BIG[i : i + 65536] for i in range(0, len(BIG), 65536)]
        body = b"".join(b"%x\r\n%b\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
        reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    else:
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(BIG), BIG)
    server_tls, client_tls = tls_contexts(tmp_path) if tls else (None, TLS)
    async with client(make_pool(tls=client_tls)) as http:
        with ScriptedServer(Script(reply, OK), tls=server_tls) as server:
            assert (await http.get(server.url)).content == BIG
            # Reading stopped while the reply was in: the next one must start it again.
            assert (await http.get(server.url)).content == b"{}"
    assert server.connections == 1


async def test_concurrent_requests_never_hold_more_connections_than_allowed(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    gate = Gate()
    transport = make_pool(max_connections=2)
    async with client(transport) as http:
        with ScriptedServer(gate) as server:
            # No pool timeout: those queued wait for as long as it takes.
            no_limit = httpx.Timeout(5.0, pool=None)
            sends = [asyncio.create_task(http.get(server.url, timeout=no_limit)) for _ in range(6)]
            # Two requests reach the server and are held there; the other four wait.
            await eventually(lambda: gate.requests == 2 and len(transport._waiters) == 4)
            gate.opened.set()
            responses = await asyncio.gather(*sends)
    assert [response.status_code for response in responses] == [200] * 6
    assert gate.peak == 2
    assert server.connections == 2


async def test_a_pool_timeout_while_every_connection_is_busy_leaves_the_pool_usable(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    gate = Gate()
    transport = make_pool(max_connections=1)
    async with client(transport) as http:
        with ScriptedServer(gate) as server:
            busy = asyncio.create_task(http.get(server.url))
            await eventually(lambda: gate.requests == 1)
            queued = request("GET", server.url, timeout=httpx.Timeout(5.0, pool=SHORT))
            assert type(await failure(transport, queued)) is httpx.PoolTimeout
            gate.opened.set()
            assert (await busy).status_code == 200
            assert (await http.get(server.url)).status_code == 200
    assert server.connections == 1


async def test_a_request_cancelled_while_awaiting_its_reply_closes_its_connection_and_slot(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    silent = Script(close=False)  # reads the request, never answers
    transport = make_pool(max_connections=1)
    async with client(transport) as http:
        with ScriptedServer(in_turn(silent, keep_alive)) as server:
            cancelled = asyncio.create_task(http.get(server.url))
            await eventually(lambda: server.connections == 1)
            queued = asyncio.create_task(http.get(server.url))
            await eventually(lambda: len(transport._waiters) == 1)
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            await eventually(silent.client_closed.is_set)
            assert (await queued).status_code == 200
    assert server.connections == 2


async def test_a_connection_closed_after_its_reply_makes_room_for_a_queued_request(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    gate = Gate(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
    transport = make_pool(max_connections=1)
    async with client(transport) as http:
        with ScriptedServer(gate) as server:
            busy = asyncio.create_task(http.get(server.url))
            await eventually(lambda: gate.requests == 1)
            queued = asyncio.create_task(http.get(server.url))
            await eventually(lambda: len(transport._waiters) == 1)
            gate.opened.set()
            assert [(await busy).status_code, (await queued).status_code] == [200, 200]
    assert server.connections == 2


async def test_a_request_cancelled_while_connecting_frees_its_slot(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    async with client(make_pool(max_connections=1)) as http:
        with ScriptedServer(stall) as silent, ScriptedServer(keep_alive) as server:
            # A TLS handshake the server never answers keeps the request connecting.
            with anyio.move_on_after(SHORT) as scope:
                await http.get(silent.url.replace("http:", "https:"))
            assert scope.cancelled_caught
            assert (await http.get(server.url)).status_code == 200


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """An address whose connects never complete: a listener whose accept queue is full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        yield listener.getsockname()
    finally:
        for sock in (*fillers, listener):
            sock.close()


async def test_a_connect_cancelled_while_racing_a_hosts_addresses_leaves_no_socket_open(
    make_pool: Callable[..., AsyncioPoolTransport],
    blackhole: tuple[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A host with two addresses, the first of which never answers: the second is raced
    # after the happy-eyeballs delay, and the connect is cancelled at each of the next few
    # turns of the loop after the server accepted it. CPython's own race (create_connection
    # with happy_eyeballs_delay) left the winning socket open in most of these.
    loop = asyncio.get_running_loop()
    accepted: list[asyncio.StreamWriter] = []
    arrived = asyncio.Event()

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        arrived.set()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    resolve = loop.getaddrinfo

    async def two_addresses(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "multi.test":  # uvloop's sock_connect resolves its address through it
            return await resolve(host, port, *args, **kwargs)
        stream = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
        return [(*stream, blackhole), (*stream, ("127.0.0.1", port))]

    monkeypatch.setattr(loop, "getaddrinfo", two_addresses)
    monkeypatch.setattr(asyncio_pool, "_HAPPY_EYEBALLS_DELAY", 0.01)
    transport = make_pool()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for turns in (*range(8), *range(8)):
            arrived.clear()
            sending = asyncio.ensure_future(
                transport.handle_async_request(request("GET", f"http://multi.test:{port}/"))
            )
            with anyio.fail_after(10):  # Only so that a regression fails, not hangs.
                await arrived.wait()
            for _ in range(turns):
                await asyncio.sleep(0)
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
        gc.collect()
    assert len(accepted) == 16  # Each connect was won by the second address.
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_a_request_cancelled_while_queued_for_room_leaves_the_queue(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    gate = Gate()
    transport = make_pool(max_connections=1)
    async with client(transport) as http:
        with ScriptedServer(gate) as server:
            busy = asyncio.create_task(http.get(server.url))
            await eventually(lambda: gate.requests == 1)
            cancelled = asyncio.create_task(http.get(server.url))
            queued = asyncio.create_task(http.get(server.url))
            await eventually(lambda: len(transport._waiters) == 2)
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            assert len(transport._waiters) == 1
            gate.opened.set()
            assert (await busy).status_code == 200
            assert (await queued).status_code == 200
    assert server.connections == 1


async def test_a_request_cancelled_as_it_is_woken_for_room_passes_the_room_on(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    gate = Gate()
    transport = make_pool(max_connections=1)
    queued: list[asyncio.Task[httpx.Response]] = []
    async with client(transport) as http:

        async def send_then_cancel_the_first_queued() -> None:
            await http.get(server.url)
            # Nothing awaited since the connection was freed: the first in the queue has
            # been told of the room, but has not run yet.
            queued[0].cancel()

        with ScriptedServer(gate) as server:
            busy = asyncio.create_task(send_then_cancel_the_first_queued())
            await eventually(lambda: gate.requests == 1)
            queued += [asyncio.create_task(http.get(server.url)) for _ in range(2)]
            await eventually(lambda: len(transport._waiters) == 2)
            gate.opened.set()
            await busy
            with pytest.raises(asyncio.CancelledError):
                await queued[0]
            assert (await queued[1]).status_code == 200
    assert server.connections == 1


async def test_with_one_connection_requests_to_two_origins_in_turn_all_get_through(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    first_a, first_b = Script(OK, close=False), Script(OK, close=False)
    async with client(make_pool(max_connections=1)) as http:
        with (
            ScriptedServer(in_turn(first_a, keep_alive)) as a,
            ScriptedServer(in_turn(first_b, keep_alive)) as b,
        ):
            for url in (a.url, b.url, a.url, b.url):
                assert (await http.get(url)).status_code == 200
            # Each origin's idle connection was closed to make room for the other's.
            await eventually(
                lambda: first_a.client_closed.is_set() and first_b.client_closed.is_set()
            )
    assert (a.connections, b.connections) == (2, 2)


async def test_aclose_closes_idle_connections_and_refuses_later_requests(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    script = Script(OK, close=False)
    transport = make_pool()
    with ScriptedServer(script) as server:
        response = await transport.handle_async_request(request("GET", server.url))
        assert response.status_code == 200
        await transport.aclose()
        await eventually(script.client_closed.is_set)
        with pytest.raises(RuntimeError, match="closed"):
            await transport.handle_async_request(request("GET", server.url))
    assert server.connections == 1


async def test_aclose_fails_queued_requests_at_once_and_closes_busy_connections_when_done(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    gate = Gate()
    transport = make_pool(max_connections=1)
    with ScriptedServer(gate) as server:
        busy = asyncio.create_task(transport.handle_async_request(request("GET", server.url)))
        await eventually(lambda: gate.requests == 1)
        cancelled, *queued = [
            asyncio.create_task(transport.handle_async_request(request("GET", server.url)))
            for _ in range(3)
        ]
        await eventually(lambda: len(transport._waiters) == 3)
        # Cancelled, but not yet out of the queue when the pool closes: passed over.
        cancelled.cancel()
        await transport.aclose()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        for task in queued:
            with pytest.raises(RuntimeError, match="closed"):
                await task
        gate.opened.set()
        assert (await busy).status_code == 200
        await eventually(lambda: gate.active == 0)
    assert server.connections == 1


# Errors: which httpx error each failure is.


async def test_a_refused_connection_is_a_connect_error(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    error = await failure(make_pool(), request("GET", closed_port()))
    assert type(error) is httpx.ConnectError


async def test_a_tls_handshake_that_never_ends_is_a_connect_timeout(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    # Only the TLS handshake can be kept from finishing on loopback: the kernel completes
    # a TCP handshake whatever the server does.
    with ScriptedServer(stall) as server:
        url = server.url.replace("http:", "https:")
        timeout = httpx.Timeout(5.0, connect=SHORT)
        error = await failure(make_pool(), request("GET", url, timeout=timeout))
    assert type(error) is httpx.ConnectTimeout


async def test_an_untrusted_certificate_is_a_connect_error(
    tmp_path: Path, make_pool: Callable[..., AsyncioPoolTransport]
) -> None:
    server_tls, _ = tls_contexts(tmp_path)
    with ScriptedServer(keep_alive, tls=server_tls) as server:
        error = await failure(make_pool(), request("GET", server.url))
    assert type(error) is httpx.ConnectError


async def test_a_server_that_reads_nothing_is_a_write_timeout(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    timeout = httpx.Timeout(5.0, write=SHORT)
    with ScriptedServer(stall) as server:
        post = request("POST", server.url, content=LARGE, timeout=timeout)
        error = await failure(make_pool(), post)
    assert type(error) is httpx.WriteTimeout


async def test_a_request_given_up_on_a_write_timeout_is_not_delivered_later(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    resume = threading.Event()
    received: list[int] = []

    def read_late(connection: socket.socket, stopping: threading.Event) -> None:
        resume.wait(5)
        total = 0
        try:
            while chunk := connection.recv(1 << 20):
                total += len(chunk)
        finally:
            received.append(total)

    timeout = httpx.Timeout(5.0, write=SHORT)
    with ScriptedServer(read_late) as server:
        post = request("POST", server.url, content=LARGE, timeout=timeout)
        assert type(await failure(make_pool(), post)) is httpx.WriteTimeout
        resume.set()
        # The event loop runs meanwhile: a connection still sending would send it all.
        await eventually(lambda: bool(received))
    assert received[0] < len(LARGE)


async def test_a_connection_reset_while_the_request_is_written_is_a_write_error(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    def reset_at_the_first_byte(connection: socket.socket, stopping: threading.Event) -> None:
        connection.recv(1)
        abort(connection)

    with ScriptedServer(reset_at_the_first_byte) as server:
        error = await failure(make_pool(), request("POST", server.url, content=LARGE))
    assert type(error) is httpx.WriteError


async def test_a_server_that_answers_nothing_is_a_read_timeout(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    timeout = httpx.Timeout(5.0, read=SHORT)
    with ScriptedServer(read_and_stall) as server:
        error = await failure(make_pool(), request("GET", server.url, timeout=timeout))
    assert type(error) is httpx.ReadTimeout


async def test_a_reset_after_the_request_is_a_read_error(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    with ScriptedServer(reset) as server:
        error = await failure(make_pool(), request("POST", server.url, content=b"{}"))
    assert type(error) is httpx.ReadError


BROKEN_REPLIES = {
    "nothing": (Script(b""), "without replying"),
    "half-a-head": (Script(b"HTTP/1.1 200 OK\r\nContent-Le"), "in the middle of its reply"),
    "only-an-interim-reply": (Script(b"HTTP/1.1 100 Continue\r\n\r\n"), "in the middle"),
    "a-short-body": (truncate, "before the body ended"),
    "a-short-chunked-body": (
        Script(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
        "before the body ended",
    ),
    "not-http": (Script(b"SMTP ready\r\n\r\n"), "invalid response"),
    "switching-protocols": (
        Script(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", close=False),
        "switched protocols",
    ),
}


@pytest.mark.parametrize(("handler", "message"), BROKEN_REPLIES.values(), ids=BROKEN_REPLIES.keys())
async def test_a_reply_that_is_cut_short_or_not_http11_is_a_remote_protocol_error(
    make_pool: Callable[..., AsyncioPoolTransport],
    handler: Callable[[socket.socket, threading.Event], None],
    message: str,
) -> None:
    transport = make_pool(max_connections=1)
    with ScriptedServer(in_turn(handler, keep_alive)) as server:
        error = await failure(transport, request("GET", server.url))
        assert type(error) is httpx.RemoteProtocolError
        assert message in str(error)
        # The connection is not reused, and its slot is free.
        response = await transport.handle_async_request(request("GET", server.url))
        assert response.status_code == 200
    assert server.connections == 2


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", {"X-Note": "a\r\nX-Injected: 1"}),
        ("GET", {"X-Note": "a\nb"}),
        ("GET", {"X-Note": "a\rb"}),
        ("GET", {"X Note": "a"}),
        ("GE T", {}),
        ("GÉT", {}),
    ],
    ids=[
        "crlf-in-value",
        "lf-in-value",
        "cr-in-value",
        "space-in-name",
        "space-in-method",
        "non-ascii-method",
    ],
)
async def test_a_request_that_cannot_be_written_as_http11_is_a_local_protocol_error(
    make_pool: Callable[..., AsyncioPoolTransport], method: str, headers: dict[str, str]
) -> None:
    # Nothing listens at the URL: that it is not a ConnectError proves no connection tried.
    error = await failure(make_pool(), request(method, closed_port(), headers=headers))
    assert type(error) is httpx.LocalProtocolError


async def test_a_url_that_is_not_http_or_https_is_unsupported_at_once_even_when_the_pool_is_full(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    gate = Gate()
    transport = make_pool(max_connections=1)
    with ScriptedServer(gate) as server:
        busy = asyncio.create_task(transport.handle_async_request(request("GET", server.url)))
        await eventually(lambda: gate.requests == 1)
        url = server.url.replace("http:", "ftp:")
        error = await failure(transport, request("GET", url))
        assert type(error) is httpx.UnsupportedProtocol
        gate.opened.set()
        assert (await busy).status_code == 200
    assert server.connections == 1


async def test_a_failure_to_connect_that_is_no_network_failure_propagates_as_it_is(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    # A name no DNS label can hold fails to encode, before any lookup: not worth a retry.
    url = "http://%s.test/" % ("a" * 64)
    with pytest.raises(UnicodeError):
        await make_pool().handle_async_request(request("GET", url))


async def test_an_error_raised_by_the_request_body_propagates_as_it_is_and_ends_the_connection(
    http: httpx.AsyncClient,
) -> None:
    cause = KeyError("upstream")

    async def parts() -> AsyncIterator[bytes]:
        yield b"start"
        raise ValueError("the body's own bug") from cause

    script = Script(close=False)
    with ScriptedServer(script) as server:
        with pytest.raises(ValueError, match="own bug") as caught:
            await http.post(server.url, content=parts())
        assert caught.value.__cause__ is cause
        await eventually(script.client_closed.is_set)


async def test_an_httpx_error_raised_by_the_request_body_is_not_made_a_write_error(
    make_pool: Callable[..., AsyncioPoolTransport],
) -> None:
    # Say, the body relays a download that failed: that is the download's read error.
    async def parts() -> AsyncIterator[bytes]:
        yield b"start"
        raise httpx.ReadError("the download failed")

    script = Script(close=False)
    with ScriptedServer(script) as server:
        post = request("POST", server.url, content=parts())
        with pytest.raises(httpx.ReadError, match="download failed") as caught:
            await make_pool().handle_async_request(post)
        await eventually(script.client_closed.is_set)
    assert caught.value.__cause__ is None
