"""The journal: a durable record of keyed sends, so that no key is ever sent twice.

Postal has no idempotency key: a send whose reply was lost may or may not have queued the
message, and a batch that crashed leaves no record of how far it got. A journal gives each
send a key chosen by the caller and records, per key, the *intent* (just before the
request leaves) and the *result* (once Postal answered):

    postal = AsyncPostal(journal=SQLiteJournal("sends.db"))
    await postal.send_message(message, idempotency_key="welcome:42")

Offered a key again, the client answers from the journal instead of sending:

- a key with a result is *replayed*: the stored `SendResult` is returned (its `replayed`
  is `True`; `SendOutcome.replayed` in `send_many`);
- a key with an intent and no result is *in doubt*: an earlier attempt may have reached
  Postal. It raises `SendInDoubt` and is never resent automatically: look the message up,
  then `resolve()` the key (as sent, or as not sent, which frees it for a new send);
- a key held by a sender that is alive (another task, thread or process) is *busy*: the
  client waits for that sender's result and answers with it.

When a send provably never left (a connection that could not be made, a message the SDK
refused, an error envelope from Postal: nothing was queued), the claim is *released* and
the key is free again. An ambiguous failure (a read timeout, a connection dropped after
the request was written) leaves the key in doubt.

Everything here is the protocol between the clients and a store: `Journal`, and the
values it traffics in (`Claim`, `ClaimStatus`, `JournalEntry`, `EntryState`).
`SQLiteJournal` is the embedded store (a file, no server); `postal_sdk.redis.RedisJournal`
is the one shared by many processes and machines.

What a journal stores per key (`JournalEntry`): the key; its state; the `SendResult` in
Postal's JSON shape (`{"message_id": ..., "messages": {address: {"id": ..., "token": ...}}}`,
as `result_to_json` writes it), or none; a *fingerprint* of the message (who it goes to
and its subject, see `fingerprint`), so that a key reused for a different message is
caught instead of answered with the other message's result; when it was claimed and
when it finished. Never the message itself: a journal is a ledger, not a queue.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import enum
import functools
import hashlib
import itertools
import json
import os
import queue
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.to_thread
import attrs

from postal_sdk.errors import (
    ConfigurationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    JournalError,
)
from postal_sdk.models import Message, RawMessage, SendResult, SentMessage

__all__ = [
    "Claim",
    "ClaimStatus",
    "EntryState",
    "Journal",
    "JournalEntry",
    "SQLiteJournal",
    "fingerprint",
    "result_from_json",
    "result_to_json",
]


class EntryState(str, enum.Enum):
    """Where a key stands in a journal."""

    PENDING = "pending"
    """Claimed by a sender that is (as far as the journal knows) alive: a send is under way."""
    IN_DOUBT = "in_doubt"
    """Claimed, and the sender finished without a result or is gone: it may have been sent."""
    SENT = "sent"
    """Sent: the result is recorded (or the key was resolved as sent, perhaps without one)."""


class ClaimStatus(str, enum.Enum):
    """The answer to `Journal.claim`: what the caller is to do with the key."""

    CLAIMED = "claimed"
    """The key was free: it is now the caller's to send (intent recorded, durably)."""
    DONE = "done"
    """The key was sent before: answer with `entry.result`; do not send."""
    IN_DOUBT = "in_doubt"
    """An earlier attempt may have reached Postal: raise `SendInDoubt`; do not send."""
    BUSY = "busy"
    """A live sender holds the key: `wait()` for its result; do not send."""


@attrs.frozen
class JournalEntry:
    """What a journal holds for one key.

    `result` is set for a `SENT` key whose result is known (`None` when it was resolved
    as sent without one). `fingerprint` is the message's (see `fingerprint`), `None` when
    the key was resolved by hand before any send. Times are aware UTC datetimes:
    `claimed_at` when the intent was recorded, `finished_at` when the result was (or the
    key was resolved), else `None`.
    """

    key: str
    state: EntryState
    result: SendResult | None = None
    fingerprint: str | None = None
    claimed_at: datetime | None = None
    finished_at: datetime | None = None


@attrs.frozen
class Claim:
    """The answer to `Journal.claim(key)`.

    For `CLAIMED`, `token` identifies this sender's hold on the key (pass the claim back
    to `record`, `release` or `renew`) and `entry` is `None`. For the other statuses
    `token` is `None` and `entry` is what the journal holds for the key.
    """

    key: str
    status: ClaimStatus
    token: str | None = None
    entry: JournalEntry | None = None

    @classmethod
    def answering(cls, entry: JournalEntry) -> Claim:
        """The claim that a key already held as `entry` answers: done, in doubt or busy."""
        status = {
            EntryState.SENT: ClaimStatus.DONE,
            EntryState.IN_DOUBT: ClaimStatus.IN_DOUBT,
            EntryState.PENDING: ClaimStatus.BUSY,
        }[entry.state]
        return cls(entry.key, status, entry=entry)


@runtime_checkable
class Journal(Protocol):
    """The store of keyed sends that `AsyncPostal(journal=...)` and `Postal(journal=...)` use.

    Every operation exists twice: `name(...)`, blocking and safe to call from many threads
    (the sync client), and `async_name(...)`, which must not block the event loop and must
    work on asyncio and trio (the async client). One journal object serves both clients.

    Contract, for implementers:

    - `claim` is atomic across every sender that shares the store: of any number of
      senders claiming one free key at once, exactly one gets `CLAIMED`. The intent must
      be durable when `claim` returns `CLAIMED` (the request leaves right after).
    - A claim is a *lease* held by the sending process: the journal keeps it alive while
      that process lives (renewing it itself, or by `renew` from the holder). A claim
      whose holder died, or whose lease ran out, without a result is `IN_DOUBT`, never
      free: `claim` then answers `IN_DOUBT` and `in_doubt()` lists it.
    - `record` stores the result and ends the claim (`SENT`). It may return before the
      result is durable, provided that it is durable before any later `claim` of the
      same journal object returns, and by `close()`: a crash then leaves at most one key
      in doubt per sender that was under way.
    - `release` ends the claim with nothing sent: the key is free again, as if never
      claimed. `mark_in_doubt` ends it with the send's fate unknown: the key is
      `IN_DOUBT` at once (others waiting on it stop waiting). Both, like `record`, may
      return before they are durable, under the same ordering rule.
    - The clients call `async_record`, `async_release` and `async_mark_in_doubt` as a send
      ends, perhaps in a task that is being cancelled, and shield nothing: each must end
      the claim whatever becomes of its caller (queue the write and return, as both
      journals here do, or shield what it waits on).
    - A store that cannot record (unreachable, full, read-only) raises `JournalError`
      from `claim`: the caller must not send.
    - `record`, `release`, `mark_in_doubt` and `renew` on a claim this journal no longer
      holds (the key was resolved meanwhile) change nothing and raise nothing.
    """

    def claim(self, key: str, fingerprint: str | None = None) -> Claim:
        """Claim `key` for a send of the message with this `fingerprint` (see `ClaimStatus`).

        Raises:
            JournalError: The intent could not be recorded; do not send.
        """
        ...

    async def async_claim(self, key: str, fingerprint: str | None = None) -> Claim:
        """`claim()` without blocking the event loop."""
        ...

    def record(self, claim: Claim, result: SendResult) -> None:
        """Store the result of the send made under `claim`: the key becomes `SENT`."""
        ...

    async def async_record(self, claim: Claim, result: SendResult) -> None:
        """`record()` without blocking the event loop."""
        ...

    def release(self, claim: Claim) -> None:
        """Nothing was sent under `claim` (it provably never left): free the key again."""
        ...

    async def async_release(self, claim: Claim) -> None:
        """`release()` without blocking the event loop."""
        ...

    def mark_in_doubt(self, claim: Claim) -> None:
        """The send made under `claim` may or may not have reached Postal: mark it in doubt.

        The key is `IN_DOUBT` at once (not `PENDING`: no one is left to finish it), and it
        is never resent by itself.
        """
        ...

    async def async_mark_in_doubt(self, claim: Claim) -> None:
        """`mark_in_doubt()` without blocking the event loop."""
        ...

    def renew(self, claims: Sequence[Claim]) -> None:
        """Extend the leases of these claims (held by this process) by a full lease."""
        ...

    async def async_renew(self, claims: Sequence[Claim]) -> None:
        """`renew()` without blocking the event loop."""
        ...

    def wait(self, key: str, within: float) -> JournalEntry | None:
        """Wait up to `within` seconds for a busy key's sender to finish.

        Returns the entry once it is no longer `PENDING` (`SENT` or `IN_DOUBT`), `None`
        if the key was released (it is free: claim it again), or the still `PENDING`
        entry when the time is up.
        """
        ...

    async def async_wait(self, key: str, within: float) -> JournalEntry | None:
        """`wait()` without blocking the event loop."""
        ...

    def get(self, key: str) -> JournalEntry | None:
        """What the journal holds for `key` (`None`: never claimed, or released)."""
        ...

    async def async_get(self, key: str) -> JournalEntry | None:
        """`get()` without blocking the event loop."""
        ...

    def in_doubt(self) -> list[JournalEntry]:
        """Every key in doubt (including claims whose holder died), oldest claim first."""
        ...

    async def async_in_doubt(self) -> list[JournalEntry]:
        """`in_doubt()` without blocking the event loop."""
        ...

    def resolve(self, key: str, *, sent: bool, result: SendResult | None = None) -> None:
        """Settle a key once you know what became of it (look the message up in Postal).

        `sent=True`: it was sent; the key becomes `SENT` with `result` (which may be
        `None` when you do not have it), and later sends of the key are answered from it.
        `sent=False`: it was not; the key is freed and the next send of it goes out.

        Raises:
            InvalidArgumentError: The key is held by a live sender (it is not in doubt).
        """
        ...

    async def async_resolve(
        self, key: str, *, sent: bool, result: SendResult | None = None
    ) -> None:
        """`resolve()` without blocking the event loop."""
        ...

    def close(self) -> None:
        """Make everything recorded durable and let go of the store.

        Claims still held become `IN_DOUBT`. Safe to call more than once. The clients
        never close a journal they were given: its owner does.
        """
        ...

    async def async_close(self) -> None:
        """`close()` without blocking the event loop."""
        ...


def fingerprint(message: Message | RawMessage) -> str:
    """What identifies a message to a journal: a hash of its sender, recipients and subject.

    Deliberately not the whole message: a rerun that builds the same campaign again
    (a fresh `Date` header in a raw message, a regenerated body) must still match, while
    a key reused for another recipient or another mail is caught.
    """
    # Fields apart by the ASCII record separator, addresses by the unit separator:
    # control characters that no address and no sane subject holds.
    if isinstance(message, Message):
        fields = [
            "message",
            message.from_,
            message.sender or "",
            "\x1f".join(message.to),
            "\x1f".join(message.cc),
            "\x1f".join(message.bcc),
            message.subject or "",
        ]
    else:
        fields = ["raw", message.mail_from, "\x1f".join(message.rcpt_to)]
    text = "\x1e".join(fields)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


_RESULT_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""`json.dumps` with these options builds an encoder per call: a third of a record's cost."""


def result_to_json(result: SendResult) -> str:
    """A `SendResult` as a journal stores it: Postal's JSON shape for a send's `data`."""
    data = {
        "message_id": result.message_id,
        "messages": {
            address: {"id": sent.id, "token": sent.token}
            for address, sent in result.messages.items()
        },
    }
    return _RESULT_ENCODER.encode(data)


def result_from_json(text: str | bytes) -> SendResult:
    """The `SendResult` that `result_to_json` wrote (its `replayed` is `True`)."""
    data = json.loads(text)
    messages = {
        address: SentMessage(id=int(sent["id"]), token=str(sent["token"]))
        for address, sent in data["messages"].items()
    }
    return SendResult(message_id=data["message_id"], messages=messages, replayed=True)


_CREATE = """
CREATE TABLE IF NOT EXISTS postal_sends (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    token TEXT,
    owner TEXT,
    pid INTEGER,
    host TEXT,
    fingerprint TEXT,
    result TEXT,
    claimed_at REAL,
    lease_until REAL,
    finished_at REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS postal_sends_unfinished ON postal_sends (state, claimed_at)
    WHERE state != 'sent';
"""

_SELECT = (
    "SELECT key, state, token, owner, pid, host, fingerprint, result, claimed_at, lease_until,"
    " finished_at FROM postal_sends"
)
_SELECT_KEY = _SELECT + " WHERE key = ?"
_SELECT_UNFINISHED = _SELECT + " WHERE state != 'sent' ORDER BY claimed_at"
_POLL_INTERVAL = 0.02
"""How often `wait` looks at a busy key again."""


class _Op:
    """One unit of work for the writer thread, and how to tell its caller it is done.

    A blocking caller waits on `done`; an async caller gives `wake`: the function that
    makes its event loop run a callback soon (from another thread), and the callback.
    The writer calls `run` with the connection; the claims and results (`_ClaimOp`,
    `_RecordOp`) have none: it makes those of a batch together. An `early` op is one
    whose caller does not wait for it (a result, a release, a mark, a renewal): the
    writer runs it before the claims of its batch, which must see it done.
    """

    __slots__ = ("done", "early", "error", "run", "value", "wake")

    def __init__(
        self, run: Callable[[sqlite3.Connection], Any] | None = None, *, early: bool = False
    ) -> None:
        self.run = run
        self.early = early
        self.value: Any = None
        self.error: BaseException | None = None
        self.done: threading.Event | None = None
        self.wake: tuple[Callable[..., object], Callable[[], object]] | None = None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class _ClaimOp(_Op):
    """A claim: the writer makes those of a batch together, once what ended claims ran."""

    __slots__ = ("fingerprint", "key")

    def __init__(self, key: str, fingerprint: str | None) -> None:
        super().__init__()
        self.key = key
        self.fingerprint = fingerprint


class _RecordOp(_Op):
    """A result to record: the writer records all those of a batch in one call."""

    __slots__ = ("claim", "stored")

    def __init__(self, claim: Claim, stored: str) -> None:
        super().__init__(early=True)
        self.claim = claim
        self.stored = stored


_RECORD = (
    "UPDATE postal_sends SET state = 'sent', result = ?, finished_at = ?"
    " WHERE key = ? AND token = ?"
)
_CLAIM = (
    "INSERT INTO postal_sends (key, state, token, owner, pid, host, fingerprint,"
    " claimed_at, lease_until) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (key) DO NOTHING"
)


def _call_all(callbacks: list[Callable[[], object]]) -> None:
    for callback in callbacks:
        callback()


def _settle_future(future: asyncio.Future[None]) -> None:
    if not future.done():  # A cancelled waiter's future is done already.
        future.set_result(None)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=timezone.utc)


class SQLiteJournal:
    """A `Journal` in a SQLite file (stdlib `sqlite3`, WAL): the embedded default.

    ```python
    journal = SQLiteJournal("sends.db")
    async with AsyncPostal(journal=journal) as postal:
        await postal.send_message(message, idempotency_key="welcome:42")
    journal.close()
    ```

    One object serves any number of tasks and threads, and both clients. Writes go
    through one writer thread that commits whatever is waiting in one transaction, so
    64 sends in flight cost a few commits per round, not 128; async callers await the
    commit without blocking the event loop. With `durable=True` (the default) each commit
    is flushed to disk (`synchronous=FULL`): an intent survives a power cut, not only a
    crash of the process; `durable=False` (`synchronous=NORMAL`) survives a crash only.

    Several processes on one machine may share the file: a claim names its process, and
    a claim whose process is gone (or whose `lease`, in seconds, ran out without being
    renewed: the writer thread renews this object's claims) is in doubt. Use one object
    per process (not one made before a `fork`), and close it when done (a program that
    exits without closing it has it closed at exit): claims still held then become in
    doubt. Do not put the file on a network file system.

    Raises:
        ConfigurationError: The file cannot be a journal: its directory does not exist
            or is not writable, or the file is not a SQLite database.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, durable: bool = True, lease: float = 60.0
    ) -> None:
        self._path = Path(path)
        directory = self._path.parent.resolve()
        if not directory.is_dir():
            raise ConfigurationError("path", f"the directory {str(directory)!r} does not exist")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ConfigurationError(
                "path", f"the directory {str(directory)!r} is not writable (read-only?)"
            )
        if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease > 0:
            raise InvalidArgumentError(
                "lease", f"must be a positive number of seconds, not {lease}"
            )
        self._lease = float(lease)
        try:
            connection = sqlite3.connect(
                self._path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            connection.executescript(_CREATE)
        except sqlite3.Error as error:
            raise ConfigurationError(
                "path", f"{str(self._path)!r} cannot be a journal: {error}"
            ) from error
        self._connection = connection
        self._owner = uuid.uuid4().hex
        self._tokens = itertools.count()
        self._host = socket.gethostname()
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._writer = threading.Thread(
            target=self._write_loop, name=f"postal-journal:{self._path.name}", daemon=True
        )
        self._writer.start()
        # A program that ends without close(): the writer is a daemon thread, so commit
        # what it holds at exit instead of losing the last results (their keys would
        # read as in doubt on the next run).
        atexit.register(self.close)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def __repr__(self) -> str:
        return f"SQLiteJournal({str(self._path)!r})"

    # The public operations, each a blocking/async pair over one `_Op`.

    def claim(self, key: str, fingerprint: str | None = None) -> Claim:
        """See `Journal.claim`."""
        return self._call_op(_ClaimOp(_check_key(key), fingerprint))  # type: ignore[no-any-return]

    async def async_claim(self, key: str, fingerprint: str | None = None) -> Claim:
        """See `Journal.claim`."""
        op = _ClaimOp(_check_key(key), fingerprint)
        try:
            await self._wait(op)
        except BaseException:
            # Cancelled while the claim was queued: once it has run, let the key go
            # (nothing was sent under it). The writer runs this after the claim itself.
            with contextlib.suppress(JournalError):
                self._put(_Op(functools.partial(self._release_abandoned, op)))
            raise
        return op.result()  # type: ignore[no-any-return]

    def record(self, claim: Claim, result: SendResult) -> None:
        """See `Journal.record` (returns once queued; durable before the next claim)."""
        self._put(_RecordOp(claim, result_to_json(result)))

    async def async_record(self, claim: Claim, result: SendResult) -> None:
        """See `Journal.record`."""
        self.record(claim, result)

    def release(self, claim: Claim) -> None:
        """See `Journal.release` (returns once queued, like `record`)."""
        self._put(_Op(functools.partial(self._release, claim), early=True))

    async def async_release(self, claim: Claim) -> None:
        """See `Journal.release`."""
        self.release(claim)

    def mark_in_doubt(self, claim: Claim) -> None:
        """See `Journal.mark_in_doubt` (returns once queued, like `record`)."""
        self._put(_Op(functools.partial(self._mark_in_doubt, claim), early=True))

    async def async_mark_in_doubt(self, claim: Claim) -> None:
        """See `Journal.mark_in_doubt`."""
        self.mark_in_doubt(claim)

    def renew(self, claims: Sequence[Claim]) -> None:
        """See `Journal.renew` (the writer thread also renews this object's claims)."""
        tokens = [claim.token for claim in claims if claim.token is not None]
        self._put(_Op(functools.partial(self._renew, tokens), early=True))

    async def async_renew(self, claims: Sequence[Claim]) -> None:
        """See `Journal.renew`."""
        self.renew(claims)

    def wait(self, key: str, within: float) -> JournalEntry | None:
        """See `Journal.wait` (polls the file: a sender may be another process)."""
        deadline = time.monotonic() + within
        while True:
            entry = self.get(key)
            if entry is None or entry.state is not EntryState.PENDING:
                return entry
            if time.monotonic() >= deadline:
                return entry
            time.sleep(_POLL_INTERVAL)

    async def async_wait(self, key: str, within: float) -> JournalEntry | None:
        """See `Journal.wait`."""
        deadline = time.monotonic() + within
        while True:
            entry = await self.async_get(key)
            if entry is None or entry.state is not EntryState.PENDING:
                return entry
            if time.monotonic() >= deadline:
                return entry
            await anyio.sleep(_POLL_INTERVAL)

    def get(self, key: str) -> JournalEntry | None:
        """See `Journal.get`."""
        return self._call(functools.partial(self._get, key))  # type: ignore[no-any-return]

    async def async_get(self, key: str) -> JournalEntry | None:
        """See `Journal.get`."""
        return await self._wait(_Op(functools.partial(self._get, key)))  # type: ignore[no-any-return]

    def in_doubt(self) -> list[JournalEntry]:
        """See `Journal.in_doubt`."""
        return self._call(self._in_doubt)  # type: ignore[no-any-return]

    async def async_in_doubt(self) -> list[JournalEntry]:
        """See `Journal.in_doubt`."""
        return await self._wait(_Op(self._in_doubt))  # type: ignore[no-any-return]

    def resolve(self, key: str, *, sent: bool, result: SendResult | None = None) -> None:
        """See `Journal.resolve`."""
        self._call(functools.partial(self._resolve, _check_key(key), sent, result))

    async def async_resolve(
        self, key: str, *, sent: bool, result: SendResult | None = None
    ) -> None:
        """See `Journal.resolve`."""
        await self._wait(_Op(functools.partial(self._resolve, _check_key(key), sent, result)))

    def close(self) -> None:
        """See `Journal.close`: waits for the writer thread to commit and stop."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        atexit.unregister(self.close)
        self._writer.join()

    async def async_close(self) -> None:
        """See `Journal.close`."""
        await anyio.to_thread.run_sync(self.close)

    # Plumbing: callers queue `_Op`s; the writer thread runs them in batches.

    def _put(self, op: _Op) -> None:
        with self._close_lock:
            if self._closed:
                raise JournalError(f"{self!r} is closed")
            self._queue.put(op)

    def _call(self, run: Callable[[sqlite3.Connection], Any]) -> Any:
        return self._call_op(_Op(run))

    def _call_op(self, op: _Op) -> Any:
        op.done = threading.Event()
        self._put(op)
        op.done.wait()
        return op.result()

    async def _wait(self, op: _Op) -> Any:
        """Queue `op` and wait for its batch to commit, without blocking the event loop."""
        # Native primitives, not anyio's: this is the journal's hot path, once per send.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            future: asyncio.Future[None] = loop.create_future()
            op.wake = (loop.call_soon_threadsafe, functools.partial(_settle_future, future))
            self._put(op)
            await future
        else:
            import trio

            event = trio.Event()
            op.wake = (trio.lowlevel.current_trio_token().run_sync_soon, event.set)
            self._put(op)
            await event.wait()
        return op.result()

    def _write_loop(self) -> None:
        connection = self._connection
        renew_every = self._lease / 3
        last_renewal = time.monotonic()
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=renew_every)
            except queue.Empty:
                first = _Op(self._renew_own)
                last_renewal = time.monotonic()
            batch: list[_Op] = []
            item: _Op | None = first
            while True:
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if time.monotonic() - last_renewal >= renew_every:
                batch.append(_Op(self._renew_own))
                last_renewal = time.monotonic()
            if stopping:
                batch.append(_Op(self._abandon_own))
            self._run_batch(connection, batch)
        connection.close()

    def _run_batch(self, connection: sqlite3.Connection, batch: list[_Op]) -> None:
        try:
            connection.execute("BEGIN IMMEDIATE")
            # The results in one call, then what else ends a claim: a claim of the same
            # key in this batch must see them (their callers did not wait for them).
            # Then the claims; the rest last, in order (a claim abandoned by its
            # cancelled caller is let go once it is made).
            self._record_all(connection, [op for op in batch if type(op) is _RecordOp])
            self._run_each(connection, [op for op in batch if op.early and op.run])
            self._claim_all(connection, [op for op in batch if type(op) is _ClaimOp])
            self._run_each(connection, [op for op in batch if not op.early and op.run])
            connection.execute("COMMIT")
        except Exception as error:  # noqa: BLE001 - its callers get it: the writer lives on
            # A writer thread that died would leave every caller waiting, forever.
            with contextlib.suppress(sqlite3.Error):
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            failure = JournalError(f"{self!r} could not commit: {error}")
            for op in batch:
                op.value, op.error = None, failure
        wakeups: dict[Callable[..., object], list[Callable[[], object]]] = {}
        for op in batch:
            if op.done is not None:
                op.done.set()
            if op.wake is not None:
                schedule, callback = op.wake
                wakeups.setdefault(schedule, []).append(callback)
        for schedule, callbacks in wakeups.items():
            # One call into each waiting event loop per batch, however many it waits for.
            with contextlib.suppress(RuntimeError):  # that loop is closed: no one waits
                schedule(_call_all, callbacks)

    # What the writer thread runs, inside a transaction.

    def _run_each(self, connection: sqlite3.Connection, ops: list[_Op]) -> None:
        for op in ops:
            assert op.run is not None
            try:
                op.value = op.run(connection)
            except Exception as error:  # noqa: BLE001 - handed to the op's caller
                op.error = _journal_error(error)

    def _claim_all(self, connection: sqlite3.Connection, claims: list[_ClaimOp]) -> None:
        now = time.time()
        until, pid = now + self._lease, os.getpid()
        for op in claims:
            token = f"{self._owner}.{next(self._tokens)}"
            try:
                inserted = connection.execute(
                    _CLAIM,
                    (op.key, token, self._owner, pid, self._host, op.fingerprint, now, until),
                )
                if inserted.rowcount == 1:
                    op.value = Claim(op.key, ClaimStatus.CLAIMED, token=token)
                else:
                    row = connection.execute(_SELECT_KEY, (op.key,)).fetchone()
                    op.value = Claim.answering(self._settle(connection, row, now))
            except Exception as error:  # noqa: BLE001 - handed to the op's caller
                op.error = _journal_error(error)

    def _settle(
        self, connection: sqlite3.Connection, row: tuple[Any, ...], now: float
    ) -> JournalEntry:
        """The entry of a row, a pending claim whose holder is gone turned in doubt."""
        (
            key,
            state,
            _token,
            owner,
            pid,
            host,
            fingerprint,
            result,
            claimed_at,
            lease_until,
            finished,
        ) = row
        if state == EntryState.PENDING.value and owner != self._owner:
            gone = lease_until is not None and lease_until < now
            if not gone and host == self._host and os.name == "posix" and pid != os.getpid():
                gone = not _process_alive(pid)
            if gone:
                state = EntryState.IN_DOUBT.value
                connection.execute(
                    "UPDATE postal_sends SET state = 'in_doubt' WHERE key = ?", (key,)
                )
        return JournalEntry(
            key=key,
            state=EntryState(state),
            result=None if result is None else result_from_json(result),
            fingerprint=fingerprint,
            claimed_at=_utc(claimed_at),
            finished_at=_utc(finished),
        )

    def _record_all(self, connection: sqlite3.Connection, records: list[_RecordOp]) -> None:
        now = time.time()
        try:
            connection.executemany(
                _RECORD, [(op.stored, now, op.claim.key, op.claim.token) for op in records]
            )
        except Exception as error:  # noqa: BLE001 - handed to the ops' callers
            failure = _journal_error(error)
            for op in records:
                op.error = failure

    def _release(self, claim: Claim, connection: sqlite3.Connection) -> None:
        connection.execute(
            "DELETE FROM postal_sends WHERE key = ? AND token = ? AND state != 'sent'",
            (claim.key, claim.token),
        )

    def _mark_in_doubt(self, claim: Claim, connection: sqlite3.Connection) -> None:
        connection.execute(
            "UPDATE postal_sends SET state = 'in_doubt' WHERE key = ? AND token = ?"
            " AND state = 'pending'",
            (claim.key, claim.token),
        )

    def _release_abandoned(self, op: _Op, connection: sqlite3.Connection) -> None:
        claim = op.value
        if isinstance(claim, Claim) and claim.status is ClaimStatus.CLAIMED:
            self._release(claim, connection)

    def _renew(self, tokens: list[str], connection: sqlite3.Connection) -> None:
        until = time.time() + self._lease
        connection.executemany(
            "UPDATE postal_sends SET lease_until = ? WHERE token = ? AND state = 'pending'",
            [(until, token) for token in tokens],
        )

    def _renew_own(self, connection: sqlite3.Connection) -> None:
        connection.execute(
            "UPDATE postal_sends SET lease_until = ? WHERE owner = ? AND state = 'pending'",
            (time.time() + self._lease, self._owner),
        )

    def _abandon_own(self, connection: sqlite3.Connection) -> None:
        connection.execute(
            "UPDATE postal_sends SET state = 'in_doubt' WHERE owner = ? AND state = 'pending'",
            (self._owner,),
        )

    def _get(self, key: str, connection: sqlite3.Connection) -> JournalEntry | None:
        row = connection.execute(_SELECT_KEY, (key,)).fetchone()
        return None if row is None else self._settle(connection, row, time.time())

    def _in_doubt(self, connection: sqlite3.Connection) -> list[JournalEntry]:
        rows = connection.execute(_SELECT_UNFINISHED).fetchall()
        now = time.time()
        entries = [self._settle(connection, row, now) for row in rows]
        return [entry for entry in entries if entry.state is EntryState.IN_DOUBT]

    def _resolve(
        self, key: str, sent: bool, result: SendResult | None, connection: sqlite3.Connection
    ) -> None:
        entry = self._get(key, connection)
        if entry is not None and entry.state is EntryState.PENDING:
            raise InvalidArgumentError("key", f"{key!r} is held by a live sender, not in doubt")
        if not sent:
            connection.execute("DELETE FROM postal_sends WHERE key = ?", (key,))
            return
        connection.execute(
            "INSERT INTO postal_sends (key, state, result, finished_at, claimed_at)"
            " VALUES (?, 'sent', ?, ?, ?) ON CONFLICT (key) DO UPDATE SET state = 'sent',"
            " result = excluded.result, finished_at = excluded.finished_at, token = NULL",
            (key, None if result is None else result_to_json(result), time.time(), time.time()),
        )


def _check_key(key: str) -> str:
    if not isinstance(key, str):
        raise InvalidArgumentTypeError("key", f"must be a str, not {type(key).__name__}")
    if not key:
        raise InvalidArgumentError("key", "must not be empty")
    return key


def _journal_error(error: Exception) -> Exception:
    if isinstance(error, sqlite3.Error):
        return JournalError(f"the journal failed: {error}")
    return error
