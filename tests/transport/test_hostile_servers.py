"""Servers that never end their reply, or end their connections at once: every transport
(the asyncio pool, the sharded httpcore pools under trio and for the sync client, and the
aiohttp backend) ends each request with a `PostalError`, within `total_timeout`, holding at
most about `max_response_size` bytes of the reply.

Memory is measured as the bytes Python allocated while the request ran (tracemalloc's peak),
not as the process's RSS: what the client buffered, whatever the allocator keeps.
"""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from postal_sdk import (
    APIConnectionError,
    APITimeoutError,
    AsyncPostal,
    Postal,
    PostalError,
    ResponseTooLargeError,
    SendResult,
)
from tests.e2e.support import message
from tests.transport.support import ScriptedServer, read_request

LIMIT = 256 * 1024
"""The `max_response_size` of these tests' clients."""

SLACK = 4 * 1024 * 1024
"""What a request may allocate beyond the limit: the reply's pieces as read (aiohttp reads
up to 2 MiB at a time), the request, the error; far less than what the servers send."""

TOTAL = 1.0
"""The `total_timeout` of these tests' clients; every read timeout is far longer."""

OK_REPLY = (
    b'{"status":"success","time":0.01,"flags":{},'
    b'"data":{"message_id":"<a@b>","messages":{"john@example.org":{"id":1,"token":"t"}}}}'
)
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b" % (
    len(OK_REPLY),
    OK_REPLY,
)

Handler = Callable[[socket.socket, threading.Event], None]


def endless_headers(connection: socket.socket, stopping: threading.Event) -> None:
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Endless: " + b"h" * 1000 + b"\r\n"
    while not stopping.is_set():
        connection.sendall(line * 64)


def huge_body(connection: socket.socket, stopping: threading.Event) -> None:
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (1 << 40))
    chunk = b"x" * 65536
    while not stopping.is_set():
        connection.sendall(chunk)


def trickled_body(connection: socket.socket, stopping: threading.Event) -> None:
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    while not stopping.wait(0.1):
        connection.sendall(b"x")


def trickled_headers(connection: socket.socket, stopping: threading.Event) -> None:
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stopping.wait(0.1):
        connection.sendall(b"X: y\r\n")


def close_after_reply(connection: socket.socket, stopping: threading.Event) -> None:
    # Keep-alive by every header it sends, closed all the same once the reply is out.
    if read_request(connection):
        connection.sendall(OK)


TRANSPORTS = ["asyncio", "trio", "aiohttp", "sync"]


class Client:
    """One way of sending: `AsyncPostal` on a transport, or `Postal`; same calls for all."""

    def __init__(self, transport: str, url: str, **options: Any) -> None:
        self.transport = transport
        options = {"timeout": 30.0, "max_retries": 0, "max_response_size": LIMIT, **options}
        if transport == "sync":
            self._sync = Postal(url.rstrip("/"), "key", **options)
        else:
            backend = "aiohttp" if transport == "aiohttp" else "httpx"
            self._async = AsyncPostal(url.rstrip("/"), "key", http_backend=backend, **options)

    def send(self) -> SendResult:
        return self.sends(1)[0]

    def sends(self, count: int, *, failures: list[PostalError] | None = None) -> list[Any]:
        """Send `count` messages one after another (on one event loop): their results, or
        with `failures` given, None for each send that failed (its error added there)."""

        def caught(error: PostalError) -> None:
            if failures is None:
                raise error
            failures.append(error)

        results: list[Any] = []
        if self.transport == "sync":
            for _ in range(count):
                try:
                    results.append(self._sync.send_message(message()))
                except PostalError as error:
                    caught(error)
            return results

        async def send() -> None:
            for _ in range(count):
                try:
                    results.append(await self._async.send_message(message()))
                except PostalError as error:
                    caught(error)

        anyio.run(send, backend="trio" if self.transport == "trio" else "asyncio")
        return results

    def close(self) -> None:
        if self.transport == "sync":
            self._sync.close()
        else:
            anyio.run(self._async.aclose, backend="trio" if self.transport == "trio" else "asyncio")


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def serve(transport: str) -> Iterator[Callable[..., Client]]:
    """Serves a handler and gives a client of this test's transport for it."""
    servers: list[ScriptedServer] = []
    clients: list[Client] = []

    def make(handler: Handler, **options: Any) -> Client:
        server = ScriptedServer(handler).__enter__()
        servers.append(server)
        clients.append(Client(transport, server.url, **options))
        return clients[-1]

    yield make
    for client in clients:
        client.close()
    for server in servers:
        server.__exit__(None, None, None)


def failure_and_peak(client: Client) -> tuple[PostalError, int]:
    """The error one send ends with, and the most bytes allocated while it ran."""
    tracemalloc.start()
    try:
        with pytest.raises(PostalError) as caught:
            client.send()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return caught.value, peak


def test_a_huge_body_ends_at_the_size_limit_with_memory_bounded(
    serve: Callable[..., Client],
) -> None:
    error, peak = failure_and_peak(serve(huge_body))

    assert isinstance(error, ResponseTooLargeError)
    assert error.limit == LIMIT
    assert error.status_code == 200
    assert f"max_response_size ({LIMIT} bytes)" in str(error)
    assert peak < LIMIT + SLACK


def test_endless_headers_end_with_memory_bounded(serve: Callable[..., Client]) -> None:
    error, peak = failure_and_peak(serve(endless_headers))

    # The asyncio pool refuses a head over 64 KiB, h11 over 100 KiB, aiohttp one of over
    # 128 fields: a protocol error, or the size limit had it been smaller.
    assert isinstance(error, (APIConnectionError, ResponseTooLargeError))
    assert not isinstance(error, APITimeoutError)
    assert peak < LIMIT + SLACK


@pytest.mark.parametrize("handler", [trickled_body, trickled_headers], ids=["body", "headers"])
def test_a_trickled_reply_ends_at_the_total_timeout(
    serve: Callable[..., Client], handler: Handler
) -> None:
    client = serve(handler, total_timeout=TOTAL)
    started = time.monotonic()

    error, _ = failure_and_peak(client)

    assert isinstance(error, APITimeoutError)
    assert "total_timeout" in str(error)
    # The trickle would take 10,000 s; each byte comes well within the 30 s read timeout.
    assert time.monotonic() - started < 30


def test_a_server_closing_every_connection_after_its_reply_fails_only_with_postal_errors(
    serve: Callable[..., Client],
) -> None:
    client = serve(close_after_reply)
    failures: list[PostalError] = []

    client.sends(30, failures=failures)

    assert all(type(error) is APIConnectionError for error in failures)
    if client.transport in ("asyncio", "aiohttp"):
        # The first connection seen closed under a send makes them stop reusing connections.
        assert len(failures) <= 1
    else:
        # httpcore's pool, as httpx's own: it loses the race now and then.
        assert len(failures) < 30
