"""Serving the fake: uvicorn on a thread, and the ASGI app under other servers."""

from __future__ import annotations

import re
import sys
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
import uvicorn

from postal_sdk.testing import (
    DEFAULT_API_KEY,
    ConnectionDropUnsupportedError,
    DropBeforeProcessing,
    FakePostal,
)

MESSAGE = {"to": ["a@example.org"], "from": "app@example.com", "plain_body": "Hi"}


def test_serve_yields_a_local_url_and_stops_cleanly() -> None:
    fake = FakePostal()

    with fake.serve() as base_url, httpx.Client(base_url=base_url) as http:
        response = http.post(
            "/api/v1/send/message", json=MESSAGE, headers={"X-Server-API-Key": DEFAULT_API_KEY}
        )

    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
    assert response.json()["status"] == "success"
    with pytest.raises(httpx.ConnectError), httpx.Client(base_url=base_url) as http:
        http.get("/")


def test_serve_without_uvicorn_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)

    with pytest.raises(ImportError, match=r"postal-sdk\[testing\]"), FakePostal().serve():
        pass


def test_serve_fails_clearly_when_uvicorn_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing_startup(self: uvicorn.Server, sockets: Any = None) -> None:
        self.should_exit = True  # As uvicorn gives up on a startup failure, without starting.

    monkeypatch.setattr(uvicorn.Server, "startup", failing_startup)

    with pytest.raises(RuntimeError, match="did not start"), FakePostal().serve():
        pass


async def _no_send(message: Any) -> None:
    raise AssertionError(f"nothing should be sent, got {message}")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_asgi_app_completes_the_lifespan_protocol(anyio_backend: str) -> None:
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await FakePostal().asgi_app({"type": "lifespan"}, receive, send)

    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_request_abandoned_before_its_body_ends_is_not_handled(anyio_backend: str) -> None:
    fake = FakePostal()
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.disconnect"},
    ]
    incoming = iter(messages)

    async def receive() -> dict[str, Any]:
        return next(incoming)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/send/message", "headers": []}
    await fake.asgi_app(scope, receive, _no_send)

    assert fake.requests == ()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_other_asgi_servers_get_a_clear_error_for_dropping_faults(
    anyio_backend: str,
) -> None:
    fake = FakePostal()
    fake.add_fault(DropBeforeProcessing())
    transport = httpx.ASGITransport(app=fake.asgi_app)

    async with httpx.AsyncClient(transport=transport, base_url="http://postal") as http:
        with pytest.raises(ConnectionDropUnsupportedError, match="uvicorn"):
            await http.post("/api/v1/send/message", json=MESSAGE)

    assert fake.requests[0].fault == DropBeforeProcessing()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_asgi_app_answers_under_any_asgi_server(anyio_backend: str) -> None:
    transport = httpx.ASGITransport(app=FakePostal().asgi_app)

    async with httpx.AsyncClient(transport=transport, base_url="http://postal") as http:
        response = await http.post(
            "/api/v1/send/message?x=1", json=MESSAGE, headers={"X-Server-API-Key": DEFAULT_API_KEY}
        )

    assert response.json()["status"] == "success"
