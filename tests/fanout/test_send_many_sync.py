"""`Postal.send_many` with the caller's own `httpx.Client`: its requests run in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from postal_sdk import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    Postal,
    SendMany,
    SendOutcome,
    SendProgress,
    testing,
)
from postal_sdk.errors import NoRecipients
from tests.fanout.support import (
    API_KEY,
    BASE_URL,
    DROP,
    OK,
    REJECT,
    SLOW,
    FakePostal,
    message,
    raw_message,
)


def collect(batch: SendMany, into: list[SendOutcome] | None = None) -> list[SendOutcome]:
    """Every outcome of `batch`, also appended to `into` as they come (kept if it raises)."""
    seen = [] if into is None else into
    with batch as outcomes:
        seen.extend(outcomes)
    return seen


def test_every_message_gets_one_outcome_with_its_result_or_error(
    postal: Postal, fake: FakePostal
) -> None:
    items: list[object] = [
        message(OK, 0),
        message(REJECT, 1),
        "not a message",
        message(DROP, 3),
        raw_message(4),
    ]

    outcomes = collect(postal.send_many(items, concurrency=3))  # type: ignore[arg-type]

    by_index = {outcome.index: outcome for outcome in outcomes}
    assert sorted(by_index) == list(range(5))
    assert [by_index[i].ok for i in range(5)] == [True, False, False, False, True]
    assert isinstance(by_index[1].error, NoRecipients)
    assert isinstance(by_index[2].error, InvalidArgumentTypeError)
    assert isinstance(by_index[3].error, APIConnectionError)
    assert fake.received.count(DROP) == 1
    assert len(fake.received) == 4


def test_in_flight_sends_never_exceed_the_concurrency(postal: Postal, fake: FakePostal) -> None:
    fake.hold_seconds = 0.005

    outcomes = collect(postal.send_many([message()] * 30, concurrency=4))

    assert len(outcomes) == 30
    assert fake.max_in_flight == 4


def test_outcomes_come_in_input_order_when_ordered(postal: Postal, fake: FakePostal) -> None:
    fake.slow_seconds = 0.03
    items = [message(SLOW if n % 3 == 0 else OK, n) for n in range(10)]

    outcomes = collect(postal.send_many(items, concurrency=4, ordered=True))

    assert [outcome.index for outcome in outcomes] == list(range(10))


def test_outcomes_come_in_completion_order_by_default(postal: Postal, fake: FakePostal) -> None:
    fake.slow_seconds = 0.1
    items = [message(SLOW, 0), *(message(OK, n) for n in range(1, 4))]

    outcomes = collect(postal.send_many(items, concurrency=4))

    assert outcomes[-1].index == 0


def test_messages_are_taken_lazily_in_the_callers_thread(postal: Postal) -> None:
    taken: list[threading.Thread] = []

    def endless() -> Iterator[object]:
        while True:
            taken.append(threading.current_thread())
            yield message()

    batch = postal.send_many(endless(), concurrency=3)  # type: ignore[arg-type]
    with batch as outcomes:
        for _ in outcomes:
            break

    # At most the async window (2 x concurrency), plus what was handed over and not taken.
    assert batch.submitted <= len(taken) <= 3 * 3
    assert set(taken) == {threading.current_thread()}


def test_an_input_that_raises_ends_the_batch_after_the_sends_under_way(
    postal: Postal, fake: FakePostal
) -> None:
    fake.hold_seconds = 0.01

    def broken() -> Iterator[object]:
        yield from (message(number=n) for n in range(5))
        raise LookupError("the input broke")

    seen: list[SendOutcome] = []
    batch = postal.send_many(broken(), concurrency=3)  # type: ignore[arg-type]
    with pytest.raises(LookupError, match="the input broke"):
        collect(batch, into=seen)

    assert sorted(outcome.index for outcome in seen) == list(range(5))


def test_breaking_out_waits_for_the_sends_under_way_and_keeps_their_outcomes(
    postal: Postal, fake: FakePostal
) -> None:
    fake.slow_seconds = 0.05
    items = [message(OK, 0), *(message(SLOW, n) for n in range(1, 40))]

    batch = postal.send_many(items, concurrency=4)
    with batch as outcomes:
        first = next(outcomes)

    assert first.index == 0
    assert fake.in_flight == 0
    # Every request that reached Postal was awaited and its outcome kept; a message taken
    # whose request had not started yet when the block ended is interrupted, never sent.
    reported = sorted([first.index, *(outcome.index for outcome in batch.unreported)])
    assert sorted(fake.recipients) == sorted(f"user{index}@example.com" for index in reported)
    interrupted = [index for index, _ in batch.interrupted]
    assert sorted(reported + interrupted) == list(range(batch.submitted))


def test_breaking_out_cancels_the_sends_taken_but_not_started_and_lists_them_interrupted(
    postal: Postal, fake: FakePostal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a loaded machine the event loop may take a message and only later start its
    # request in a worker thread: here the third and later requests never get there.
    run_sync = anyio.to_thread.run_sync
    started = 0
    held = threading.Event()

    async def hold_after_two(func: Callable[[], object], **kwargs: Any) -> object:
        nonlocal started
        started += 1
        if started > 2:
            if started == 4:
                held.set()
            await anyio.sleep_forever()
        return await run_sync(func, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", hold_after_two)
    items = [message(OK, n) for n in range(10)]

    batch = postal.send_many(items, concurrency=2)
    with batch as outcomes:
        yielded = [next(outcomes), next(outcomes)]
        assert held.wait(timeout=30)

    assert sorted(outcome.index for outcome in yielded) == [0, 1]
    assert batch.unreported == ()
    assert batch.interrupted == ((2, items[2]), (3, items[3]))
    assert batch.submitted == 4
    assert sorted(fake.recipients) == ["user0@example.com", "user1@example.com"]


def test_unread_ordered_outcomes_are_kept_as_unreported_in_order(
    postal: Postal, fake: FakePostal
) -> None:
    fake.slow_seconds = 0.05
    batch = postal.send_many(
        [message(SLOW, 0), message(OK, 1), message(OK, 2)], concurrency=3, ordered=True
    )
    with batch as outcomes:
        assert next(outcomes).index == 0

    assert [outcome.index for outcome in batch.unreported] == [1, 2]


def test_the_progress_hook_sees_the_counts_after_each_outcome(postal: Postal) -> None:
    seen: list[SendProgress] = []
    items = [message(OK, 0), message(REJECT, 1), message(OK, 2)]

    collect(postal.send_many(items, concurrency=1, on_progress=seen.append))

    assert [(p.succeeded, p.failed) for p in seen] == [(1, 0), (1, 1), (2, 1)]


def test_a_progress_hook_that_raises_ends_the_batch_and_keeps_the_outcome(
    postal: Postal,
) -> None:
    def hook(progress: SendProgress) -> None:
        raise RuntimeError("progress bar broke")

    batch = postal.send_many([message()], on_progress=hook)
    with pytest.raises(RuntimeError, match="progress bar broke"):
        collect(batch)
    assert [outcome.index for outcome in batch.unreported] == [0]


def test_a_fatal_error_in_the_callers_http_client_reaches_the_caller(fake: FakePostal) -> None:
    class Fatal(BaseException):
        pass

    def explode(request: httpx.Request) -> httpx.Response:
        raise Fatal

    with (
        httpx.Client(transport=httpx.MockTransport(explode)) as http,
        Postal(BASE_URL, API_KEY, http_client=http) as postal,
        pytest.raises(Fatal),
    ):
        collect(postal.send_many([message()]))


def test_requests_go_through_the_callers_http_client_with_its_defaults(fake: FakePostal) -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return fake._handle_sync(request)

    with (
        httpx.Client(
            transport=httpx.MockTransport(record), headers={"X-From-Http-Client": "yes"}
        ) as http,
        Postal(BASE_URL, API_KEY, http_client=http, headers={"X-From-Postal": "yes"}) as postal,
    ):
        outcomes = collect(postal.send_many([message(number=n) for n in range(5)]))

    assert all(outcome.ok for outcome in outcomes)
    assert len(seen) == 5
    for request in seen:
        assert request.headers["X-From-Http-Client"] == "yes"
        assert request.headers["X-From-Postal"] == "yes"
        assert request.headers["X-Server-API-Key"] == API_KEY


def test_a_concurrency_below_one_is_refused_at_the_call(postal: Postal) -> None:
    with pytest.raises(InvalidArgumentError, match="concurrency"):
        postal.send_many([message()], concurrency=0)


def test_an_async_iterable_is_refused_by_the_sync_client(postal: Postal) -> None:
    async def generate() -> object:
        yield message()

    with pytest.raises(InvalidArgumentTypeError, match="an iterable of messages"):
        postal.send_many(generate())  # type: ignore[arg-type]


def test_iterating_outside_the_block_is_an_error(postal: Postal) -> None:
    batch = postal.send_many([message()])
    with pytest.raises(RuntimeError, match="inside its block"):
        next(batch)
    collect(batch)
    with pytest.raises(RuntimeError, match="only once"):
        collect(batch)


def test_a_closed_client_refuses_to_start_a_batch(postal: Postal) -> None:
    postal.close()
    with pytest.raises(ClientClosedError):
        collect(postal.send_many([message()]))


def test_the_clients_timeout_applies_through_the_callers_http_client() -> None:
    fake = testing.FakePostal()
    fake.add_fault(testing.Latency(0.5), path="send/message", times=1)
    with (
        httpx.Client(transport=fake.transport()) as http,
        Postal(
            "http://postal.test",
            testing.DEFAULT_API_KEY,
            http_client=http,
            timeout=0.1,
            max_retries=0,
        ) as postal,
    ):
        # One at a time: the slow reply is the first request's, so message 0's.
        batch = postal.send_many(
            [message(number=0), message(number=1)], concurrency=1, ordered=True
        )
        outcomes = collect(batch)

    assert isinstance(outcomes[0].error, APITimeoutError)
    assert outcomes[1].ok
