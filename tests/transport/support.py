"""A scripted TCP server in a thread, for testing the transport against real sockets.

Each accepted connection is handed to a handler function that plays one server behaviour
(answer, stall, truncate, reset, ...); a thread per connection keeps them independent of
the event loop under test, so they work the same under asyncio and trio.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import ipaddress
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"

UVLOOP = pytest.param(
    ("asyncio", {"use_uvloop": True}),
    id="uvloop",
    marks=pytest.mark.skipif(
        importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"
    ),
)
"""asyncio on uvloop (what uvicorn runs FastAPI on when it is installed), for `anyio_backend`."""

Handler = Callable[[socket.socket, threading.Event], None]
"""Plays one connection; the event is set when the server stops (stop stalling then)."""


class ScriptedServer:
    """Listens on 127.0.0.1 and runs `handler` for every connection, over TLS if given."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self.port: int = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/"
        self.connections = 0
        self.closed = threading.Event()
        """Set each time a handler returns and its connection is closed."""

    def __enter__(self) -> ScriptedServer:
        self._threads.append(threading.Thread(target=self._accept, daemon=True))
        self._threads[0].start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        for connection in self._connections:
            # Wakes a handler blocked reading a connection the client keeps open.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            # Known at once, not once its thread runs: stopping must be able to wake it.
            self._connections.append(connection)
            thread = threading.Thread(target=self._play, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _play(self, connection: socket.socket) -> None:
        connection.settimeout(5)
        try:
            if self._tls is not None:
                connection = self._tls.wrap_socket(connection, server_side=True)
            self._connections.append(connection)
            self._handler(connection, self._stopping)
        except OSError:
            pass
        finally:
            connection.close()
            self.closed.set()


def read_request(connection: socket.socket) -> bool:
    """Read one request (headers and body); False at end of stream."""
    return read_message(connection) is not None


def keep_alive(connection: socket.socket, stopping: threading.Event) -> None:
    """Answer every request on the connection."""
    while read_request(connection):
        connection.sendall(OK)


def answer_once(connection: socket.socket, stopping: threading.Event) -> None:
    """Answer one request as if keeping the connection alive, then close it."""
    if read_request(connection):
        connection.sendall(OK)


def stall(connection: socket.socket, stopping: threading.Event) -> None:
    """Read nothing, answer nothing, until the server stops."""
    stopping.wait(5)


def read_and_stall(connection: socket.socket, stopping: threading.Event) -> None:
    """Read the request, never answer."""
    read_request(connection)
    stopping.wait(5)


def truncate(connection: socket.socket, stopping: threading.Event) -> None:
    """Promise 100 bytes of body, send 10, close."""
    if read_request(connection):
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")


def reset(connection: socket.socket, stopping: threading.Event) -> None:
    """Read the request, then abort the connection (RST, not FIN)."""
    read_request(connection)
    abort(connection)


def abort(connection: socket.socket) -> None:
    """Make closing `connection` send a reset instead of a FIN."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for 127.0.0.1, and a client one
    that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "cert.pem"
    key_file = directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def read_message(connection: socket.socket) -> tuple[bytes, bytes] | None:
    """Read one request as it was sent: its head, and its body with any chunk framing left
    in; None at end of stream.

    The body ends where its Content-Length or its last chunk says: the client under test
    sends one request at a time on a connection, so nothing follows it in the socket.
    """
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    body = bytearray(rest)  # appended to in place: bodies of many MiB arrive
    fields = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
    }
    chunked = fields.get(b"transfer-encoding", b"").lower() == b"chunked"
    length = int(fields.get(b"content-length", b"0"))
    while not (_chunks_complete(body) if chunked else len(body) >= length):
        chunk = connection.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head, bytes(body)


def _chunks_complete(body: bytearray) -> bool:
    # Walks the chunk framing, as sent without trailers, up to the last (empty) chunk.
    position = 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            return False
        size = int(body[position:line_end].split(b";")[0], 16)
        if size == 0:
            return body[line_end + 2 :] == b"\r\n"
        position = line_end + 2 + size + 2
        if position > len(body):
            return False


class Script:
    """Answers each request on a connection with the next of `replies`, then closes the
    connection; or, with `close=False`, waits for the client to close it.

    One script plays every connection it is given; what it saw is recorded across them.
    """

    def __init__(self, *replies: bytes, close: bool = True) -> None:
        self.replies = replies
        self.close = close
        self.requests: list[tuple[bytes, bytes]] = []
        """Each request's head and body, as sent."""
        self.client_closed = threading.Event()
        """Set once the client has closed a connection this script waited on."""

    def __call__(self, connection: socket.socket, stopping: threading.Event) -> None:
        for reply in self.replies:
            request = read_message(connection)
            if request is None:
                return
            self.requests.append(request)
            connection.sendall(reply)
        if self.close:
            return
        # Whatever the client sends now is read and dropped, until its end of stream.
        while connection.recv(65536):
            pass
        if not stopping.is_set():
            self.client_closed.set()


class Gate:
    """Answers every request on a connection with `reply`, but only once `opened` is set.

    Counts the requests that have arrived, and the connections open at once.
    """

    def __init__(self, reply: bytes = OK) -> None:
        self.reply = reply
        self.opened = threading.Event()
        self.requests = 0
        self.active = 0
        self.peak = 0
        """The most connections ever open at once."""
        self._lock = threading.Lock()

    def __call__(self, connection: socket.socket, stopping: threading.Event) -> None:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            while read_request(connection):
                with self._lock:
                    self.requests += 1
                while not self.opened.wait(0.01):
                    if stopping.is_set():
                        return
                connection.sendall(self.reply)
        finally:
            with self._lock:
                self.active -= 1


def in_turn(*handlers: Handler) -> Handler:
    """A handler playing the first connection with the first of `handlers`, the second with
    the second, and so on; the last plays every connection after."""
    lock = threading.Lock()
    accepted = [0]

    def play(connection: socket.socket, stopping: threading.Event) -> None:
        with lock:
            index = min(accepted[0], len(handlers) - 1)
            accepted[0] += 1
        handlers[index](connection, stopping)

    return play
