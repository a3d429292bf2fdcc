"""End-to-end fixtures: the SDK against the fake Postal served by uvicorn on loopback.

Starting uvicorn is cheap (about 5 ms) but stopping it is not (about 200 ms: its main
loop polls for shutdown every 100 ms), so one server runs for all of them and a
forwarding ASGI app hands each request to the running test's own `FakePostal`. Every
test therefore sees a fresh fake (outbox, request log, ids, faults) over real HTTP.

Each test's base URL carries a path prefix of its own (`/test-7`), which the forwarding app
strips: a request from an earlier test that reaches the server late (a send its client gave
up on, still in the kernel's buffers) names that test's prefix and is refused with a 410,
never handed to the running test's fake.

The forwarding app also counts the requests the server is handling at once, so a test
can see, from the server's side, how many requests a client had in flight.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from postal_sdk import AsyncPostal, Postal
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal
from postal_sdk.testing._server import serve_in_thread
from tests.e2e.support import NO_WAIT


class InFlight:
    """Requests being handled at once, and the most there were at any time."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.now -= 1


class ServedFake:
    """The ASGI app uvicorn serves: forwards each request to `fake`, counting them.

    Each request is counted in the `InFlight` current when it arrived, so one still
    running from an earlier test (a `Latency` the client gave up on) counts nowhere else.
    """

    def __init__(self) -> None:
        self.fake: FakePostal | None = None
        self.prefix = ""
        self.in_flight = InFlight()
        self._tests = itertools.count(1)

    @property
    def peak_in_flight(self) -> int:
        """The most requests handled at once since `use` or `count_afresh`."""
        return self.in_flight.peak

    def use(self, fake: FakePostal | None) -> str:
        """Serve `fake` from now on, under a new path prefix (returned), and count afresh."""
        self.fake = fake
        self.prefix = f"/test-{next(self._tests)}" if fake is not None else ""
        self.count_afresh()
        return self.prefix

    def swap(self, fake: FakePostal) -> None:
        """Serve another fake to the running test, under its prefix."""
        self.fake = fake

    def count_afresh(self) -> None:
        """Count the requests arriving from now on only."""
        self.in_flight = InFlight()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        fake, prefix = self.fake, self.prefix
        if scope["type"] != "http":
            if fake is not None:
                await fake.asgi_app(scope, receive, send)
            return
        path: str = scope["path"]
        if fake is None or not (path == prefix or path.startswith(prefix + "/")):
            await _refuse_stale(send)
            return
        raw_path: bytes = scope.get("raw_path") or path.encode()
        scope = {**scope, "path": path[len(prefix) :], "raw_path": raw_path[len(prefix) :]}
        with self.in_flight:
            await fake.asgi_app(scope, receive, send)


async def _refuse_stale(send: Any) -> None:
    body = b"a request from a test that has ended"
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 410, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="package", autouse=True)
def _one_tls_context() -> Iterator[None]:
    """Each SDK client builds a TLS context, loading the CA bundle (some 25 ms, half the
    time of a typical test here); these tests speak plain HTTP, so they share one."""
    build = httpx.create_ssl_context
    shared = build()

    def create_ssl_context(*args: Any, **kwargs: Any) -> Any:
        # The SDK asks for the default as `verify=True, trust_env=True`.
        default = not args and kwargs in ({}, {"verify": True, "trust_env": True})
        return shared if default else build(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx, "create_ssl_context", create_ssl_context)
        yield


@pytest.fixture(scope="package")
def served() -> Iterator[tuple[ServedFake, str]]:
    app = ServedFake()
    with serve_in_thread(app, host="127.0.0.1", port=0) as base_url:
        yield app, base_url


@pytest.fixture
def server(served: tuple[ServedFake, str], fake: FakePostal) -> Iterator[ServedFake]:
    """The uvicorn-served app, now forwarding to this test's `fake`."""
    app, _ = served
    app.use(fake)
    yield app
    app.use(None)


@pytest.fixture
def fake() -> FakePostal:
    """A fresh fake Postal: one server, key `DEFAULT_API_KEY`, sending from example.com."""
    return FakePostal()


@pytest.fixture
def base_url(served: tuple[ServedFake, str], server: ServedFake) -> str:
    """`http://127.0.0.1:PORT/test-N`: the uvicorn server, serving this test's `fake`."""
    return served[1] + server.prefix


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def async_postal(base_url: str) -> AsyncIterator[AsyncPostal]:
    """The SDK's async client, as a user builds it, opened by the fake's main key."""
    async with AsyncPostal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT) as client:
        yield client


@pytest.fixture
def postal(base_url: str) -> Iterator[Postal]:
    """The SDK's sync client, as a user builds it, opened by the fake's main key."""
    with Postal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT) as client:
        yield client
