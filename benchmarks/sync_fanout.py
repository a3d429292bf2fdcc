"""The sync `Postal.send_many` against the async `AsyncPostal.send_many`, in one run.

    python benchmarks/sync_fanout.py [--seconds 3] [--rounds 3]    (or: nox -s bench)

Both go through `send_many` (a generator of `Message`s) at 64 messages in flight, against
the same local server (`benchmarks/server.py`), with no server delay and with a 20 ms one.
Each measurement runs in a fresh process pinned to one core, the server on the other (as
in `run.py`, whose machinery this reuses); the two clients alternate, `--rounds` times
each, and the table shows the median. The target of issue 10: the sync batch at >= 0.90x
the async one at 64 in flight.

Writes benchmarks/results/sync_fanout.md.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
from pathlib import Path

import psutil
from run import RESULTS, measure, start_server

ASYNC, SYNC = "AsyncPostal (default)", "Postal (sync)"
IN_FLIGHT = 64
DELAYS = (0.0, 0.02)
TARGET = 0.90


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measured window")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per client")
    args = parser.parse_args()

    rows = []
    for delay in DELAYS:
        server, url = start_server(delay)
        try:
            process = psutil.Process(server.pid)
            rates: dict[str, list[float]] = {ASYNC: [], SYNC: []}
            for _ in range(args.rounds):
                for name in (ASYNC, SYNC):
                    result = measure(name, url, IN_FLIGHT, args.seconds, process)
                    if "error" in result:
                        raise SystemExit(f"{name}: {result['error']}")
                    rates[name].append(result["ok"] / result["wall"])
                    print(f"{name}, delay {delay}: {rates[name][-1]:.0f}/s", file=sys.stderr)
        finally:
            server.terminate()
            server.wait()
        async_rate, sync_rate = statistics.median(rates[ASYNC]), statistics.median(rates[SYNC])
        rows.append((delay, async_rate, sync_rate, sync_rate / async_rate))

    lines = [
        "# Sync `send_many` against async `send_many`",
        "",
        f"{IN_FLIGHT} messages in flight, median of {args.rounds} windows of {args.seconds:g} s "
        f"each, client and server on one core each ({platform.python_implementation()} "
        f"{platform.python_version()}, {datetime.date.today().isoformat()}). "
        f"Target: sync >= {TARGET:.2f}x async.",
        "",
        "| server delay | AsyncPostal msg/s | Postal (sync) msg/s | sync / async | target met |",
        "|---|---|---|---|---|",
    ]
    for delay, async_rate, sync_rate, ratio in rows:
        met = "yes" if ratio >= TARGET else "no"
        lines.append(
            f"| {delay * 1000:g} ms | {async_rate:,.0f} | {sync_rate:,.0f} | {ratio:.2f}x | {met} |"
        )
    lines += [
        "",
        "Rerun with `python benchmarks/sync_fanout.py` (or `nox -s bench`). On a shared or "
        "loaded machine the figures are noisy; the ratio, measured in one run, less so.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    Path(RESULTS / "sync_fanout.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
