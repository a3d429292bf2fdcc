"""`postal send-many` as a campaign: a pace, a journal that makes reruns resume, a results file.

The fake is served over HTTP by this process; runs that must die are real processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from postal_sdk.journal import SQLiteJournal
from postal_sdk.testing import FakePostal, Latency, OutboxEntry
from tests.campaign.support import arrivals
from tests.cli.conftest import API_KEY
from tests.cli.test_cli import run, write_jsonl


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePostal]:
    """A fake of this test's own (its outbox and hooks are this test's), served over HTTP."""
    fake = FakePostal(API_KEY)
    with fake.serve() as base_url:
        monkeypatch.setenv("POSTAL_BASE_URL", base_url)
        monkeypatch.setenv("POSTAL_API_KEY", API_KEY)
        yield fake


def line(number: int, **extra: object) -> str:
    message = {
        "from": "app@example.com",
        "to": [f"user{number}@example.org"],
        "subject": f"m{number}",
        "plain_body": "Hi",
    }
    return json.dumps({**message, **extra})


def subjects(fake: FakePostal) -> Counter[str]:
    """How many times each subject was accepted by the fake."""
    return Counter(str(entry.params["subject"]) for entry in fake.outbox)


def read_results(path: Path) -> dict[int, dict[str, object]]:
    records = [json.loads(text) for text in path.read_text().splitlines()]
    by_line = {record["line"]: record for record in records}
    assert len(by_line) == len(records)  # One record per line.
    return by_line


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def settled(fake: FakePostal, quiet: float = 1.0, timeout: float = 60.0) -> None:
    """Wait until the fake's outbox has not grown for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    seen, since = len(fake.outbox), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the fake's outbox kept growing"
        time.sleep(0.05)
        if len(fake.outbox) != seen:
            seen, since = len(fake.outbox), time.monotonic()


@pytest.mark.parametrize("rate", ["fast", "0/second", "5/fortnight", "-3/hour", "10/0"])
def test_a_bad_rate_is_a_usage_error_on_one_line(
    rate: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "send-many", "f.jsonl", "--rate", rate)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "--rate" in err


def test_rate_spaces_the_sends_as_the_fake_sees_them(
    fake: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    times = arrivals(fake)
    source = write_jsonl(tmp_path / "paced.jsonl", [line(n) for n in range(10)])
    status, out, _ = run(capsys, "send-many", str(source), "--rate", "20/second", "--json")
    assert status == 0
    assert json.loads(out)["sent"] == 10
    assert len(times) == 10
    # Ten slots 1/20 s apart span 0.45 s; a late first send (its connection) shortens that.
    assert times[-1] - times[0] >= 0.3


def test_a_rerun_with_the_same_journal_sends_nothing_twice(
    fake: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = [line(1), line(2, key="welcome:2"), "", line(4), "{broken", line(6)]
    source = write_jsonl(tmp_path / "campaign.jsonl", lines)
    journal, results = tmp_path / "sends.db", tmp_path / "results.jsonl"
    options = ["--journal", str(journal), "--results", str(results), "--json"]

    status, out, _ = run(capsys, "send-many", str(source), *options)
    first = read_results(results)
    summary = json.loads(out)
    assert status == 3  # The broken line.
    assert (summary["sent"], summary["already_sent"], summary["failed"]) == (4, 0, 1)
    assert summary["results_file"] == str(results)
    assert subjects(fake) == Counter({"m1": 1, "m2": 1, "m4": 1, "m6": 1})
    assert "key" not in next(e for e in fake.outbox if e.params["subject"] == "m2").params

    status, out, _ = run(capsys, "send-many", str(source), *options, "--overwrite")
    again = read_results(results)
    summary = json.loads(out)
    assert status == 3
    assert (summary["sent"], summary["already_sent"], summary["failed"]) == (0, 4, 1)
    assert subjects(fake) == Counter({"m1": 1, "m2": 1, "m4": 1, "m6": 1})  # Nothing resent.
    assert sorted(again) == sorted(first) == [1, 2, 4, 5, 6]
    for number in (1, 2, 4, 6):
        assert first[number]["replayed"] is False
        assert again[number]["replayed"] is True
        assert again[number]["messages"] == first[number]["messages"]
        assert again[number]["message_id"] == first[number]["message_id"]


def test_the_results_file_has_each_lines_key_ids_and_tokens_or_its_error(
    fake: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = [line(1, key="k-one"), line(2, **{"from": "x@unverified.example.net"}), "[1]"]
    source = write_jsonl(tmp_path / "mixed.jsonl", lines)
    results = tmp_path / "results.jsonl"
    journal = tmp_path / "sends.db"
    status, _, _ = run(
        capsys, "send-many", str(source), "--results", str(results), "--journal", str(journal)
    )
    by_line = read_results(results)
    assert status == 3
    [entry] = fake.outbox
    [sent] = entry.created
    assert by_line[1] == {
        "line": 1,
        "key": "k-one",
        "message_id": entry.message_id,
        "messages": {"user1@example.org": {"id": sent.id, "token": sent.token}},
        "replayed": False,
    }
    assert by_line[2]["key"] == "line-2"
    assert by_line[2]["code"] == "UnauthenticatedFromAddress"
    assert by_line[2]["in_doubt"] is False
    assert "expected a JSON object" in str(by_line[3]["error"])


@pytest.mark.parametrize("which", ["--results", "--failures"])
def test_an_existing_results_or_failures_file_is_never_overwritten_unasked(
    which: str, fake: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "batch.jsonl", [line(1)])
    existing = tmp_path / "earlier.jsonl"
    existing.write_text("an earlier run's lines\n")
    status, out, err = run(capsys, "send-many", str(source), which, str(existing))
    assert status == 2
    assert out == ""
    assert err == f"postal: error: {existing} exists: pass --overwrite to replace it\n"
    assert existing.read_text() == "an earlier run's lines\n"
    assert fake.outbox == ()

    status, _, _ = run(capsys, "send-many", str(source), which, str(existing), "--overwrite")
    assert status == 0
    # The failures file is written only when a line fails; none did here.
    assert not existing.exists() or "earlier" not in existing.read_text()


def test_the_default_failures_file_of_an_earlier_run_is_kept(
    fake: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "batch.jsonl", [line(1), "{broken"])
    assert run(capsys, "send-many", str(source))[0] == 3
    status, _, err = run(capsys, "send-many", str(source))
    assert status == 2
    assert "batch.failed.jsonl exists" in err
    assert len(fake.outbox) == 1


def test_lines_in_doubt_are_listed_and_not_resent(
    fake: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "sends.db"
    journal = SQLiteJournal(path)
    journal.claim("line-2")
    journal.close()  # A claim held at close has no result: in doubt.
    source = write_jsonl(tmp_path / "batch.jsonl", [line(1), line(2), line(3)])

    status, out, err = run(capsys, "send-many", str(source), "--journal", str(path), "--json")
    summary = json.loads(out)
    assert status == 3
    assert summary["in_doubt"] == [{"line": 2, "key": "line-2"}]
    assert summary["sent"] == 2
    assert "line 2 (key line-2)" in err
    assert subjects(fake) == Counter({"m1": 1, "m3": 1})


def test_a_redis_journal_without_the_extra_is_one_clear_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake: FakePostal,
    tmp_path: Path,
) -> None:
    monkeypatch.setitem(sys.modules, "postal_sdk.redis", None)
    source = write_jsonl(tmp_path / "batch.jsonl", [line(1)])
    status, _, err = run(capsys, "send-many", str(source), "--journal", "redis://127.0.0.1:1/0")
    assert status == 1
    assert err == (
        "postal: error: --journal redis://... needs the 'redis' extra: "
        "pip install 'postal-sdk[redis]'\n"
    )
    assert fake.outbox == ()


COUNT = 300
CONCURRENCY = 8
STOP_AFTER = 60
"""Sends the fake has accepted when the child is stopped."""


@pytest.mark.skipif(os.name != "posix", reason="signals")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_stopped_run_rerun_with_its_journal_sends_each_line_at_most_once(
    sig: signal.Signals,
    fake: FakePostal,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # Each send takes a while at the server, so the child stops with sends under way.
    fake.add_fault(Latency(0.02), path="send/message")
    source = write_jsonl(tmp_path / "big.jsonl", [line(n) for n in range(1, COUNT + 1)])
    journal = tmp_path / "sends.db"
    options = ["--journal", str(journal), "--concurrency", str(CONCURRENCY)]
    child_results = tmp_path / "child-results.jsonl"
    child = subprocess.Popen(  # noqa: S603 - our own command line
        [
            sys.executable,
            "-m",
            "postal_sdk.cli",
            "send-many",
            str(source),
            *options,
            "--results",
            str(child_results),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: len(fake.outbox) >= STOP_AFTER or child.poll() is not None,
            f"{STOP_AFTER} sends",
        )
        assert child.poll() is None, "the child finished before it could be stopped"
        child.send_signal(sig)
        _, child_err = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
    if sig == signal.SIGINT:
        assert child.returncode == 130
        assert "Traceback" not in child_err
        assert "never sent; resume from line" in child_err
        # Its results were written out as it stopped: each send it saw succeed, it made.
        reported = read_results(child_results)
        assert reported
        for number, record in reported.items():
            assert "error" not in record
            assert f"m{number}" in subjects(fake)
    # Sends the child had under way may still be handled by the server after it died:
    # they are the child's, so wait for the outbox to stop growing before taking stock.
    settled(fake)
    by_child = subjects(fake)

    results = tmp_path / "results.jsonl"
    status, _, _ = run(capsys, "send-many", str(source), *options, "--results", str(results))
    records = read_results(results)

    assert sorted(records) == list(range(1, COUNT + 1))
    assert [s for s, n in subjects(fake).items() if n > 1] == []  # At most once in all.
    in_doubt = {n for n, r in records.items() if r.get("in_doubt")}
    assert len(in_doubt) <= CONCURRENCY
    for number, record in records.items():
        if number in in_doubt:
            assert f"m{number}" not in subjects(fake) or f"m{number}" in by_child
            continue
        assert "error" not in record  # Sent, or in doubt.
        assert record["replayed"] == (f"m{number}" in by_child)
    assert status == (3 if in_doubt else 0)
    assert sum(by_child.values()) >= STOP_AFTER


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_ctrl_c_mid_run_exits_130_with_where_to_resume_and_the_journal_kept(
    fake: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # SIGINT while sends are under way, in this process (the CLI runs in it): on Python
    # 3.10 anyio's runner used to let a bare CancelledError out of main(), exit status 1.
    accepted = []

    def interrupt_at_the_twentieth(entry: OutboxEntry) -> None:
        accepted.append(entry)
        if len(accepted) == 20:
            os.kill(os.getpid(), signal.SIGINT)

    fake.send_hooks.append(interrupt_at_the_twentieth)
    fake.add_fault(Latency(0.01), path="send/message")
    source = write_jsonl(tmp_path / "big.jsonl", [line(n) for n in range(1, COUNT + 1)])
    results = tmp_path / "results.jsonl"
    options = ["--journal", str(tmp_path / "sends.db"), "--concurrency", str(CONCURRENCY)]

    status, out, err = run(
        capsys, "send-many", str(source), *options, "--results", str(results), "--json"
    )
    summary = json.loads(out)
    assert status == 130
    assert json.loads(err.splitlines()[-1])["error"]["kind"] == "interrupted"
    assert summary["never_sent"] > 0
    assert f"resume from line {summary['resume_from_line']}" in err
    assert summary["sent"] + len(summary["outcome_unknown"]) + summary["never_sent"] == COUNT
    reported = read_results(results)
    assert len(reported) == summary["sent"] >= 20 - CONCURRENCY
    assert all("error" not in record for record in reported.values())

    # The journal kept every send the run saw through: the rerun replays them.
    status, out, _ = run(capsys, "send-many", str(source), *options, "--json", "--overwrite")
    again = json.loads(out)
    assert again["already_sent"] >= summary["sent"]
    assert again["sent"] + again["already_sent"] + len(again["in_doubt"]) == COUNT
    assert [s for s, n in subjects(fake).items() if n > 1] == []
    assert status == (3 if again["in_doubt"] else 0)


def test_a_batch_stopped_by_a_wrong_key_says_where_to_resume(
    fake: FakePostal,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("POSTAL_API_KEY", "wrong-key-0000000000000000")
    source = write_jsonl(tmp_path / "batch.jsonl", [line(n) for n in range(1, 51)])
    options = ["--journal", str(tmp_path / "s.db"), "--json"]
    status, out, err = run(capsys, "send-many", str(source), *options)
    summary = json.loads(out)
    assert status == 4
    assert summary["sent"] == 0
    assert summary["in_doubt"] == []
    # The sends under way failed; none after them was sent.
    assert 0 < summary["failed"] < 50
    assert summary["failed"] + summary["never_sent"] == 50
    assert summary["resume_from_line"] == summary["failed"] + 1
    assert f"resume from line {summary['failed'] + 1}" in err
    assert fake.outbox == ()

    # Refused sends are not journaled as sent: the rerun with the right key sends them all.
    monkeypatch.setenv("POSTAL_API_KEY", API_KEY)
    status, out, _ = run(capsys, "send-many", str(source), *options, "--overwrite")
    assert status == 0
    assert json.loads(out)["sent"] == 50
    assert len(fake.outbox) == 50


def test_a_rerun_with_a_redis_journal_sends_nothing_twice(
    fake: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path, redis_url: str
) -> None:
    source = write_jsonl(tmp_path / "campaign.jsonl", [line(n) for n in range(1, 11)])
    options = ["--journal", redis_url, "--rate", "100/second", "--json"]

    first_status, first, _ = run(capsys, "send-many", str(source), *options)
    again_status, again, _ = run(capsys, "send-many", str(source), *options)

    assert (first_status, again_status) == (0, 0)
    assert (json.loads(first)["sent"], json.loads(first)["already_sent"]) == (10, 0)
    assert (json.loads(again)["sent"], json.loads(again)["already_sent"]) == (0, 10)
    assert subjects(fake) == Counter({f"m{n}": 1 for n in range(1, 11)})
