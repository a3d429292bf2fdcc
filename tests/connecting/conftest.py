"""Fixtures for connecting: a local CA, FakePostal over HTTP and HTTPS, a forwarding proxy.

- `ca`: a private CA made by trustme; the HTTPS servers' certificates (for `localhost` and
  `127.0.0.1`) and the client certificate are issued by it, so only a client told to trust
  it connects.
- Three uvicorn servers on loopback serving FakePostal: plain HTTP, HTTPS, and HTTPS that
  requires a client certificate from `ca`.
- `forward_proxy`: `forward_proxy.py` in a process of its own, which logs every request it
  forwards; a test reads whether its request went through.
- Every test starts with no proxy or CA variable in its environment (whatever the machine
  has), and monkeypatch puts them back afterwards.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from postal_sdk.testing import FakePostal
from postal_sdk.testing._server import serve_in_thread

ENVIRONMENT = [
    f"{name}{suffix}" for name in ("http", "https", "all", "no") for suffix in ("_proxy", "_PROXY")
] + ["SSL_CERT_FILE", "SSL_CERT_DIR", "REQUEST_METHOD"]
"""What httpx reads (through urllib's getproxies, which reads either case, and through
`create_ssl_context`); REQUEST_METHOD makes urllib ignore HTTP_PROXY, as under CGI."""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@dataclass(frozen=True)
class Files:
    """The CA's and the client's PEM files."""

    ca: Path
    client_combined: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="package")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="package")
def files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Files:
    directory = tmp_path_factory.mktemp("pki")
    client = ca.issue_cert("client@example.com")
    found = Files(
        ca=directory / "ca.pem",
        client_combined=directory / "client.pem",
        client_cert=directory / "client-cert.pem",
        client_key=directory / "client-key.pem",
    )
    ca.cert_pem.write_to_path(str(found.ca))
    client.private_key_and_cert_chain_pem.write_to_path(str(found.client_combined))
    for index, pem in enumerate(client.cert_chain_pems):
        pem.write_to_path(str(found.client_cert), append=index > 0)
    client.private_key_pem.write_to_path(str(found.client_key))
    return found


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    """A client TLS context that trusts `ca` (and only it)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="package")
def http_url() -> Iterator[str]:
    """FakePostal over plain HTTP: `http://127.0.0.1:PORT`."""
    with serve_in_thread(FakePostal().asgi_app, host="127.0.0.1", port=0) as url:
        yield url


@pytest.fixture(scope="package")
def https_url(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """FakePostal over HTTPS with a certificate from `ca`: `https://localhost:PORT`."""
    tls = _server_files(ca, tmp_path_factory.mktemp("https"))
    with serve_in_thread(FakePostal().asgi_app, host="127.0.0.1", port=0, tls=tls) as url:
        yield url.replace("127.0.0.1", "localhost")


@pytest.fixture(scope="package")
def mtls_url(
    ca: trustme.CA, files: Files, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """FakePostal over HTTPS that refuses clients without a certificate from `ca`."""
    tls = {
        **_server_files(ca, tmp_path_factory.mktemp("mtls")),
        "ssl_ca_certs": str(files.ca),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }
    with serve_in_thread(FakePostal().asgi_app, host="127.0.0.1", port=0, tls=tls) as url:
        yield url.replace("127.0.0.1", "localhost")


def _server_files(ca: trustme.CA, directory: Path) -> dict[str, object]:
    server = ca.issue_cert("localhost", "127.0.0.1")
    certfile, keyfile = directory / "server.pem", directory / "server-key.pem"
    for index, pem in enumerate(server.cert_chain_pems):
        pem.write_to_path(str(certfile), append=index > 0)
    server.private_key_pem.write_to_path(str(keyfile))
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}


PROXY_SCRIPT = Path(__file__).with_name("forward_proxy.py")


class ForwardProxy:
    """The forwarding proxy process, and what went through it."""

    def __init__(self, url: str, socks_url: str, log: Path) -> None:
        self.url = url
        self.socks_url = socks_url
        self._log = log

    def mark(self) -> int:
        """How many requests went through so far: pass it to `went_through`."""
        return len(self._lines())

    def went_through(self, url: str, since: int) -> bool:
        """Whether a request to `url`'s origin went through after `since`."""
        return bool(self.requests_to(url, since))

    def requests_to(self, url: str, since: int) -> list[str]:
        """The log lines of requests to `url`'s origin after `since`."""
        _, _, rest = url.partition("://")
        origin = rest.split("/", 1)[0]
        return [line for line in self._lines()[since:] if origin in line.split(" ")[1]]

    def _lines(self) -> list[str]:
        return self._log.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="package")
def forward_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForwardProxy]:
    log = tmp_path_factory.mktemp("proxy") / "requests.log"
    log.touch()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter running our own script
        [sys.executable, str(PROXY_SCRIPT), "--log", str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port, socks_port = process.stdout.readline().strip(), process.stdout.readline().strip()
        assert port.isdigit(), "the forwarding proxy did not start"
        yield ForwardProxy(f"http://127.0.0.1:{port}", f"socks5://127.0.0.1:{socks_port}", log)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
