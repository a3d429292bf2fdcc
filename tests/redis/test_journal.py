"""RedisJournal keeps the journal protocol on a real Redis: from tasks (asyncio, trio), threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
import redis
import redis.asyncio

from postal_sdk import ConfigurationError, InvalidArgumentError, JournalError, SendResult
from postal_sdk.errors import InvalidArgumentTypeError
from postal_sdk.journal import ClaimStatus, EntryState, Journal, JournalEntry
from postal_sdk.models import SentMessage
from postal_sdk.redis import RedisJournal
from tests.redis.conftest import wait_until

RESULT = SendResult(
    message_id="a1b2@rp.example.com",
    messages={"john@example.com": SentMessage(id=37, token="Xk2J9qLm")},
)


def test_a_redis_journal_is_a_journal(journal: RedisJournal) -> None:
    assert isinstance(journal, Journal)


@pytest.mark.anyio
async def test_of_many_tasks_claiming_one_key_exactly_one_gets_it(journal: RedisJournal) -> None:
    statuses: list[ClaimStatus] = []

    async def claim() -> None:
        statuses.append((await journal.async_claim("welcome:1", "fp")).status)

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(claim)

    assert statuses.count(ClaimStatus.CLAIMED) == 1
    assert statuses.count(ClaimStatus.BUSY) == 19


def test_of_many_threads_claiming_one_key_exactly_one_gets_it(journal: RedisJournal) -> None:
    start = threading.Barrier(16)

    def claim(_: int) -> ClaimStatus:
        start.wait()
        return journal.claim("welcome:1").status

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(claim, range(16)))

    assert statuses.count(ClaimStatus.CLAIMED) == 1
    assert statuses.count(ClaimStatus.BUSY) == 15


@pytest.mark.anyio
async def test_a_recorded_key_is_answered_with_its_result(journal: RedisJournal) -> None:
    claim = await journal.async_claim("welcome:1", "fp")
    await journal.async_record(claim, RESULT)

    again = await journal.async_claim("welcome:1", "fp")

    assert again.status is ClaimStatus.DONE
    assert again.entry is not None
    assert again.entry.result == RESULT
    assert again.entry.result.replayed
    assert again.entry.fingerprint == "fp"
    assert again.entry.finished_at is not None
    assert again.entry.claimed_at is not None
    assert again.entry.claimed_at <= again.entry.finished_at


@pytest.mark.anyio
async def test_a_task_offered_a_busy_key_waits_for_the_senders_result(
    journal: RedisJournal,
) -> None:
    claim = await journal.async_claim("welcome:1")
    busy = await journal.async_claim("welcome:1")
    assert busy.status is ClaimStatus.BUSY

    async with anyio.create_task_group() as group:
        waited: list[JournalEntry | None] = []

        async def wait() -> None:
            waited.append(await journal.async_wait("welcome:1", within=30))

        group.start_soon(wait)
        await journal.async_record(claim, RESULT)

    [entry] = waited
    assert entry is not None
    assert entry.state is EntryState.SENT
    assert entry.result == RESULT


def test_a_thread_offered_a_busy_key_waits_for_the_senders_result(
    journal: RedisJournal,
) -> None:
    claim = journal.claim("welcome:1")
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(journal.wait, "welcome:1", 30)
        journal.record(claim, RESULT)
        entry = waiting.result()

    assert entry is not None
    assert entry.state is EntryState.SENT
    assert entry.result == RESULT


@pytest.mark.anyio
async def test_wait_returns_the_pending_entry_when_its_time_is_up(journal: RedisJournal) -> None:
    await journal.async_claim("welcome:1")

    entry = await journal.async_wait("welcome:1", within=0.05)

    assert entry is not None
    assert entry.state is EntryState.PENDING


@pytest.mark.anyio
async def test_a_released_key_is_free_again(journal: RedisJournal) -> None:
    claim = await journal.async_claim("welcome:1")
    await journal.async_release(claim)

    assert await journal.async_get("welcome:1") is None
    assert (await journal.async_claim("welcome:1")).status is ClaimStatus.CLAIMED


@pytest.mark.anyio
async def test_a_key_marked_in_doubt_is_never_claimed_again(journal: RedisJournal) -> None:
    claim = await journal.async_claim("welcome:1")
    await journal.async_mark_in_doubt(claim)

    assert (await journal.async_claim("welcome:1")).status is ClaimStatus.IN_DOUBT
    assert [entry.key for entry in await journal.async_in_doubt()] == ["welcome:1"]
    waited = await journal.async_wait("welcome:1", within=30)
    assert waited is not None
    assert waited.state is EntryState.IN_DOUBT


def test_a_claim_whose_process_was_killed_turns_in_doubt_and_is_never_free(
    journal: RedisJournal, claimed_by_a_process: Callable[..., subprocess.Popen[str]]
) -> None:
    holder = claimed_by_a_process("welcome:1", lease=0.5)
    assert journal.claim("welcome:1").status is ClaimStatus.BUSY

    holder.kill()
    holder.wait()

    wait_until(
        lambda: journal.get("welcome:1").state is EntryState.IN_DOUBT,  # type: ignore[union-attr]
        "the dead holder's lease to run out",
    )
    assert journal.claim("welcome:1").status is ClaimStatus.IN_DOUBT
    [entry] = journal.in_doubt()
    assert entry.key == "welcome:1"
    assert entry.result is None


def test_a_live_process_keeps_its_claim_past_many_leases(redis_url: str) -> None:
    holder = RedisJournal(redis_url, namespace="tests", lease=0.3)
    other = RedisJournal(redis_url, namespace="tests", lease=0.3)
    try:
        holder.claim("welcome:1")
        server = redis.Redis.from_url(redis_url)
        started = server.time()[0]

        def still_pending_after_four_leases() -> bool:
            entry = other.get("welcome:1")
            assert entry is not None
            assert entry.state is EntryState.PENDING
            return bool(server.time()[0] >= started + 2)  # whole seconds: > 4 leases

        wait_until(still_pending_after_four_leases, "four leases to pass")
        server.close()
    finally:
        holder.close()
        other.close()


@pytest.mark.anyio
async def test_close_turns_the_claims_still_held_in_doubt(redis_url: str) -> None:
    holder = RedisJournal(redis_url, namespace="tests")
    other = RedisJournal(redis_url, namespace="tests")
    sent = await holder.async_claim("welcome:1")
    await holder.async_claim("welcome:2")
    await holder.async_record(sent, RESULT)

    await holder.async_close()
    await holder.async_close()  # a second close is harmless

    assert [entry.key for entry in await other.async_in_doubt()] == ["welcome:2"]
    with pytest.raises(JournalError, match="closed"):
        await holder.async_claim("welcome:3")
    await other.async_close()


@pytest.mark.anyio
async def test_an_in_doubt_key_resolved_as_sent_is_answered_with_the_given_result(
    journal: RedisJournal,
) -> None:
    await journal.async_mark_in_doubt(await journal.async_claim("welcome:1"))

    await journal.async_resolve("welcome:1", sent=True, result=RESULT)

    again = await journal.async_claim("welcome:1")
    assert again.status is ClaimStatus.DONE
    assert again.entry is not None
    assert again.entry.result == RESULT
    assert await journal.async_in_doubt() == []


def test_a_key_resolved_as_sent_without_a_result_is_done_with_none(
    journal: RedisJournal,
) -> None:
    journal.resolve("never-claimed", sent=True)

    again = journal.claim("never-claimed")
    assert again.status is ClaimStatus.DONE
    assert again.entry is not None
    assert again.entry.result is None
    assert again.entry.claimed_at is not None


def test_an_in_doubt_key_resolved_as_not_sent_is_free(journal: RedisJournal) -> None:
    journal.mark_in_doubt(journal.claim("welcome:1"))

    journal.resolve("welcome:1", sent=False)

    assert journal.in_doubt() == []
    assert journal.claim("welcome:1").status is ClaimStatus.CLAIMED


def test_a_key_held_by_a_live_sender_cannot_be_resolved(journal: RedisJournal) -> None:
    claim = journal.claim("welcome:1")

    with pytest.raises(InvalidArgumentError, match="live sender"):
        journal.resolve("welcome:1", sent=False)
    journal.record(claim, RESULT)
    assert journal.claim("welcome:1").status is ClaimStatus.DONE


def test_record_and_release_of_a_claim_resolved_meanwhile_change_nothing(
    journal: RedisJournal,
) -> None:
    first = journal.claim("welcome:1")
    journal.mark_in_doubt(first)
    journal.resolve("welcome:1", sent=False)
    second = journal.claim("welcome:1")

    journal.record(first, RESULT)
    journal.release(first)
    journal.renew([first])

    entry = journal.get("welcome:1")
    assert entry is not None
    assert entry.state is EntryState.PENDING
    journal.release(second)
    assert journal.get("welcome:1") is None


def test_namespaces_are_separate_journals(redis_url: str, journal: RedisJournal) -> None:
    other = RedisJournal(redis_url, namespace="other-campaign")
    journal.record(journal.claim("welcome:1"), RESULT)

    assert other.claim("welcome:1").status is ClaimStatus.CLAIMED
    other.close()


def test_clear_forgets_only_its_own_namespace(redis_url: str, journal: RedisJournal) -> None:
    other = RedisJournal(redis_url, namespace="other")
    for index in range(3):
        journal.record(journal.claim(f"welcome:{index}"), RESULT)
    journal.mark_in_doubt(journal.claim("welcome:9"))
    other.record(other.claim("welcome:1"), RESULT)

    assert journal.clear() > 0

    assert journal.get("welcome:1") is None
    assert journal.in_doubt() == []
    assert other.claim("welcome:1").status is ClaimStatus.DONE
    other.close()


def test_a_default_journal_needs_only_a_url(redis_url: str) -> None:
    journal = RedisJournal(redis_url)

    journal.record(journal.claim("line:1"), RESULT)

    assert journal.namespace == "default"
    assert redis.Redis.from_url(redis_url).exists("postal-sdk:{journal:default}:entry:line:1")
    journal.close()


@pytest.mark.anyio
@pytest.mark.parametrize("decode_responses", [False, True])
async def test_a_sync_redis_client_is_used_as_given(redis_url: str, decode_responses: bool) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=decode_responses)
    journal = RedisJournal(client, namespace="tests")

    claim = await journal.async_claim("welcome:1", "fp")
    journal.record(claim, RESULT)

    entry = await journal.async_get("welcome:1")
    assert entry is not None
    assert entry.result == RESULT
    journal.close()
    assert client.ping()  # the journal does not close a client it was given
    client.close()


@pytest.mark.anyio
async def test_an_asyncio_redis_client_gives_its_server_and_database(redis_url: str) -> None:
    on_db_3 = redis_url.rsplit("/", 1)[0] + "/3"
    client = redis.asyncio.Redis.from_url(on_db_3)
    journal = RedisJournal(client, namespace="tests")

    journal.record(journal.claim("welcome:1"), RESULT)

    with redis.Redis.from_url(on_db_3) as db_3:
        assert db_3.exists("postal-sdk:{journal:tests}:entry:welcome:1")
    with redis.Redis.from_url(redis_url) as db_0:
        assert not db_0.exists("postal-sdk:{journal:tests}:entry:welcome:1")
    journal.close()


@pytest.mark.anyio
async def test_an_unreachable_redis_fails_the_claim_with_a_journal_error(
    unreachable_redis_url: str,
) -> None:
    journal = RedisJournal(unreachable_redis_url, namespace="tests")

    with pytest.raises(JournalError, match=r"could not claim .*a keyed send is not made"):
        await journal.async_claim("welcome:1")
    with pytest.raises(JournalError, match="could not claim"):
        journal.claim("welcome:1")
    with pytest.raises(JournalError, match="could not read"):
        journal.in_doubt()


@pytest.mark.parametrize(
    "url",
    ["http://localhost:6379/0", "localhost:6379", "redis://localhost:port/0", ""],
)
def test_a_malformed_url_is_refused_at_construction(url: str) -> None:
    with pytest.raises(ConfigurationError, match="not a Redis URL"):
        RedisJournal(url)


def test_a_malformed_urls_password_stays_out_of_the_error() -> None:
    with pytest.raises(ConfigurationError, match=r"redis://\*\*\*@localhost:port") as raised:
        RedisJournal("redis://user:s3cret@localhost:port/0")

    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    "namespace", ["", "news letter", "{newsletter}", "news*", "a\nb", "x" * 129, "-lead"]
)
def test_a_namespace_unsafe_in_a_key_is_refused(redis_url: str, namespace: str) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot be part of a Redis key"):
        RedisJournal(redis_url, namespace=namespace)


def test_other_bad_arguments_are_refused(redis_url: str, journal: RedisJournal) -> None:
    with pytest.raises(InvalidArgumentError, match="lease"):
        RedisJournal(redis_url, lease=0)
    with pytest.raises(InvalidArgumentTypeError, match="url_or_client"):
        RedisJournal(6379)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="namespace"):
        RedisJournal(redis_url, namespace=7)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="key"):
        journal.claim("")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_journal_made_before_a_fork_works_in_the_child_and_the_parent(
    journal: RedisJournal,
) -> None:
    held = journal.claim("parent:1")  # the parent's renewer thread is running now
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads: forking one is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:
        code = 1  # the child never returns into pytest, whatever happens
        try:
            claim = journal.claim("child:1")
            journal.record(claim, RESULT)
            journal.close()  # closes the child's claims only: the parent's are not its own
            code = 0 if claim.status is ClaimStatus.CLAIMED else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert journal.claim("child:1").status is ClaimStatus.DONE
    parent_entry = journal.get("parent:1")
    assert parent_entry is not None
    assert parent_entry.state is EntryState.PENDING
    journal.record(held, RESULT)
    assert journal.claim("parent:1").status is ClaimStatus.DONE


@pytest.mark.anyio
async def test_a_claim_whose_caller_is_cancelled_leaves_the_key_free(
    journal: RedisJournal,
) -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        await journal.async_claim("welcome:1")

    assert await journal.async_get("welcome:1") is None
    assert (await journal.async_claim("welcome:1")).status is ClaimStatus.CLAIMED


def test_the_journal_survives_redis_losing_its_scripts(
    redis_url: str, journal: RedisJournal
) -> None:
    journal.record(journal.claim("welcome:1"), RESULT)
    with redis.Redis.from_url(redis_url) as server:
        server.script_flush()  # as a restarted Redis would have forgotten them

    assert journal.claim("welcome:1").status is ClaimStatus.DONE
    assert journal.claim("welcome:2").status is ClaimStatus.CLAIMED


def test_an_asyncio_clients_tls_and_unix_socket_settings_carry_over(redis_url: str) -> None:
    tls_url = redis_url.replace("redis:", "rediss:") + "?socket_timeout=0.2"
    over_tls = RedisJournal(redis.asyncio.Redis.from_url(tls_url))
    over_socket = RedisJournal(redis.asyncio.Redis(unix_socket_path="/run/redis/redis.sock"))

    # The test server speaks plain TCP: a client that kept TLS (and the short timeout)
    # cannot talk to it, and says so at once.
    with pytest.raises(JournalError, match="could not claim"):
        over_tls.claim("welcome:1")
    assert repr(over_socket) == "RedisJournal('unix:/run/redis/redis.sock', namespace='default')"


def test_a_program_that_exits_without_closing_records_its_last_results(
    redis_url: str, journal: RedisJournal
) -> None:
    program = """
import sys
from postal_sdk import SendResult
from postal_sdk.redis import RedisJournal
journal = RedisJournal(sys.argv[1], namespace="tests")
journal.record(journal.claim("welcome:1"), SendResult(message_id="m", messages={}))
journal.claim("welcome:2")  # still held at exit
"""
    subprocess.run([sys.executable, "-c", program, redis_url], check=True)  # noqa: S603

    assert journal.claim("welcome:1").status is ClaimStatus.DONE
    assert journal.claim("welcome:2").status is ClaimStatus.IN_DOUBT


@pytest.mark.anyio
async def test_renew_extends_a_claims_lease_to_a_full_one(redis_url: str) -> None:
    journal = RedisJournal(redis_url, namespace="tests", lease=60)
    claim = await journal.async_claim("welcome:1")
    lease_key = "postal-sdk:{journal:tests}:lease:welcome:1"
    with redis.Redis.from_url(redis_url) as server:
        server.pexpire(lease_key, 1000)

        await journal.async_renew([claim])

        assert server.pttl(lease_key) > 50_000
    journal.close()


def test_wait_returns_the_pending_entry_when_its_time_is_up_in_a_thread(
    journal: RedisJournal,
) -> None:
    journal.claim("welcome:1")

    entry = journal.wait("welcome:1", within=0.05)

    assert entry is not None
    assert entry.state is EntryState.PENDING


def test_clear_deletes_a_large_namespace(journal: RedisJournal) -> None:
    for index in range(600):
        journal.resolve(f"welcome:{index}", sent=True)

    assert journal.clear() == 600

    assert journal.get("welcome:1") is None


def test_every_operation_on_an_unreachable_redis_is_a_journal_error(
    unreachable_redis_url: str,
) -> None:
    journal = RedisJournal(unreachable_redis_url, namespace="tests")

    with pytest.raises(JournalError, match="could not resolve"):
        journal.resolve("welcome:1", sent=True)
    with pytest.raises(JournalError, match="could not clear"):
        journal.clear()
    with pytest.raises(JournalError, match="could not read"):
        journal.get("welcome:1")


def test_a_key_that_is_not_a_str_is_refused(journal: RedisJournal) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="key"):
        journal.claim(7)  # type: ignore[arg-type]
