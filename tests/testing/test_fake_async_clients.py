"""Async clients, under asyncio and trio: the transport and the served fake."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from postal_sdk.testing import (
    DEFAULT_API_KEY,
    DropAfterProcessing,
    FakePostal,
    IncompleteBody,
    Latency,
)

pytestmark = pytest.mark.anyio
HEADERS = {"X-Server-API-Key": DEFAULT_API_KEY}
MESSAGE = {"to": ["a@example.org"], "from": "app@example.com", "plain_body": "Hi"}


async def test_an_async_client_sends_and_looks_up_through_the_transport() -> None:
    fake = FakePostal()
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url="http://postal", headers=HEADERS
    ) as http:
        sent = (await http.post("/api/v1/send/message", json=MESSAGE)).json()
        message_id = sent["data"]["messages"]["a@example.org"]["id"]
        found = await http.post("/api/v1/messages/message", json={"id": message_id})

    assert found.json()["data"]["token"] == sent["data"]["messages"]["a@example.org"]["token"]


async def test_latency_does_not_block_the_event_loop() -> None:
    fake = FakePostal()
    fake.add_fault(Latency(0.3))
    started = time.monotonic()

    async with (
        httpx.AsyncClient(transport=fake.transport(), base_url="http://p") as http,
        anyio.create_task_group() as group,
    ):
        for _ in range(5):
            group.start_soon(_send, http)

    assert time.monotonic() - started < 1.0
    assert len(fake.outbox) == 5


async def test_latency_beyond_the_read_timeout_raises_read_timeout() -> None:
    fake = FakePostal()
    fake.add_fault(Latency(5), times=1)

    async with httpx.AsyncClient(
        transport=fake.transport(), base_url="http://p", headers=HEADERS, timeout=0.05
    ) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/api/v1/send/message", json=MESSAGE)

    assert len(fake.outbox) == 1


async def test_connection_faults_raise_what_a_network_would() -> None:
    fake = FakePostal()
    fake.add_fault(DropAfterProcessing(), times=1)
    fake.add_fault(IncompleteBody(), times=1)

    async with httpx.AsyncClient(
        transport=fake.transport(), base_url="http://p", headers=HEADERS
    ) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await http.post("/api/v1/send/message", json=MESSAGE)
        with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
            await http.post("/api/v1/send/message", json=MESSAGE)

    assert len(fake.outbox) == 2


async def test_serve_async_serves_over_http_without_blocking_the_loop() -> None:
    fake = FakePostal()

    fake.add_fault(Latency(0.3))

    async with fake.serve_async() as base_url, httpx.AsyncClient(base_url=base_url) as http:
        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(_send, http)
        elapsed = time.monotonic() - started

    assert 0.3 <= elapsed < 0.8
    assert len(fake.outbox) == 3
    assert all(request.status_code == 200 for request in fake.requests)


async def _send(http: httpx.AsyncClient) -> None:
    await http.post("/api/v1/send/message", json=MESSAGE, headers=HEADERS)
