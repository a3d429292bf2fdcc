"""The outcome invariant of `send_many`, under random failures and random early exits.

Whatever the mix of successes, Postal errors, dropped connections and non-message items,
and wherever the caller stops reading: every message taken from the input is accounted
for exactly once (yielded, unreported or interrupted), none beyond those is sent, and a
full read yields every index exactly once, in input order when asked.
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


def check_full_read(kind_list: list[str], outcomes: list[SendOutcome], *, ordered: bool) -> None:
    indexes = [outcome.index for outcome in outcomes]
    assert sorted(indexes) == list(range(len(kind_list)))
    if ordered:
        assert indexes == sorted(indexes)
    for outcome in outcomes:
        assert outcome.ok == (kind_list[outcome.index] in SUCCEEDS)
        assert (outcome.result is None) != (outcome.error is None)


def check_early_exit(
    kind_list: list[str],
    yielded: list[SendOutcome],
    unreported: Iterable[SendOutcome],
    interrupted: Iterable[tuple[int, object]],
    submitted: int,
    received: int,
) -> None:
    accounted = [
        *(outcome.index for outcome in yielded),
        *(outcome.index for outcome in unreported),
        *(index for index, _ in interrupted),
    ]
    assert sorted(accounted) == list(range(submitted))
    sendable = sum(kind != NOT_A_MESSAGE for kind in kind_list[:submitted])
    assert received <= sendable


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
        check_full_read(kind_list, yielded, ordered=ordered)
        assert len(fake.received) == sum(kind != NOT_A_MESSAGE for kind in kind_list)
    else:
        check_early_exit(
            kind_list,
            yielded,
            batch.unreported,
            batch.interrupted,
            batch.submitted,
            len(fake.received),
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

    if stop_after is None or stop_after >= len(kind_list):
        check_full_read(kind_list, yielded, ordered=ordered)
    else:
        # The sync batch waits for the sends under way: every message taken was sent.
        assert batch.interrupted == ()
        assert len(fake.received) == sum(k != NOT_A_MESSAGE for k in kind_list[: batch.submitted])
        check_early_exit(
            kind_list,
            yielded,
            batch.unreported,
            batch.interrupted,
            batch.submitted,
            len(fake.received),
        )
