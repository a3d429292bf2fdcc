"""`Postal.send_many` on the client's own pool: the async batch, on a private event loop.

Against `FakePostal` served over HTTP, since the batch's own `AsyncPostal` opens real
connections. The same semantics as the async batch, seen from the caller's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from postal_sdk import (
    ClientClosedError,
    Message,
    Postal,
    SendMany,
    SendOutcome,
    SendProgress,
)
from postal_sdk.errors import UnauthenticatedFromAddress
from postal_sdk.testing import FakePostal, Latency
from tests.fanout.support import NO_WAIT

API_KEY = "loop-test-key-0000000001"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakePostal, str]]:
    fake = FakePostal(API_KEY)
    with fake.serve() as base_url:
        yield fake, base_url


@pytest.fixture
def fake(served: tuple[FakePostal, str]) -> Iterator[FakePostal]:
    fake = served[0]
    fake.clear_faults()
    yield fake
    fake.clear_faults()


@pytest.fixture
def postal(served: tuple[FakePostal, str]) -> Iterator[Postal]:
    with Postal(
        served[1], API_KEY, backoff=NO_WAIT, max_concurrency=16, headers={"X-Tenant": "t1"}
    ) as client:
        yield client


def message(number: int, domain: str = "example.com") -> Message:
    return Message(
        from_=f"app@{domain}",
        to=[f"user{number}@example.org"],
        subject=f"loop {number}",
        plain_body="Hello",
    )


def sent_subjects(fake: FakePostal, before: int) -> list[str]:
    return [entry.params["subject"] for entry in fake.outbox[before:]]


def collect(batch: SendMany) -> list[SendOutcome]:
    with batch as outcomes:
        return list(outcomes)


def test_every_message_gets_one_outcome_through_the_clients_options(
    postal: Postal, fake: FakePostal
) -> None:
    before, requests_before = len(fake.outbox), len(fake.requests)
    items = [message(n, "unverified.example" if n == 3 else "example.com") for n in range(40)]

    outcomes = collect(postal.send_many(items, concurrency=8))

    by_index = {outcome.index: outcome for outcome in outcomes}
    assert sorted(by_index) == list(range(40))
    assert isinstance(by_index[3].error, UnauthenticatedFromAddress)
    assert all(by_index[n].ok for n in range(40) if n != 3)
    assert by_index[5].result is not None
    assert "user5@example.org" in by_index[5].result.messages
    assert sorted(sent_subjects(fake, before)) == sorted(f"loop {n}" for n in range(40) if n != 3)
    assert {request.headers["X-Tenant"] for request in fake.requests[requests_before:]} == {"t1"}


def test_ordered_outcomes_come_in_input_order(postal: Postal, fake: FakePostal) -> None:
    fake.add_fault(Latency(0.2), path="send/message", times=1)

    outcomes = collect(postal.send_many([message(n) for n in range(12)], ordered=True))

    assert [outcome.index for outcome in outcomes] == list(range(12))


def test_the_input_is_read_in_the_callers_thread_a_little_ahead(postal: Postal) -> None:
    taken: list[threading.Thread] = []

    def endless() -> Iterator[Message]:
        number = 0
        while True:
            taken.append(threading.current_thread())
            yield message(number)
            number += 1

    batch = postal.send_many(endless(), concurrency=4)
    with batch as outcomes:
        for _ in outcomes:
            break

    assert set(taken) == {threading.current_thread()}
    # At most the async window (2 x concurrency), plus what was handed over and not taken.
    assert batch.submitted <= len(taken) <= 3 * 4


def test_breaking_out_stops_the_batch_and_accounts_for_every_message_taken(
    postal: Postal, fake: FakePostal
) -> None:
    before = len(fake.outbox)
    fake.add_fault(Latency(0.3), path="send/message")

    batch = postal.send_many([message(n) for n in range(200)], concurrency=4)
    with batch as outcomes:
        first = next(outcomes)
    fake.clear_faults()

    accounted = [
        first.index,
        *(outcome.index for outcome in batch.unreported),
        *(index for index, _ in batch.interrupted),
    ]
    assert sorted(accounted) == list(range(batch.submitted))
    assert batch.submitted < 200
    # Nothing past `submitted` reached Postal: the fake saw at most the messages taken.
    taken_subjects = {f"loop {n}" for n in range(batch.submitted)}
    assert set(sent_subjects(fake, before)) <= taken_subjects


def test_an_outcome_reaches_the_caller_while_another_send_is_still_under_way(
    postal: Postal, fake: FakePostal
) -> None:
    # The loop thread hands outcomes over in batches: a batch must not wait for a send
    # that is still under way (here, held far longer than the test takes).
    fake.add_fault(Latency(60), path="send/message", times=1)

    batch = postal.send_many([message(0), message(1)], concurrency=4)
    with batch as outcomes:
        first = next(outcomes)
    fake.clear_faults()

    assert first.ok
    assert [index for index, _ in batch.interrupted] == [1 - first.index]
    assert batch.unreported == ()


def test_an_input_that_raises_ends_the_loop_after_the_sends_under_way(postal: Postal) -> None:
    def broken() -> Iterator[Message]:
        yield from (message(n) for n in range(5))
        raise LookupError("the input broke")

    seen: list[SendOutcome] = []
    with pytest.raises(LookupError, match="the input broke"), postal.send_many(broken()) as batch:
        seen.extend(batch)

    assert sorted(outcome.index for outcome in seen) == list(range(5))


def test_the_progress_hook_runs_in_the_callers_thread_with_the_counts(postal: Postal) -> None:
    seen: list[tuple[SendProgress, threading.Thread]] = []
    items = [message(0), message(1, "unverified.example"), message(2)]

    def hook(progress: SendProgress) -> None:
        seen.append((progress, threading.current_thread()))

    collect(postal.send_many(items, concurrency=1, on_progress=hook))

    assert [(p.succeeded, p.failed) for p, _ in seen] == [(1, 0), (1, 1), (2, 1)]
    assert {thread for _, thread in seen} == {threading.current_thread()}


def test_a_progress_hook_that_raises_ends_the_batch_and_keeps_the_outcome(
    postal: Postal,
) -> None:
    def hook(progress: SendProgress) -> None:
        raise RuntimeError("progress bar broke")

    batch = postal.send_many([message(0)], on_progress=hook)
    with pytest.raises(RuntimeError, match="progress bar broke"):
        collect(batch)

    assert [outcome.index for outcome in batch.unreported] == [0]


def test_a_client_closed_mid_batch_fails_the_sends_not_yet_made(
    postal: Postal, fake: FakePostal
) -> None:
    outcomes: list[SendOutcome] = []
    with postal.send_many([message(n) for n in range(30)], concurrency=2) as batch:
        for outcome in batch:
            outcomes.append(outcome)
            if len(outcomes) == 1:
                postal.close()

    assert len(outcomes) == 30
    assert isinstance(outcomes[-1].error, ClientClosedError)


def test_a_closed_client_refuses_to_start_a_batch(postal: Postal) -> None:
    postal.close()

    with pytest.raises(ClientClosedError):
        collect(postal.send_many([message(0)]))


def test_every_batch_stops_its_event_loop_thread(postal: Postal, fake: FakePostal) -> None:
    threads_before = set(threading.enumerate())
    # Replies late enough that every connection is open when the batch is cut off: on
    # Python 3.11, cancelling asyncio's happy-eyeballs connect can leak its socket.
    fake.add_fault(Latency(0.1), path="send/message")

    for _ in range(3):
        collect(postal.send_many([message(0), message(1)]))
        with postal.send_many([message(n) for n in range(50)]) as outcomes:
            next(outcomes)

    assert set(threading.enumerate()) <= threads_before
