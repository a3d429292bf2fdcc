"""`SQLiteJournal`: claims, results, doubt and its resolution, on its own (no client).

The async forms run on asyncio and trio; the blocking forms from threads.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from postal_sdk import ConfigurationError, InvalidArgumentError, JournalError
from postal_sdk.journal import (
    ClaimStatus,
    EntryState,
    Journal,
    SQLiteJournal,
    fingerprint,
    result_from_json,
    result_to_json,
)
from postal_sdk.models import RawMessage, SendResult, SentMessage
from tests.e2e.support import message

RESULT = SendResult("abc@example.com", {"john@example.org": SentMessage(7, "tok")})


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SQLiteJournal]:
    journal = SQLiteJournal(tmp_path / "sends.db")
    yield journal
    journal.close()


def test_a_free_key_is_claimed_then_busy_then_done(journal: SQLiteJournal) -> None:
    claim = journal.claim("k", "fp")
    assert claim.status is ClaimStatus.CLAIMED
    assert claim.token
    busy = journal.claim("k", "fp")
    assert busy.status is ClaimStatus.BUSY
    assert busy.entry is not None
    assert busy.entry.state is EntryState.PENDING
    journal.record(claim, RESULT)
    done = journal.claim("k", "fp")
    assert done.status is ClaimStatus.DONE
    assert done.entry is not None
    assert done.entry.result == RESULT
    assert done.entry.result.replayed
    assert done.entry.fingerprint == "fp"
    assert done.entry.claimed_at is not None
    assert done.entry.finished_at is not None


def test_a_released_key_is_free_again(journal: SQLiteJournal) -> None:
    journal.release(journal.claim("k"))
    assert journal.get("k") is None
    assert journal.claim("k").status is ClaimStatus.CLAIMED


def test_a_key_marked_in_doubt_is_listed_and_never_claimed(journal: SQLiteJournal) -> None:
    journal.mark_in_doubt(journal.claim("k"))
    assert journal.claim("k").status is ClaimStatus.IN_DOUBT
    assert [entry.key for entry in journal.in_doubt()] == ["k"]


def test_a_claim_sees_what_its_batch_did_before_it(journal: SQLiteJournal) -> None:
    # A result, a release and a mark return once queued; a claim of the same key queued
    # right after them must see them, though the writer runs a batch's claims together.
    # A lock on the file holds the writer back until all of them wait in one batch.
    claims = {key: journal.claim(key) for key in ("sent", "released", "doubted")}
    blocker = sqlite3.connect(journal.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    journal.renew([])
    _wait_until(lambda: journal._queue.qsize() == 0)  # The writer holds it, and waits.
    journal.record(claims["sent"], RESULT)
    journal.release(claims["released"])
    journal.mark_in_doubt(claims["doubted"])
    statuses: dict[str, ClaimStatus] = {}

    def claim(key: str) -> None:
        statuses[key] = journal.claim(key).status

    threads = [threading.Thread(target=claim, args=(key,)) for key in claims]
    for thread in threads:
        thread.start()
    _wait_until(lambda: journal._queue.qsize() == 6)
    blocker.rollback()
    blocker.close()
    for thread in threads:
        thread.join()
    assert statuses == {
        "sent": ClaimStatus.DONE,
        "released": ClaimStatus.CLAIMED,
        "doubted": ClaimStatus.IN_DOUBT,
    }


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.001)


@pytest.mark.anyio
async def test_a_row_that_cannot_be_read_fails_its_claim_not_the_journal(
    journal: SQLiteJournal,
) -> None:
    # Written by hand (or damaged): a sent key whose result is not JSON.
    with sqlite3.connect(journal.path) as other:
        other.execute(
            "INSERT INTO postal_sends (key, state, result) VALUES ('bad', 'sent', 'not json')"
        )
    other.close()
    with anyio.fail_after(30):  # A writer thread that died would leave both waiting.
        with pytest.raises(ValueError, match="Expecting value"):
            await journal.async_claim("bad")
        assert (await journal.async_claim("good")).status is ClaimStatus.CLAIMED


@pytest.mark.anyio
async def test_a_batch_that_fails_unexpectedly_fails_its_callers_not_the_journal(
    journal: SQLiteJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(connection: sqlite3.Connection, claims: list[object]) -> None:
        raise RuntimeError("a bug in the writer")

    monkeypatch.setattr(journal, "_claim_all", fail)
    with anyio.fail_after(30):  # A writer thread that died would leave both waiting.
        with pytest.raises(JournalError, match="a bug in the writer"):
            await journal.async_claim("k")
        monkeypatch.undo()
        assert (await journal.async_claim("k")).status is ClaimStatus.CLAIMED


def test_resolving_settles_an_in_doubt_key(journal: SQLiteJournal) -> None:
    journal.mark_in_doubt(journal.claim("a"))
    journal.mark_in_doubt(journal.claim("b"))
    journal.resolve("a", sent=True, result=RESULT)
    journal.resolve("b", sent=False)
    assert journal.in_doubt() == []
    entry = journal.get("a")
    assert entry is not None
    assert entry.state is EntryState.SENT
    assert entry.result == RESULT
    assert journal.get("b") is None


def test_a_key_held_by_a_live_sender_cannot_be_resolved(journal: SQLiteJournal) -> None:
    journal.claim("k")
    with pytest.raises(InvalidArgumentError, match="live sender"):
        journal.resolve("k", sent=False)


def test_closing_turns_the_claims_still_held_into_doubt(tmp_path: Path) -> None:
    first = SQLiteJournal(tmp_path / "sends.db")
    first.claim("held")
    first.close()
    again = SQLiteJournal(tmp_path / "sends.db")
    assert again.claim("held").status is ClaimStatus.IN_DOUBT
    again.close()


def test_a_claim_whose_process_is_gone_is_in_doubt(tmp_path: Path) -> None:
    path = tmp_path / "sends.db"
    holder = SQLiteJournal(path)
    holder.claim("alive")
    holder.claim("gone")
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    with sqlite3.connect(path) as db:
        # As if another process on this machine held them: one still running, one gone.
        db.execute("UPDATE postal_sends SET pid = ? WHERE key = 'alive'", (os.getppid(),))
        db.execute("UPDATE postal_sends SET pid = ? WHERE key = 'gone'", (int(finished.stdout),))
    other = SQLiteJournal(path)
    assert other.claim("alive").status is ClaimStatus.BUSY
    assert other.claim("gone").status is ClaimStatus.IN_DOUBT
    other.close()
    holder.close()


def test_a_claim_whose_lease_ran_out_is_in_doubt(tmp_path: Path) -> None:
    path = tmp_path / "sends.db"
    holder = SQLiteJournal(path)
    holder.claim("k")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE postal_sends SET lease_until = 0, owner = 'elsewhere'")
    assert holder.claim("k").status is ClaimStatus.IN_DOUBT
    holder.close()


def test_of_many_threads_claiming_one_key_exactly_one_gets_it(journal: SQLiteJournal) -> None:
    statuses: list[ClaimStatus] = []
    barrier = threading.Barrier(16)

    def claim() -> None:
        barrier.wait()
        statuses.append(journal.claim("contested").status)

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(ClaimStatus.CLAIMED) == 1
    assert statuses.count(ClaimStatus.BUSY) == 15


@pytest.mark.anyio
async def test_many_tasks_claim_without_blocking_the_loop(journal: SQLiteJournal) -> None:
    statuses: list[ClaimStatus] = []

    async def claim(key: str) -> None:
        statuses.append((await journal.async_claim(key)).status)

    async with anyio.create_task_group() as tasks:
        for n in range(200):
            tasks.start_soon(claim, f"k{n % 100}")
    assert statuses.count(ClaimStatus.CLAIMED) == 100
    assert statuses.count(ClaimStatus.BUSY) == 100


@pytest.mark.anyio
async def test_a_waiter_gets_the_result_of_the_sender(journal: SQLiteJournal) -> None:
    claim = await journal.async_claim("k")
    async with anyio.create_task_group() as tasks:
        got = []

        async def wait() -> None:
            got.append(await journal.async_wait("k", 30))

        tasks.start_soon(wait)
        await journal.async_record(claim, RESULT)
    [entry] = got
    assert entry is not None
    assert entry.result == RESULT


@pytest.mark.anyio
async def test_a_waiter_is_told_when_the_key_was_released(journal: SQLiteJournal) -> None:
    claim = await journal.async_claim("k")
    async with anyio.create_task_group() as tasks:
        got = []

        async def wait() -> None:
            got.append(await journal.async_wait("k", 30))

        tasks.start_soon(wait)
        await journal.async_release(claim)
    assert got == [None]


@pytest.mark.anyio
async def test_a_claim_cancelled_while_queued_leaves_the_key_free(
    journal: SQLiteJournal,
) -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        await journal.async_claim("k")
    assert await journal.async_get("k") is None
    assert (await journal.async_claim("k")).status is ClaimStatus.CLAIMED


@pytest.mark.anyio
async def test_the_async_forms_resolve_and_list(journal: SQLiteJournal) -> None:
    await journal.async_mark_in_doubt(await journal.async_claim("k"))
    assert [entry.key for entry in await journal.async_in_doubt()] == ["k"]
    await journal.async_resolve("k", sent=False)
    assert await journal.async_in_doubt() == []
    await journal.async_renew([])
    await journal.async_close()
    with pytest.raises(JournalError, match="closed"):
        await journal.async_claim("k")


def test_a_closed_journal_refuses_claims(journal: SQLiteJournal) -> None:
    journal.close()
    journal.close()
    with pytest.raises(JournalError, match="closed"):
        journal.claim("k")


def test_a_sqlite_journal_is_a_journal(journal: SQLiteJournal) -> None:
    assert isinstance(journal, Journal)


def test_a_journal_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        SQLiteJournal(tmp_path / "nowhere" / "sends.db")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_a_journal_in_a_read_only_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(ConfigurationError, match="not writable"):
            SQLiteJournal(directory / "sends.db")
    finally:
        directory.chmod(0o700)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sends.db"
    path.write_bytes(b"this is not a database, only words, far more than a header" * 20)
    with pytest.raises(ConfigurationError, match="cannot be a journal"):
        SQLiteJournal(path)


def test_an_empty_key_is_refused(journal: SQLiteJournal) -> None:
    with pytest.raises(InvalidArgumentError):
        journal.claim("")


def test_a_result_is_stored_in_postals_json_shape() -> None:
    text = result_to_json(RESULT)
    assert text == (
        '{"message_id":"abc@example.com","messages":{"john@example.org":{"id":7,"token":"tok"}}}'
    )
    assert result_from_json(text) == RESULT


def test_the_fingerprint_tells_recipients_apart_not_bodies() -> None:
    assert fingerprint(message("a")) == fingerprint(message("a", plain_body="other body"))
    assert fingerprint(message("a")) != fingerprint(message("b"))
    assert fingerprint(message("a")) != fingerprint(message("a", to=["x@example.org"]))
    raw = RawMessage(mail_from="a@example.com", rcpt_to=["x@example.org"], data=b"A: b\r\n\r\nc")
    same = RawMessage(mail_from="a@example.com", rcpt_to=["x@example.org"], data=b"D: e\r\n\r\nf")
    assert fingerprint(raw) == fingerprint(same)


def test_a_directory_the_process_cannot_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real read-only test above cannot run as root (root writes anywhere): here the
    # permission check itself answers no, as it does for any other user.
    monkeypatch.setattr("postal_sdk.journal.os.access", lambda path, mode: False)
    with pytest.raises(ConfigurationError, match="not writable"):
        SQLiteJournal(tmp_path / "sends.db")


def test_a_program_that_ends_without_closing_keeps_its_results(tmp_path: Path) -> None:
    path = tmp_path / "sends.db"
    program = (
        "import sys\n"
        "from postal_sdk.journal import SQLiteJournal\n"
        "from postal_sdk.models import SendResult, SentMessage\n"
        "journal = SQLiteJournal(sys.argv[1])\n"
        "result = SendResult('id', {'a@example.org': SentMessage(1, 't')})\n"
        "journal.record(journal.claim('k'), result)\n"
    )
    subprocess.run(  # noqa: S603 - our own interpreter and program
        [sys.executable, "-c", program, str(path)], check=True, timeout=60
    )
    journal = SQLiteJournal(path)
    entry = journal.get("k")
    journal.close()
    assert entry is not None
    assert entry.state is EntryState.SENT
