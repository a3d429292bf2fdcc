"""Sending through an HTTP proxy: postal-sdk side by side with `httpx.AsyncClient(proxy=...)`.

    python benchmarks/proxy.py [--seconds 3] [--concurrency 64]    (or: nox -s bench)

The benchmark server (`benchmarks/server.py`) sits behind the tests' forwarding proxy
(`tests/connecting/forward_proxy.py`, h11 on both sides, as an egress proxy keeps
connections alive on both sides), and each client sends `--concurrency` messages at a time
to the server's http:// URL through it: the SDK through `send_many`, httpx through its own
`post` with hand-built JSON, each in a fresh process pinned to one core, the server and the
proxy pinned to the other. The direct rows (no proxy) are there for scale.

The proxy is pure Python and shares the server's core: where it saturates, the proxied rows
measure it rather than the client, so the client's CPU per message is printed beside the
throughput (it does not depend on the proxy). The ratio that matters is that the SDK's
proxied path does not fall behind httpx's own (a single httpcore pool, whose throughput
falls with concurrency) at 64 in flight.

Writes benchmarks/results/proxy.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from run import (
    API_KEY,
    BODY,
    CLIENT_CPU,
    FROM,
    HEADERS,
    PAYLOAD,
    SEND_PATH,
    SERVER_CPU,
    SUBJECT,
    TO,
    Window,
    async_loops,
    start_server,
)

HERE = Path(__file__).resolve().parent
PROXY_SCRIPT = HERE.parent / "tests" / "connecting" / "forward_proxy.py"
RESULTS = HERE / "results"


def _sdk(backend: str, proxied: bool) -> Callable[[str, str, int, float], dict[str, float]]:
    def measure(url: str, proxy: str, concurrency: int, seconds: float) -> dict[str, float]:
        from postal_sdk import AsyncPostal, Message

        message = Message(from_=FROM, to=[TO], subject=SUBJECT, plain_body=BODY)

        def messages(window: Window) -> Any:
            while window.open():
                yield message

        async def window_of(postal: AsyncPostal, length: float) -> dict[str, float]:
            window = Window(length)
            async with postal.send_many(messages(window), concurrency=concurrency) as outcomes:
                async for outcome in outcomes:
                    window.count(outcome.ok)
            return window.close()

        async def main() -> dict[str, float]:
            options: dict[str, Any] = {"proxy": proxy} if proxied else {"trust_env": False}
            async with AsyncPostal(url, API_KEY, http_backend=backend, **options) as postal:  # type: ignore[arg-type]
                await window_of(postal, 0.5)
                return await window_of(postal, seconds)

        return asyncio.run(main())

    return measure


def _httpx(proxied: bool) -> Callable[[str, str, int, float], dict[str, float]]:
    def measure(url: str, proxy: str, concurrency: int, seconds: float) -> dict[str, float]:
        import httpx

        async def main() -> dict[str, float]:
            client = httpx.AsyncClient(proxy=proxy) if proxied else httpx.AsyncClient()
            async with client:

                async def send() -> bool:
                    reply = await client.post(url + SEND_PATH, content=PAYLOAD, headers=HEADERS)
                    return bool(json.loads(reply.content)["status"] == "success")

                return await async_loops(send, concurrency, seconds)

        return asyncio.run(main())

    return measure


CLIENTS: dict[str, Callable[[str, str, int, float], dict[str, float]]] = {
    "postal-sdk AsyncPostal, through the proxy": _sdk("httpx", proxied=True),
    "postal-sdk AsyncPostal (aiohttp backend), through the proxy": _sdk("aiohttp", proxied=True),
    "raw httpx.AsyncClient(proxy=...), through the proxy": _httpx(proxied=True),
    "postal-sdk AsyncPostal, direct": _sdk("httpx", proxied=False),
    "raw httpx.AsyncClient(), direct": _httpx(proxied=False),
}
REFERENCE = "raw httpx.AsyncClient(proxy=...), through the proxy"


def run_cell(name: str, url: str, proxy: str, concurrency: int, seconds: float) -> None:
    os.sched_setaffinity(0, {CLIENT_CPU})
    print(json.dumps(CLIENTS[name](url, proxy, concurrency, seconds)), flush=True)


def start_proxy() -> tuple[subprocess.Popen[str], str]:
    proxy = subprocess.Popen([sys.executable, str(PROXY_SCRIPT)], stdout=subprocess.PIPE, text=True)
    assert proxy.stdout is not None
    port = proxy.stdout.readline().strip()
    if not port.isdigit():
        raise SystemExit("the forwarding proxy did not start")
    psutil.Process(proxy.pid).cpu_affinity([SERVER_CPU])
    return proxy, f"http://127.0.0.1:{port}"


def measure(name: str, url: str, proxy: str, concurrency: int, seconds: float) -> dict[str, Any]:
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            *("--cell", name, "--url", url, "--proxy", proxy),
            *("--concurrency", str(concurrency), "--seconds", str(seconds)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if child.returncode != 0:
        reason = (child.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"could not be driven: {reason}"}
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def write_report(results: dict[str, dict[str, Any]], concurrency: int, seconds: float) -> str:
    reference = results[REFERENCE]
    reference_rate = reference["ok"] / reference["wall"] if "ok" in reference else None
    lines = [
        "# Sending through an HTTP proxy",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by "
        f"`benchmarks/proxy.py`: {concurrency} messages in flight, {seconds:g} s per row, "
        f"load average {', '.join(f'{load:.1f}' for load in os.getloadavg())} "
        f"on {os.cpu_count()} cores.",
        "",
        "**The machine was loaded** (other work shared its 2 cores), and the forwarding proxy "
        "(pure-Python h11) shares a core with the server: where it saturates, the proxied rows "
        "measure it, so read the client's CPU per message beside the throughput, and take "
        "the figures as a comparison within this run only.",
        "",
        "| client | msg/s | client CPU µs/msg | vs httpx through the proxy | failed |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, cell in results.items():
        if "error" in cell:
            lines.append(f"| {name} | {cell['error']} | | | |")
            continue
        rate = cell["ok"] / cell["wall"]
        cpu = cell["cpu"] / max(cell["ok"], 1) * 1e6
        ratio = f"{rate / reference_rate:.2f}x" if reference_rate else "n/a"
        lines.append(f"| {name} | {rate:,.0f} | {cpu:,.0f} | {ratio} | {cell['failed']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per row")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--proxy", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        run_cell(args.cell, args.url, args.proxy, args.concurrency, args.seconds)
        return

    server, url = start_server(0.0)
    proxy, proxy_url = start_proxy()
    results: dict[str, dict[str, Any]] = {}
    try:
        for name in CLIENTS:
            started = time.perf_counter()
            results[name] = measure(name, url, proxy_url, args.concurrency, args.seconds)
            cell = results[name]
            rate = f"{cell['ok'] / cell['wall']:,.0f} msg/s" if "ok" in cell else cell["error"]
            print(f"{name:62} {rate}  ({time.perf_counter() - started:.1f} s)", flush=True)
    finally:
        for process in (proxy, server):
            process.terminate()
            process.wait()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "proxy.md").write_text(
        write_report(results, args.concurrency, args.seconds), encoding="utf-8"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
