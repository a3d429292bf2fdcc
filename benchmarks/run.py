"""Send throughput, CPU and memory of postal-sdk side by side with raw HTTP and other clients.

    python benchmarks/run.py [--seconds 3] [--not-installed=NAME ...]    (or: nox -s bench)

One run measures every client against the same local server (`benchmarks/server.py`):
at 1, 16 and 64 messages in flight with no server delay, and at 32 in flight with a 20 ms
delay per answer (a real Postal takes tens of milliseconds per send). Each cell runs in a
fresh process, so peak RSS is that client's own. On this 2-core machine the server is
pinned to one core and the client to the other, and the server core's load is recorded
next to each figure: a client is never measured against a saturated server.

Each client goes through its real code path: the SDK through `send_many` (a generator of
`Message`s), the raw clients through their own post calls with hand-built JSON, the
third-party clients through their public send call pointed at the local server by their
base-URL option. Sync clients get one thread per message in flight.

Writes benchmarks/results/results.md, results.json and throughput.png.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
from report import ANYMAIL_THREADS

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CLIENT_CPU, SERVER_CPU = 0, 1
API_KEY = "bench-key"
FROM, TO, SUBJECT, BODY = "app@example.com", "john@example.com", "Hello", "Hello, world"
PAYLOAD = json.dumps(
    {"to": [TO], "from": FROM, "subject": SUBJECT, "plain_body": BODY}, separators=(",", ":")
).encode()
HEADERS = {
    "X-Server-API-Key": API_KEY,
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": "benchmark",
}
"""What the SDK sends too (as Postal advises), so the raw clients send the same request."""
SEND_PATH = "/api/v1/send/message"
WARM_UP_SECONDS = 0.5

CELLS = [(0.0, 1), (0.0, 16), (0.0, 64), (0.02, 32)]
"""(server delay in seconds, messages in flight)."""


class Window:
    """Counts one measured window: messages sent, failures, wall and CPU time."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + seconds
        self.ok = 0
        self.failed = 0
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def open(self) -> bool:
        return time.perf_counter() < self.deadline

    def count(self, ok: bool) -> None:
        if ok:
            self.ok += 1
        else:
            self.failed += 1

    def close(self) -> dict[str, float]:
        return {
            "ok": self.ok,
            "failed": self.failed,
            "wall": time.perf_counter() - self._wall,
            "cpu": time.process_time() - self._cpu,
        }


async def _async_loops(
    send: Callable[[], Awaitable[bool]], concurrency: int, seconds: float
) -> dict[str, float]:
    window = Window(seconds)

    async def loop() -> None:
        while window.open():
            window.count(await send())

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return window.close()


async def async_loops(
    send: Callable[[], Awaitable[bool]], concurrency: int, seconds: float
) -> dict[str, float]:
    """`concurrency` tasks sending back to back: a warm-up, then the measured window."""
    await _async_loops(send, concurrency, WARM_UP_SECONDS)
    return await _async_loops(send, concurrency, seconds)


def thread_loops(
    make_send: Callable[[], Callable[[], bool]], concurrency: int, seconds: float
) -> dict[str, float]:
    """`concurrency` threads, each with its own client, sending back to back."""
    senders = [make_send() for _ in range(concurrency)]

    def run(window: Window, send: Callable[[], bool]) -> None:
        while window.open():
            window.count(send())

    result: dict[str, float] = {}
    for length in (WARM_UP_SECONDS, seconds):
        window = Window(length)
        threads = [threading.Thread(target=run, args=(window, send)) for send in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result = window.close()
    return result


# --- the clients -------------------------------------------------------------------------


def raw_aiohttp(url: str, concurrency: int, seconds: float) -> dict[str, float]:
    import aiohttp

    async def main() -> dict[str, float]:
        async with aiohttp.ClientSession() as session:

            async def send() -> bool:
                async with session.post(url + SEND_PATH, data=PAYLOAD, headers=HEADERS) as reply:
                    return json.loads(await reply.read())["status"] == "success"

            return await async_loops(send, concurrency, seconds)

    return asyncio.run(main())


def _raw_httpx(client_factory: Callable[[], Any]) -> Callable[[str, int, float], dict[str, float]]:
    def measure(url: str, concurrency: int, seconds: float) -> dict[str, float]:
        async def main() -> dict[str, float]:
            async with client_factory() as client:

                async def send() -> bool:
                    reply = await client.post(url + SEND_PATH, content=PAYLOAD, headers=HEADERS)
                    return json.loads(reply.content)["status"] == "success"

                return await async_loops(send, concurrency, seconds)

        return asyncio.run(main())

    return measure


def _httpx_default() -> Any:
    import httpx

    return httpx.AsyncClient()


def _httpx_sdk_pool(backend: str) -> Callable[[], Any]:
    def build() -> Any:
        from postal_sdk._config import DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT
        from postal_sdk._http.transport import async_pooled_client

        return async_pooled_client(DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT, backend)  # type: ignore[arg-type]

    return build


def _messages(window: Window) -> Iterator[Any]:
    from postal_sdk import Message

    message = Message(from_=FROM, to=[TO], subject=SUBJECT, plain_body=BODY)
    while window.open():
        yield message


def _sdk(backend: str) -> Callable[[str, int, float], dict[str, float]]:
    def measure(url: str, concurrency: int, seconds: float) -> dict[str, float]:
        from postal_sdk import AsyncPostal

        async def window_of(postal: Any, length: float) -> dict[str, float]:
            window = Window(length)
            async with postal.send_many(_messages(window), concurrency=concurrency) as outcomes:
                async for outcome in outcomes:
                    window.count(outcome.ok)
            return window.close()

        async def main() -> dict[str, float]:
            async with AsyncPostal(url, API_KEY, http_backend=backend) as postal:
                await window_of(postal, WARM_UP_SECONDS)
                return await window_of(postal, seconds)

        return asyncio.run(main())

    return measure


def sdk_sync(url: str, concurrency: int, seconds: float) -> dict[str, float]:
    from postal_sdk import Postal

    def window_of(postal: Any, length: float) -> dict[str, float]:
        window = Window(length)
        with postal.send_many(_messages(window), concurrency=concurrency) as outcomes:
            for outcome in outcomes:
                window.count(outcome.ok)
        return window.close()

    with Postal(url, API_KEY) as postal:
        window_of(postal, WARM_UP_SECONDS)
        return window_of(postal, seconds)


def postal_py(url: str, concurrency: int, seconds: float) -> dict[str, float]:
    from postal_py.api.async_wrapper import PostalPyAPI
    from postal_py.api.schemas import RequestMessageSchema

    async def main() -> dict[str, float]:
        api = PostalPyAPI(base_url=url, api_key=API_KEY)

        async def send() -> bool:
            request = RequestMessageSchema(to=[TO], from_=FROM, subject=SUBJECT, plain_body=BODY)
            reply = await api.send_message(request)
            return reply.status == "success"

        try:
            return await async_loops(send, concurrency, seconds)
        finally:
            await api.close()

    return asyncio.run(main())


def pyostal(url: str, concurrency: int, seconds: float) -> dict[str, float]:
    from pyostal.client import Client

    async def main() -> dict[str, float]:
        client = Client(url, API_KEY)

        async def send() -> bool:
            # pyostal's send is a coroutine around a blocking `requests.post`: the tasks
            # take turns, which is what its users get.
            email = {"from_address": FROM, "to": [TO], "subject": SUBJECT, "plain_body": BODY}
            reply = await client.send(email)
            return reply.status == "success"

        return await async_loops(send, concurrency, seconds)

    return asyncio.run(main())


def _configure_anymail(url: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        EMAIL_BACKEND="anymail.backends.postal.EmailBackend",
        ANYMAIL={"POSTAL_API_KEY": API_KEY, "POSTAL_API_URL": url},
        INSTALLED_APPS=["anymail"],
    )
    django.setup()


def _anymail_connection() -> Any:
    from django.core.mail import get_connection

    connection = get_connection()
    connection.open()
    return connection


def _anymail_message(connection: Any) -> Any:
    from django.core.mail import EmailMessage

    return EmailMessage(SUBJECT, BODY, FROM, [TO], connection=connection)


def _anymail_sent(message: Any) -> bool:
    return bool(message.anymail_status.status == {"queued"})


def anymail(url: str, concurrency: int, seconds: float) -> dict[str, float]:
    # Django's own bulk call: the backend is handed `concurrency` messages at a time, and
    # sends them one after another, as it does for its users.
    _configure_anymail(url)
    connection = _anymail_connection()

    def window_of(length: float) -> dict[str, float]:
        window = Window(length)
        while window.open():
            batch = [_anymail_message(connection) for _ in range(concurrency)]
            connection.send_messages(batch)
            for message in batch:
                window.count(_anymail_sent(message))
        return window.close()

    window_of(WARM_UP_SECONDS)
    return window_of(seconds)


def anymail_threads(url: str, concurrency: int, seconds: float) -> dict[str, float]:
    # What a caller gets by adding a thread pool of their own around anymail.
    _configure_anymail(url)

    def make_send() -> Callable[[], bool]:
        connection = _anymail_connection()

        def send() -> bool:
            message = _anymail_message(connection)
            return message.send() == 1 and _anymail_sent(message)

        return send

    return thread_loops(make_send, concurrency, seconds)


CLIENTS: dict[str, tuple[str | None, Callable[[str, int, float], dict[str, float]]]] = {
    "raw aiohttp": (None, raw_aiohttp),
    "raw httpx, default pool": (None, _raw_httpx(_httpx_default)),
    "raw httpx, SDK's default transport": (None, _raw_httpx(_httpx_sdk_pool("httpx"))),
    "raw httpx, SDK's aiohttp transport": (None, _raw_httpx(_httpx_sdk_pool("aiohttp"))),
    "AsyncPostal (default)": (None, _sdk("httpx")),
    "AsyncPostal (aiohttp extra)": (None, _sdk("aiohttp")),
    "Postal (sync)": (None, sdk_sync),
    "postal-py (async)": ("postal-py", postal_py),
    "pyostal": ("pyostal", pyostal),
    "django-anymail (Postal backend)": ("django-anymail", anymail),
    ANYMAIL_THREADS: ("django-anymail", anymail_threads),
}
"""Display name: (pip distribution or None for ours and the raw clients, the measurement)."""


# --- the orchestration -------------------------------------------------------------------


def run_cell(name: str, url: str, concurrency: int, seconds: float) -> None:
    """In the child process: measure one client, print one JSON line."""
    os.sched_setaffinity(0, {CLIENT_CPU})
    result: dict[str, Any] = dict(CLIENTS[name][1](url, concurrency, seconds))
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result), flush=True)


def start_server(delay: float) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), "--delay", str(delay), "--cpu", str(SERVER_CPU)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline().split()
    if not line or line[0] != "ready":
        raise SystemExit(f"the benchmark server did not start: {line}")
    return server, f"http://127.0.0.1:{line[1]}"


def measure(
    name: str, url: str, concurrency: int, seconds: float, server: psutil.Process
) -> dict[str, Any]:
    before = server.cpu_times()
    started = time.perf_counter()
    child = subprocess.run(
        [
            sys.executable,
            __file__,
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
    )
    elapsed = time.perf_counter() - started
    after = server.cpu_times()
    if child.returncode != 0:
        reason = (child.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"could not be driven: {reason}"}
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    busy = (after.user + after.system) - (before.user + before.system)
    result["server_load"] = busy / elapsed
    return result


def installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {
        name: installed(name)
        for name in (
            "postal-sdk",
            "httpx",
            "httpcore",
            "httpx-aiohttp",
            "aiohttp",
            "anyio",
            "postal-py",
            "pyostal",
            "django-anymail",
            "django",
            "requests",
            "niquests",
        )
    }
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "versions": versions,
        "pinning": f"server on core {SERVER_CPU}, client on core {CLIENT_CPU}",
        # Anything else running on the machine skews the figures: check this is low.
        "load_average_1_5_15_min": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    parser.add_argument("--not-installed", action="append", default=[], metavar="DIST")
    parser.add_argument("--only", action="append", default=[], help="measure only these")
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        run_cell(args.cell, args.url, args.concurrency, args.seconds)
        return

    names = args.only or list(CLIENTS)
    results: dict[str, dict[str, Any]] = {name: {} for name in names}
    for delay in sorted({delay for delay, _ in CELLS}):
        server, url = start_server(delay)
        try:
            process = psutil.Process(server.pid)
            for name in names:
                distribution = CLIENTS[name][0]
                for cell_delay, concurrency in CELLS:
                    if cell_delay != delay:
                        continue
                    key = f"{int(delay * 1000)}ms@{concurrency}"
                    if distribution and (
                        distribution in args.not_installed or not installed(distribution)
                    ):
                        results[name][key] = {"error": "failed to install"}
                        continue
                    results[name][key] = measure(name, url, concurrency, args.seconds, process)
                    print(f"{name:38} {key:8} {summary(results[name][key])}", flush=True)
        finally:
            server.terminate()
            server.wait()

    from report import write_report

    write_report(results, machine(), RESULTS)


def summary(cell: dict[str, Any]) -> str:
    if "error" in cell:
        return cell["error"]
    return (
        f"{cell['ok'] / cell['wall']:9.0f} msg/s  {cell['cpu'] / max(cell['ok'], 1) * 1e6:6.0f} "
        f"us CPU/msg  {cell['peak_rss_kb'] / 1024:6.1f} MB  server core {cell['server_load']:.0%}"
        + (f"  ({cell['failed']} failed)" if cell["failed"] else "")
    )


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
