"""The child process of the crash tests: sends a keyed batch until it is killed.

python -m tests.campaign._crash_child BASE_URL JOURNAL COUNT CONCURRENCY
"""

from __future__ import annotations

import sys

import anyio

from postal_sdk import AsyncPostal
from postal_sdk.journal import SQLiteJournal
from postal_sdk.testing import DEFAULT_API_KEY
from tests.e2e.support import NO_WAIT, message


async def main(base_url: str, path: str, count: int, concurrency: int) -> None:
    journal = SQLiteJournal(path)
    messages = (message(f"m{n}") for n in range(count))
    async with (
        AsyncPostal(
            base_url,
            DEFAULT_API_KEY,
            backoff=NO_WAIT,
            journal=journal,
            headers={"X-Run": "child"},
        ) as postal,
        postal.send_many(messages, concurrency=concurrency, key=lambda i, m: f"c:{i}") as outcomes,
    ):
        async for _ in outcomes:
            pass
    journal.close()


if __name__ == "__main__":
    base_url, path, count, concurrency = sys.argv[1:]
    anyio.run(main, base_url, path, int(count), int(concurrency))
