"""Plain processes sharing a RedisJournal and a RedisRateLimit, against the fake over HTTP.

Each process is a real interpreter (`tests/redis/campaign_child.py`) with its own clients:
the async client on asyncio or trio, or the sync one. What they share is Redis only.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from postal_sdk.testing import FakePostal
from tests.arrivals import Arrivals

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ["async", "sync", "async", "sync"]


@pytest.fixture
def served_fake() -> Iterator[tuple[str, Arrivals]]:
    """A fake Postal over HTTP on loopback, and the arrivals it records."""
    fake = FakePostal()
    arrivals = Arrivals()
    fake.send_hooks.append(arrivals)
    with fake.serve() as base_url:
        yield base_url, arrivals


def run_processes(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start one child per config at once; wait for all; their JSON summaries."""
    children = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tests.redis.campaign_child", json.dumps(config)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for config in configs
    ]
    summaries = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    return summaries


def test_processes_racing_over_the_same_keys_send_each_key_once(
    redis_url: str, served_fake: tuple[str, Arrivals]
) -> None:
    base_url, arrivals = served_fake
    keys = [f"newsletter-7:{index}" for index in range(200)]
    configs = []
    for number, client in enumerate(CLIENTS):
        shuffled = random.Random(number).sample(keys, len(keys))
        backend = "trio" if number == 2 else "asyncio"
        configs.append(
            {"redis": redis_url, "base_url": base_url, "client": client, "keys": shuffled,
             "rate": None, "namespace": "race", "backend": backend}
        )  # fmt: skip

    summaries = run_processes(configs)

    sent = Counter(subject for _, subject in arrivals.sends)
    assert sorted(sent) == sorted(keys)
    assert max(sent.values()) == 1
    assert [summary["errors"] for summary in summaries] == [[]] * len(CLIENTS)
    assert sum(summary["sent"] for summary in summaries) == len(keys)
    assert sum(summary["replayed"] for summary in summaries) == len(keys) * (len(CLIENTS) - 1)


def test_processes_sharing_a_pace_hold_it_together_as_the_server_sees_it(
    redis_url: str, served_fake: tuple[str, Arrivals]
) -> None:
    base_url, arrivals = served_fake
    rate = 50  # per second, for all four processes together
    configs = [
        {"redis": redis_url, "base_url": base_url, "client": client,
         "keys": [f"paced:{number}:{index}" for index in range(50)],
         "rate": [rate, "second"], "namespace": "paced"}
        for number, client in enumerate(CLIENTS)
    ]  # fmt: skip

    summaries = run_processes(configs)

    assert sum(summary["sent"] for summary in summaries) == 200
    times = sorted(when for when, _ in arrivals.sends)
    # Four processes alone would send at four times the rate. Slots are one interval
    # apart on Redis' clock; what the server sees may only be later (a loaded machine
    # delays a send), so the bound that must hold is the upper one.
    measured = (len(times) - 1) / (times[-1] - times[0])
    assert measured <= rate * 1.03
