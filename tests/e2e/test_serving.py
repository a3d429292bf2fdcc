"""The fake's own ways of serving itself, `serve()` and `serve_async()`, with the SDK.

The rest of the end-to-end tests share one uvicorn server (see `conftest.py`); these
start the fake's own, which costs some 200 ms each to stop.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from postal_sdk import AsyncPostal, Postal
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal
from postal_sdk.testing._server import serve_in_thread
from tests.e2e.support import NO_WAIT, message


def test_serve_runs_the_fake_for_the_sync_client() -> None:
    fake = FakePostal()

    with fake.serve() as base_url, Postal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT) as postal:
        sent = postal.send_message(message())
        info = postal.get_message(sent.messages["john@example.org"].id, expansions=["details"])

    assert info.details is not None
    assert info.details.message_id == sent.message_id
    assert [request.endpoint for request in fake.requests] == ["send/message", "messages/message"]


@pytest.mark.anyio
async def test_serve_async_runs_the_fake_for_the_async_client() -> None:
    fake = FakePostal()

    async with (
        fake.serve_async() as base_url,
        AsyncPostal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT) as postal,
    ):
        sent = await postal.send_message(message())
        deliveries = await postal.get_deliveries(sent.messages["john@example.org"].id)

    assert deliveries == []
    assert len(fake.outbox) == 1


def test_the_served_fake_answers_without_waiting_for_a_delayed_ack() -> None:
    """uvicorn writes a reply's head and body separately; without TCP_NODELAY, Nagle holds
    the body back until the client's delayed ACK of the head, some 40 ms later (it did:
    a listener made with protocol 0 kept asyncio from setting it)."""
    nodelay: list[int] = []

    async def probe(scope: Any, receive: Any, send: Any) -> None:
        transport = receive.__self__.transport  # As the fake's connection drops reach it.
        sock = transport.get_extra_info("socket")
        nodelay.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with serve_in_thread(probe, host="127.0.0.1", port=0) as base_url:
        httpx.get(base_url)

    assert nodelay == [1]
