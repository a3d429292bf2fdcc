"""A certificate the client refuses is refused again on every attempt: it is not retried.

A loopback TLS server with a self-signed certificate counts the handshakes it is offered.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from postal_sdk import APIConnectionError, AsyncPostal, Message, Postal
from postal_sdk.testing import DEFAULT_API_KEY
from tests.e2e.support import NO_WAIT

MESSAGE = Message(from_="app@example.com", to=["john@example.com"], plain_body="Hello")


class SelfSignedServer:
    """Accepts TCP connections on 127.0.0.1 and offers a self-signed certificate on each."""

    def __init__(self, tmp_path: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .sign(key, hashes.SHA256())
        )
        (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self.handshakes = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed: the test is over
                return
            self.handshakes += 1
            try:
                with self._context.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass  # the client refused the certificate, as it should

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=10)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[SelfSignedServer]:
    server = SelfSignedServer(tmp_path)
    yield server
    server.close()


@pytest.mark.anyio
async def test_the_async_client_tries_a_refused_certificate_once(
    tls_server: SelfSignedServer,
) -> None:
    async with AsyncPostal(tls_server.url, DEFAULT_API_KEY, backoff=NO_WAIT) as postal:
        with pytest.raises(APIConnectionError, match=r"(?i)certificate"):
            await postal.send_message(MESSAGE)
        with pytest.raises(APIConnectionError, match=r"(?i)certificate"):
            await postal.get_message(1)

    assert tls_server.handshakes == 2


def test_the_aiohttp_backend_tries_a_refused_certificate_once(
    tls_server: SelfSignedServer,
) -> None:
    async def send() -> None:
        postal = AsyncPostal(
            tls_server.url, DEFAULT_API_KEY, backoff=NO_WAIT, http_backend="aiohttp"
        )
        async with postal:
            with pytest.raises(APIConnectionError, match=r"(?i)certificate"):
                await postal.send_message(MESSAGE)

    anyio.run(send)

    assert tls_server.handshakes == 1


def test_the_sync_client_tries_a_refused_certificate_once(tls_server: SelfSignedServer) -> None:
    with (
        Postal(tls_server.url, DEFAULT_API_KEY, backoff=NO_WAIT) as postal,
        pytest.raises(APIConnectionError, match=r"(?i)certificate"),
    ):
        postal.send_message(MESSAGE)

    assert tls_server.handshakes == 1
