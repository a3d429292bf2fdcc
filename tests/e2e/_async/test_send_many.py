"""`send_many` end to end: hundreds of messages through the uvicorn-served fake, with faults.

Each batch must yield exactly one outcome per input, carry the right error for each
failed send, and never send a message twice, so that the fake's outbox holds exactly the
successes plus the sends that were dropped after Postal had queued them.
"""

from __future__ import annotations

from collections import Counter

import pytest

from postal_sdk import (
    APIConnectionError,
    AsyncPostal,
    InvalidArgumentTypeError,
    Message,
    RawMessage,
    SendOutcome,
    SendProgress,
    UnexpectedResponseError,
)
from postal_sdk.testing import (
    BadGateway,
    DropAfterProcessing,
    DropBeforeProcessing,
    FakePostal,
    Latency,
    ServiceUnavailable,
)
from tests.e2e.support import (
    assert_no_send_processed_twice,
    faulted_subjects,
    message,
    raw_message,
    subjects_sent,
)

pytestmark = pytest.mark.anyio

COUNT = 240
NOT_A_MESSAGE_AT = 100


def batch(count: int) -> list[Message | RawMessage | object]:
    """Messages with distinct subjects, every 8th one raw, and one item that is not one."""
    items: list[Message | RawMessage | object] = [
        raw_message(f"m{n}") if n % 8 == 0 else message(f"m{n}") for n in range(count)
    ]
    items[NOT_A_MESSAGE_AT] = {"subject": f"m{NOT_A_MESSAGE_AT}"}
    return items


def subject(outcome: SendOutcome) -> str:
    """The subject of the message an outcome is about."""
    if isinstance(outcome.message, Message):
        return str(outcome.message.subject)
    if isinstance(outcome.message, RawMessage):
        return outcome.message.data.split(b"Subject: ")[1].split(b"\r\n")[0].decode()
    return "not a message"


async def test_a_faulty_batch_yields_each_index_once_and_never_sends_twice(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    # The first requests to arrive meet these, in this order; the rest get through.
    fake.add_fault(DropAfterProcessing(), times=3)
    fake.add_fault(DropBeforeProcessing(), times=3)
    fake.add_fault(BadGateway(), times=2)
    fake.add_fault(ServiceUnavailable(retry_after=1), times=3)  # Retried, then sent.
    messages = batch(COUNT)

    received: list[SendOutcome] = []
    async with async_postal.send_many(messages, concurrency=16) as outcomes:
        async for outcome in outcomes:
            received.append(outcome)

    assert sorted(outcome.index for outcome in received) == list(range(COUNT))
    assert all(outcome.message is messages[outcome.index] for outcome in received)
    assert all((outcome.result is None) != (outcome.error is None) for outcome in received)
    failed = [outcome for outcome in received if outcome.error is not None]
    succeeded = [outcome for outcome in received if outcome.result is not None]
    assert Counter(type(outcome.error).__name__ for outcome in failed) == {
        "APIConnectionError": 6,
        "UnexpectedResponseError": 2,
        "InvalidArgumentTypeError": 1,
    }

    dropped = {subject(o) for o in failed if isinstance(o.error, APIConnectionError)}
    dropped_after = faulted_subjects(fake, DropAfterProcessing)
    assert dropped == dropped_after | faulted_subjects(fake, DropBeforeProcessing)
    bad_gateway = [o for o in failed if isinstance(o.error, UnexpectedResponseError)]
    assert {subject(o) for o in bad_gateway} == faulted_subjects(fake, BadGateway)
    assert all(o.error.status_code == 502 for o in bad_gateway)  # type: ignore[union-attr]
    [refused] = [o for o in failed if isinstance(o.error, InvalidArgumentTypeError)]
    assert refused.index == NOT_A_MESSAGE_AT

    # Sent once each: the successes, and the sends dropped after Postal queued them.
    assert_no_send_processed_twice(fake)
    assert len(fake.outbox) == len(succeeded) + len(dropped_after) == COUNT - 1 - 5
    assert set(subjects_sent(fake)) == {subject(o) for o in succeeded} | dropped_after
    by_subject = {entry.created[0].subject: entry for entry in fake.outbox}
    for outcome in succeeded:
        assert outcome.result is not None
        assert outcome.result.message_id == by_subject[subject(outcome)].message_id
    # Every message was asked for once, plus one retry for each 503.
    assert len(fake.requests) == COUNT - 1 + 3


async def test_an_ordered_batch_yields_in_input_order_and_reports_progress(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    fake.add_fault(Latency(0.2), times=2)  # The first sends finish last.
    progress: list[SendProgress] = []
    messages = [message(f"m{n}") for n in range(40)]

    indexes = []
    async with async_postal.send_many(
        messages, concurrency=8, ordered=True, on_progress=progress.append
    ) as outcomes:
        async for outcome in outcomes:
            indexes.append(outcome.index)

    assert indexes == list(range(40))
    assert [p.completed for p in progress] == list(range(1, 41))
    assert (progress[-1].submitted, progress[-1].succeeded, progress[-1].failed) == (40, 40, 0)
    late = faulted_subjects(fake, Latency)
    assert len(late) == 2
    assert late <= {f"m{n}" for n in range(8)}  # Among the first taken.


async def test_leaving_a_batch_early_accounts_for_every_message_sent(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    fake.add_fault(Latency(0.01))
    messages = [message(f"m{n}") for n in range(200)]

    received: list[SendOutcome] = []
    async with async_postal.send_many(messages, concurrency=8) as outcomes:
        async for outcome in outcomes:
            received.append(outcome)
            if len(received) == 20:
                break

    taken = outcomes.submitted
    assert 20 <= taken < 200
    told = [o.index for o in received] + [o.index for o in outcomes.unreported]
    in_doubt = [index for index, _ in outcomes.interrupted]
    assert sorted(told + in_doubt) == list(range(taken))
    sent = {int(str(s)[1:]) for s in subjects_sent(fake)}
    assert max(sent) < taken  # Nothing past what was taken was ever sent...
    assert sent <= set(told) | set(in_doubt)  # ...and every send can be told apart.
    assert {o.index for o in received + list(outcomes.unreported) if o.ok} <= sent
