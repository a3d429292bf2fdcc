"""Fake Postals for the fan-out tests: one in-process, one on a real socket."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from types import TracebackType
from typing import Any

import anyio
import httpx

from postal_sdk import Backoff, Message, RawMessage

BASE_URL = "https://postal.test"
API_KEY = "sEcReTkEy0123456789abcdE"
NO_WAIT = Backoff(initial=0, maximum=0, retry_after_cap=0)

OK = "ok"
REJECT = "reject"
"""Postal answers with the `NoRecipients` error envelope."""
DROP = "drop"
"""The connection drops after the request was sent: never retried for a send."""
SLOW = "slow"
"""Answered after `FakePostal.slow_seconds`."""


def message(subject: str = OK, number: int = 0) -> Message:
    """A valid message whose subject tells the fake server how to answer."""
    return Message(
        from_="app@example.com",
        to=[f"user{number}@example.com"],
        subject=subject,
        plain_body=f"message {number}",
    )


def raw_message(number: int = 0) -> RawMessage:
    """A valid raw message (the fake answers every raw send with success)."""
    return RawMessage(
        mail_from="app@example.com",
        rcpt_to=[f"user{number}@example.com"],
        data=f"Subject: raw {number}\r\n\r\nbody".encode(),
    )


def envelope(data: Any, status: str = "success") -> bytes:
    """A Postal reply envelope, as the server writes it."""
    return json.dumps({"status": status, "time": 0.01, "flags": {}, "data": data}).encode()


def _success(recipient: str, number: int) -> bytes:
    token = f"token{number}"
    return envelope(
        {"message_id": f"id{number}@rp", "messages": {recipient: {"id": number, "token": token}}}
    )


class FakePostal:
    """Answers send/message by the subject and send/raw with success; counts what it got.

    `in_flight` and `max_in_flight` count requests being answered at once; `received`
    lists the subject (or `"raw"`) of every request that reached it, in arrival order, and
    `recipients` the first recipient of each, which tells the messages of a batch apart.
    """

    def __init__(self) -> None:
        self.received: list[str] = []
        self.recipients: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.slow_seconds = 0.2
        self.hold_seconds = 0.0
        self._lock = threading.Lock()

    def _arrive(self, request: httpx.Request) -> tuple[str, str]:
        payload = json.loads(request.content)
        subject = payload.get("subject", "raw")
        recipient = (payload.get("to") or payload.get("rcpt_to"))[0]
        with self._lock:
            self.received.append(subject)
            self.recipients.append(recipient)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return subject, recipient

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _answer(self, request: httpx.Request, subject: str, recipient: str) -> httpx.Response:
        if subject == REJECT:
            body = envelope({"code": "NoRecipients", "message": "no recipients"}, "error")
            return httpx.Response(200, content=body)
        if subject == DROP:
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        return httpx.Response(200, content=_success(recipient, len(self.received)))

    async def _handle_async(self, request: httpx.Request) -> httpx.Response:
        subject, recipient = self._arrive(request)
        try:
            await anyio.sleep(self.slow_seconds if subject == SLOW else self.hold_seconds)
            return self._answer(request, subject, recipient)
        finally:
            self._leave()

    def _handle_sync(self, request: httpx.Request) -> httpx.Response:
        subject, recipient = self._arrive(request)
        try:
            time.sleep(self.slow_seconds if subject == SLOW else self.hold_seconds)
            return self._answer(request, subject, recipient)
        finally:
            self._leave()

    def async_client(self) -> httpx.AsyncClient:
        """An `httpx.AsyncClient` whose requests this fake answers."""
        return httpx.AsyncClient(transport=httpx.MockTransport(self._handle_async))

    def sync_client(self) -> httpx.Client:
        """An `httpx.Client` whose requests this fake answers."""
        return httpx.Client(transport=httpx.MockTransport(self._handle_sync))


class _Handler(socketserver.StreamRequestHandler):
    """Reads keep-alive requests by Content-Length; the API key picks the answer."""

    server: _Server

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = self.rfile.readline()
                if not line:
                    return
                head += line
            headers = dict(
                line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if line
            )
            fields = {name.lower(): value for name, value in headers.items()}
            self.rfile.read(int(fields.get("content-length", "0")))
            with self.server.lock:
                self.server.requests += 1
            behaviour = fields.get("x-server-api-key", OK)
            if behaviour == DROP:
                return
            if behaviour == SLOW:
                time.sleep(1.0)
            if behaviour == "truncated":
                self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"status"')
                return
            if behaviour == "garbage":
                self.wfile.write(b"this is not HTTP\r\n\r\n")
                return
            if behaviour == "html":
                body, status = b"<html>502 Bad Gateway</html>", "502 Bad Gateway"
            else:
                body, status = _success("user0@example.com", 1), "200 OK"
            self.wfile.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    requests = 0
    connections = 0
    lock = threading.Lock()


class SocketPostal:
    """A Postal-like server on 127.0.0.1, in a thread, for the transport tests.

    The API key picks the answer: `"ok"` a success envelope, `"drop"` closes the
    connection after reading the request, `"slow"` answers after 1 s, `"html"` answers a
    502 HTML page, `"truncated"` closes mid-body, `"garbage"` answers with no HTTP at all.
    `requests` and `connections` count what it read and accepted; `refused_url` is an
    address where nothing listens.
    """

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.refused_url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    @property
    def requests(self) -> int:
        return self._server.requests

    @property
    def connections(self) -> int:
        return self._server.connections

    def __enter__(self) -> SocketPostal:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
