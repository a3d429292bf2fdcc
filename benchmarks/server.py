"""A minimal keep-alive HTTP/1.1 server that answers every request like Postal's send.

Every request, whatever its path, gets the same `200` success envelope for one recipient
(`john@example.com`), so no measured client is held back by the server's JSON work.
It is a raw asyncio protocol, not a framework, so that on this 2-core machine it costs
far less CPU per request than any client it serves: the runner pins it to one core and
the client under test to the other, and records how busy the server core was.

    python benchmarks/server.py --port 8025 [--delay 0.02] [--cpu 1]

`--delay` holds each answer back that many seconds (a real Postal takes tens of
milliseconds per send) without holding back other connections. The server prints
`ready <port>` on stdout once it listens, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket

RECIPIENT = "john@example.com"

_BODY = json.dumps(
    {
        "status": "success",
        "time": 0.01,
        "flags": {},
        "data": {
            "message_id": "6fdc0d8c-6a1e-4a76-9d9b-0b7bd5b4a001@rp.example.com",
            "messages": {RECIPIENT: {"id": 37171, "token": "Xk2J9qLm0PaZr7Tb"}},
        },
    },
    separators=(",", ":"),
).encode()

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n" + _BODY
)


class PostalLikeProtocol(asyncio.Protocol):
    """Parses pipelined requests by Content-Length and answers each one, in order."""

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._body_left = -1
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        answers = 0
        while True:
            if self._body_left < 0:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                self._body_left = _content_length(bytes(self._buffer[:end]))
                del self._buffer[: end + 4]
            if len(self._buffer) < self._body_left:
                break
            del self._buffer[: self._body_left]
            self._body_left = -1
            answers += 1
        if answers:
            if self._delay:
                self._loop.call_later(self._delay, self._answer, answers)
            else:
                self._answer(answers)

    def _answer(self, count: int) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(RESPONSE * count)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def serve(port: int, delay: float) -> None:
    """Listen on 127.0.0.1:`port` until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only then.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = await loop.create_server(lambda: PostalLikeProtocol(delay), sock=sock, backlog=4096)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"ready {sock.getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(serve(args.port, args.delay))


if __name__ == "__main__":
    main()
