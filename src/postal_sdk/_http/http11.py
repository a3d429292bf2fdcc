"""HTTP/1.1 on the client side, without I/O: requests written out, responses read back.

Responses are parsed by `httptools`, the Python binding of llhttp (Node.js's parser, the one
uvicorn runs on): a well-kept C library, far more exercised than a parser of our own and
faster (some 2 us for a small reply). The SDK's asyncio transport
(`postal_sdk._http.asyncio_pool`) feeds it each piece the socket delivers. What httptools
leaves to its caller is done here: it has no `finish()`, so a body delimited by the server
closing the connection is completed at `end_of_stream`; its `should_keep_alive()` reads
False once a message is complete, so it is read when the head is; and its callbacks cannot
tell llhttp that a reply to HEAD has no body, so reading stops at that reply's head, and
whether more bytes followed it is found in the bytes themselves.

On top of llhttp, the head is refused when it outgrows `MAX_HEAD_SIZE` and the whole reply
when it outgrows the caller's `max_size` (`ResponseTooLarge`): memory stays bounded
however much a server sends. The differential tests in tests/transport/test_http11.py hold
the reader to h11's verdicts and list the corners where llhttp decides otherwise.

Request heads are still written here: one `b"".join`, checked so that no value can smuggle
in a header, costs less than any library's general serialiser.
"""

from __future__ import annotations

import re
from itertools import islice

import httptools

__all__ = [
    "MAX_HEAD_SIZE",
    "ProtocolError",
    "ResponseReader",
    "ResponseTooLarge",
    "keep_alive_timeout",
    "serialize_request_head",
]

MAX_HEAD_SIZE = 64 * 1024
"""Bytes a response's head (status line and headers) may take."""

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_NAME = re.compile(_TOKEN)
_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_TARGET = re.compile(rb"[\x21-\x7e\x80-\xff]+")
_HEAD_END = re.compile(rb"\r\n\r\n")
_KEEP_ALIVE_TIMEOUT = re.compile(rb"(?:^|[,;\s])timeout\s*=\s*\"?([0-9]{1,9})", re.IGNORECASE)


class ProtocolError(Exception):
    """The server's bytes are not HTTP/1.1, or the request's cannot be."""


class ResponseTooLarge(Exception):
    """The reply outgrew the size allowed for it; reading stopped there."""

    def __init__(self, limit: int, status: int) -> None:
        super().__init__(f"the reply is larger than {limit} bytes")
        self.limit = limit
        self.status = status


class _Stop(Exception):
    """Raised from a callback to stop llhttp: what follows is not this reply's."""


def serialize_request_head(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
) -> bytes:
    """The request line and headers, checked so that no value can smuggle in a header."""
    if _NAME.fullmatch(method) is None:
        raise ProtocolError(f"invalid method {method!r}")
    if _TARGET.fullmatch(target) is None:
        raise ProtocolError(f"invalid request target {target!r}")
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        if _NAME.fullmatch(name) is None:
            raise ProtocolError(f"invalid header name {name!r}")
        if _VALUE.fullmatch(value) is None or value[:1] in (b" ", b"\t"):
            raise ProtocolError(f"invalid value for header {name.decode('latin-1')!r}")
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def keep_alive_timeout(value: bytes) -> float | None:
    """The seconds a `Keep-Alive: timeout=N` header gives, if it gives any."""
    match = _KEEP_ALIVE_TIMEOUT.search(value)
    return None if match is None else float(match.group(1))


class ResponseReader:
    """Reads one response, past any 1xx interim ones, from the pieces fed to it.

    After `done`: `status`, `reason`, `version` (like b"1.1"), `headers` (names as sent,
    in order, trailers left out), `body` (chunks decoded), `keep_alive` (whether the
    connection may carry another request), `idle_timeout` (the server's `Keep-Alive:
    timeout=`, if any) and `trailing` (bytes came after the reply: the connection cannot
    be reused, since they belong to no request).
    """

    __slots__ = (
        "_body",
        "_chunked",
        "_fed",
        "_framed",
        "_head_done",
        "_head_size",
        "_heads",
        "_max_size",
        "_parser",
        "_size",
        "done",
        "headers",
        "idle_timeout",
        "keep_alive",
        "reason",
        "status",
        "trailing",
        "version",
    )

    def __init__(self, method: bytes, max_size: int) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._max_size = max_size
        # A reply to HEAD is kept whole, to find where its head ends (see on_headers_complete).
        self._fed: bytearray | None = bytearray() if method == b"HEAD" else None
        self._heads = 0
        self._size = 0
        self._body: list[bytes] = []
        self.done = False
        self.trailing = False
        self._start()

    def _start(self) -> None:
        # Also between an interim reply and the next.
        self._head_done = False
        self._head_size = 0
        self._framed = False
        self._chunked = False
        self.headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self.reason = b""
        self.version = b""
        self.keep_alive = False
        self.idle_timeout: float | None = None

    @property
    def body(self) -> bytes:
        """The body so far, chunks decoded."""
        return b"".join(self._body)

    @property
    def size(self) -> int:
        """Bytes fed so far: what this reply holds in memory, at most."""
        return self._size

    def feed(self, data: bytes) -> None:
        """Parse the next piece the server sent."""
        if self.done:
            self.trailing = True
            return
        self._size += len(data)
        if self._size > self._max_size:
            raise ResponseTooLarge(self._max_size, self.status)
        if self._fed is not None:
            self._fed += data
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise ProtocolError(
                "the server switched protocols, which the SDK does not speak"
            ) from None
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            if isinstance(cause, _Stop):
                if self._fed is not None and self.done:
                    self._after_head_reply()
                return
            if isinstance(cause, (ProtocolError, ResponseTooLarge)):
                raise cause from None
            raise
        except httptools.HttpParserError as error:
            if self.done:
                self.trailing = True
                return
            raise ProtocolError(f"invalid response: {error}") from None
        if not self._head_done and self._size > MAX_HEAD_SIZE:
            raise ProtocolError("the response head is too large")

    def end_of_stream(self) -> None:
        """The server closed the connection: the end of the body, or its truncation."""
        if self.done:
            return
        if not self._size:
            raise ProtocolError("the server closed the connection without replying")
        if not self._head_done:
            raise ProtocolError("the server closed the connection in the middle of its reply")
        if self._framed:
            raise ProtocolError("the server closed the connection before the body ended")
        # Neither Content-Length nor chunks: the body is what came before the close.
        self.done = True

    # httptools' callbacks.

    def on_status(self, status: bytes) -> None:
        # Called once per piece the reason phrase spans. llhttp lets NUL through; h11 and
        # RFC 9112 section 4 do not.
        if b"\x00" in status:
            raise ProtocolError("invalid reason phrase")
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD_SIZE:
            raise ProtocolError("the response head is too large")
        if self._head_done:
            return  # A trailer: dropped unread, as httpx's own transport does.
        # llhttp strips the whitespace before a value, not after (RFC 9110 section 5.5).
        value = value.rstrip(b" \t")
        self.headers.append((name, value))
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            self._framed = True
        elif size == 17 and name.lower() == b"transfer-encoding":
            self._framed = True
            self._chunked = True
        elif size == 10 and name.lower() == b"keep-alive":
            self.idle_timeout = keep_alive_timeout(value)

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if status < 100:
            # The caller would skip it as an interim reply and wait for another.
            raise ProtocolError(f"invalid status {status}")
        if status == 101:
            raise ProtocolError("the server switched protocols, which the SDK does not speak")
        self.status = status
        self.version = parser.get_http_version().encode("ascii")
        self._head_done = True
        self._heads += 1
        if self._chunked and not _chunked_alone(self.headers):
            raise ProtocolError("only Transfer-Encoding: chunked is supported")
        # Read now: after the message is complete llhttp reports False. HTTP/1.0 is never
        # kept alive, whatever it asks, as h11 and httpx do.
        self.keep_alive = parser.should_keep_alive() and self.version >= b"1.1"
        if self._fed is not None and status >= 200:
            # llhttp would wait for the body the headers announce; a reply to HEAD has none,
            # so llhttp's keep-alive, which counts on a body read until the close, is not it.
            self.done = True
            self.keep_alive = self.version >= b"1.1" and not _says_close(self.headers)
            raise _Stop

    def _after_head_reply(self) -> None:
        # llhttp stopped somewhere in the last piece: the end of the last head tells where.
        fed = self._fed
        assert fed is not None
        last_head = next(islice(_HEAD_END.finditer(fed), self._heads - 1, None))
        end = last_head.end()
        self.trailing = end < len(fed)
        self._fed = None

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.status < 200:
            self._start()  # An interim reply: the final one follows.
            return
        self.done = True

    def on_message_begin(self) -> None:
        if self.done:
            # Another message after the reply: it belongs to no request.
            self.trailing = True
            raise _Stop


def _says_close(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        token.strip(b" \t").lower() == b"close"
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
    )


def _chunked_alone(headers: list[tuple[bytes, bytes]]) -> bool:
    codings = [
        coding.strip(b" \t").lower()
        for name, value in headers
        if name.lower() == b"transfer-encoding"
        for coding in value.split(b",")
        if coding.strip(b" \t")
    ]
    return codings == [b"chunked"]
