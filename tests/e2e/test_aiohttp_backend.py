"""The optional aiohttp backend (`http_backend="aiohttp"`, asyncio only) end to end.

Its transport maps aiohttp's errors to httpx's for the retry policy; the mapping that
matters is that a dropped connection never looks like a connect failure, or a send that
reached Postal would be sent again. Written by hand: there is no sync twin.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from postal_sdk import APIConnectionError, APITimeoutError, AsyncPostal, SendOutcome
from postal_sdk.testing import (
    DEFAULT_API_KEY,
    DropAfterProcessing,
    DropBeforeProcessing,
    FakePostal,
    IncompleteBody,
    Latency,
)
from tests.e2e.support import (
    NO_WAIT,
    assert_no_send_processed_twice,
    faulted_subjects,
    message,
    subjects_sent,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def aiohttp_postal(base_url: str) -> AsyncPostal:
    async with AsyncPostal(
        base_url, DEFAULT_API_KEY, backoff=NO_WAIT, http_backend="aiohttp"
    ) as client:
        yield client  # type: ignore[misc]


async def test_the_aiohttp_backend_sends_and_looks_up(
    aiohttp_postal: AsyncPostal, fake: FakePostal
) -> None:
    sent = await aiohttp_postal.send_message(message())
    message_id = sent.messages["john@example.org"].id
    fake.deliver(message_id, "Sent")
    info = await aiohttp_postal.get_message(message_id, expansions=True)
    [delivery] = await aiohttp_postal.get_deliveries(message_id)

    assert info.status is not None
    assert info.status.status == "Sent"
    assert delivery.status == "Sent"


@pytest.mark.parametrize(
    ("fault", "queued"),
    [(DropAfterProcessing(), 1), (DropBeforeProcessing(), 0), (IncompleteBody(), 1)],
)
async def test_a_dropped_send_is_a_connection_error_never_retried(
    aiohttp_postal: AsyncPostal,
    fake: FakePostal,
    fault: DropAfterProcessing | DropBeforeProcessing | IncompleteBody,
    queued: int,
) -> None:
    fake.add_fault(fault)

    with pytest.raises(APIConnectionError) as raised:
        await aiohttp_postal.send_message(message())

    assert not isinstance(raised.value, APITimeoutError)
    assert isinstance(raised.value.__cause__, httpx.RemoteProtocolError)
    assert len(fake.requests) == 1
    assert len(fake.outbox) == queued


async def test_a_send_that_times_out_is_not_retried_and_a_read_is(
    aiohttp_postal: AsyncPostal, fake: FakePostal
) -> None:
    message_id = (await aiohttp_postal.send_message(message())).messages["john@example.org"].id
    fake.add_fault(Latency(1.0), times=2)
    impatient = aiohttp_postal.with_options(timeout=httpx.Timeout(5, read=0.2))

    with pytest.raises(APITimeoutError) as raised:
        await impatient.send_message(message("late"))
    await impatient.get_deliveries(message_id)

    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)
    assert [(r.endpoint, r.fault is not None) for r in fake.requests[1:]] == [
        ("send/message", True),
        ("messages/deliveries", True),
        ("messages/deliveries", False),
    ]
    assert subjects_sent(fake) == ["Hi", "late"]


async def test_a_dropped_read_is_retried(aiohttp_postal: AsyncPostal, fake: FakePostal) -> None:
    message_id = (await aiohttp_postal.send_message(message())).messages["john@example.org"].id
    fake.add_fault(DropAfterProcessing(), times=1)

    await aiohttp_postal.get_message(message_id)

    assert [(r.processed, r.status_code) for r in fake.requests[1:]] == [(True, None), (True, 200)]


async def test_a_refused_connection_is_retried_for_a_send(
    closed_port_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="postal_sdk")
    postal = AsyncPostal(
        closed_port_url, DEFAULT_API_KEY, backoff=NO_WAIT, max_retries=2, http_backend="aiohttp"
    )

    async with postal:
        with pytest.raises(APIConnectionError) as raised:
            await postal.send_message(message())

    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert len([r for r in caplog.records if "retry" in r.getMessage()]) == 2


async def test_send_many_over_aiohttp_never_sends_twice(
    aiohttp_postal: AsyncPostal, fake: FakePostal
) -> None:
    fake.add_fault(DropAfterProcessing(), times=2)
    fake.add_fault(DropBeforeProcessing(), times=2)
    received: list[SendOutcome] = []

    async with aiohttp_postal.send_many([message(f"m{n}") for n in range(100)]) as outcomes:
        async for outcome in outcomes:
            received.append(outcome)

    assert sorted(o.index for o in received) == list(range(100))
    assert sum(not o.ok for o in received) == 4
    assert len(fake.outbox) == 96 + 2
    assert faulted_subjects(fake, DropAfterProcessing) <= set(subjects_sent(fake))
    assert_no_send_processed_twice(fake)
