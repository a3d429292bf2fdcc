"""The SDK's HTTP transport under asyncio: a pool of keep-alive HTTP/1.1 connections.

Why not httpx's own transport (httpcore's pool over h11): per request, httpcore's pool
re-examines every connection it holds, takes anyio locks and opens shielded cancel
scopes, its network backend wraps each socket read and write in another cancel scope,
and h11 runs each event through a general state machine. That is some 300 us of CPU per
request on the 2-core machine the benchmarks ran on, more than everything else a send
costs together, and under bulk fan-out the CPU is what limits throughput.

Here a connection is an `asyncio.Protocol` that feeds what arrives straight to the reply's
parser (llhttp, through `postal_sdk._http.http11`) and wakes the request only when the
reply is complete, the server closed, or something failed. Idle connections are kept per
origin, most recently used first, so taking one is O(1) whatever the pool's size. Replies
are read whole before the response is returned (the SDK always reads them whole), so the
connection is back in the pool by the time the caller sees the response.

Replies are bounded: one that outgrows `max_response_size` (head included) ends the
request at that byte and drops the connection, and `total_timeout` bounds one request from
the wait for a connection to the reply's last byte, however slowly a server trickles.

The errors are httpx's, with httpx's meaning, because `postal_sdk._retry` reads their
types: `ConnectError`, `ConnectTimeout` and `PoolTimeout` only when not one byte of the
request was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import select
import socket
import ssl
import sys
from collections import deque
from collections.abc import AsyncIterable, Mapping, Sequence
from typing import Any, cast

import httpx

from postal_sdk._config import DEFAULT_MAX_RESPONSE_SIZE
from postal_sdk._http import fork
from postal_sdk._http.http11 import (
    ProtocolError,
    ResponseReader,
    ResponseTooLarge,
    serialize_request_head,
)
from postal_sdk._http.reply import Reply
from postal_sdk.errors import ClientClosedError, ResponseTooLargeError

__all__ = ["AsyncioPoolTransport"]

_HAPPY_EYEBALLS_DELAY = 0.25
"""Seconds before racing a host's next address, as httpcore's network backend does."""

_CLOSES_AFTER_REPLY = 1.0
"""Seconds: a server that closes an idle connection sooner after a reply closes them all so."""

_NO_REUSE_SPAN = 10.0
"""Seconds an origin's connections are not reused once it was seen closing them at once."""

_Origin = tuple[bytes, bytes, int]

_WOKEN, _READ_TIMEOUT, _TOTAL_TIMEOUT = 0, 1, 2


class _Connection(asyncio.Protocol):
    """One connection: feeds what the server sends to the reply's reader, wakes its request."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: _Origin, expiry: float) -> None:
        self.loop = loop
        self.origin = origin
        self.expiry = expiry
        self.idle_since = 0.0
        self.idle_for = float("inf")
        """Seconds it had been idle when the request now on it took it (inf: a new one)."""
        self.transport: asyncio.Transport | None = None
        self.reader: ResponseReader | None = None
        self._dirty = False
        self._eof = False
        self._error: Exception | None = None
        self._lost = False
        self._writing_paused = False
        self._waiter: asyncio.Future[int] | None = None
        self._last_read = 0.0

    # asyncio.Protocol: called by the loop.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though not always an `asyncio.Transport`: uvloop's are not.
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        if reader is None:
            # Bytes no request asked for: whatever they are, the connection is spoilt.
            self._dirty = True
            return
        self._last_read = self.loop.time()
        try:
            reader.feed(data)
        except (ProtocolError, ResponseTooLarge) as error:
            # Read no further: a reply too large must not grow in memory meanwhile.
            self._error = error
            self.reader = None
            self._current().abort()
            self._wake()
            return
        if reader.done:
            self._wake()

    def eof_received(self) -> None:
        # Returning None lets the transport close: HTTP/1.1 never writes after the server's
        # EOF, and a TLS transport cannot stay half-open anyway.
        self._eof = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._error is None and exc is not None:
            self._error = exc
        self._wake()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake()

    # One request and its reply.

    async def send(
        self,
        head: bytes,
        body: bytes | AsyncIterable[bytes],
        timeout: float | None,
        deadline: float | None,
    ) -> None:
        """Write the request; `body` is bytes, or chunks already framed as its headers say."""
        if isinstance(body, bytes):
            # One write, so one segment for a small request.
            await self._write(head + body, timeout, deadline)
            return
        await self._write(head, timeout, deadline)
        async for chunk in body:
            await self._write(chunk, timeout, deadline)

    async def receive(
        self, reader: ResponseReader, timeout: float | None, deadline: float | None
    ) -> None:
        """Wait until `reader`, given the server's bytes as they came, has the whole reply."""
        while not reader.done:
            if self._error is not None:
                raise self._error
            if self._eof:
                reader.end_of_stream()
                return
            if self._lost:
                raise ConnectionResetError("the connection is closed")
            woken = await self._wait(timeout, deadline)
            if woken == _READ_TIMEOUT:
                raise TimeoutError("the server sent nothing more in time")
            if woken == _TOTAL_TIMEOUT:
                raise _TotalTimeout

    def reusable(self, reader: ResponseReader) -> bool:
        """Whether the connection may carry another request after `reader`'s reply."""
        return reader.keep_alive and not (
            reader.trailing or self._dirty or self._eof or self._lost or self._error
        )

    def expired(self, now: float) -> bool:
        """Whether an idle connection has been idle too long to be reused."""
        return now - self.idle_since >= self.expiry

    def spoilt(self) -> bool:
        """Whether an idle connection was closed, or sent something, since its last reply."""
        if self._dirty or self._eof or self._lost:
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
        self.reader = None
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

    async def _write(self, data: bytes, timeout: float | None, deadline: float | None) -> None:
        self._check_open()
        self._current().write(data)
        while self._writing_paused:
            woken = await self._wait(timeout, deadline, reading=False)
            if woken == _READ_TIMEOUT:
                raise TimeoutError("the server took no more of the request in time")
            if woken == _TOTAL_TIMEOUT:
                raise _TotalTimeout
            self._check_open()

    def _check_open(self) -> None:
        if self._lost or self._error is not None:
            raise ConnectionResetError(str(self._error or "the connection is closed"))

    async def _wait(
        self, timeout: float | None, deadline: float | None, *, reading: bool = True
    ) -> int:
        # One future and at most one timer: no task, no cancel scope. While reading,
        # `timeout` counts from the last bytes the server sent, as httpx's read timeout does.
        loop = self.loop
        waiter: asyncio.Future[int] = loop.create_future()
        self._waiter = waiter
        self._last_read = now = loop.time()
        timer: asyncio.TimerHandle | None = None

        def expire() -> None:
            nonlocal timer
            if waiter.done():
                return
            now = loop.time()
            if deadline is not None and now >= deadline:
                waiter.set_result(_TOTAL_TIMEOUT)
                return
            if timeout is not None:
                last = self._last_read if reading else start
                if now - last >= timeout:
                    waiter.set_result(_READ_TIMEOUT)
                    return
            when = _next_check(self._last_read, timeout, deadline)
            assert when is not None  # Scheduled only with a timeout or a deadline.
            timer = loop.call_at(when, expire)

        start = now
        when = _next_check(now, timeout, deadline)
        if when is not None:
            timer = loop.call_at(when, expire)
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(_WOKEN)


def _next_check(last_read: float, timeout: float | None, deadline: float | None) -> float | None:
    if timeout is None:
        return deadline
    if deadline is None:
        return last_read + timeout
    return min(last_read + timeout, deadline)


class _TotalTimeout(Exception):
    """The request's `total_timeout` passed."""


class AsyncioPoolTransport(httpx.AsyncBaseTransport):
    """Up to `max_connections` keep-alive HTTP/1.1 connections, over TLS with `ssl_context`.

    For asyncio only. Connections belong to the event loop that opened them; one found
    idle from an earlier loop is dropped, not reused; in a forked child, those of the
    parent are left untouched (see `postal_sdk._http.fork`). A request's
    `total_timeout` extension, in seconds, bounds it whole; each reply may hold at most
    `max_response_size` bytes, head included.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        max_connections: int,
        keepalive_expiry: float,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self._ssl_context = ssl_context
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._max_response_size = max_response_size
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        self._generation = fork.current()
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._open = 0
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._no_reuse_until: dict[_Origin, float] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on a pooled connection and read the whole reply."""
        url = request.url
        try:
            method = request.method.encode("ascii")
            head = serialize_request_head(method, url.raw_path, request.headers.raw)
        except (ProtocolError, UnicodeEncodeError) as error:
            raise httpx.LocalProtocolError(str(error), request=request) from None
        extensions = request.extensions
        reader = await self._exchange(
            method,
            url,
            head,
            _body(request),
            extensions.get("timeout", {}),
            extensions.get("total_timeout"),
            request,
        )
        # A stream, not `content=`: that would add a Content-Length the server did not send.
        response = httpx.Response(
            reader.status,
            headers=reader.headers,
            stream=httpx.ByteStream(reader.body),
            extensions={
                "http_version": b"HTTP/" + reader.version,
                "reason_phrase": reader.reason,
            },
        )
        # Read here, synchronously, as `content=` would: the body is in memory, and httpx's
        # `aread` would take it through a chain of async generators on every send.
        response.read()
        return response

    async def exchange(
        self,
        method: str,
        url: httpx.URL,
        headers: httpx.Headers,
        body: bytes | None,
        timeouts: Mapping[str, float | None],
        total_timeout: float | None,
    ) -> Reply:
        """The SDK's own request, sent as httpx would send it, without its models.

        On the wire byte for byte as `httpx.Request(method, url, content=body,
        headers=headers)` is, with the same errors; `timeouts` and
        `total_timeout` as the extensions of `handle_async_request` give them.
        """
        # The framing headers as `httpx.Request` adds them, around the caller's own: the
        # body's length after them, unless they give one, then `Host` and an empty POST's
        # length before them, unless they give those.
        given = headers.raw
        names = {name.lower() for name, _ in given}
        length = [(b"Content-Length", b"%d" % len(body))] if body else []
        raw = [] if b"host" in names or not url.host else [(b"Host", url.netloc)]
        if not (body or b"content-length" in names or b"transfer-encoding" in names) and (
            method in ("POST", "PUT", "PATCH")
        ):
            raw.append((b"Content-Length", b"0"))
        raw += given
        if b"content-length" not in names:
            raw += length
        try:
            method_bytes = method.encode("ascii")
            head = serialize_request_head(method_bytes, url.raw_path, raw)
        except (ProtocolError, UnicodeEncodeError) as error:
            raise httpx.LocalProtocolError(str(error)) from None
        reader = await self._exchange(
            method_bytes, url, head, body or b"", timeouts, total_timeout, None
        )
        return Reply(reader.status, reader.body, reader.headers)

    async def _exchange(
        self,
        method: bytes,
        url: httpx.URL,
        head: bytes,
        body: bytes | AsyncIterable[bytes],
        timeouts: Mapping[str, float | None],
        total: float | None,
        request: httpx.Request | None,
    ) -> ResponseReader:
        """Write one request on a pooled connection; the reader holds its whole reply."""
        if self._generation != fork.current():
            # A forked child: the parent's connections and loop are not ours to touch.
            fork.abandon((self._idle, self._waiters))
            self._reset()
        if url.raw_scheme not in (b"http", b"https"):
            # Before taking a slot: such a request has nothing to wait for room for.
            raise httpx.UnsupportedProtocol(
                f"the URL scheme {url.raw_scheme!r} is not http or https", request=request
            )
        loop = asyncio.get_running_loop()
        deadline = None if total is None else loop.time() + total
        connection = await self._acquire(_origin(url), timeouts, deadline, request, loop)
        reader = ResponseReader(method, self._max_response_size)
        # Before the request is written: the reply may come in the same loop iteration.
        connection.reader = reader
        phase = _WRITE
        try:
            await connection.send(head, body, timeouts.get("write"), deadline)
            phase = _READ
            await connection.receive(reader, timeouts.get("read"), deadline)
        except BaseException as error:
            if (
                not reader.size
                and connection.idle_for < _CLOSES_AFTER_REPLY
                and isinstance(error, (ProtocolError, ConnectionError))
            ):
                # Written on a connection the server was closing as its last reply ended
                # (no reply, or a reset): it closes them all so.
                self._avoid_reuse(connection.origin, loop.time())
            self._discard(connection, abort=True)
            if isinstance(error, ResponseTooLarge):
                # The SDK's own error, which names the request.
                what = f"{method.decode('ascii')} {url.path}"
                raise ResponseTooLargeError(error.limit, error.status, what) from error
            if isinstance(error, Exception):
                mapped = _httpx_error(error, request, phase, total)
                if mapped is not error:
                    raise mapped from error
            raise
        connection.reader = None
        self._settle(connection, reader, loop.time())
        return reader

    async def aclose(self) -> None:
        """Close every idle connection; requests still in flight close theirs when done."""
        self._closed = True
        if self._generation != fork.current():
            fork.abandon((self._idle, self._waiters))
            self._reset()
            return
        # Requests waiting for room would wait in vain: woken, they find the pool closed.
        while self._waiters:
            self._wake_one()
        closed = False
        for connections in self._idle.values():
            for connection in connections:
                closed = closed or connection.loop is _running_loop()
                connection.close()
                self._open -= 1
        self._idle.clear()
        if closed:
            # asyncio finishes closing a transport (its socket) on the loop's next iteration:
            # let it, so that a loop that ends right after aclose() leaves no socket open.
            await asyncio.sleep(0)

    # The pool.

    async def _acquire(
        self,
        origin: _Origin,
        timeouts: Mapping[str, float | None],
        deadline: float | None,
        request: httpx.Request | None,
        loop: asyncio.AbstractEventLoop,
    ) -> _Connection:
        pool_timeout = timeouts.get("pool")
        room_by = None if pool_timeout is None else loop.time() + pool_timeout
        if deadline is not None and (room_by is None or deadline < room_by):
            room_by = deadline
        while True:
            if self._closed:
                raise ClientClosedError("the client was closed while the request waited")
            connection = self._idle_connection(origin, loop)
            if connection is not None:
                return connection
            if self._open >= self._max_connections:
                self._evict_idle()
            if self._open < self._max_connections:
                break
            if not await self._wait_for_room(loop, room_by):
                raise httpx.PoolTimeout("no connection became free in time", request=request)
        self._open += 1
        connect_timeout = timeouts.get("connect")
        if deadline is not None:
            left = max(deadline - loop.time(), 0.0)
            connect_timeout = left if connect_timeout is None else min(connect_timeout, left)
        try:
            return await self._connect(origin, loop, connect_timeout)
        except BaseException as error:
            self._open -= 1
            self._wake_one()
            if isinstance(error, Exception):
                mapped = _httpx_error(error, request, _CONNECT, None)
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
        if not idle:
            return None
        now = loop.time()
        while idle:
            connection = idle.pop()
            if connection.loop is loop and not connection.expired(now):
                if not connection.spoilt():
                    connection.idle_for = now - connection.idle_since
                    return connection
                if now - connection.idle_since < _CLOSES_AFTER_REPLY:
                    # Closed by the server right after its reply, without saying so.
                    self._avoid_reuse(origin, now)
            connection.close()
            self._open -= 1
        return None

    def _avoid_reuse(self, origin: _Origin, now: float) -> None:
        # A server that closes each connection right after its reply, without saying so:
        # a request written meanwhile is lost in the race, and may have been delivered. A
        # fresh connection costs a handshake; a lost send costs an ambiguous failure.
        self._no_reuse_until[origin] = now + _NO_REUSE_SPAN

    def _settle(self, connection: _Connection, reader: ResponseReader, now: float) -> None:
        """Pool the connection after a reply, or close it if it must not carry another."""
        if not connection.reusable(reader):
            self._discard(connection)
            return
        if reader.idle_timeout is not None:
            # The server closes it after that many idle seconds: stop using it well before.
            idle_timeout = reader.idle_timeout
            connection.expiry = min(connection.expiry, max(idle_timeout - 1.0, idle_timeout / 2))
            if connection.expiry <= 0:
                self._discard(connection)
                return
        if self._no_reuse_until and self._no_reuse_until.get(connection.origin, 0.0) > now:
            self._discard(connection)
            return
        self._release(connection, now)

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
        # A task of its own under a timer, not asyncio.wait_for: up to Python 3.11 that
        # swallows a cancellation arriving as the connect completes, and the cancelled
        # send goes on.
        opening = loop.create_task(self._open_connection(origin, loop))
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = opening.cancel()

        timer = None if timeout is None else loop.call_later(timeout, expire)
        try:
            return await opening
        except asyncio.CancelledError:
            if opening.done() and not opening.cancelled() and opening.exception() is None:
                opening.result().close()  # Connected just as this request was cancelled.
            if expired and not _cancelled_itself():
                raise TimeoutError from None
            raise
        finally:
            if timer is not None:
                timer.cancel()

    async def _open_connection(
        self, origin: _Origin, loop: asyncio.AbstractEventLoop
    ) -> _Connection:
        scheme, host, port = origin
        hostname = host.decode("ascii")
        tls_context = self._ssl_context if scheme == b"https" else None
        expiry = self._keepalive_expiry

        def factory() -> _Connection:
            return _Connection(loop, origin, expiry)

        addresses = await loop.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
        sock = await _connect_first(loop, _interleave(addresses), _HAPPY_EYEBALLS_DELAY)
        try:
            _, connection = await loop.create_connection(
                factory,
                sock=sock,
                ssl=tls_context,
                server_hostname=hostname if tls_context is not None else None,
            )
        except BaseException:
            # Ours until a transport owns it: a handshake that fails or is cancelled must
            # not leave it open (closing it twice does nothing).
            sock.close()
            raise
        return connection

    def _release(self, connection: _Connection, now: float) -> None:
        if self._closed:
            self._discard(connection)
            return
        connection.idle_since = now
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


_Address = tuple[int, int, int, str, tuple[Any, ...]]
"""One `getaddrinfo` result: family, type, protocol, canonical name, socket address."""


async def _connect_first(
    loop: asyncio.AbstractEventLoop, addresses: list[_Address], delay: float
) -> socket.socket:
    """A socket connected to the first of `addresses` to answer (RFC 8305, happy eyeballs).

    Each address is tried `delay` seconds after the one before, or as soon as it fails.
    Not `loop.create_connection(happy_eyeballs_delay=...)`: CPython's race leaves the
    winning socket open when cancelled after it won but before its losers ended (the
    connect timing out, or the send cancelled, then); nor aiohappyeyeballs 2.7, which
    closes it but swallows a cancellation that arrives while it reaps the losers. Here
    every socket opened is closed unless returned, and a cancellation always propagates.
    """
    waiting: set[asyncio.Task[socket.socket]] = set()
    errors: list[BaseException] = []
    winner: socket.socket | None = None
    try:
        for address in addresses:
            attempt = loop.create_task(_attempt(loop, address))
            waiting.add(attempt)
            next_at = loop.time() + delay
            while winner is None and not attempt.done() and loop.time() < next_at:
                done, waiting = await asyncio.wait(
                    waiting, timeout=next_at - loop.time(), return_when=asyncio.FIRST_COMPLETED
                )
                winner = _connected(done, errors)
            if winner is not None:
                break
        while winner is None and waiting:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            winner = _connected(done, errors)
    finally:
        # Each attempt cancelled closes its own socket; waited for (never suppressing a
        # cancellation of this task) so that none is left to the garbage collector.
        for attempt in waiting:
            attempt.cancel()
        try:
            if waiting:
                await asyncio.wait(waiting)
        except BaseException:
            if winner is not None:
                winner.close()
            raise
        finally:
            for attempt in waiting:
                # One that connected before it could be cancelled.
                if attempt.done() and not attempt.cancelled() and attempt.exception() is None:
                    attempt.result().close()
    if winner is not None:
        return winner
    if len(errors) == 1:
        raise errors[0]
    if not errors:
        raise OSError("no address to connect to")
    raise OSError(f"Multiple exceptions: {', '.join(str(error) for error in errors)}")


def _connected(
    attempts: set[asyncio.Task[socket.socket]], errors: list[BaseException]
) -> socket.socket | None:
    """The socket of the first attempt done that connected; the others' closed, their
    errors added to `errors`."""
    winner = None
    for attempt in attempts:
        if not attempt.done() or attempt.cancelled():
            continue
        error = attempt.exception()
        if error is not None:
            errors.append(error)
        elif winner is None:
            winner = attempt.result()
        else:
            attempt.result().close()
    return winner


async def _attempt(loop: asyncio.AbstractEventLoop, address: _Address) -> socket.socket:
    family, kind, protocol, _, socket_address = address
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, socket_address)
    except BaseException:
        sock.close()
        raise
    return sock


def _interleave(addresses: Sequence[_Address]) -> list[_Address]:
    """The addresses alternating between families (IPv6, IPv4, IPv6...) in their order, as
    RFC 8305 asks: a broken route for one family costs one delay, not one per address."""
    by_family: dict[int, list[_Address]] = {}
    for address in addresses:
        by_family.setdefault(address[0], []).append(address)
    rounds = itertools.zip_longest(*by_family.values())
    return [address for one_round in rounds for address in one_round if address is not None]


def _cancelled_itself() -> bool:
    """Whether the current task was cancelled (not only what it awaited): Python 3.11+
    can tell; on 3.10 a cancellation at the very moment a timeout expires is a timeout."""
    if sys.version_info >= (3, 11):
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0
    return False


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


def _httpx_error(
    error: Exception, request: httpx.Request | None, phase: str, total_timeout: float | None
) -> Exception:
    """`error`, raised while the request was at `phase`, as the httpx error for it.

    Anything that is not a network failure is a bug, or an error of the request's own
    body, and is returned as it is.
    """
    if isinstance(error, httpx.HTTPError):
        return error
    if isinstance(error, _TotalTimeout):
        return _TIMEOUTS[phase](
            f"the request took longer than total_timeout ({total_timeout:g} s)", request=request
        )
    message = str(error) or type(error).__name__
    # Timeouts first: on Python 3.11+ asyncio.TimeoutError is TimeoutError, an OSError.
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return _TIMEOUTS[phase](message, request=request)
    if isinstance(error, ProtocolError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(error, OSError):  # ssl.SSLError is one too
        return _NETWORK_ERRORS[phase](message, request=request)
    return error


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # under trio
        return None


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
