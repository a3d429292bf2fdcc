"""The SDK's HTTP transport under asyncio: a pool of keep-alive HTTP/1.1 connections.

Why not httpx's own transport (httpcore's pool over h11): per request, httpcore's pool
re-examines every connection it holds, takes anyio locks and opens shielded cancel
scopes, its network backend wraps each socket read and write in another cancel scope,
and h11 runs each event through a general state machine. That is some 300 us of CPU per
request on the 2-core machine the benchmarks ran on, more than everything else a send
costs together, and under bulk fan-out the CPU is what limits throughput.

Here a connection is an `asyncio.Protocol` that buffers what arrives; a request writes
its bytes in one call and parses the reply with `postal_sdk._http.http11` as soon as it is
in, awaiting only when it is not. Idle connections are kept per origin, most recently
used first, so taking one is O(1) whatever the pool's size. Replies are read whole
before the response is returned (the SDK always reads them whole), so the connection is
back in the pool by the time the caller sees the response.

The errors are httpx's, with httpx's meaning, because `postal_sdk._retry` reads their
types: `ConnectError`, `ConnectTimeout` and `PoolTimeout` only when not one byte of the
request was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import select
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterable
from typing import cast

import httpx

from postal_sdk._http.http11 import (
    BodyReader,
    Head,
    ProtocolError,
    parse_head,
    serialize_request_head,
)

__all__ = ["AsyncioPoolTransport"]

_HAPPY_EYEBALLS_DELAY = 0.25
"""Seconds before racing a host's next address, as httpcore's network backend does."""

_READ_BUFFER_LIMIT = 256 * 1024
"""Bytes held unread before the socket is no longer read: the reader is too slow."""

_Origin = tuple[bytes, bytes, int]


class _Connection(asyncio.Protocol):
    """One connection: buffers what the server sends, wakes the request waiting for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: _Origin) -> None:
        self.loop = loop
        self.origin = origin
        self.buffer = bytearray()
        self.idle_since = 0.0
        self.transport: asyncio.Transport | None = None
        self._eof = False
        self._error: Exception | None = None
        self._lost = False
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[bool] | None = None

    # asyncio.Protocol: called by the loop.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though not always an `asyncio.Transport`: uvloop's are not.
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _READ_BUFFER_LIMIT and not self._reading_paused:
            self._reading_paused = True
            self._current().pause_reading()
        self._wake()

    def eof_received(self) -> None:
        # Returning None lets the transport close: HTTP/1.1 never writes after the server's
        # EOF, and a TLS transport cannot stay half-open anyway.
        self._eof = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._error = exc
        self._wake()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake()

    # One request and its reply.

    async def send(
        self, head: bytes, body: bytes | AsyncIterable[bytes], timeout: float | None
    ) -> None:
        """Write the request; `body` is bytes, or chunks already framed as its headers say."""
        if isinstance(body, bytes):
            # One write, so one segment for a small request.
            await self._write(head + body, timeout)
            return
        await self._write(head, timeout)
        async for chunk in body:
            await self._write(chunk, timeout)

    async def receive(self, method: bytes, timeout: float | None) -> tuple[Head, bytes]:
        """Read the reply's head (past any 1xx interim replies) and its whole body."""
        interim = False
        while True:
            head = parse_head(self.buffer, method)
            if head is None:
                if not await self._more(timeout):
                    raise ProtocolError(
                        "the server closed the connection in the middle of its reply"
                        if self.buffer or interim
                        else "the server closed the connection without replying"
                    )
            elif head.status == 101:
                raise ProtocolError("the server switched protocols, which the SDK does not speak")
            elif head.status < 200:
                interim = True
            else:
                break
        reader = BodyReader(head)
        pieces = []
        while True:
            piece = reader.read(self.buffer)
            if piece:
                pieces.append(piece)
            if reader.done:
                break
            if not await self._more(timeout):
                reader.end_of_stream()
                break
        return head, b"".join(pieces)

    def reusable(self) -> bool:
        """Whether the connection is clean and open: nothing unread, no EOF, no error."""
        return not (self.buffer or self._eof or self._lost)

    def stale(self, now: float, expiry: float) -> bool:
        """Whether an idle connection must not be reused: expired, closed or talking."""
        if not self.reusable() or now - self.idle_since > expiry:
            return True
        # What the loop has not delivered yet is still in the socket: a server that closed
        # an idle connection has made it readable.
        return _readable(self._current())

    def close(self, *, abort: bool = False) -> None:
        """Close the connection, at once; closing it again does nothing.

        With `abort`, what is still unsent is dropped: the request it belongs to was given
        up, and must not reach the server after all, nor keep the socket open meanwhile.
        """
        self._lost = True
        transport = self._current()
        try:
            # Over TLS, close() sends close_notify and waits on the loop for the server's:
            # a loop that ends first (asyncio.run returning) leaves the socket open. HTTP/1.1
            # needs no TLS goodbye, its messages being framed, so TLS connections are aborted.
            if abort or self.origin[0] == b"https":
                transport.abort()
            else:
                transport.close()
        except RuntimeError:
            # Its event loop is closed, and asyncio offers no other way to close the socket:
            # shut it down, so the server is not left holding the connection until the
            # garbage collector closes it.
            with contextlib.suppress(OSError):
                transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)

    # Helpers.

    def _current(self) -> asyncio.Transport:
        assert self.transport is not None
        return self.transport

    async def _write(self, data: bytes, timeout: float | None) -> None:
        self._check_open()
        self._current().write(data)
        while self._writing_paused:
            if not await self._wait(timeout):
                raise TimeoutError("the server took no more of the request in time")
            self._check_open()

    def _check_open(self) -> None:
        if self._lost:
            raise ConnectionResetError(str(self._error or "the connection is closed"))

    async def _more(self, timeout: float | None) -> bool:
        """Wait for bytes beyond those buffered now; False once the server closed its side."""
        if self._error is not None:
            raise ConnectionResetError(str(self._error)) from self._error
        if self._eof or self._lost:
            return False
        if self._reading_paused:
            # The caller has taken what it could: read on, or it would wait forever.
            self._reading_paused = False
            self._current().resume_reading()
        if not await self._wait(timeout):
            raise TimeoutError("the server sent nothing more in time")
        return True

    async def _wait(self, timeout: float | None) -> bool:
        # One future and at most one timer: no task, no cancel scope. False: timed out.
        waiter: asyncio.Future[bool] = self.loop.create_future()
        self._waiter = waiter
        timer = None if timeout is None else self.loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(True)


class AsyncioPoolTransport(httpx.AsyncBaseTransport):
    """Up to `max_connections` keep-alive HTTP/1.1 connections, over TLS with `ssl_context`.

    For asyncio only. Connections belong to the event loop that opened them; one found
    idle from an earlier loop is dropped, not reused.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext, max_connections: int, keepalive_expiry: float
    ) -> None:
        self._ssl_context = ssl_context
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._open = 0
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on a pooled connection and read the whole reply."""
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        try:
            method = request.method.encode("ascii")
            head_bytes = serialize_request_head(method, url.raw_path, request.headers.raw)
        except (ProtocolError, UnicodeEncodeError) as error:
            raise httpx.LocalProtocolError(str(error), request=request) from None
        if url.raw_scheme not in (b"http", b"https"):
            # Before taking a slot: such a request has nothing to wait for room for.
            raise httpx.UnsupportedProtocol(
                f"the URL scheme {url.raw_scheme!r} is not http or https", request=request
            )
        connection = await self._acquire(_origin(url), timeouts, request)
        phase = _WRITE
        try:
            await connection.send(head_bytes, _body(request), timeouts.get("write"))
            phase = _READ
            head, content = await connection.receive(method, timeouts.get("read"))
        except BaseException as error:
            self._discard(connection, abort=True)
            if isinstance(error, Exception):
                mapped = _httpx_error(error, request, phase)
                if mapped is not error:
                    raise mapped from error
            raise
        if head.keep_alive and connection.reusable():
            self._release(connection)
        else:
            self._discard(connection)
        # A stream, not `content=`: that would add a Content-Length the server did not send.
        response = httpx.Response(
            head.status,
            headers=head.headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/" + head.version, "reason_phrase": head.reason},
        )
        # Read here, synchronously, as `content=` would: the body is in memory, and httpx's
        # `aread` would take it through a chain of async generators on every send.
        response.read()
        return response

    async def aclose(self) -> None:
        """Close every idle connection; requests still in flight close theirs when done."""
        self._closed = True
        # Requests waiting for room would wait in vain: woken, they find the pool closed.
        while self._waiters:
            self._wake_one()
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
                self._open -= 1
        self._idle.clear()

    # The pool.

    async def _acquire(
        self, origin: _Origin, timeouts: dict[str, float | None], request: httpx.Request
    ) -> _Connection:
        loop = asyncio.get_running_loop()
        pool_timeout = timeouts.get("pool")
        deadline = None if pool_timeout is None else loop.time() + pool_timeout
        while True:
            if self._closed:
                raise RuntimeError("the HTTP transport is closed")
            connection = self._idle_connection(origin, loop)
            if connection is not None:
                return connection
            if self._open >= self._max_connections:
                self._evict_idle()
            if self._open < self._max_connections:
                break
            if not await self._wait_for_room(loop, deadline):
                raise httpx.PoolTimeout("no connection became free in time", request=request)
        self._open += 1
        try:
            return await self._connect(origin, loop, timeouts.get("connect"))
        except BaseException as error:
            self._open -= 1
            self._wake_one()
            if isinstance(error, Exception):
                mapped = _httpx_error(error, request, _CONNECT)
                if mapped is not error:
                    raise mapped from error
            raise

    async def _wait_for_room(self, loop: asyncio.AbstractEventLoop, deadline: float | None) -> bool:
        """Wait until a connection is freed; False if `deadline` passes first."""
        waiter: asyncio.Future[bool] = loop.create_future()
        timer = None if deadline is None else loop.call_at(deadline, _expire, waiter)
        self._waiters.append(waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                # Woken and cancelled at once: the room it was told of goes to the next.
                self._wake_one()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _idle_connection(
        self, origin: _Origin, loop: asyncio.AbstractEventLoop
    ) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.loop is loop and not connection.stale(now, self._keepalive_expiry):
                return connection
            connection.close()
            self._open -= 1
        return None

    def _evict_idle(self) -> None:
        # All connections are open: make room by closing an idle one to another origin.
        for connections in self._idle.values():
            if connections:
                connections.pop(0).close()
                self._open -= 1
                return

    async def _connect(
        self, origin: _Origin, loop: asyncio.AbstractEventLoop, timeout: float | None
    ) -> _Connection:
        scheme, host, port = origin
        hostname = host.decode("ascii")
        tls_context = self._ssl_context if scheme == b"https" else None
        server_hostname = hostname if tls_context is not None else None

        def factory() -> _Connection:
            return _Connection(loop, origin)

        if _races_addresses(loop):
            opening = loop.create_connection(
                factory,
                hostname,
                port,
                ssl=tls_context,
                server_hostname=server_hostname,
                happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY,
            )
        else:
            opening = loop.create_connection(
                factory, hostname, port, ssl=tls_context, server_hostname=server_hostname
            )
        _, connection = await asyncio.wait_for(opening, timeout)
        return connection

    def _release(self, connection: _Connection) -> None:
        if self._closed:
            self._discard(connection)
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._wake_one()

    def _discard(self, connection: _Connection, *, abort: bool = False) -> None:
        connection.close(abort=abort)
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return


_RACES_ADDRESSES: dict[type[asyncio.AbstractEventLoop], bool] = {}


def _races_addresses(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether `loop.create_connection` takes `happy_eyeballs_delay`.

    uvloop, the loop uvicorn runs FastAPI on when it is installed, refuses the argument.
    """
    kind = type(loop)
    if kind not in _RACES_ADDRESSES:
        try:
            races = "happy_eyeballs_delay" in inspect.signature(kind.create_connection).parameters
        except (TypeError, ValueError):  # a signature that cannot be read: assume not
            races = False
        _RACES_ADDRESSES[kind] = races
    return _RACES_ADDRESSES[kind]


def _origin(url: httpx.URL) -> _Origin:
    port = url.port or (443 if url.raw_scheme == b"https" else 80)
    return url.raw_scheme, url.raw_host, port


def _body(request: httpx.Request) -> bytes | AsyncIterable[bytes]:
    try:
        return request.content
    except httpx.RequestNotRead:
        stream = request.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        if request.headers.get("transfer-encoding", "").lower() == "chunked":
            return _chunked(stream)
        return stream


async def _chunked(stream: httpx.AsyncByteStream) -> AsyncIterable[bytes]:
    async for chunk in stream:
        if chunk:
            yield b"%x\r\n%b\r\n" % (len(chunk), chunk)
    yield b"0\r\n\r\n"


_CONNECT, _WRITE, _READ = "connect", "write", "read"

_TIMEOUTS: dict[str, type[httpx.TimeoutException]] = {
    _CONNECT: httpx.ConnectTimeout,
    _WRITE: httpx.WriteTimeout,
    _READ: httpx.ReadTimeout,
}
_NETWORK_ERRORS: dict[str, type[httpx.NetworkError]] = {
    _CONNECT: httpx.ConnectError,
    _WRITE: httpx.WriteError,
    _READ: httpx.ReadError,
}


def _httpx_error(error: Exception, request: httpx.Request, phase: str) -> Exception:
    """`error`, raised while the request was at `phase`, as the httpx error for it.

    Anything that is not a network failure is a bug, or an error of the request's own
    body, and is returned as it is.
    """
    if isinstance(error, httpx.HTTPError):
        return error
    message = str(error) or type(error).__name__
    # Timeouts first: on Python 3.11+ asyncio.TimeoutError is TimeoutError, an OSError.
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return _TIMEOUTS[phase](message, request=request)
    if isinstance(error, ProtocolError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(error, OSError):  # ssl.SSLError is one too
        return _NETWORK_ERRORS[phase](message, request=request)
    return error


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


def _readable(transport: asyncio.Transport) -> bool:
    fd = transport.get_extra_info("socket").fileno()
    if not hasattr(select, "poll"):  # pragma: no cover - Windows
        return bool(select.select([fd], [], [], 0)[0])
    # poll(), where there is one: select() fails for descriptors above 1023.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
