"""The fake is shared between a test's threads and the server's thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from postal_sdk.testing import DEFAULT_API_KEY, FakePostal

MESSAGE = {"to": ["a@example.org", "b@example.org"], "from": "app@example.com", "plain_body": "Hi"}


def _send_many(client_kwargs: dict[str, Any], count: int) -> list[int]:
    headers = {"X-Server-API-Key": DEFAULT_API_KEY}
    ids: list[int] = []
    with httpx.Client(headers=headers, **client_kwargs) as http:
        for _ in range(count):
            reply = http.post("/api/v1/send/message", json=MESSAGE).json()
            ids.extend(message["id"] for message in reply["data"]["messages"].values())
    return ids


def test_concurrent_sends_get_unique_ids_and_are_all_recorded(
    fake: FakePostal, client_kwargs: dict[str, Any]
) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        batches = list(pool.map(lambda _: _send_many(client_kwargs, 10), range(8)))

    ids = sorted(message_id for batch in batches for message_id in batch)
    assert ids == list(range(1, 161))
    assert len(fake.outbox) == 80
    assert len(fake.requests) == 80


def test_scripting_while_requests_are_served_loses_no_event(
    fake: FakePostal, client_kwargs: dict[str, Any]
) -> None:
    _send_many(client_kwargs, 5)

    def script(message_id: int) -> None:
        for _ in range(10):
            fake.deliver(message_id, "SoftFail")
            fake.load(message_id)

    with ThreadPoolExecutor(max_workers=4) as pool:
        lookups = pool.submit(_send_many, client_kwargs, 10)
        list(pool.map(script, [1, 2, 3]))
        lookups.result()

    assert [len(fake.message(message_id).deliveries) for message_id in (1, 2, 3)] == [10, 10, 10]
    assert [len(fake.message(message_id).loads) for message_id in (1, 2, 3)] == [10, 10, 10]
    delivery_ids = [
        delivery.id for message_id in (1, 2, 3) for delivery in fake.message(message_id).deliveries
    ]
    assert sorted(delivery_ids) == list(range(1, 31))
