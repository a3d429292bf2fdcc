"""How many requests a client has in flight, seen from the server's side.

The served app counts the requests it is handling at once (see `conftest.py`), and a
`Latency` fault keeps each one busy long enough for a client's limit to fill up. Written
by hand, async and sync: tasks and threads are not generated from each other.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from postal_sdk import AsyncPostal, Postal, SendResult
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal, Latency
from tests.e2e.conftest import ServedFake
from tests.e2e.support import NO_WAIT, message

LIMIT = 4
BUSY = Latency(0.05)


@pytest.mark.anyio
async def test_callers_sharing_a_client_never_have_more_than_max_concurrency_in_flight(
    base_url: str, fake: FakePostal, server: ServedFake
) -> None:
    fake.add_fault(BUSY)
    postal = AsyncPostal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT, max_concurrency=LIMIT)
    copy = postal.with_options(max_retries=0)  # Shares the original's limit.

    async with postal, anyio.create_task_group() as tasks:
        for n in range(16):
            tasks.start_soon((copy if n % 2 else postal).send_message, message(f"m{n}"))

    assert server.peak_in_flight == LIMIT
    assert len(fake.outbox) == 16


@pytest.mark.anyio
async def test_send_many_keeps_to_its_concurrency_within_the_clients_limit(
    base_url: str, fake: FakePostal, server: ServedFake
) -> None:
    fake.add_fault(BUSY)
    postal = AsyncPostal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT, max_concurrency=LIMIT)

    async with postal:
        async with postal.send_many([message(f"a{n}") for n in range(12)], concurrency=3) as batch:
            ok = [outcome.ok async for outcome in batch]
        peak_of_three = server.peak_in_flight
        server.count_afresh()
        async with postal.send_many([message(f"b{n}") for n in range(12)], concurrency=50) as batch:
            assert batch.concurrency == LIMIT
            ok += [outcome.ok async for outcome in batch]

    assert (peak_of_three, server.peak_in_flight) == (3, LIMIT)
    assert ok == [True] * 24


def test_threads_sharing_a_sync_client_never_have_more_than_max_concurrency_in_flight(
    base_url: str, fake: FakePostal, server: ServedFake
) -> None:
    fake.add_fault(BUSY)

    def send(n: int) -> SendResult:
        return postal.send_message(message(f"m{n}"))

    with (
        Postal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT, max_concurrency=LIMIT) as postal,
        ThreadPoolExecutor(max_workers=12) as pool,
    ):
        results = list(pool.map(send, range(16)))

    assert server.peak_in_flight == LIMIT
    assert len({result.message_id for result in results}) == 16
    assert len(fake.outbox) == 16


def test_sync_send_many_keeps_to_its_concurrency_within_the_clients_limit(
    base_url: str, fake: FakePostal, server: ServedFake
) -> None:
    fake.add_fault(BUSY)

    with Postal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT, max_concurrency=LIMIT) as postal:
        with postal.send_many([message(f"a{n}") for n in range(12)], concurrency=3) as batch:
            ok = [outcome.ok for outcome in batch]
        peak_of_three = server.peak_in_flight
        server.count_afresh()
        with postal.send_many([message(f"b{n}") for n in range(12)], concurrency=50) as batch:
            assert batch.concurrency == LIMIT
            ok += [outcome.ok for outcome in batch]

    assert (peak_of_three, server.peak_in_flight) == (3, LIMIT)
    assert ok == [True] * 24
