"""`AsyncPostal.send_many`: one outcome per input, bounded, cancellable, on asyncio and trio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.lowlevel
import pytest

from postal_sdk import (
    APIConnectionError,
    AsyncPostal,
    AsyncSendMany,
    ClientClosedError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    SendOutcome,
    SendProgress,
)
from postal_sdk.errors import NoRecipients
from tests.fanout.support import DROP, OK, REJECT, SLOW, FakePostal, message, raw_message

pytestmark = pytest.mark.anyio


async def collect(batch: AsyncSendMany, into: list[SendOutcome] | None = None) -> list[SendOutcome]:
    """Every outcome of `batch`, also appended to `into` as they come (kept if it raises)."""
    seen = [] if into is None else into
    async with batch as outcomes:
        async for outcome in outcomes:
            seen.append(outcome)
    return seen


async def test_every_message_gets_one_outcome_with_its_result_or_error(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    subjects = [OK, REJECT, OK, DROP, OK]
    items = [message(subject, number) for number, subject in enumerate(subjects)]

    outcomes = await collect(async_postal.send_many([*items, raw_message(5)], concurrency=3))

    by_index = {outcome.index: outcome for outcome in outcomes}
    assert sorted(by_index) == list(range(6))
    assert [by_index[i].ok for i in range(6)] == [True, False, True, False, True, True]
    assert isinstance(by_index[1].error, NoRecipients)
    assert isinstance(by_index[3].error, APIConnectionError)
    assert by_index[0].result is not None
    assert by_index[0].result.messages["user0@example.com"].id > 0
    assert by_index[5].message == raw_message(5)
    assert all(by_index[i].message is items[i] for i in range(5))
    # The dropped send reached the server once and was not repeated.
    assert fake.received.count(DROP) == 1


async def test_a_non_message_item_is_an_error_outcome_and_the_batch_goes_on(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    items: list[object] = [message(number=0), "not a message", message(number=2)]

    outcomes = await collect(async_postal.send_many(items, ordered=True))  # type: ignore[arg-type]

    assert [outcome.ok for outcome in outcomes] == [True, False, True]
    error = outcomes[1].error
    assert isinstance(error, InvalidArgumentTypeError)
    assert error.argument == "messages[1]"
    assert outcomes[1].message == "not a message"
    assert len(fake.received) == 2


async def test_in_flight_sends_never_exceed_the_concurrency(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    fake.hold_seconds = 0.002

    outcomes = await collect(async_postal.send_many([message()] * 40, concurrency=5))

    assert len(outcomes) == 40
    assert fake.max_in_flight == 5


async def test_concurrency_is_capped_at_the_clients_max_concurrency(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    fake.hold_seconds = 0.002
    batch = async_postal.send_many([message()] * 40, concurrency=1000)

    outcomes = await collect(batch)

    assert batch.concurrency == async_postal.max_concurrency == 16
    assert len(outcomes) == 40
    assert fake.max_in_flight == 16


async def test_outcomes_come_in_completion_order_by_default(
    async_postal: AsyncPostal,
) -> None:
    items = [message(SLOW, 0), *(message(OK, n) for n in range(1, 4))]

    outcomes = await collect(async_postal.send_many(items, concurrency=4))

    assert [outcome.index for outcome in outcomes][-1] == 0


async def test_outcomes_come_in_input_order_when_ordered(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    fake.slow_seconds = 0.05
    items = [message(SLOW if n % 3 == 0 else OK, n) for n in range(12)]

    outcomes = await collect(async_postal.send_many(items, concurrency=4, ordered=True))

    assert [outcome.index for outcome in outcomes] == list(range(12))


async def test_messages_are_taken_lazily_within_twice_the_concurrency(
    async_postal: AsyncPostal,
) -> None:
    taken = 0

    def endless() -> Iterator[object]:
        nonlocal taken
        while True:
            taken += 1
            yield message()

    batch = async_postal.send_many(endless(), concurrency=3)  # type: ignore[arg-type]
    async with batch as outcomes:
        async for _ in outcomes:
            await anyio.sleep(0.01)  # a slow consumer: the sending must wait for it
            break

    assert batch.submitted == taken <= 2 * 3 + 1


async def test_an_async_iterable_is_taken_one_item_at_a_time(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    fake.hold_seconds = 0.001

    async def generate() -> AsyncIterator[object]:
        for number in range(20):
            await anyio.lowlevel.checkpoint()
            yield message(number=number)

    outcomes = await collect(async_postal.send_many(generate(), concurrency=4))  # type: ignore[arg-type]

    assert sorted(outcome.index for outcome in outcomes) == list(range(20))
    assert all(outcome.ok for outcome in outcomes)


async def test_an_unfinished_async_generator_input_is_closed_when_the_batch_ends(
    async_postal: AsyncPostal,
) -> None:
    closed = anyio.Event()

    async def generate() -> AsyncIterator[object]:
        try:
            while True:
                yield message()
        finally:
            closed.set()

    async with async_postal.send_many(generate(), concurrency=2) as outcomes:  # type: ignore[arg-type]
        async for _ in outcomes:
            break

    assert closed.is_set()


async def test_an_input_that_raises_ends_the_batch_after_the_sends_under_way(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    fake.hold_seconds = 0.01

    def broken() -> Iterator[object]:
        yield from (message(number=n) for n in range(5))
        raise LookupError("the input broke")

    seen: list[SendOutcome] = []
    batch = async_postal.send_many(broken(), concurrency=3)  # type: ignore[arg-type]
    with pytest.raises(LookupError, match="the input broke"):
        await collect(batch, into=seen)

    assert sorted(outcome.index for outcome in seen) == list(range(5))
    assert len(fake.received) == 5


async def test_an_async_input_that_raises_ends_the_batch_the_same_way(
    async_postal: AsyncPostal,
) -> None:
    async def broken() -> AsyncIterator[object]:
        yield message()
        raise LookupError("the input broke")

    seen: list[SendOutcome] = []
    batch = async_postal.send_many(broken(), concurrency=2)  # type: ignore[arg-type]
    with pytest.raises(LookupError):
        await collect(batch, into=seen)
    assert [outcome.index for outcome in seen] == [0]


async def test_breaking_out_stops_sending_and_accounts_for_every_message_taken(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    fake.slow_seconds = 5.0
    items = [message(OK, 0), *(message(SLOW, n) for n in range(1, 50))]

    batch = async_postal.send_many(items, concurrency=4)
    with anyio.fail_after(2):
        async with batch as outcomes:
            async for outcome in outcomes:
                first = outcome
                break
    sent_by_then = len(fake.received)
    await anyio.sleep(0.05)

    assert first.index == 0
    assert len(fake.received) == sent_by_then <= batch.submitted
    # Whatever was taken is yielded or interrupted (maybe sent): nothing else.
    interrupted = [index for index, _ in batch.interrupted]
    assert sorted([first.index, *interrupted]) == list(range(batch.submitted))
    assert len(interrupted) == 4
    assert batch.unreported == ()
    assert fake.in_flight == 0


async def test_unread_outcomes_are_kept_as_unreported(
    async_postal: AsyncPostal,
) -> None:
    batch = async_postal.send_many([message(number=n) for n in range(3)], concurrency=3)
    async with batch:
        await anyio.sleep(0.05)

    assert sorted(outcome.index for outcome in batch.unreported) == [0, 1, 2]
    assert batch.interrupted == ()


async def test_unread_ordered_outcomes_are_kept_as_unreported_in_order(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    fake.slow_seconds = 5.0
    batch = async_postal.send_many(
        [message(SLOW, 0), message(OK, 1), message(OK, 2)], concurrency=3, ordered=True
    )
    with anyio.move_on_after(0.1):
        async with batch as outcomes:
            async for _ in outcomes:
                pytest.fail("the first message is still under way")

    assert [outcome.index for outcome in batch.unreported] == [1, 2]
    assert [index for index, _ in batch.interrupted] == [0]


async def test_cancellation_from_outside_ends_the_batch_quietly(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    fake.slow_seconds = 5.0
    batch = async_postal.send_many([message(SLOW, n) for n in range(10)], concurrency=2)

    with anyio.move_on_after(0.05) as scope:
        async with batch as outcomes:
            async for _ in outcomes:
                pass

    assert scope.cancelled_caught
    assert len(batch.interrupted) == 2 == batch.submitted
    await anyio.sleep(0.01)
    assert len(fake.received) == 2


async def test_an_exception_in_the_block_comes_out_as_it_is(
    async_postal: AsyncPostal,
) -> None:
    async def fail_on_first_outcome() -> None:
        async with async_postal.send_many([message()] * 5) as outcomes:
            async for _ in outcomes:
                raise KeyError("the caller's own")

    with pytest.raises(KeyError):
        await fail_on_first_outcome()


async def test_the_progress_hook_sees_the_counts_after_each_outcome(
    async_postal: AsyncPostal,
) -> None:
    seen: list[SendProgress] = []
    items = [message(OK, 0), message(REJECT, 1), message(OK, 2)]

    await collect(async_postal.send_many(items, concurrency=1, on_progress=seen.append))

    assert [(p.succeeded, p.failed) for p in seen] == [(1, 0), (1, 1), (2, 1)]
    assert [p.completed for p in seen] == [1, 2, 3]
    assert all(p.submitted >= p.completed for p in seen)


async def test_a_progress_hook_that_raises_ends_the_batch_and_keeps_the_outcome(
    async_postal: AsyncPostal,
) -> None:
    def hook(progress: SendProgress) -> None:
        raise RuntimeError("progress bar broke")

    batch = async_postal.send_many([message()], on_progress=hook)
    with pytest.raises(RuntimeError, match="progress bar broke"):
        await collect(batch)
    assert [outcome.index for outcome in batch.unreported] == [0]


@pytest.mark.parametrize("concurrency", [0, -3])
async def test_a_concurrency_below_one_is_refused_at_the_call(
    async_postal: AsyncPostal, concurrency: int
) -> None:
    with pytest.raises(InvalidArgumentError, match="concurrency"):
        async_postal.send_many([message()], concurrency=concurrency)


@pytest.mark.parametrize("concurrency", [True, 2.0, "4"])
async def test_a_concurrency_that_is_not_an_int_is_refused_at_the_call(
    async_postal: AsyncPostal, concurrency: object
) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="concurrency"):
        async_postal.send_many([message()], concurrency=concurrency)  # type: ignore[arg-type]


@pytest.mark.parametrize("messages", ["a string", b"bytes", message(), 42])
async def test_a_source_that_is_not_a_stream_of_messages_is_refused_at_the_call(
    async_postal: AsyncPostal, messages: object
) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="messages"):
        async_postal.send_many(messages)  # type: ignore[arg-type]


async def test_iterating_outside_the_block_is_an_error(async_postal: AsyncPostal) -> None:
    batch = async_postal.send_many([message()])
    with pytest.raises(RuntimeError, match="inside its block"):
        await batch.__anext__()
    await collect(batch)
    with pytest.raises(RuntimeError, match="inside its block"):
        await batch.__anext__()


async def test_a_batch_can_be_entered_only_once(async_postal: AsyncPostal) -> None:
    batch = async_postal.send_many([message()])
    await collect(batch)
    with pytest.raises(RuntimeError, match="only once"):
        await collect(batch)


async def test_a_closed_client_refuses_to_start_a_batch(async_postal: AsyncPostal) -> None:
    await async_postal.aclose()
    with pytest.raises(ClientClosedError):
        await collect(async_postal.send_many([message()]))


async def test_an_empty_input_yields_nothing(async_postal: AsyncPostal) -> None:
    assert await collect(async_postal.send_many([])) == []
