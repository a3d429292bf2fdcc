"""Peak memory of `send_many` over a generator of 10,000 and of 100,000 messages.

    python benchmarks/memory.py    (or: nox -s bench, which runs it before run.py)

Each size runs in a fresh process (pinned like run.py's cells) against the no-delay
server, with the default `AsyncPostal` at 64 in flight; the process's peak RSS is read at
the end. Memory proportional to `concurrency` means both peaks are the same.
Writes benchmarks/results/memory.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = (10_000, 100_000)
CONCURRENCY = 64


def _messages(count: int) -> Iterator[object]:
    from postal_sdk import Message

    for number in range(count):
        # A new message each time, as a real batch would build them.
        yield Message(
            from_="app@example.com",
            to=["john@example.com"],
            subject=f"Hello {number}",
            plain_body=f"Message number {number}",
        )


async def _send(url: str, count: int) -> dict[str, float]:
    from postal_sdk import AsyncPostal

    ok = 0
    async with AsyncPostal(url, "bench-key") as postal:
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        async with postal.send_many(_messages(count), concurrency=CONCURRENCY) as outcomes:  # type: ignore[arg-type]
            async for outcome in outcomes:
                ok += outcome.ok
        elapsed = time.perf_counter() - started
    return {
        "messages": count,
        "ok": ok,
        "seconds": elapsed,
        "rss_before_batch_kb": baseline,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main() -> None:
    if len(sys.argv) == 3:
        os.sched_setaffinity(0, {0})
        print(json.dumps(asyncio.run(_send(sys.argv[1], int(sys.argv[2])))), flush=True)
        return

    sys.path.insert(0, str(HERE))
    from run import start_server

    server, url = start_server(0.0)
    try:
        results = []
        for size in SIZES:
            child = subprocess.run(
                [sys.executable, __file__, url, str(size)],
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
            last = results[-1]
            print(
                f"send_many over {size:>7,} messages: peak RSS {last['peak_rss_kb'] / 1024:.1f} MB "
                f"({last['rss_before_batch_kb'] / 1024:.1f} MB before the batch), "
                f"{last['ok']:,} sent in {last['seconds']:.0f} s",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait()
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "memory.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
