"""One pace and one journal shared: by tasks, by `with_options` copies, by threads."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from postal_sdk import AsyncPostal, BatchAborted, JournalError, Postal, RateLimit, SendResult
from postal_sdk.journal import SQLiteJournal
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal, Latency
from tests.campaign.support import arrivals, assert_paced
from tests.e2e.support import NO_WAIT, message, subjects_sent

RATE = 50


@pytest.fixture
def fake() -> FakePostal:
    return FakePostal()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SQLiteJournal]:
    journal = SQLiteJournal(tmp_path / "sends.db")
    yield journal
    journal.close()


@pytest.fixture
async def http(fake: FakePostal) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=fake.transport()) as client:
        yield client


@pytest.mark.anyio
async def test_tasks_sending_one_key_at_once_send_it_once(
    fake: FakePostal, http: httpx.AsyncClient, journal: SQLiteJournal
) -> None:
    fake.add_fault(Latency(0.2), path="send/message")
    results: list[SendResult] = []
    async with AsyncPostal(
        "http://postal", DEFAULT_API_KEY, http_client=http, journal=journal
    ) as postal:

        async def send() -> None:
            results.append(await postal.send_message(message("once"), idempotency_key="k"))

        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(send)

    assert subjects_sent(fake) == ["once"]
    assert len(results) == 5
    assert len({result.message_id for result in results}) == 1
    assert sorted(result.replayed for result in results) == [False, True, True, True, True]


def test_threads_sending_one_key_at_once_send_it_once(
    fake: FakePostal, journal: SQLiteJournal
) -> None:
    fake.add_fault(Latency(0.2), path="send/message")
    results: list[SendResult] = []
    with (
        httpx.Client(transport=fake.transport()) as http,
        Postal("http://postal", DEFAULT_API_KEY, http_client=http, journal=journal) as postal,
    ):

        def send() -> None:
            results.append(postal.send_message(message("once"), idempotency_key="k"))

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert subjects_sent(fake) == ["once"]
    assert sorted(result.replayed for result in results) == [False, True, True, True]


@pytest.mark.anyio
async def test_copies_and_tasks_share_the_client_pace(
    fake: FakePostal, http: httpx.AsyncClient
) -> None:
    times = arrivals(fake)
    async with AsyncPostal(
        "http://postal", DEFAULT_API_KEY, http_client=http, rate_limit=RateLimit(RATE)
    ) as postal:
        copy = postal.with_options(max_retries=0)

        async def send(client: AsyncPostal) -> None:
            for _ in range(10):
                await client.send_message(message())

        async with anyio.create_task_group() as tasks:
            for client in (postal, copy, postal, copy):
                tasks.start_soon(send, client)

    assert len(times) == 40
    assert_paced(times, RATE)


def test_threads_of_the_sync_client_share_its_pace(fake: FakePostal) -> None:
    times = arrivals(fake)
    with (
        httpx.Client(transport=fake.transport()) as http,
        Postal(
            "http://postal", DEFAULT_API_KEY, http_client=http, rate_limit=RateLimit(RATE)
        ) as postal,
    ):

        def send() -> None:
            for _ in range(10):
                postal.send_message(message())

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(times) == 40
    assert_paced(times, RATE)


def test_the_sync_batch_takes_a_pace_and_keys(fake: FakePostal, journal: SQLiteJournal) -> None:
    # A keyed send claims its key once its slot came: the commit of that claim (a disk
    # flush) comes between the slot and the request, so this pace is slow enough for
    # the slowest flush of a busy machine not to bunch sends.
    rate = 10
    times = arrivals(fake)
    messages = [message(f"m{n}") for n in range(20)]
    with (
        httpx.Client(transport=fake.transport()) as http,
        Postal(
            "http://postal", DEFAULT_API_KEY, http_client=http, backoff=NO_WAIT, journal=journal
        ) as postal,
    ):
        batch = postal.send_many(
            messages, concurrency=8, rate_limit=RateLimit(rate), key=lambda i, m: f"k{i}"
        )
        with batch as outcomes:
            first = list(outcomes)
        with postal.send_many(messages, concurrency=8, key=lambda i, m: f"k{i}") as outcomes:
            again = list(outcomes)

    assert all(o.ok and not o.replayed for o in first)
    assert all(o.ok and o.replayed for o in again)
    assert len(fake.outbox) == 20
    assert_paced(times, rate)


@pytest.mark.anyio
async def test_leaving_a_keyed_batch_early_leaves_only_the_interrupted_keys_in_doubt(
    fake: FakePostal, http: httpx.AsyncClient, journal: SQLiteJournal
) -> None:
    fake.add_fault(Latency(0.05), path="send/message")
    messages = [message(f"m{n}") for n in range(100)]
    async with AsyncPostal(
        "http://postal", DEFAULT_API_KEY, http_client=http, journal=journal
    ) as postal:
        batch = postal.send_many(messages, concurrency=8, key=lambda i, m: f"k{i}")
        async with batch as outcomes:
            async for _ in outcomes:
                break

    interrupted = {f"k{index}" for index, _ in batch.interrupted}
    in_doubt = {entry.key for entry in journal.in_doubt()}
    assert in_doubt
    assert in_doubt <= interrupted
    for key in interrupted - in_doubt:
        assert journal.get(key) is None  # Cancelled before its request: the key is free.
    for index in range(batch.submitted, 100):
        assert journal.get(f"k{index}") is None  # Never taken: never claimed.


@pytest.mark.anyio
async def test_a_pace_that_fails_sends_nothing(fake: FakePostal, http: httpx.AsyncClient) -> None:
    class Unreachable:
        def reserve(self) -> float:
            raise JournalError("the pace's store is unreachable")

        async def async_reserve(self) -> float:
            return self.reserve()

    async with AsyncPostal(
        "http://postal", DEFAULT_API_KEY, http_client=http, rate_limit=Unreachable()
    ) as postal:
        with pytest.raises(JournalError):
            await postal.send_message(message())
        seen = []
        with pytest.raises(BatchAborted) as raised:
            async with postal.send_many([message()] * 20, concurrency=2) as outcomes:
                seen.extend([o async for o in outcomes])

    assert isinstance(raised.value.cause, JournalError)
    assert all(isinstance(outcome.error, JournalError) for outcome in seen)
    assert fake.requests == ()
