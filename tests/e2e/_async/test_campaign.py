"""Campaign features end to end: idempotency keys, the journal, pacing, stopping early.

Through the uvicorn-served fake over real HTTP, with a `SQLiteJournal` in a temporary
directory. What matters is read from the fake's side: its outbox says what Postal
queued, so "never sent twice" is a count there, not a claim of the client.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from postal_sdk import (
    APIConnectionError,
    AsyncPostal,
    AsyncSendMany,
    AuthenticationError,
    BatchAborted,
    ConfigurationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    JournalError,
    Message,
    RateLimit,
    SendInDoubt,
    SendOutcome,
    ServerSuspended,
    UnexpectedResponseError,
)
from postal_sdk.errors import UnauthenticatedFromAddress
from postal_sdk.journal import EntryState, SQLiteJournal
from postal_sdk.pacing import Pacer
from postal_sdk.testing import (
    DEFAULT_API_KEY,
    DropAfterProcessing,
    FakePostal,
    ServiceUnavailable,
)
from tests.campaign.support import OPENING, CountingPacer, arrivals, assert_paced
from tests.e2e.support import NO_WAIT, message, raw_message, subjects_sent

pytestmark = pytest.mark.anyio

RATE = 50
"""Sends per second in the pacing tests: short tests, and well within what a loaded
machine serves (the fake itself takes about 7 ms a send on a busy 2-core box)."""


async def drain(batch: AsyncSendMany, into: list[SendOutcome] | None = None) -> list[SendOutcome]:
    """Every outcome of a batch, in the order it yielded them (also into `into`)."""
    seen = [] if into is None else into
    async with batch as outcomes:
        async for outcome in outcomes:
            seen.append(outcome)
    return seen


async def aborted(
    base_url: str,
    api_key: str,
    messages: Iterable[Message],
    concurrency: int,
    seen: list[SendOutcome] | None = None,
) -> BatchAborted:
    """The `BatchAborted` that ends a batch of `messages` sent with `api_key`."""
    async with AsyncPostal(base_url, api_key, backoff=NO_WAIT) as postal:
        try:
            await drain(postal.send_many(messages, concurrency=concurrency), seen)
        except BatchAborted as stop:
            return stop
    raise AssertionError("the batch ran to its end")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SQLiteJournal]:
    journal = SQLiteJournal(tmp_path / "sends.db")
    yield journal
    journal.close()


async def test_a_key_sent_once_is_answered_from_the_journal(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=journal) as postal:
        first = await postal.send_message(message("welcome"), idempotency_key="welcome:42")
        again = await postal.send_message(message("welcome"), idempotency_key="welcome:42")

    assert subjects_sent(fake) == ["welcome"]
    assert not first.replayed
    assert again.replayed
    assert again == first


async def test_a_raw_message_key_is_answered_from_the_journal(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=journal) as postal:
        first = await postal.send_raw(raw_message("raw"), idempotency_key="raw:1")
        again = await postal.send_raw(raw_message("raw"), idempotency_key="raw:1")

    assert len(fake.outbox) == 1
    assert again.replayed
    assert again.message_id == first.message_id


async def test_a_key_survives_the_client_and_the_journal_object(
    base_url: str, fake: FakePostal, tmp_path: Path
) -> None:
    path = tmp_path / "sends.db"
    first_journal = SQLiteJournal(path)
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=first_journal) as postal:
        first = await postal.send_message(message("once"), idempotency_key="k")
    first_journal.close()

    second_journal = SQLiteJournal(path)
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=second_journal) as postal:
        again = await postal.send_message(message("once"), idempotency_key="k")
    second_journal.close()

    assert len(fake.outbox) == 1
    assert again.replayed
    assert again.messages == first.messages


async def test_a_send_dropped_after_postal_queued_it_leaves_its_key_in_doubt(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    fake.add_fault(DropAfterProcessing(), path="send/message", times=1)
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=journal) as postal:
        with pytest.raises(APIConnectionError):
            await postal.send_message(message("lost reply"), idempotency_key="k")
        with pytest.raises(SendInDoubt) as raised:
            await postal.send_message(message("lost reply"), idempotency_key="k")

    assert raised.value.key == "k"
    assert "'k'" in str(raised.value)
    assert subjects_sent(fake) == ["lost reply"]
    [entry] = journal.in_doubt()
    assert entry.key == "k"
    assert entry.state is EntryState.IN_DOUBT


async def test_an_in_doubt_key_resolved_as_not_sent_is_sent_again(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    fake.add_fault(DropAfterProcessing(), path="send/message", times=1)
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=journal) as postal:
        with pytest.raises(APIConnectionError):
            await postal.send_message(message("retry me"), idempotency_key="k")
        journal.resolve("k", sent=False)
        result = await postal.send_message(message("retry me"), idempotency_key="k")

    assert not result.replayed
    assert journal.in_doubt() == []
    assert len(fake.outbox) == 2  # The user said the first never went: it is theirs to know.


async def test_an_in_doubt_key_resolved_as_sent_is_replayed_without_sending(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    fake.add_fault(DropAfterProcessing(), path="send/message", times=1)
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=journal) as postal:
        with pytest.raises(APIConnectionError):
            await postal.send_message(message("sent after all"), idempotency_key="k")
        journal.resolve("k", sent=True)
        result = await postal.send_message(message("sent after all"), idempotency_key="k")

    assert result.replayed
    assert result.message_id is None
    assert dict(result.messages) == {}
    assert len(fake.outbox) == 1


async def test_a_message_postal_refused_frees_its_key(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    refused = message("bad from", from_="someone@unverified.example")
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=journal) as postal:
        with pytest.raises(UnauthenticatedFromAddress):
            await postal.send_message(refused, idempotency_key="k")
        assert journal.get("k") is None
        with pytest.raises(UnauthenticatedFromAddress):
            await postal.send_message(refused, idempotency_key="k")

    assert fake.outbox == ()


async def test_a_server_that_cannot_be_reached_frees_the_key(
    closed_port_url: str, journal: SQLiteJournal
) -> None:
    async with AsyncPostal(
        closed_port_url, DEFAULT_API_KEY, backoff=NO_WAIT, journal=journal
    ) as postal:
        with pytest.raises(APIConnectionError):
            await postal.send_message(message("nowhere"), idempotency_key="k")

    assert journal.get("k") is None


async def test_a_5xx_reply_leaves_the_key_in_doubt(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    fake.add_fault(ServiceUnavailable(retry_after=None), path="send/message", times=1)
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=journal) as postal:
        with pytest.raises(UnexpectedResponseError):
            await postal.send_message(message("maybe"), idempotency_key="k")
        with pytest.raises(SendInDoubt):
            await postal.send_message(message("maybe"), idempotency_key="k")


async def test_a_key_reused_for_another_message_is_refused(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=journal) as postal:
        await postal.send_message(message("first"), idempotency_key="k")
        with pytest.raises(InvalidArgumentError, match="different message"):
            await postal.send_message(
                message("first", to=["someone.else@example.org"]), idempotency_key="k"
            )

    assert len(fake.outbox) == 1


async def test_an_idempotency_key_without_a_journal_is_a_configuration_error(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    with pytest.raises(ConfigurationError, match="journal"):
        await async_postal.send_message(message(), idempotency_key="k")
    with pytest.raises(ConfigurationError, match="journal"):
        async_postal.send_many([message()], key=lambda index, m: str(index))
    assert fake.requests == ()


async def test_nothing_is_sent_when_the_intent_cannot_be_recorded(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    journal.close()
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=journal) as postal:
        with pytest.raises(JournalError):
            await postal.send_message(message(), idempotency_key="k")
        seen: list[SendOutcome] = []
        batch = postal.send_many([message()] * 50, concurrency=4, key=lambda i, m: f"k{i}")
        with pytest.raises(BatchAborted) as raised:
            await drain(batch, seen)

    # Every later keyed send would fail the same way: the batch stops after the first.
    assert isinstance(raised.value.cause, JournalError)
    assert len(seen) == raised.value.submitted <= 8
    assert all(isinstance(outcome.error, JournalError) for outcome in seen)
    assert fake.requests == ()


async def test_a_batch_rerun_with_the_same_keys_replays_every_message(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    messages = [message(f"m{n}") for n in range(30)]

    def key(index: int, item: object) -> str:
        return f"newsletter:{index}"

    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=journal) as postal:
        async with postal.send_many(messages, concurrency=8, key=key) as outcomes:
            first = {o.index: o async for o in outcomes}
        async with postal.send_many(messages, concurrency=8, key=key) as outcomes:
            again = {o.index: o async for o in outcomes}

    assert len(fake.outbox) == 30
    assert all(o.ok and not o.replayed for o in first.values())
    assert all(o.ok and o.replayed for o in again.values())
    assert {i: o.result for i, o in again.items()} == {i: o.result for i, o in first.items()}


async def test_bad_keys_are_the_outcome_of_their_message_only(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    def key(index: int, item: object) -> str:
        if index == 1:
            raise LookupError("no key for this one")
        if index == 2:
            return 7  # type: ignore[return-value]
        if index == 4:
            return "same"
        return "same" if index == 3 else f"k{index}"

    messages = [message(f"m{n}") for n in range(6)]
    async with AsyncPostal(base_url, DEFAULT_API_KEY, journal=journal) as postal:
        got = {o.index: o for o in await drain(postal.send_many(messages, concurrency=1, key=key))}

    assert isinstance(got[1].error, InvalidArgumentError)
    assert isinstance(got[1].error.__cause__, LookupError)
    assert isinstance(got[2].error, InvalidArgumentTypeError)
    assert isinstance(got[4].error, InvalidArgumentError)
    assert "message 3" in str(got[4].error)
    assert sorted(subjects_sent(fake)) == ["m0", "m3", "m5"]


async def test_a_wrong_api_key_stops_the_batch_after_the_sends_under_way(
    base_url: str, fake: FakePostal
) -> None:
    messages = (message(f"m{n}") for n in range(1000))
    seen: list[SendOutcome] = []
    stop = await aborted(base_url, "wrongKey0123456789abcdEF", messages, 4, seen)

    assert isinstance(stop.cause, AuthenticationError)
    assert 1 <= stop.submitted <= 8
    assert sorted(o.index for o in seen) == list(range(stop.submitted))
    assert len([r for r in fake.requests if r.endpoint == "send/message"]) <= stop.submitted


async def test_a_suspended_server_stops_the_batch(base_url: str, fake: FakePostal) -> None:
    fake.server.suspended = True
    stop = await aborted(base_url, DEFAULT_API_KEY, [message()] * 100, 2)

    assert isinstance(stop.cause, ServerSuspended)
    assert stop.submitted < 100


async def test_a_server_that_cannot_be_reached_stops_the_batch(closed_port_url: str) -> None:
    stop = await aborted(closed_port_url, DEFAULT_API_KEY, [message()] * 2000, 4)

    assert isinstance(stop.cause, APIConnectionError)
    assert stop.submitted <= 8


async def test_one_refused_message_does_not_stop_the_batch(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    messages = [message("m0"), message("bad", from_="x@unverified.example"), message("m2")]
    got = await drain(async_postal.send_many(messages, concurrency=1))

    assert [o.ok for o in got] == [True, False, True]


async def test_the_client_rate_limit_paces_every_send(base_url: str, fake: FakePostal) -> None:
    times = arrivals(fake)
    async with AsyncPostal(
        base_url, DEFAULT_API_KEY, rate_limit=RateLimit(RATE, per="second")
    ) as postal:
        assert all(o.ok for o in await drain(postal.send_many([message()] * 40, concurrency=16)))

    assert len(times) == 40
    assert_paced(times, RATE, opening=OPENING)


async def test_a_batch_rate_limit_applies_within_the_client_one(
    base_url: str, fake: FakePostal
) -> None:
    times = arrivals(fake)
    async with AsyncPostal(
        base_url, DEFAULT_API_KEY, rate_limit=RateLimit(RATE * 4, per="second")
    ) as postal:
        batch = postal.send_many(
            [message()] * 30, concurrency=16, rate_limit=RateLimit(RATE, per="second")
        )
        assert all(o.ok for o in await drain(batch))

    assert_paced(times, RATE, opening=OPENING)


async def test_a_retried_send_takes_one_slot_of_the_pace(base_url: str, fake: FakePostal) -> None:
    counting = CountingPacer()
    assert isinstance(counting, Pacer)
    fake.add_fault(ServiceUnavailable(retry_after=0), path="send/message", times=1)
    async with AsyncPostal(
        base_url, DEFAULT_API_KEY, backoff=NO_WAIT, rate_limit=counting
    ) as postal:
        await postal.send_message(message())

    assert counting.reserved == 1
    assert len([r for r in fake.requests if r.endpoint == "send/message"]) == 2


async def test_a_replayed_key_takes_no_slot_of_the_pace(
    base_url: str, fake: FakePostal, journal: SQLiteJournal
) -> None:
    counting = CountingPacer()
    async with AsyncPostal(
        base_url, DEFAULT_API_KEY, journal=journal, rate_limit=counting
    ) as postal:
        await postal.send_message(message("once"), idempotency_key="k")
        again = await postal.send_message(message("once"), idempotency_key="k")

    assert again.replayed
    assert counting.reserved == 1


def test_a_rate_limit_that_is_not_a_pacer_is_refused() -> None:
    with pytest.raises(InvalidArgumentTypeError, match="rate_limit"):
        AsyncPostal("http://127.0.0.1:1", DEFAULT_API_KEY, rate_limit=600)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="journal"):
        AsyncPostal("http://127.0.0.1:1", DEFAULT_API_KEY, journal="sends.db")  # type: ignore[arg-type]
