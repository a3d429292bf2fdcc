"""The Celery example under real `celery worker` processes, one of them killed with SIGKILL.

Four workers (prefork pool, two children each: the SDK's clients are made in the worker's main
process at import and the child is forked from it) send a campaign of 2,000 keyed messages
to the fake Postal over HTTP, sharing one journal and one pace in the test's Redis. Once a
worker's child holds a claim mid-send, the whole worker (main process and child) is killed,
as a machine dies. Celery hands its task to another worker (acks_late, after the
visibility timeout) and the journal answers it: nothing reaches the fake twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from postal_sdk import Message
from postal_sdk.journal import EntryState
from postal_sdk.redis import RedisJournal
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal, Latency
from tests.arrivals import Arrivals

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 2000
RATE = 40  # per second, for all the workers together: the campaign takes 50 s
WORKERS = 4
CONCURRENCY = 2  # pool children per worker: 8 senders hide the latency of a loaded machine
CAMPAIGN = "celery-test"
DEADLINE = 150.0


def wait_until(condition: object, what: str, give_up: float) -> None:
    while not condition():  # type: ignore[operator]
        if time.monotonic() > give_up:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[tuple[list[subprocess.Popen[bytes]], str]]:
    """The fake Postal over HTTP and four `celery worker` processes sending to it."""
    fake = FakePostal()
    arrivals = Arrivals()
    fake.send_hooks.append(arrivals)
    # Each send is recorded at once and answered 50 ms later, as by a real Postal: a worker
    # killed while it holds a claim has most likely sent its message without its result.
    fake.add_fault(Latency(0.05), path="send/message")
    with fake.serve() as base_url:
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "POSTAL_BASE_URL": base_url,
            "POSTAL_API_KEY": DEFAULT_API_KEY,
            "POSTAL_RATE": f"{RATE}/second",
            "CAMPAIGN": CAMPAIGN,
            "JOURNAL_LEASE": "3",
            "VISIBILITY_TIMEOUT": "5",
        }
        started = [
            subprocess.Popen(  # noqa: S603 - our own interpreter running celery
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "examples.celery_campaign.app",
                    "worker",
                    "--pool",
                    "prefork",
                    "--concurrency",
                    str(CONCURRENCY),
                    "--hostname",
                    f"worker{number}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "WARNING",
                    "--logfile",
                    str(tmp_path / f"worker{number}.log"),
                ],
                cwd=ROOT,
                env=env,
                start_new_session=True,  # its own process group: killed with its children
            )
            for number in range(WORKERS)
        ]
        try:
            yield started, env, arrivals  # type: ignore[misc]
        finally:
            for worker in started:
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGTERM)
            for worker in started:
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait()


def claimed_by_group(server: redis.Redis, group: int) -> bool:
    """Whether a process of process group `group` holds a claim (a send under way)."""
    prefix = f"postal-sdk:{{journal:{CAMPAIGN}}}:"
    for key in server.zrange(prefix + "unfinished", 0, -1):
        state, pid = server.hmget(prefix + "entry:" + key.decode(), "state", "pid")
        if state == b"pending" and pid is not None:
            try:
                if os.getpgid(int(pid)) == group:
                    return True
            except ProcessLookupError:
                continue
    return False


def test_a_campaign_across_celery_workers_survives_a_killed_worker(
    redis_url: str, workers: tuple[list[subprocess.Popen[bytes]], dict[str, str], Arrivals],
    tmp_path: Path,
) -> None:  # fmt: skip
    started, env, arrivals = workers
    give_up = time.monotonic() + DEADLINE
    with Celery(broker=redis_url, set_as_current=False) as control:
        wait_until(
            lambda: len(control.control.ping(timeout=0.5)) == WORKERS,
            "the workers to start",
            give_up,
        )
        # Its broker connections closed now: kombu "cleans up" a pool that still holds any
        # after every later fork in this process, reading the socket shared with the parent
        # (a forked child of a later test would hang there).
        control.pool.force_close_all()
    campaign = tmp_path / "campaign.jsonl"
    subjects = {str(line): f"Newsletter 7, part {line}" for line in range(1, MESSAGES + 1)}
    campaign.write_text(
        "".join(
            json.dumps(
                Message(
                    from_="news@example.com", to=[f"reader{line}@example.com"],
                    subject=subjects[str(line)], plain_body="Hello",
                ).to_dict()
            ) + "\n"
            for line in range(1, MESSAGES + 1)
        )
    )  # fmt: skip
    subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-m", "examples.celery_campaign.enqueue", str(campaign)],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip

    server = redis.Redis.from_url(redis_url)
    victim = started[0]
    wait_until(
        lambda: len(arrivals.sends) >= MESSAGES // 4 and claimed_by_group(server, victim.pid),
        "the victim worker to be sending, a quarter of the way in",
        give_up,
    )
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()

    journal = RedisJournal(redis_url, namespace=CAMPAIGN)
    key_of = {subject: key for key, subject in subjects.items()}

    def all_settled() -> bool:
        settled = {key_of[subject] for subject in arrivals.subjects()}
        settled |= {entry.key for entry in journal.in_doubt()}
        return len(settled) == MESSAGES

    wait_until(all_settled, "every message to be sent or in doubt", give_up)

    sent = Counter(arrivals.subjects())
    assert max(sent.values()) == 1  # no message reached the fake twice
    in_doubt = {entry.key for entry in journal.in_doubt()}
    assert len(in_doubt) <= CONCURRENCY  # at most one send under way per victim's child
    for key, subject in subjects.items():
        entry = journal.get(key)
        assert entry is not None
        assert entry.state is (EntryState.IN_DOUBT if key in in_doubt else EntryState.SENT)
        assert subject in sent or key in in_doubt
    # The pace as the server saw it, over the middle 80% of the sends (the first and last
    # tenth include the workers' start and the redelivered tasks' late sends).
    times = sorted(when for when, _ in arrivals.sends)
    first, last = len(times) // 10, len(times) * 9 // 10
    measured = (last - first) / (times[last] - times[first])
    per_second = Counter(int(when - times[0]) for when in times)
    assert abs(measured / RATE - 1) <= 0.03, (
        f"{measured:.2f}/s against {RATE}/s; sends in each second: {sorted(per_second.items())}"
    )
    journal.close()
    server.close()


def test_the_in_doubt_script_lists_and_settles_keys(redis_url: str) -> None:
    journal = RedisJournal(redis_url, namespace=CAMPAIGN)
    for key in ("7", "8"):
        journal.mark_in_doubt(journal.claim(key))
    env = {**os.environ, "REDIS_URL": redis_url, "CAMPAIGN": CAMPAIGN}

    def in_doubt(*arguments: str) -> str:
        return subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-m", "examples.celery_campaign.in_doubt", *arguments],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip

    listed = in_doubt()
    in_doubt("--sent", "7")
    in_doubt("--not-sent", "8")

    assert [line.split("\t")[0] for line in listed.splitlines()] == ["7", "8"]
    assert in_doubt() == ""
    assert journal.claim("7").status.value == "done"
    assert journal.claim("8").status.value == "claimed"
    journal.close()
