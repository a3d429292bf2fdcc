"""Django's `send_messages` of 300 messages at a 20 ms server: ours against anymail's.

    python benchmarks/django_backend.py [--messages 300] [--delay 0.02] [--rounds 3]
    (or: nox -s bench)

Both backends get the same list of `EmailMessage`s through Django's own bulk call,
`get_connection().send_messages(messages)`, against `benchmarks/server.py` holding each
answer back 20 ms (a real Postal takes tens of milliseconds per send). anymail's Postal
backend sends them one after another; `postal_sdk.django.EmailBackend` sends them
through `Postal.send_many`, `CONCURRENCY` (default 50) at a time. Each backend runs in a
fresh process (Django is configured once per process), pinned to core 0 with the
server on core 1; the best of `--rounds` calls is kept.

Writes benchmarks/results/django.md.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
API_KEY = "bench-key"
CLIENT_CPU, SERVER_CPU = 0, 1
TARGET = 10.0

BACKENDS = {
    "django-anymail (Postal backend)": "anymail.backends.postal.EmailBackend",
    "postal_sdk.django.EmailBackend": "postal_sdk.django.EmailBackend",
    "postal_sdk.django.EmailBackend, CONCURRENCY 20": "postal_sdk.django.EmailBackend",
}


def run_backend(name: str, url: str, messages: int, rounds: int) -> dict[str, Any]:
    """In the child process: configure Django for one backend and time send_messages."""
    import django
    from django.conf import settings

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {CLIENT_CPU})
    postal: dict[str, Any] = {"BASE_URL": url, "API_KEY": API_KEY}
    if name.endswith("CONCURRENCY 20"):
        postal["CONCURRENCY"] = 20
    settings.configure(
        EMAIL_BACKEND=BACKENDS[name],
        ANYMAIL={"POSTAL_API_KEY": API_KEY, "POSTAL_API_URL": url},
        POSTAL=postal,
        INSTALLED_APPS=["anymail"],
    )
    django.setup()
    from django.core.mail import EmailMessage, get_connection

    best = float("inf")
    for _ in range(rounds):
        batch = [
            EmailMessage("Hello", "Hello, world", "app@example.com", ["john@example.com"])
            for _ in range(messages)
        ]
        started = time.perf_counter()
        sent = get_connection().send_messages(batch)
        elapsed = time.perf_counter() - started
        if sent != messages:
            raise SystemExit(f"{name} sent {sent} of {messages}")
        best = min(best, elapsed)
    return {"seconds": best, "per_second": messages / best}


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


def measure(name: str, url: str, messages: int, rounds: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--backend", name, "--url", url]
    command += ["--messages", str(messages), "--rounds", str(rounds)]
    child = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if child.returncode != 0:
        reason = (child.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": reason}
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def report(results: dict[str, dict[str, Any]], messages: int, delay: float) -> str:
    baseline = results["django-anymail (Postal backend)"].get("per_second")
    lines = [
        "# Django backend benchmark",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}"
        f" on {os.cpu_count()} cores, CPython {platform.python_version()}; load average at "
        f"the end {', '.join(f'{load:.2f}' for load in os.getloadavg())} (the machine is "
        "shared: figures are noisy).",
        "",
        f"Versions: postal-sdk {_version('postal-sdk')}, django {_version('django')}, "
        f"django-anymail {_version('django-anymail')}.",
        "",
        f"`get_connection().send_messages(messages)` of {messages} one-recipient messages, "
        f"server answering after {delay * 1000:.0f} ms; best of the rounds.",
        "",
        "| Backend | Seconds | Messages/s | vs anymail |",
        "|---|---:|---:|---:|",
    ]
    for name, result in results.items():
        if "error" in result:
            lines.append(f"| {name} | failed: {result['error']} | | |")
            continue
        ratio = f"{result['per_second'] / baseline:.1f}x" if baseline else "n/a"
        lines.append(
            f"| {name} | {result['seconds']:.2f} | {result['per_second']:,.0f} | {ratio} |"
        )
    ours = results["postal_sdk.django.EmailBackend"].get("per_second")
    met = bool(baseline and ours and ours / baseline >= TARGET)
    measured = f"{ours / baseline:.1f}x" if baseline and ours else "n/a"
    lines += [
        "",
        "| Target | Measured | Goal | Met |",
        "|---|---:|---|---|",
        f"| default settings vs anymail | {measured} | >= {TARGET:.0f}x "
        f"| {'yes' if met else 'no'} |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.backend:
        result = run_backend(arguments.backend, arguments.url, arguments.messages, arguments.rounds)
        print(json.dumps(result), flush=True)
        return
    server, url = start_server(arguments.delay)
    try:
        results = {
            name: measure(name, url, arguments.messages, arguments.rounds) for name in BACKENDS
        }
    finally:
        server.terminate()
        server.wait()
    text = report(results, arguments.messages, arguments.delay)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "django.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
