"""HTTP/1.1 on the client side, without I/O: requests written out, responses read back.

The SDK's asyncio transport (`postal_sdk._http.asyncio_pool`) speaks HTTP/1.1 through this
module instead of h11, which validates every event through a general state machine and
costs several times more CPU per request than the bytes need. What is read here follows
the framing rules of RFC 9112, and accepts and refuses what h11 does: line endings may be
bare `\\n` in the head, `Transfer-Encoding` must be `chunked` alone, duplicated
`Content-Length`s must agree, and anything else malformed is a `ProtocolError`. The
differential tests in tests/transport/test_http11.py hold it to h11, and list the few
corners where the two differ: in each, this module does what the RFC says.
"""

from __future__ import annotations

import re

__all__ = [
    "CHUNKED",
    "LENGTH",
    "MAX_HEAD_SIZE",
    "UNTIL_CLOSE",
    "BodyReader",
    "Head",
    "ProtocolError",
    "parse_head",
    "serialize_request_head",
]

MAX_HEAD_SIZE = 64 * 1024
"""Bytes a response's head (status line and headers) or trailer may take, blank line included."""

_MAX_CHUNK_LINE = 1024
_MAX_LENGTH_DIGITS = 20

LENGTH, CHUNKED, UNTIL_CLOSE = 0, 1, 2
"""How a response's body is delimited: `Content-Length`, chunks, or the server closing."""

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_NAME = re.compile(_TOKEN)
_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_RECEIVED_VALUE = re.compile(rb"[^\x00\n\r\x0b\x0c]*")
"""What a value the server sends may hold: as h11, which lets other control characters
through (RFC 9110 section 5.5 allows keeping them), so no server that worked stops."""
_OWS = b" \t"
_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([1-9][0-9]{2})(?: ([^\x00\n\r\x0b\x0c]*))?")
_HEAD_END = re.compile(rb"\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,20})[ \t]*(?:;[^\r\n]*)?")
_DIGITS = re.compile(rb"[0-9]+")
_TARGET = re.compile(rb"[\x21-\x7e\x80-\xff]+")


class ProtocolError(Exception):
    """The server's bytes are not HTTP/1.1, or the request's cannot be."""


class Head:
    """A response's status line and headers, and what they say about what follows."""

    __slots__ = ("framing", "headers", "keep_alive", "length", "reason", "status", "version")

    def __init__(
        self,
        version: bytes,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        framing: int,
        length: int,
        keep_alive: bool,
    ) -> None:
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.framing = framing
        self.length = length
        self.keep_alive = keep_alive


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


def parse_head(buffer: bytearray, method: bytes) -> Head | None:
    """Take one response head off the front of `buffer`; None if it is not all there yet.

    `method` is the request's: a reply to HEAD has no body whatever its headers say.
    """
    lines = _take_lines(buffer, "the response head")
    if lines is None:
        return None
    status_line = _STATUS_LINE.fullmatch(lines[0])
    if status_line is None:
        raise ProtocolError(f"invalid status line {lines[0][:100]!r}")
    major, minor, code, reason = status_line.groups()
    headers = _headers(lines, 1)
    status = int(code)
    version = major + b"." + minor
    content_length: bytes | None = None
    # None when there is no Transfer-Encoding: an empty one must not pass for that.
    transfer_encoding: list[bytes] | None = None
    # HTTP/1.1 "or later" persists (RFC 9112 section 9.3); single digits compare as bytes.
    keep_alive = version >= b"1.1"
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            content_length = _content_length(value, content_length)
        elif lowered == b"transfer-encoding":
            transfer_encoding = [*(transfer_encoding or ()), *_tokens(value)]
        elif lowered == b"connection" and b"close" in _tokens(value):
            keep_alive = False
    if status < 200 or status in (204, 304) or method == b"HEAD":
        framing, length = LENGTH, 0
    elif transfer_encoding is not None:
        if transfer_encoding != [b"chunked"]:
            raise ProtocolError("only Transfer-Encoding: chunked is supported")
        framing, length = CHUNKED, 0
    elif content_length is not None:
        framing, length = LENGTH, int(content_length)
    else:
        framing, length, keep_alive = UNTIL_CLOSE, 0, False
    return Head(version, status, reason or b"", headers, framing, length, keep_alive)


def _take_lines(buffer: bytearray, what: str) -> list[bytes] | None:
    """Take the lines up to the first blank one off `buffer`; None if it has not come yet."""
    end = _HEAD_END.search(buffer)
    # With no end yet, one beyond the limit is refused now, as it would be when it came, so
    # that where the bytes were split makes no difference.
    if (len(buffer) if end is None else end.end() - 1) >= MAX_HEAD_SIZE:
        raise ProtocolError(f"{what} is too large")
    if end is None:
        return None
    lines = _lines(buffer, end.start())
    del buffer[: end.end()]
    return lines


def _lines(buffer: bytearray, end: int) -> list[bytes]:
    # The blank line's match starts at the last line's "\n": its "\r" is still in.
    if end and buffer[end - 1] == 13:
        end -= 1
    return _LINE_END.split(bytes(buffer[:end]))


def _headers(lines: list[bytes], first: int) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[first:]:
        if line[:1] in (b" ", b"\t"):
            # An obsolete line fold continues the previous value (RFC 9112 section 5.2).
            if not headers:
                raise ProtocolError("a header continuation line with no header")
            name, value = headers[-1]
            # Stripped again: either side of the space may be empty.
            headers[-1] = (name, _value((value + b" " + line.strip(_OWS)).strip(_OWS), name))
            continue
        name, colon, value = line.partition(b":")
        if not colon or _NAME.fullmatch(name) is None:
            raise ProtocolError(f"invalid header line {line[:100]!r}")
        headers.append((name, _value(value.strip(_OWS), name)))
    return headers


def _value(value: bytes, name: bytes) -> bytes:
    if _RECEIVED_VALUE.fullmatch(value) is None:
        raise ProtocolError(f"invalid value for header {name.decode('latin-1')!r}")
    return value


def _tokens(value: bytes) -> list[bytes]:
    return [token.strip(_OWS).lower() for token in value.split(b",") if token.strip(_OWS)]


def _content_length(value: bytes, earlier: bytes | None) -> bytes:
    lengths = {length.strip(_OWS) for length in value.split(b",")}
    if earlier is not None:
        lengths.add(earlier)
    if len(lengths) != 1:
        raise ProtocolError("conflicting Content-Length headers")
    (length,) = lengths
    # The cap, h11's, also keeps int() clear of Python's limit on digits it converts.
    if _DIGITS.fullmatch(length) is None or len(length) > _MAX_LENGTH_DIGITS:
        raise ProtocolError(f"invalid Content-Length {length[:40]!r}")
    return length


_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class BodyReader:
    """Takes a response's body off the front of a buffer as it arrives, chunks decoded."""

    __slots__ = ("_framing", "_remaining", "_state")

    def __init__(self, head: Head) -> None:
        self._framing = head.framing
        self._remaining = head.length
        self._state = _DONE if head.framing == LENGTH and head.length == 0 else _SIZE

    @property
    def done(self) -> bool:
        """Whether the whole body has been read."""
        return self._state == _DONE

    def read(self, buffer: bytearray) -> bytes:
        """The body bytes now in `buffer` (taken out of it); b"" if none are there yet."""
        if self._framing == LENGTH:
            return self._read_length(buffer)
        if self._framing == UNTIL_CLOSE:
            data = bytes(buffer)
            del buffer[:]
            return data
        return self._read_chunks(buffer)

    def end_of_stream(self) -> None:
        """The server closed the connection: the end of the body, or its truncation."""
        if self._framing == UNTIL_CLOSE:
            self._state = _DONE
        elif self._state != _DONE:
            raise ProtocolError("the server closed the connection before the body ended")

    def _read_length(self, buffer: bytearray) -> bytes:
        size = min(self._remaining, len(buffer))
        data = bytes(buffer[:size])
        del buffer[:size]
        self._remaining -= size
        if not self._remaining:
            self._state = _DONE
        return data

    def _read_chunks(self, buffer: bytearray) -> bytes:
        pieces: list[bytes] = []
        while self._state != _DONE:
            if self._state == _DATA:
                size = min(self._remaining, len(buffer))
                if not size:
                    break
                pieces.append(bytes(buffer[:size]))
                del buffer[:size]
                self._remaining -= size
                if not self._remaining:
                    self._state = _DATA_END
            elif self._state == _DATA_END:
                if len(buffer) < 2:
                    break
                if buffer[:2] != b"\r\n":
                    raise ProtocolError("a chunk does not end with CRLF")
                del buffer[:2]
                self._state = _SIZE
            elif self._state == _SIZE:
                if not self._read_chunk_size(buffer):
                    break
            elif not self._read_trailer(buffer):
                break
        return b"".join(pieces)

    def _read_chunk_size(self, buffer: bytearray) -> bool:
        end = buffer.find(b"\r\n")
        # The line's length with its CRLF, as for the head: the same verdict however split.
        if end < 0:
            if len(buffer) >= _MAX_CHUNK_LINE:
                raise ProtocolError("a chunk size line is too long")
            return False
        if end + 2 > _MAX_CHUNK_LINE:
            raise ProtocolError("a chunk size line is too long")
        line = _CHUNK_LINE.fullmatch(buffer, 0, end)
        if line is None:
            raise ProtocolError(f"invalid chunk size line {bytes(buffer[: min(end, 100)])!r}")
        self._remaining = int(line.group(1), 16)
        del buffer[: end + 2]
        self._state = _DATA if self._remaining else _TRAILER
        return True

    def _read_trailer(self, buffer: bytearray) -> bool:
        # Trailers are read and dropped, as httpx's own transport does.
        if buffer[:2] == b"\r\n" or buffer[:1] == b"\n":
            del buffer[: 2 if buffer[:1] == b"\r" else 1]
            self._state = _DONE
            return True
        lines = _take_lines(buffer, "the trailer")
        if lines is None:
            return False
        _headers(lines, 0)
        self._state = _DONE
        return True
