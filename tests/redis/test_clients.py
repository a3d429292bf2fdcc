"""AsyncPostal and Postal with a Redis journal or pace whose Redis cannot be reached.

Nothing is sent that could not be recorded or paced: a single keyed send raises the
`JournalError`, and a batch stops (`BatchAborted`, its cause the `JournalError`), since
every later send would fail the same way.
"""

from __future__ import annotations

import httpx
import pytest

from postal_sdk import AsyncPostal, AsyncSendMany, BatchAborted, JournalError, Message, Postal
from postal_sdk.redis import RedisJournal, RedisRateLimit
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal

MESSAGE = Message(from_="app@example.com", to=["john@example.com"], subject="Hi", plain_body="x")


async def drain(batch: AsyncSendMany) -> None:
    async with batch as outcomes:
        async for _outcome in outcomes:
            pass


@pytest.mark.anyio
@pytest.mark.parametrize("store", ["journal", "pace"])
async def test_a_batch_stops_and_sends_nothing_when_redis_is_unreachable(
    unreachable_redis_url: str, store: str
) -> None:
    fake = FakePostal()
    options = (
        {"journal": RedisJournal(unreachable_redis_url)}
        if store == "journal"
        else {"rate_limit": RedisRateLimit(unreachable_redis_url, 50, per="second")}
    )
    key = (lambda index, _message: f"batch:{index}") if store == "journal" else None
    http = httpx.AsyncClient(transport=fake.transport())
    postal = AsyncPostal("http://postal.test", DEFAULT_API_KEY, http_client=http, **options)  # type: ignore[arg-type]
    async with http, postal:
        with pytest.raises(BatchAborted) as raised:
            await drain(postal.send_many([MESSAGE] * 20, concurrency=4, key=key))

    assert isinstance(raised.value.cause, JournalError)
    assert "could not" in str(raised.value.cause)
    assert fake.outbox == ()


def test_a_keyed_send_of_the_sync_client_fails_and_is_not_sent(
    unreachable_redis_url: str,
) -> None:
    fake = FakePostal()
    journal = RedisJournal(unreachable_redis_url)
    with (
        httpx.Client(transport=fake.transport()) as http,
        Postal("http://postal.test", DEFAULT_API_KEY, http_client=http, journal=journal) as postal,
        pytest.raises(JournalError, match="could not claim"),
    ):
        postal.send_message(MESSAGE, idempotency_key="welcome:1")

    assert fake.outbox == ()
