"""The outcome invariant of `send_many`, under random failures and random early exits.

Whatever the mix of successes, Postal errors, dropped connections and non-message items,
and wherever the caller stops reading: every message taken from the input is accounted
for exactly once (yielded, unreported or interrupted), none is sent twice, every outcome
yielded or unreported was sent and none beyond those taken is, and a full read yields
every index exactly once, in input order when asked. Through the sync facade with the
caller's own `http_client`, a request that started is always awaited: a send listed as
interrupted was taken but cancelled before its request started, so it never reached Postal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postal_sdk import AsyncPostal, Postal, SendOutcome
from tests.fanout.support import (
    API_KEY,
    BASE_URL,
    DROP,
    NO_WAIT,
    OK,
    REJECT,
    SLOW,
    FakePostal,
    message,
    raw_message,
)

NOT_A_MESSAGE = "not a message"
RAW = "raw"
SUCCEEDS = {OK, SLOW, RAW}

kinds = st.lists(st.sampled_from([OK, SLOW, REJECT, DROP, NOT_A_MESSAGE, RAW]), max_size=24)
stops = st.none() | st.integers(min_value=0, max_value=24)
examples = settings(max_examples=50, deadline=None)


def build(kind_list: list[str]) -> list[object]:
    items: list[object] = []
    for number, kind in enumerate(kind_list):
        if kind == NOT_A_MESSAGE:
            items.append(NOT_A_MESSAGE)
        elif kind == RAW:
            items.append(raw_message(number))
        else:
            items.append(message(kind, number))
    return items


def sent_indexes(fake: FakePostal) -> list[int]:
    """The input index of every request that reached the fake (its recipient tells it)."""
    return [int(recipient.split("@")[0].removeprefix("user")) for recipient in fake.recipients]


def sendable(kind_list: list[str], indexes: Iterable[int]) -> set[int]:
    return {index for index in indexes if kind_list[index] != NOT_A_MESSAGE}


def check_full_read(
    kind_list: list[str], outcomes: list[SendOutcome], sent: list[int], *, ordered: bool
) -> None:
    indexes = [outcome.index for outcome in outcomes]
    assert sorted(indexes) == list(range(len(kind_list)))
    if ordered:
        assert indexes == sorted(indexes)
    for outcome in outcomes:
        assert outcome.ok == (kind_list[outcome.index] in SUCCEEDS)
        assert (outcome.result is None) != (outcome.error is None)
    assert sorted(sent) == sorted(sendable(kind_list, range(len(kind_list))))


def check_early_exit(
    kind_list: list[str],
    yielded: list[SendOutcome],
    unreported: Iterable[SendOutcome],
    interrupted: Iterable[tuple[int, object]],
    submitted: int,
    sent: list[int],
) -> set[int]:
    """Checks the accounting of an early exit; returns the indexes of the reported sends."""
    reported = [*(outcome.index for outcome in yielded), *(outcome.index for outcome in unreported)]
    accounted = [*reported, *(index for index, _ in interrupted)]
    assert sorted(accounted) == list(range(submitted))
    assert len(sent) == len(set(sent))
    reported_sends = sendable(kind_list, reported)
    assert reported_sends <= set(sent) <= sendable(kind_list, range(submitted))
    return reported_sends


@pytest.mark.anyio
@given(
    kind_list=kinds,
    concurrency=st.integers(min_value=1, max_value=6),
    ordered=st.booleans(),
    stop_after=stops,
    as_async_source=st.booleans(),
)
@examples
async def test_every_message_taken_is_accounted_for_exactly_once(
    anyio_backend: str,
    kind_list: list[str],
    concurrency: int,
    ordered: bool,
    stop_after: int | None,
    as_async_source: bool,
) -> None:
    fake = FakePostal()
    fake.slow_seconds = 0.003
    items = build(kind_list)

    async def async_source() -> AsyncIterator[object]:
        for item in items:
            yield item

    source: Any = async_source() if as_async_source else iter(items)
    yielded: list[SendOutcome] = []
    async with (
        fake.async_client() as http,
        AsyncPostal(BASE_URL, API_KEY, backoff=NO_WAIT, http_client=http) as postal,
    ):
        batch = postal.send_many(source, concurrency=concurrency, ordered=ordered)
        async with batch as outcomes:
            if stop_after != 0:
                async for outcome in outcomes:
                    yielded.append(outcome)
                    if len(yielded) == stop_after:
                        break

    if stop_after is None or stop_after >= len(kind_list):
        check_full_read(kind_list, yielded, sent_indexes(fake), ordered=ordered)
    else:
        check_early_exit(
            kind_list,
            yielded,
            batch.unreported,
            batch.interrupted,
            batch.submitted,
            sent_indexes(fake),
        )


@given(
    kind_list=kinds,
    concurrency=st.integers(min_value=1, max_value=6),
    ordered=st.booleans(),
    stop_after=stops,
)
@examples
def test_every_message_taken_is_accounted_for_exactly_once_through_the_sync_facade(
    kind_list: list[str], concurrency: int, ordered: bool, stop_after: int | None
) -> None:
    fake = FakePostal()
    fake.slow_seconds = 0.003
    items: Iterator[Any] = iter(build(kind_list))
    yielded: list[SendOutcome] = []
    with (
        fake.sync_client() as http,
        Postal(BASE_URL, API_KEY, backoff=NO_WAIT, http_client=http) as postal,
    ):
        batch = postal.send_many(items, concurrency=concurrency, ordered=ordered)
        with batch as outcomes:
            if stop_after != 0:
                for outcome in outcomes:
                    yielded.append(outcome)
                    if len(yielded) == stop_after:
                        break

    sent = sent_indexes(fake)
    if stop_after is None or stop_after >= len(kind_list):
        check_full_read(kind_list, yielded, sent, ordered=ordered)
    else:
        reported_sends = check_early_exit(
            kind_list, yielded, batch.unreported, batch.interrupted, batch.submitted, sent
        )
        # The requests that started were awaited, so each one's outcome is reported. A
        # message taken whose request had not started yet (the event loop had not reached
        # its worker thread) is cancelled and listed as interrupted: it was never sent.
        assert set(sent) == reported_sends
        assert not {index for index, _ in batch.interrupted} & set(sent)
