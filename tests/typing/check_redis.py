"""Type-checked by `mypy --strict` in `nox -s typecheck`: postal_sdk.redis as a user writes it."""

from __future__ import annotations

import redis
import redis.asyncio

from postal_sdk import AsyncPostal, JournalError, Message, Postal, SendInDoubt
from postal_sdk.journal import Journal, JournalEntry
from postal_sdk.pacing import Pacer
from postal_sdk.redis import RedisJournal, RedisRateLimit

URL = "redis://localhost:6379/0"


async def send_campaign(messages: list[Message]) -> int:
    journal = RedisJournal(URL, namespace="newsletter-7", lease=30.0)
    pace = RedisRateLimit(redis.asyncio.Redis.from_url(URL), 600, per="hour", name="postal-main")
    sent = 0
    async with (
        AsyncPostal(journal=journal, rate_limit=pace) as postal,
        postal.send_many(
            messages, concurrency=50, key=lambda index, message: f"newsletter-7:{index}"
        ) as outcomes,
    ):
        async for outcome in outcomes:
            if isinstance(outcome.error, SendInDoubt):
                continue
            sent += outcome.ok and not outcome.replayed
    in_doubt: list[JournalEntry] = await journal.async_in_doubt()
    for entry in in_doubt:
        await journal.async_resolve(entry.key, sent=False)
    await journal.async_close()
    return sent


def send_one(message: Message) -> str | None:
    journal: Journal = RedisJournal(redis.Redis.from_url(URL))
    pace: Pacer = RedisRateLimit(URL, 10, per=2.5, burst=2)
    with Postal(journal=journal, rate_limit=pace) as postal:
        try:
            return postal.send_message(message, idempotency_key="welcome:42").message_id
        except JournalError:
            return None
        finally:
            journal.close()
