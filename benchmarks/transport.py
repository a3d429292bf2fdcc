"""The transport's parser and pool: CPU per reply with llhttp against the hand-written parser
it replaced, and AsyncPostal's throughput beside raw aiohttp, before and after, in one run.

    python benchmarks/transport.py [--seconds 3] [--rounds 3] [--baseline dbc33a4]

1. Parser: the same replies (Postal's send envelope, and a `get_message` with expansions,
   as Puma sends them) parsed whole, again and again, by `postal_sdk._http.http11` now and
   by the module as it was at `--baseline` (read with `git show`), in this one process.
2. Pool: `benchmarks/run.py`'s cells (its server, its clients, its pinning), raw aiohttp and
   AsyncPostal at 1 and 64 in flight with no server delay, for this tree and for the tree
   at `--baseline` (a `git archive` of it first on PYTHONPATH), interleaved over `--rounds`
   rounds so that a machine busy with something else weighs on every row alike. The ratio
   to raw aiohttp measured in the same round is what counts; the figures are medians.

Writes benchmarks/results/transport.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import types
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from run import CLIENT_CPU, SERVER_CPU, machine, start_server  # noqa: E402

SEND_REPLY_BODY = (
    b'{"status":"success","time":0.02,"flags":{},"data":{"message_id":'
    b'"b1f4a7a2-7d3b-4a8e-9c1e-2f0a3b4c5d6e@rp.postal.example.com","messages":'
    b'{"john@example.com":{"id":12345,"token":"AbCdEfGhIjKl"}}}}'
)
PUMA_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"x-frame-options: SAMEORIGIN\r\n"
    b"x-xss-protection: 0\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"x-permitted-cross-domain-policies: none\r\n"
    b"referrer-policy: strict-origin-when-cross-origin\r\n"
    b"content-type: application/json; charset=utf-8\r\n"
    b'etag: W/"0f4b3bb4d3f1a0c6d0e5d3a3c2b1a0f9"\r\n'
    b"cache-control: max-age=0, private, must-revalidate\r\n"
    b"x-request-id: 6c1f4a0e-3b2d-4c5e-8f9a-0b1c2d3e4f5a\r\n"
    b"x-runtime: 0.021337\r\n"
    b"vary: Origin\r\n"
    b"Content-Length: %d\r\n\r\n"
)
MESSAGE_REPLY_BODY = (
    b'{"status":"success","time":0.01,"flags":{},"data":{"id":12345,"token":"AbCdEfGhIjKl",'
    b'"raw_message":"'
    + b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJz\\n" * 300
    + b'"}}'
)
REPLIES = {
    "send/message reply (Content-Length, 12 headers)": PUMA_HEAD % len(SEND_REPLY_BODY)
    + SEND_REPLY_BODY,
    "messages/message reply with raw_message (18 KB)": PUMA_HEAD % len(MESSAGE_REPLY_BODY)
    + MESSAGE_REPLY_BODY,
}
PIECE = 65536
"""Bytes per piece fed to the parsers: what one read from the socket gives at most."""


def old_parser(baseline: str) -> types.ModuleType:
    source = subprocess.run(
        ["git", "show", f"{baseline}:src/postal_sdk/_http/http11.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("old_http11")
    exec(compile(source, "old_http11.py", "exec"), module.__dict__)
    return module


def parse_new(reply: bytes) -> Callable[[], None]:
    from postal_sdk._http.http11 import ResponseReader

    pieces = [reply[at : at + PIECE] for at in range(0, len(reply), PIECE)]

    def parse() -> None:
        reader = ResponseReader(b"POST", 1 << 26)
        for piece in pieces:
            reader.feed(piece)
        assert reader.done
        reader.body  # noqa: B018 - joined, as the transport does

    return parse


def parse_old(module: types.ModuleType, reply: bytes) -> Callable[[], None]:
    pieces = [reply[at : at + PIECE] for at in range(0, len(reply), PIECE)]

    def parse() -> None:
        # As the old transport's `receive` did: a buffer, the head, then the body.
        buffer = bytearray()
        arriving = iter(pieces)
        head = None
        while head is None:
            buffer += next(arriving)
            head = module.parse_head(buffer, b"POST")
        reader = module.BodyReader(head)
        body = [reader.read(buffer)]
        while not reader.done:
            buffer += next(arriving)
            body.append(reader.read(buffer))
        b"".join(body)

    return parse


def per_call(function: Callable[[], None], seconds: float) -> float:
    """Microseconds of CPU per call, the best of five batches."""
    calls = 1
    while True:
        started = time.process_time()
        for _ in range(calls):
            function()
        spent = time.process_time() - started
        if spent > seconds / 10:
            break
        calls *= 4
    best = spent / calls
    for _ in range(4):
        started = time.process_time()
        for _ in range(calls):
            function()
        best = min(best, (time.process_time() - started) / calls)
    return best * 1e6


def parser_rows(baseline: str, seconds: float) -> list[tuple[str, float, float]]:
    module = old_parser(baseline)
    rows = []
    for name, reply in REPLIES.items():
        old = per_call(parse_old(module, reply), seconds)
        new = per_call(parse_new(reply), seconds)
        rows.append((name, old, new))
    return rows


class _ClosesAfterReply(asyncio.Protocol):
    """Answers one request, keep-alive by its headers, then closes the connection at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, found, body = self.buffer.partition(b"\r\n\r\n")
        if not found:
            return
        match = re.search(rb"(?i)content-length: *([0-9]+)", head)
        if len(body) >= (int(match.group(1)) if match else 0):
            assert isinstance(self.transport, asyncio.WriteTransport)
            self.transport.write(PUMA_HEAD % len(SEND_REPLY_BODY) + SEND_REPLY_BODY)
            self.transport.close()


def closes_after_reply_server() -> str:
    """A server on a thread of its own that closes every connection after its reply."""
    loop = asyncio.new_event_loop()
    listening = loop.run_until_complete(
        loop.create_server(_ClosesAfterReply, "127.0.0.1", 0, reuse_address=True)
    )
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"


def stale_rows(sends: int) -> list[tuple[str, int, int]]:
    """Back-to-back sends to a server that closes after each reply: (client, failed, sent)."""
    import httpx

    from postal_sdk import AsyncPostal, Message, PostalError

    url = closes_after_reply_server()
    message = Message(from_="app@example.com", to=["john@example.com"], plain_body="Hello")
    payload = {"to": ["john@example.com"], "from": "app@example.com", "plain_body": "Hello"}

    async def sdk(backend: str) -> int:
        failed = 0
        async with AsyncPostal(url, "key", max_retries=0, http_backend=backend) as postal:  # type: ignore[arg-type]
            for _ in range(sends):
                try:
                    await postal.send_message(message)
                except PostalError:
                    failed += 1
        return failed

    async def plain_httpx() -> int:
        failed = 0
        async with httpx.AsyncClient() as http:
            for _ in range(sends):
                try:
                    (await http.post(url + "/api/v1/send/message", json=payload)).raise_for_status()
                except httpx.HTTPError:
                    failed += 1
        return failed

    return [
        ("httpx.AsyncClient(), default pool", asyncio.run(plain_httpx()), sends),
        ("AsyncPostal (default)", asyncio.run(sdk("httpx")), sends),
        ("AsyncPostal (aiohttp extra)", asyncio.run(sdk("aiohttp")), sends),
    ]


CELL_NAMES = ["raw aiohttp", "AsyncPostal (default)"]
IN_FLIGHT = [1, 64]


def cell(
    name: str, url: str, concurrency: int, seconds: float, pythonpath: str | None
) -> dict[str, Any]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    child = subprocess.run(
        [
            sys.executable,
            str(HERE / "run.py"),
            "--cell",
            name,
            "--url",
            url,
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    if child.returncode != 0:
        raise SystemExit(child.stderr)
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def baseline_tree(baseline: str, into: Path) -> str:
    archive = subprocess.run(
        ["git", "archive", baseline, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return str(into / "src")


def pool_rows(
    baseline: str, seconds: float, rounds: int
) -> dict[tuple[str, str, int], dict[str, list[float]]]:
    """Per (tree, client, in flight): messages/s, CPU us/msg and ratio to raw aiohttp."""
    figures: dict[tuple[str, str, int], dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as directory:
        trees = {"this tree": None, f"main at {baseline}": baseline_tree(baseline, Path(directory))}
        server, url = start_server(0.0)
        try:
            for _ in range(rounds):
                for concurrency in IN_FLIGHT:
                    for tree, path in trees.items():
                        raw = cell(CELL_NAMES[0], url, concurrency, seconds, path)
                        raw_rate = raw["ok"] / raw["wall"]
                        for name in CELL_NAMES:
                            result = raw if name == CELL_NAMES[0] else None
                            result = result or cell(name, url, concurrency, seconds, path)
                            rate = result["ok"] / result["wall"]
                            entry = figures.setdefault(
                                (tree, name, concurrency), {"rate": [], "cpu": [], "ratio": []}
                            )
                            entry["rate"].append(rate)
                            entry["cpu"].append(result["cpu"] / max(result["ok"], 1) * 1e6)
                            entry["ratio"].append(rate / raw_rate)
                            print(f"{tree:18} {name:24} {concurrency:3} {rate:8.0f}/s", flush=True)
        finally:
            server.terminate()
            server.wait()
    return figures


def write(
    stale: list[tuple[str, int, int]],
    parsers: list[tuple[str, float, float]],
    pools: dict[tuple[str, str, int], dict[str, list[float]]],
    baseline: str,
    rounds: int,
) -> None:
    info = machine()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        "# Transport benchmark: llhttp parser and asyncio pool",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}"
        f" on {info.get('cpu', 'this machine')}, CPython {sys.version.split()[0]}; client on"
        f" core {CLIENT_CPU}, server on core {SERVER_CPU}; load average at the end {load}.",
        "The machine was shared with other work while this ran: absolute figures are noisy;"
        " the ratios, measured side by side in the same round, are what to read.",
        "",
        "## CPU per reply parsed",
        "",
        f"The same reply parsed whole, in pieces of up to {PIECE // 1024} KiB, by the"
        f" hand-written parser at {baseline} and by httptools (llhttp) now; best of five"
        " batches.",
        "",
        f"| Reply | hand-written ({baseline}) us | llhttp us | llhttp / hand-written |",
        "|---|---:|---:|---:|",
    ]
    for name, old, new in parsers:
        lines.append(f"| {name} | {old:.1f} | {new:.1f} | {new / old:.2f}x |")
    lines += [
        "",
        "## AsyncPostal beside raw aiohttp, no server delay",
        "",
        f"`benchmarks/run.py`'s cells, {rounds} interleaved rounds; medians. The ratio is to"
        " raw aiohttp measured in the same round.",
        "",
        "| Tree | Client | In flight | Messages/s | Client CPU us/msg | x raw aiohttp |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (tree, name, concurrency), entry in pools.items():
        lines.append(
            f"| {tree} | {name} | {concurrency} | {statistics.median(entry['rate']):,.0f} | "
            f"{statistics.median(entry['cpu']):.0f} | {statistics.median(entry['ratio']):.2f}x |"
        )
    lines += [
        "",
        "## A server that closes each connection right after its reply",
        "",
        "Back-to-back sends, one at a time, no retries, to a server that answers each request"
        " as if keeping the connection alive and then closes it: each failure is a send that"
        " met a connection being closed (and so cannot tell whether it was delivered).",
        "",
        "| Client | Failed | Sent | Failed share |",
        "|---|---:|---:|---:|",
    ]
    for name, failed, sent in stale:
        lines.append(f"| {name} | {failed} | {sent} | {failed / sent:.1%} |")
    target = pools.get(("this tree", "AsyncPostal (default)", 64))
    if target:
        ratio = statistics.median(target["ratio"])
        lines += [
            "",
            "## Target",
            "",
            "| Target | Measured | Goal | Met |",
            "|---|---:|---|---|",
            f"| no delay, 64 in flight: AsyncPostal (default) vs raw aiohttp | {ratio:.2f}x |"
            f" >= 0.80x | {'yes' if ratio >= 0.80 else 'no'} |",
        ]
    (RESULTS / "transport.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default="dbc33a4", help="the commit to compare with")
    parser.add_argument("--parser-only", action="store_true")
    parser.add_argument("--stale-sends", type=int, default=1000)
    args = parser.parse_args()
    stale = stale_rows(args.stale_sends)
    for name, failed, sent in stale:
        print(f"{name}: {failed} of {sent} sends failed", flush=True)
    parsers = parser_rows(args.baseline, min(args.seconds, 1.0))
    for name, old, new in parsers:
        print(f"{name}: {old:.1f} us -> {new:.1f} us", flush=True)
    pools = {} if args.parser_only else pool_rows(args.baseline, args.seconds, args.rounds)
    write(stale, parsers, pools, args.baseline, args.rounds)


if __name__ == "__main__":
    main()
