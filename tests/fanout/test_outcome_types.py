"""A batch's outcomes are two types, `SendSuccess` and `SendFailure`, told apart by `ok`."""

from __future__ import annotations

import pytest

from postal_sdk import (
    AsyncPostal,
    InvalidArgumentTypeError,
    NoRecipients,
    Postal,
    SendFailure,
    SendOutcome,
    SendSuccess,
)
from tests.fanout.support import OK, REJECT, SLOW, FakePostal, message


@pytest.mark.anyio
async def test_accepted_and_refused_messages_come_as_success_and_failure(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    items: list[object] = [message(OK, 0), message(REJECT, 1), "not a message"]
    async with async_postal.send_many(items, ordered=True) as outcomes:  # type: ignore[arg-type]
        success, rejected, not_a_message = [outcome async for outcome in outcomes]

    assert isinstance(success, SendSuccess)
    assert (success.ok, success.error) == (True, None)
    assert success.result.messages["user0@example.com"].id > 0
    assert isinstance(rejected, SendFailure)
    assert (rejected.ok, rejected.result) == (False, None)
    assert isinstance(rejected.error, NoRecipients)
    assert isinstance(not_a_message, SendFailure)
    assert isinstance(not_a_message.error, InvalidArgumentTypeError)
    assert not_a_message.message == "not a message"
    assert all(isinstance(outcome, SendOutcome) for outcome in (success, rejected))


def test_the_sync_batch_gives_the_same_two_types(postal: Postal) -> None:
    with postal.send_many([message(OK, 0), message(REJECT, 1)], ordered=True) as outcomes:
        success, rejected = list(outcomes)

    assert isinstance(success, SendSuccess)
    assert isinstance(rejected, SendFailure)
    assert postal.send_many([]).interrupted == ()


@pytest.mark.anyio
async def test_interrupted_sends_hold_the_messages_themselves(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    items = [message(OK, 0), *(message(SLOW, number) for number in range(1, 4))]
    async with async_postal.send_many(items, concurrency=4, ordered=True) as batch:
        async for _ in batch:
            break

    assert batch.interrupted
    for index, sent in batch.interrupted:
        assert sent is items[index]
