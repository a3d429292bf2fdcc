"""The asyncio-native network backend, one httpcore promise at a time, over real sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable

import httpcore
import pytest

from postal_sdk._asyncio_network import (
    AsyncioBackend,
    AsyncioStream,
    AutoBackend,
    _expire,
    _wake,
)
from tests.transport.support import ScriptedServer, abort, stall

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


def sends(
    data: bytes, then: Callable[[socket.socket], None] | None = None
) -> Callable[[socket.socket, threading.Event], None]:
    """A handler that sends `data` at once, then runs `then` or waits for the server to stop."""

    def handler(connection: socket.socket, stopping: threading.Event) -> None:
        connection.sendall(data)
        if then is None:
            stopping.wait(5)
        else:
            then(connection)

    return handler


def resets_later(connection: socket.socket, stopping: threading.Event) -> None:
    stopping.wait(0.3)
    abort(connection)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def connect(
    server: ScriptedServer,
    local_address: str | None = None,
    socket_options: list[tuple[int, int, int]] | None = None,
) -> AsyncioStream:
    stream = await AsyncioBackend().connect_tcp(
        "127.0.0.1", server.port, 5, local_address, socket_options
    )
    assert isinstance(stream, AsyncioStream)
    return stream


@pytest.fixture
async def closing() -> AsyncIterator[list[AsyncioStream]]:
    """Streams put here are closed after the test, so no transport is left to the GC."""
    streams: list[AsyncioStream] = []
    yield streams
    for stream in streams:
        await stream.aclose()
    await asyncio.sleep(0)


async def test_reads_in_pieces_no_larger_than_asked_and_reads_at_its_own_pace(
    closing: list[AsyncioStream],
) -> None:
    data = bytes(range(256)) * (4 * MIB // 256)
    with ScriptedServer(sends(data, then=lambda connection: None)) as server:
        stream = await connect(server)
        closing.append(stream)
        await asyncio.sleep(0.2)  # Let far more arrive than the stream buffers.
        assert stream._reading_paused
        received = b""
        while len(received) < len(data):
            piece = await stream.read(100_000, timeout=5)
            assert 0 < len(piece) <= 100_000
            received += piece
        assert received == data
        assert await stream.read(100_000, timeout=5) == b""


async def test_a_reset_is_a_read_error_then_a_write_error(closing: list[AsyncioStream]) -> None:
    connected = threading.Event()

    def resets_once_connected(connection: socket.socket, stopping: threading.Event) -> None:
        # A reset sent the moment the server accepts can reach the client before asyncio has
        # seen its connect complete, which then fails as a connect error instead.
        connected.wait(5)
        abort(connection)

    with ScriptedServer(resets_once_connected) as server:
        stream = await connect(server)
        closing.append(stream)
        connected.set()
        with pytest.raises(httpcore.ReadError):
            await stream.read(1024, timeout=5)
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"GET / HTTP/1.1\r\n\r\n")


async def test_writing_after_the_server_closed_is_a_write_error(
    closing: list[AsyncioStream],
) -> None:
    with ScriptedServer(sends(b"bye", then=lambda connection: None)) as server:
        stream = await connect(server)
        closing.append(stream)
        assert await stream.read(1024, timeout=5) == b"bye"
        assert await stream.read(1024, timeout=5) == b""
        await asyncio.sleep(0.05)
        with pytest.raises(httpcore.WriteError, match="closed"):
            await stream.write(b"more")


async def test_a_connection_lost_while_waiting_to_write_is_a_write_error(
    closing: list[AsyncioStream],
) -> None:
    with ScriptedServer(resets_later) as server:
        stream = await connect(server)
        closing.append(stream)
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"x" * (16 * MIB), timeout=5)


async def test_a_write_that_fits_needs_no_wait(closing: list[AsyncioStream]) -> None:
    with ScriptedServer(stall) as server:
        stream = await connect(server)
        closing.append(stream)
        await stream.write(b"")
        await stream.write(b"GET / HTTP/1.1\r\n\r\n", timeout=0.01)
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(1024, timeout=0.05)


async def test_a_closed_stream_neither_reads_nor_writes_and_closes_again() -> None:
    with ScriptedServer(sends(b"unread")) as server:
        stream = await connect(server)
        await asyncio.sleep(0.05)
        await stream.aclose()
        await stream.aclose()
        with pytest.raises(httpcore.ReadError):
            await stream.read(1024)
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"x")
        assert stream.get_extra_info("is_readable")
        await asyncio.sleep(0)


async def test_an_idle_connection_is_readable_only_once_the_server_speaks_or_closes(
    closing: list[AsyncioStream],
) -> None:
    gate = threading.Event()

    def speaks_when_told(connection: socket.socket, stopping: threading.Event) -> None:
        gate.wait(5)
        connection.sendall(b"!")
        stopping.wait(5)

    with ScriptedServer(speaks_when_told) as server:
        stream = await connect(server)
        closing.append(stream)
        assert not stream.get_extra_info("is_readable")
        gate.set()
        # The byte is in the socket before the event loop has run to deliver it.
        for _ in range(100):
            if stream.get_extra_info("is_readable"):
                break
            threading.Event().wait(0.01)
        assert stream.get_extra_info("is_readable")
        assert not stream._chunks
        await asyncio.sleep(0.05)
        assert stream._chunks
        assert stream.get_extra_info("is_readable")


async def test_it_reports_what_httpcore_asks(closing: list[AsyncioStream]) -> None:
    with ScriptedServer(stall) as server:
        stream = await connect(
            server,
            local_address="127.0.0.1",
            socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)],
        )
        closing.append(stream)
        assert stream.get_extra_info("ssl_object") is None
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", server.port)
        sock = stream.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert stream.get_extra_info("anything else") is None


async def test_a_refused_connection_is_a_connect_error() -> None:
    with ScriptedServer(stall) as server:
        port = server.port
    with pytest.raises(httpcore.ConnectError):
        await AsyncioBackend().connect_tcp("127.0.0.1", port)


async def test_a_connection_that_takes_too_long_is_a_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()

    async def never(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(10)

    monkeypatch.setattr(loop, "create_connection", never)
    with pytest.raises(httpcore.ConnectTimeout):
        await AsyncioBackend().connect_tcp("127.0.0.1", 9, timeout=0.05)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_the_auto_backend_is_asyncio_native_only_under_asyncio(anyio_backend: str) -> None:
    backend = AutoBackend()
    await backend.sleep(0)
    with ScriptedServer(stall) as server:
        stream = await backend.connect_tcp("127.0.0.1", server.port, timeout=5)
        try:
            assert isinstance(stream, AsyncioStream) == (anyio_backend == "asyncio")
        finally:
            await stream.aclose()


async def test_the_asyncio_backend_sleeps() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    await AsyncioBackend().sleep(0.01)
    assert loop.time() - start >= 0.005


async def test_a_timer_that_fires_after_the_data_came_does_not_undo_the_wake_up() -> None:
    waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    _wake(waiter)
    _expire(waiter)
    assert waiter.result() is True
