"""A process sending a keyed batch is killed with SIGKILL mid-batch; the batch is rerun.

Real processes, the fake served over HTTP by this one: whatever the child had done when
it died, the rerun sends every message at most once in all, leaves each one sent or in
doubt, and at most `concurrency` of them in doubt (the intents written just before their
requests left).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from postal_sdk import Postal, SendInDoubt
from postal_sdk.journal import SQLiteJournal
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal, Latency
from tests.e2e.support import NO_WAIT, message, subject_of

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL")

ROOT = Path(__file__).resolve().parents[2]
COUNT = 400
CONCURRENCY = 16
KILL_AFTER = 100
"""Sends the fake has accepted when the child is killed."""


def wait_for(condition: object, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_a_killed_batch_rerun_sends_each_message_at_most_once(tmp_path: Path) -> None:
    fake = FakePostal()
    # Each send takes a while at the server, so the child dies with sends under way.
    fake.add_fault(Latency(0.02), path="send/message")
    path = tmp_path / "sends.db"
    with fake.serve() as base_url:
        child = subprocess.Popen(  # noqa: S603 - our own child, a fixed command line
            [
                sys.executable,
                "-m",
                "tests.campaign._crash_child",
                base_url,
                str(path),
                str(COUNT),
                str(CONCURRENCY),
            ],
            cwd=ROOT,
        )
        try:
            wait_for(
                lambda: len(fake.outbox) >= KILL_AFTER or child.poll() is not None,
                f"{KILL_AFTER} sends",
            )
            assert child.poll() is None, "the child finished before it could be killed"
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
        journal = SQLiteJournal(path)
        in_doubt_listed = {entry.key for entry in journal.in_doubt()}
        with Postal(
            base_url, DEFAULT_API_KEY, backoff=NO_WAIT, journal=journal, headers={"X-Run": "rerun"}
        ) as postal:
            messages = [message(f"m{n}") for n in range(COUNT)]
            batch = postal.send_many(messages, concurrency=CONCURRENCY, key=lambda i, m: f"c:{i}")
            with batch as outcomes:
                got = {outcome.index: outcome for outcome in outcomes}
        journal.close()

    sends = [r for r in fake.requests if r.endpoint == "send/message"]
    by_child = Counter(subject_of(r) for r in sends if r.headers["X-Run"] == "child")
    by_rerun = Counter(subject_of(r) for r in sends if r.headers["X-Run"] == "rerun")
    processed = Counter(subject_of(r) for r in sends if r.processed)
    assert sum(by_child.values()) >= KILL_AFTER
    assert [s for s, n in processed.items() if n > 1] == []  # At most once, across both runs.
    assert [s for s, n in (by_child + by_rerun).items() if n > 1] == []
    assert sorted(got) == list(range(COUNT))
    in_doubt = {i for i, o in got.items() if isinstance(o.error, SendInDoubt)}
    assert all(o.ok for i, o in got.items() if i not in in_doubt)  # Sent, or in doubt.
    assert len(in_doubt) <= CONCURRENCY
    assert {f"c:{i}" for i in in_doubt} == in_doubt_listed
    for index, outcome in got.items():
        subject = f"m{index}"
        assert subject not in by_child or subject not in by_rerun
        if index in in_doubt:
            assert subject not in by_rerun  # Never resent automatically.
        else:
            assert outcome.replayed == (subject in by_child)
            assert outcome.replayed != (subject in by_rerun)
