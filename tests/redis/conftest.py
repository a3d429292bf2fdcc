"""Fixtures for the Redis tests: journals and paces on the session's real Redis server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from postal_sdk.redis import RedisJournal

DEADLINE = 30.0
"""Seconds a test waits for a condition before it fails (a loaded 2-core machine is slow)."""


def wait_until(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    """Poll `condition` until it holds; fail saying `what` was awaited if it never does."""
    give_up = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > give_up:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def journal(redis_url: str) -> Iterator[RedisJournal]:
    """A journal on the test's empty Redis, closed after the test."""
    journal = RedisJournal(redis_url, namespace="tests")
    yield journal
    journal.close()


@pytest.fixture
def unreachable_redis_url() -> str:
    """A loopback Redis URL where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


CLAIM_AND_HANG = """
import sys, time
from postal_sdk.redis import RedisJournal
journal = RedisJournal(sys.argv[1], namespace=sys.argv[2], lease=float(sys.argv[3]))
claim = journal.claim(sys.argv[4])
print(claim.status.value, flush=True)
time.sleep(600)
"""


@pytest.fixture
def claimed_by_a_process(redis_url: str) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a process that claims a key and hangs (to be killed); stops it after the test."""
    started: list[subprocess.Popen[str]] = []

    def start(key: str, *, namespace: str = "tests", lease: float = 1.0) -> subprocess.Popen[str]:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", CLAIM_AND_HANG, redis_url, namespace, str(lease), key],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(child)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "claimed"
        return child

    yield start
    for child in started:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
