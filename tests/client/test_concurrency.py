"""The client-wide limit on requests in flight holds across every caller."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from postal_sdk import AsyncPostal, Postal
from postal_sdk.webhooks import jwks_document, sign_webhook_body
from tests.client.support import API_KEY, BASE_URL, envelope


class InFlight:
    """Counts requests in flight at the server side of a mock transport."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


@pytest.mark.anyio
async def test_requests_in_flight_never_exceed_max_concurrency() -> None:
    counter = InFlight()

    async def handler(request: httpx.Request) -> httpx.Response:
        counter.enter()
        await anyio.sleep(0.01)
        counter.leave()
        return httpx.Response(200, json=envelope([]))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with http, AsyncPostal(BASE_URL, API_KEY, max_concurrency=3, http_client=http) as client:
        copy = client.with_options(max_retries=0)
        async with anyio.create_task_group() as group:
            for number in range(30):
                group.start_soon((client if number % 2 else copy).get_deliveries, 1)
    assert counter.peak == 3


def test_sync_requests_in_flight_never_exceed_max_concurrency() -> None:
    counter = InFlight()

    def handler(request: httpx.Request) -> httpx.Response:
        counter.enter()
        time.sleep(0.01)
        counter.leave()
        return httpx.Response(200, json=envelope([]))

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = Postal(BASE_URL, API_KEY, max_concurrency=2, http_client=http)
    with http, client, ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: client.get_deliveries(1), range(24)))
    assert counter.peak == 2
    assert client.max_concurrency == 2


@pytest.mark.anyio
async def test_concurrent_webhooks_fetch_the_keys_once_and_refetch_once_after_rotation(
    signing_keys: list[rsa.RSAPrivateKey],
) -> None:
    old, new, _ = signing_keys
    served = [old]
    fetches = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal fetches
        fetches += 1
        await anyio.sleep(0.01)  # every waiting verifier queues behind the first fetch
        return httpx.Response(200, json=jwks_document(served[0].public_key()))

    body = b'{"event":"Unknown","timestamp":1,"uuid":"u","payload":{}}'
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with http, AsyncPostal(BASE_URL, API_KEY, http_client=http) as client:
        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(client.verify_webhook, body, sign_webhook_body(body, old))
        served[0] = new
        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(client.verify_webhook, body, sign_webhook_body(body, new))
    assert fetches == 2
