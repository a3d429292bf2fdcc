"""A process of the multi-process tests: sends a campaign through a shared RedisJournal.

    python -m tests.redis.campaign_child CONFIG_JSON

CONFIG_JSON: {"redis": URL, "base_url": URL, "client": "async" | "sync", "keys": [...],
"rate": [count, per] or null, "namespace": str}. Each key is sent as a message whose
subject is the key. Prints one JSON line: {"sent": n, "replayed": n, "errors": [...]}.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

import anyio

from postal_sdk import AsyncPostal, Message, Postal, SendOutcome
from postal_sdk.redis import RedisJournal, RedisRateLimit
from postal_sdk.testing import DEFAULT_API_KEY


def message(key: str) -> Message:
    return Message(from_="app@example.com", to=["john@example.com"], subject=key, plain_body="Hi")


def tally(outcomes: list[SendOutcome], counts: Counter[str], errors: list[str]) -> None:
    for outcome in outcomes:
        if outcome.error is not None:
            errors.append(f"{type(outcome.error).__name__}: {outcome.error}")
        else:
            counts["replayed" if outcome.replayed else "sent"] += 1


def main(config: dict[str, Any]) -> None:
    journal = RedisJournal(config["redis"], namespace=config["namespace"])
    pace = None
    if config["rate"] is not None:
        count, per = config["rate"]
        pace = RedisRateLimit(config["redis"], count, per=per, name=config["namespace"])
    messages = [message(key) for key in config["keys"]]
    options: dict[str, Any] = {"journal": journal, "rate_limit": pace}
    outcomes: list[SendOutcome] = []

    def key(_index: int, message: Message) -> str:
        return str(message.subject)

    if config["client"] == "sync":
        postal = Postal(config["base_url"], DEFAULT_API_KEY, **options)
        with postal, postal.send_many(messages, concurrency=16, key=key) as results:
            outcomes.extend(results)
    else:

        async def send() -> None:
            postal = AsyncPostal(config["base_url"], DEFAULT_API_KEY, **options)
            async with postal, postal.send_many(messages, concurrency=16, key=key) as results:
                outcomes.extend([outcome async for outcome in results])

        anyio.run(send, backend=config.get("backend", "asyncio"))
    journal.close()
    counts: Counter[str] = Counter()
    errors: list[str] = []
    tally(outcomes, counts, errors)
    print(json.dumps({"sent": counts["sent"], "replayed": counts["replayed"], "errors": errors}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
