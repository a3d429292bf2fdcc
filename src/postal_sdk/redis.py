"""Scale-out: the journal and the pace kept in Redis, shared by many processes and machines.

Needs the `redis` extra (`pip install 'postal-sdk[redis]'`, which brings redis-py):

    from postal_sdk.redis import RedisJournal, RedisRateLimit

    url = "redis://localhost:6379/0"
    postal = AsyncPostal(journal=RedisJournal(url, namespace="newsletter-7"),
                         rate_limit=RedisRateLimit(url, 600, per="hour", name="postal-main"))

Every process (on any machine) that uses the same Redis and the same `namespace` shares one
record of keyed sends: a key is sent by one of them only. Every process that uses the same
`name` shares one pace. Both objects serve the async and the sync client alike.

How they talk to Redis: through redis-py's *sync* client, whose connection pool is
thread-safe and fork-safe (a child process opens its own connections). The journal's
frequent operations (claim, record, release, read) go through one dispatcher thread that
sends whatever is waiting as one pipeline: many sends in flight cost one round trip and
one wakeup of each waiting event loop, and never block it. The rarer operations, and the
pace, run their call on a worker thread (`anyio.to_thread`). Both work the same on asyncio
and trio (redis-py's asyncio client does not run on trio). Given a `redis.asyncio.Redis`,
the object opens its own sync connections to the same server with the same address,
database, credentials and TLS settings.

Each operation is one Lua script, so it is atomic in Redis, and reads the clock with Redis'
`TIME`: no two machines' clocks are compared. The keys of one namespace (or one pace) share
a hash tag (`postal-sdk:{journal:NAMESPACE}:...`), so they would live in one slot of a
Redis Cluster; a cluster client (`redis.cluster.RedisCluster`) is not accepted yet.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import itertools
import logging
import os
import queue
import re
import socket
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import sniffio

try:
    import redis
    import redis.asyncio
    import redis.exceptions
except ImportError as exc:  # pragma: no cover - the extra is installed wherever this is tested
    raise ImportError("postal_sdk.redis needs redis-py: pip install 'postal-sdk[redis]'") from exc

from postal_sdk.errors import (
    ConfigurationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    JournalError,
)
from postal_sdk.journal import (
    Claim,
    ClaimStatus,
    EntryState,
    JournalEntry,
    result_from_json,
    result_to_json,
)
from postal_sdk.models import SendResult
from postal_sdk.pacing import Period, check_rate

__all__ = ["RedisJournal", "RedisRateLimit"]

_log = logging.getLogger("postal_sdk.redis")
_T = TypeVar("_T")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""What a namespace or a pace's name may be: safe in a key and in its hash tag (no braces,
spaces or control characters; at most 128 characters)."""

_DEFAULT_TIMEOUT = 5.0
"""Seconds to connect to Redis and to wait for a reply, unless the URL says otherwise:
an unreachable Redis fails a send within this, it does not hang it."""

# The keyword arguments of a connection that carry over from an asyncio client's pool to
# the sync pool built beside it: the address, database, credentials and TLS settings.
_PORTABLE_CONNECTION_KWARGS = frozenset(
    {
        "host",
        "port",
        "path",
        "db",
        "username",
        "password",
        "credential_provider",
        "client_name",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "socket_keepalive_options",
        "ssl_keyfile",
        "ssl_certfile",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_data",
        "ssl_check_hostname",
        "ssl_min_version",
        "ssl_ciphers",
        "ssl_password",
    }
)


def _check_name(argument: str, value: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(argument, f"must be a str, not {type(value).__name__}")
    if not _NAME.fullmatch(value):
        raise InvalidArgumentError(
            argument,
            f"{value!r} cannot be part of a Redis key here: use 1 to 128 letters, digits and"
            " '.', '_', ':', '-', starting with a letter or digit",
        )
    return value


def _sync_client(url_or_client: str | redis.Redis | redis.asyncio.Redis) -> redis.Redis:
    """The sync client every operation goes through (see the module's docstring)."""
    if isinstance(url_or_client, redis.Redis):
        return url_or_client
    if isinstance(url_or_client, redis.asyncio.Redis):
        async_pool = url_or_client.connection_pool
        kwargs = {
            name: value
            for name, value in async_pool.connection_kwargs.items()
            if name in _PORTABLE_CONNECTION_KWARGS
        }
        async_class = async_pool.connection_class
        connection_class: Any
        if issubclass(async_class, redis.asyncio.connection.UnixDomainSocketConnection):
            connection_class = redis.connection.UnixDomainSocketConnection
        elif issubclass(async_class, redis.asyncio.connection.SSLConnection):
            connection_class = redis.connection.SSLConnection
        else:
            connection_class = redis.connection.Connection
        pool = redis.ConnectionPool(connection_class=connection_class, **kwargs)
        return redis.Redis(connection_pool=pool)
    if not isinstance(url_or_client, str):
        raise InvalidArgumentTypeError(
            "url_or_client",
            "must be a redis:// URL, a redis.Redis or a redis.asyncio.Redis, not "
            + type(url_or_client).__name__,
        )
    try:
        # Timeouts in the URL's query (`?socket_timeout=...`) win over these defaults.
        return redis.Redis.from_url(
            url_or_client,
            socket_timeout=_DEFAULT_TIMEOUT,
            socket_connect_timeout=_DEFAULT_TIMEOUT,
        )
    except (ValueError, TypeError) as error:
        # The URL's credentials, if any, stay out of the message (it ends up in logs).
        shown = re.sub(r"//[^@/]*@", "//***@", url_or_client)
        raise ConfigurationError(
            "url", f"{shown!r} is not a Redis URL (redis://, rediss:// or unix://): {error}"
        ) from None


def _text(value: bytes | str | None) -> str | None:
    """A reply as text, whether the client decodes replies (`decode_responses`) or not."""
    if value is None or isinstance(value, str):
        return value
    return value.decode("utf-8")


def _where(client: redis.Redis) -> str:
    """The server of `client` as an error names it (no password)."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


async def _in_thread(call: Callable[[], _T]) -> _T:
    """Run a blocking Redis call on a worker thread, whatever the event loop."""
    return await anyio.to_thread.run_sync(call)


class RedisRateLimit:
    """One pace in Redis, shared by every process that uses the same Redis and `name`.

    ```python
    pace = RedisRateLimit("redis://localhost:6379/0", 600, per="hour", name="postal-main")
    postal = Postal(rate_limit=pace)      # or AsyncPostal(rate_limit=pace)
    ```

    `count`, `per` and `burst` are as for `postal_sdk.RateLimit`, and so is the pacing
    (GCRA, one send every `per / count` seconds, no burst of a window's quota), but the
    pace's state lives in Redis: four workers on three machines together send at the rate,
    not four times it. A process may start or stop at any time; the slots are handed out by
    one Lua script reading Redis' clock, so they are spaced right whatever the machines'
    clocks say.

    **Processes that disagree on the rate.** The first process to reserve a slot on an idle
    pace stores its `count`/`per`/`burst` with the pace; every process sharing the name
    then paces by the *stored* rate, and one whose own rate differs warns (a
    `RuntimeWarning`, once per object) saying which rate it follows. So a mixed fleet never
    sends faster than the stored rate, never at the sum of the rates. The stored rate
    expires with the pace's state, once no reserved slot lies ahead: to change the rate,
    stop the processes using the old one (or wait for a quiet spell); the next reservation
    stores the new one.

    **Redis unreachable.** `reserve()` raises `JournalError` (a `PostalError`, the error of
    a store that cannot record a send, which also stops a `send_many` batch): the pace
    fails closed, and the send that asked is not made.

    Raises:
        ConfigurationError: A malformed Redis URL.
        InvalidArgumentError, InvalidArgumentTypeError: A bad `count`, `per` or `burst`
            (as `RateLimit`), or a `name` that cannot be part of a Redis key.
    """

    def __init__(
        self,
        url_or_client: str | redis.Redis | redis.asyncio.Redis,
        count: int,
        per: Period | float = "second",
        *,
        name: str = "postal",
        burst: int = 1,
    ) -> None:
        self._count, self._period, self._burst = check_rate(count, per, burst)
        self._per = per
        self._name = _check_name("name", name)
        self._client = _sync_client(url_or_client)
        self._key = f"postal-sdk:{{pace:{name}}}"
        # Microseconds, as the script keeps them: whole numbers, exact in a Lua double.
        self._interval_us = round(self._period / self._count * 1_000_000)
        self._tolerance_us = (self._burst - 1) * self._interval_us
        self._script = self._client.register_script(_RESERVE)
        self._warned = False

    @property
    def name(self) -> str:
        """The name that processes share the pace by."""
        return self._name

    @property
    def count(self) -> int:
        """Sends allowed per period, as this process asked (see "disagree" above)."""
        return self._count

    @property
    def period(self) -> float:
        """The period in seconds, as this process asked."""
        return self._period

    @property
    def burst(self) -> int:
        """Sends that may leave at once after a quiet spell, as this process asked."""
        return self._burst

    def __repr__(self) -> str:
        burst = f", burst={self._burst}" if self._burst != 1 else ""
        return (
            f"RedisRateLimit({_where(self._client)!r}, {self._count}, per={self._per!r},"
            f" name={self._name!r}{burst})"
        )

    def reserve(self) -> float:
        """Reserve the next slot of the shared pace: the seconds to wait before sending.

        Raises:
            JournalError: Redis could not be asked; do not send.
        """
        own = f"{self._count}/{self._period:g}s burst {self._burst}"
        try:
            wait_us, interval_us, tolerance_us, stored = self._script(
                keys=[self._key], args=[self._interval_us, self._tolerance_us, own]
            )
        except redis.exceptions.RedisError as error:
            raise JournalError(
                f"the shared pace {self._name!r} in Redis at {_where(self._client)} could not"
                f" be reached ({type(error).__name__}: {error}); nothing was sent"
            ) from error
        if (int(interval_us), int(tolerance_us)) != (self._interval_us, self._tolerance_us):
            self._warn_differs(_text(stored) or "another rate")
        return max(0.0, int(wait_us) / 1_000_000)

    async def async_reserve(self) -> float:
        """`reserve()` for the async client, on a worker thread (never blocks the loop)."""
        return await _in_thread(self.reserve)

    def _warn_differs(self, stored: str) -> None:
        if self._warned:
            return
        self._warned = True
        warnings.warn(
            f"the shared pace {self._name!r} is stored in Redis as {stored}, but this process"
            f" asked for {self._count}/{self._period:g}s burst {self._burst}: following the"
            " stored rate (the first process on an idle pace sets it; see RedisRateLimit)",
            RuntimeWarning,
            stacklevel=3,
        )


# GCRA over Redis' clock. KEYS[1]: the pace's hash. ARGV: this process's interval and
# tolerance in microseconds, and its rate as text (for the others' warnings). Returns the
# wait in microseconds, and the interval, tolerance and rate actually followed (the stored
# ones). Numbers are stored with '%.0f': Lua's default formatting keeps only 14 digits.
_RESERVE = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local stored = redis.call('HMGET', KEYS[1], 'tat', 'interval', 'tolerance', 'rate')
local tat, interval, tolerance, rate
if stored[1] then
    tat = tonumber(stored[1])
    interval = tonumber(stored[2])
    tolerance = tonumber(stored[3])
    rate = stored[4]
else
    tat = now_us
    interval = tonumber(ARGV[1])
    tolerance = tonumber(ARGV[2])
    rate = ARGV[3]
end
if tat < now_us then tat = now_us end
local slot = tat - tolerance
if slot < now_us then slot = now_us end
local next_tat = tat + interval
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', next_tat),
    'interval', string.format('%.0f', interval), 'tolerance', string.format('%.0f', tolerance),
    'rate', rate)
redis.call('PEXPIRE', KEYS[1], math.ceil((next_tat - now_us) / 1000) + 1000)
return {string.format('%.0f', slot - now_us), string.format('%.0f', interval),
    string.format('%.0f', tolerance), rate}
"""


class RedisJournal:
    """A `postal_sdk.journal.Journal` in Redis, shared by every process that uses the same
    Redis and `namespace`.

    ```python
    journal = RedisJournal("redis://localhost:6379/0", namespace="newsletter-7")
    with Postal(journal=journal) as postal:           # or AsyncPostal(journal=journal)
        postal.send_message(message, idempotency_key="welcome:42")
    ```

    Of any number of processes (on any number of machines) offered one key, one sends it;
    the others wait for its result and answer with it (as replayed). A claim is a *lease*
    of `lease` seconds (default 30) that this object renews, from a background thread, while
    the send is under way; a claim whose lease ran out without a result (its process died,
    or lost Redis for longer than the lease) is in doubt, and is never resent
    automatically: `in_doubt()` lists such keys, `resolve()` settles one once you know what
    became of it (look the message up in Postal).

    `namespace` (default `"default"`) separates campaigns or applications that share a
    Redis: keys live under `postal-sdk:{journal:NAMESPACE}:`. Entries stay until you delete
    them (`clear()`), so that a rerun of a campaign months later still knows what was sent.

    `url_or_client` is a `redis://`, `rediss://` (TLS) or `unix://` URL (connect and read
    timeouts default to 5 s; `?socket_timeout=...` in the URL overrides them), or a
    `redis.Redis` (used as is), or a `redis.asyncio.Redis` (the journal opens sync
    connections with the same settings: see the module's docstring).

    **Redis unreachable.** `claim` raises `JournalError`: the keyed send fails and is not
    made. A result that cannot be recorded (Redis lost after the send) is logged, and the
    key turns in doubt when its lease runs out.

    Make the journal before or after a `fork` (Celery's prefork pool, gunicorn
    `--preload`): each process renews only its own claims, over its own connections.
    `close()` when done (a program that exits without closing it has it closed at exit):
    claims still held then become in doubt.

    Raises:
        ConfigurationError: A malformed Redis URL.
        InvalidArgumentError, InvalidArgumentTypeError: A `namespace` that cannot be part of
            a Redis key, or a `lease` that is not a positive number of seconds.
    """

    def __init__(
        self,
        url_or_client: str | redis.Redis | redis.asyncio.Redis,
        namespace: str = "default",
        *,
        lease: float = 30.0,
    ) -> None:
        self._namespace = _check_name("namespace", namespace)
        if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease >= 0.1:
            raise InvalidArgumentError(
                "lease", f"must be a number of seconds, at least 0.1, not {lease!r}"
            )
        self._lease_ms = round(lease * 1000)
        self._client = _sync_client(url_or_client)
        self._prefix = f"postal-sdk:{{journal:{namespace}}}:"
        self._unfinished = self._prefix + "unfinished"
        self._owner = uuid.uuid4().hex
        # A claim's token: this object's id and a count. Not a uuid4 each: os.urandom, once
        # per send, cost more than the claim's round trip under the GIL's contention.
        self._tokens = itertools.count()
        self._host = socket.gethostname()
        scripts = self._client.register_script
        self._claim_script = scripts(_SETTLE + _CLAIM)
        self._get_script = scripts(_SETTLE + _GET)
        self._record_script = scripts(_RECORD)
        self._release_script = scripts(_RELEASE)
        self._renew_script = scripts(_RENEW)
        self._abandon_script = scripts(_ABANDON)
        self._resolve_script = scripts(_SETTLE + _RESOLVE)
        # The claims this object holds (token -> key), renewed by the renewer thread. Both
        # belong to the process that made them: after a fork, the child starts afresh.
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()
        self._renewer: _Renewer | None = None
        self._dispatcher: threading.Thread | None = None
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._scripts = [
            self._claim_script,
            self._get_script,
            self._record_script,
            self._release_script,
            self._abandon_script,
        ]
        self._closed = False
        # A program that ends without close(): the dispatcher is a daemon thread, so send
        # what it holds at exit instead of losing the last results (their keys would turn
        # in doubt).
        atexit.register(self.close)
        if sys.platform != "win32":
            os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))

    @property
    def namespace(self) -> str:
        """The namespace that processes share the journal by."""
        return self._namespace

    @property
    def lease(self) -> float:
        """Seconds a claim lasts without renewal (this object renews its own)."""
        return self._lease_ms / 1000

    def __repr__(self) -> str:
        return f"RedisJournal({_where(self._client)!r}, namespace={self._namespace!r})"

    # The protocol's operations. The hot ones (claim, record, release, mark_in_doubt, get)
    # go through the dispatcher thread, which sends whatever is waiting as one pipeline:
    # one round trip and one wakeup per event loop for many sends in flight, instead of a
    # worker thread and a round trip each (which halved a batch's throughput).

    def claim(self, key: str, fingerprint: str | None = None) -> Claim:
        """See `postal_sdk.journal.Journal.claim`.

        Raises:
            JournalError: Redis could not be reached (or the journal is closed): do not send.
        """
        op, token = self._claim_op(key, fingerprint)
        return self._claimed(key, token, self._call(op, "claim"))

    async def async_claim(self, key: str, fingerprint: str | None = None) -> Claim:
        """See `claim` (a claim made while its caller was cancelled is released)."""
        op, token = self._claim_op(key, fingerprint)
        try:
            reply = await self._await(op, "claim")
        except BaseException:
            # Cancelled while queued: the claim still runs, and this release after it (by
            # its token, so it frees the key only if the claim took it).
            with contextlib.suppress(JournalError):
                self._put(self._finish_op(key, self._release_script, [token]))
            raise
        return self._claimed(key, token, reply)

    def record(self, claim: Claim, result: SendResult) -> None:
        """See `postal_sdk.journal.Journal.record` (returns once queued; durable before any
        later claim of this object returns, and by `close()`)."""
        if claim.token is not None:
            self._let_go(claim.token)
            args = [claim.token, result_to_json(result)]
            self._put(self._finish_op(claim.key, self._record_script, args, "record"))

    async def async_record(self, claim: Claim, result: SendResult) -> None:
        """See `record`."""
        self.record(claim, result)

    def release(self, claim: Claim) -> None:
        """See `postal_sdk.journal.Journal.release` (returns once queued, like `record`)."""
        if claim.token is not None:
            self._let_go(claim.token)
            args = [claim.token]
            self._put(self._finish_op(claim.key, self._release_script, args, "release"))

    async def async_release(self, claim: Claim) -> None:
        """See `release`."""
        self.release(claim)

    def mark_in_doubt(self, claim: Claim) -> None:
        """See `postal_sdk.journal.Journal.mark_in_doubt` (returns once queued)."""
        if claim.token is not None:
            self._let_go(claim.token)
            keys = [self._entry(claim.key), self._lease_key(claim.key)]
            self._put(_Op(self._abandon_script, keys, [claim.token], "mark in doubt"))

    async def async_mark_in_doubt(self, claim: Claim) -> None:
        """See `mark_in_doubt`."""
        self.mark_in_doubt(claim)

    def renew(self, claims: Sequence[Claim]) -> None:
        """See `postal_sdk.journal.Journal.renew` (this object also renews its own claims)."""
        held = [(claim.token, claim.key) for claim in claims if claim.token is not None]
        if held:
            self._flush()
            self._renew(held)

    async def async_renew(self, claims: Sequence[Claim]) -> None:
        """See `renew`."""
        await _in_thread(functools.partial(self.renew, claims))

    def wait(self, key: str, within: float) -> JournalEntry | None:
        """See `postal_sdk.journal.Journal.wait` (polls Redis: the sender may be anywhere)."""
        deadline = time.monotonic() + within
        pause = _FIRST_POLL
        while True:
            entry = self.get(key)
            if entry is None or entry.state is not EntryState.PENDING:
                return entry
            left = deadline - time.monotonic()
            if left <= 0:
                return entry
            time.sleep(min(pause, left))
            pause = min(pause * 2, _LAST_POLL)

    async def async_wait(self, key: str, within: float) -> JournalEntry | None:
        """See `wait`."""
        deadline = time.monotonic() + within
        pause = _FIRST_POLL
        while True:
            entry = await self.async_get(key)
            if entry is None or entry.state is not EntryState.PENDING:
                return entry
            left = deadline - time.monotonic()
            if left <= 0:
                return entry
            await anyio.sleep(min(pause, left))
            pause = min(pause * 2, _LAST_POLL)

    def get(self, key: str) -> JournalEntry | None:
        """See `postal_sdk.journal.Journal.get`."""
        reply = self._call(self._get_op(key), "read")
        return None if not reply else _entry_from_reply(key, reply)

    async def async_get(self, key: str) -> JournalEntry | None:
        """See `get`."""
        reply = await self._await(self._get_op(key), "read")
        return None if not reply else _entry_from_reply(key, reply)

    def in_doubt(self) -> list[JournalEntry]:
        """See `postal_sdk.journal.Journal.in_doubt`: every key in doubt, oldest claim first."""
        self._flush()
        try:
            members = self._client.zrange(self._unfinished, 0, -1)
            pipeline = self._client.pipeline(transaction=False)
            keys = [_text(member) or "" for member in members]  # type: ignore[arg-type]
            for key in keys:
                self._get_script(
                    keys=[self._entry(key), self._lease_key(key)], args=[], client=pipeline
                )
            replies = pipeline.execute()
        except redis.exceptions.RedisError as error:
            raise self._error("read", error) from error
        entries = [
            _entry_from_reply(key, reply) for key, reply in zip(keys, replies, strict=True) if reply
        ]
        return [entry for entry in entries if entry.state is EntryState.IN_DOUBT]

    async def async_in_doubt(self) -> list[JournalEntry]:
        """See `in_doubt`."""
        return await _in_thread(self.in_doubt)

    def resolve(self, key: str, *, sent: bool, result: SendResult | None = None) -> None:
        """See `postal_sdk.journal.Journal.resolve`.

        Raises:
            InvalidArgumentError: The key is held by a live sender (it is not in doubt).
            JournalError: Redis could not be reached.
        """
        _check_key(key)
        self._flush()
        reply = self._run(
            "resolve",
            self._resolve_script,
            keys=[self._entry(key), self._lease_key(key), self._unfinished],
            args=[
                "1" if sent else "0",
                "" if result is None else result_to_json(result),
            ],
            member=key,
        )
        if _text(reply) == "busy":
            raise InvalidArgumentError("key", f"{key!r} is held by a live sender, not in doubt")

    async def async_resolve(
        self, key: str, *, sent: bool, result: SendResult | None = None
    ) -> None:
        """See `resolve`."""
        await _in_thread(functools.partial(self.resolve, key, sent=sent, result=result))

    def clear(self) -> int:
        """Delete every entry of this namespace (a finished campaign): how many were deleted.

        Keys that are in doubt or under way are deleted too: their sends are forgotten.
        """
        self._flush()
        deleted = 0
        try:
            batch: list[bytes | str] = []
            for name in self._client.scan_iter(match=_escape_glob(self._prefix) + "*", count=500):
                batch.append(name)
                if len(batch) >= 500:
                    deleted += int(self._client.unlink(*batch))
                    batch.clear()
            if batch:
                deleted += int(self._client.unlink(*batch))
        except redis.exceptions.RedisError as error:
            raise self._error("clear", error) from error
        return deleted

    def close(self) -> None:
        """See `postal_sdk.journal.Journal.close`: send what is queued, stop renewing;
        claims still held turn in doubt.

        Does not close a redis client you passed in (its owner does).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            renewer, self._renewer = self._renewer, None
            dispatcher, self._dispatcher = self._dispatcher, None
            held = list(self._held.items())
            self._held.clear()
        atexit.unregister(self.close)
        if dispatcher is not None:
            self._queue.put(None)
            dispatcher.join()
        if renewer is not None:
            renewer.stop()
        if held:
            try:
                self._abandon_script(
                    keys=[self._entry(key) for _token, key in held]
                    + [self._lease_key(key) for _token, key in held],
                    args=[token for token, _key in held],
                )
            except redis.exceptions.RedisError as error:
                # Their leases run out instead: the keys turn in doubt all the same.
                _log.warning("%r could not mark %d claim(s) in doubt: %s", self, len(held), error)

    async def async_close(self) -> None:
        """See `close`."""
        await _in_thread(self.close)

    # Plumbing: the operations as `_Op`s, and the dispatcher thread that runs them.

    def _entry(self, key: str) -> str:
        return self._prefix + "entry:" + key

    def _lease_key(self, key: str) -> str:
        return self._prefix + "lease:" + key

    def _error(self, doing: str, error: Exception) -> JournalError:
        return JournalError(
            f"the journal {self._namespace!r} in Redis at {_where(self._client)} could not"
            f" {doing} ({type(error).__name__}: {error}); a keyed send is not made"
        )

    def _run(
        self,
        doing: str,
        script: Any,
        *,
        keys: list[str],
        args: list[Any],
        member: str | None = None,
    ) -> Any:
        if member is not None:
            args = [*args, member]
        try:
            return script(keys=keys, args=args)
        except redis.exceptions.RedisError as error:
            raise self._error(doing, error) from error

    def _claim_op(self, key: str, fingerprint: str | None) -> tuple[_Op, str]:
        _check_key(key)
        token = f"{self._owner}:{next(self._tokens)}"
        keys = [self._entry(key), self._lease_key(key), self._unfinished]
        args = [token, self._owner, os.getpid(), self._host, fingerprint or "", self._lease_ms]
        return _Op(self._claim_script, keys, [*args, key], "claim"), token

    def _claimed(self, key: str, token: str, reply: Any) -> Claim:
        """The `Claim` that the claim script's `reply` means."""
        if _text(reply[0]) == "claimed":
            with self._lock:
                self._held[token] = key
                if self._renewer is None:
                    self._renewer = _Renewer(self)
            return Claim(key, ClaimStatus.CLAIMED, token=token)
        return Claim.answering(_entry_from_reply(key, reply))

    def _get_op(self, key: str) -> _Op:
        _check_key(key)
        return _Op(self._get_script, [self._entry(key), self._lease_key(key)], [], "read")

    def _finish_op(self, key: str, script: Any, args: list[Any], doing: str = "release") -> _Op:
        keys = [self._entry(key), self._lease_key(key), self._unfinished]
        return _Op(script, keys, [*args, key], doing)

    def _let_go(self, token: str) -> None:
        """This object no longer holds the claim `token`: stop renewing it."""
        with self._lock:
            self._held.pop(token, None)

    def _put(self, op: _Op) -> None:
        with self._lock:
            if self._closed:
                raise JournalError(f"{self!r} is closed")
            if self._dispatcher is None:
                self._queue = queue.SimpleQueue()
                self._dispatcher = threading.Thread(
                    target=self._dispatch,
                    args=(self._queue,),
                    name=f"postal-redis-journal:{self._namespace}",
                    daemon=True,
                )
                self._dispatcher.start()
            self._queue.put(op)

    def _call(self, op: _Op, doing: str) -> Any:
        """Run `op` on the dispatcher thread and wait for its reply (blocking)."""
        op.done = threading.Event()
        self._put(op)
        op.done.wait()
        return self._reply(op, doing)

    async def _await(self, op: _Op, doing: str) -> Any:
        """Run `op` on the dispatcher thread and wait for its reply, the event loop free."""
        # Native primitives, not anyio's: this is the journal's hot path, twice per send.
        if sniffio.current_async_library() == "trio":
            import trio

            event = trio.Event()
            op.wake = (trio.lowlevel.current_trio_token().run_sync_soon, event.set)
            self._put(op)
            await event.wait()
        else:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            op.wake = (loop.call_soon_threadsafe, functools.partial(_settle, future))
            self._put(op)
            await future
        return self._reply(op, doing)

    def _reply(self, op: _Op, doing: str) -> Any:
        if isinstance(op.error, redis.exceptions.RedisError):
            raise self._error(doing, op.error) from op.error
        if op.error is not None:
            raise op.error
        return op.value

    def _dispatch(self, waiting: queue.SimpleQueue[_Op | None]) -> None:
        """The dispatcher thread: send what is waiting as one pipeline, until `None`."""
        loaded = False
        while True:
            batch: list[_Op] = []
            op = waiting.get()
            while op is not None:
                batch.append(op)
                try:
                    op = waiting.get_nowait()
                except queue.Empty:
                    break
            if batch:
                loaded = self._run_batch(batch, loaded)
            if op is None:
                return

    def _run_batch(self, batch: list[_Op], loaded: bool) -> bool:
        """Run `batch` as one pipeline; tell each caller. Whether the scripts are loaded."""
        try:
            if not loaded:
                self._load_scripts()
                loaded = True
            replies = self._pipeline(batch)
            if any(isinstance(reply, redis.exceptions.NoScriptError) for reply in replies):
                # Redis lost its script cache (a restart): load them again, run what failed.
                self._load_scripts()
                again = [op for op, reply in zip(batch, replies, strict=True)
                         if isinstance(reply, redis.exceptions.NoScriptError)]  # fmt: skip
                retried = iter(self._pipeline(again))
                replies = [next(retried) if isinstance(reply, redis.exceptions.NoScriptError)
                           else reply for reply in replies]  # fmt: skip
        except Exception as error:  # noqa: BLE001 - handed to every caller of the batch
            loaded = False
            replies = [error] * len(batch)
        wakeups: dict[Callable[..., object], list[Callable[[], object]]] = {}
        for op, reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception):
                op.error = reply
            else:
                op.value = reply
            if op.done is not None:
                op.done.set()
            elif op.wake is not None:
                wakeups.setdefault(op.wake[0], []).append(op.wake[1])
            elif op.error is not None:
                # A record or release nobody waits for: the send is over, and failing it now
                # would report a sent message as unsent. The key turns in doubt instead.
                _log.warning(
                    "%r could not %s key %r (%s: %s): it will be in doubt",
                    self,
                    op.doing,
                    op.args[-1],
                    type(op.error).__name__,
                    op.error,
                )
        for schedule, callbacks in wakeups.items():
            # One call into each waiting event loop per batch, however many wait there.
            with contextlib.suppress(RuntimeError):  # that loop is closed: no one waits
                schedule(_call_all, callbacks)
        return loaded

    def _pipeline(self, batch: list[_Op]) -> list[Any]:
        pipeline = self._client.pipeline(transaction=False)
        for op in batch:
            if op.script is not None:
                pipeline.evalsha(op.script.sha, len(op.keys), *op.keys, *op.args)
        replies = iter(pipeline.execute(raise_on_error=False))
        return [None if op.script is None else next(replies) for op in batch]

    def _flush(self) -> None:
        """Wait until what this object queued (records, releases) has reached Redis, so
        that an operation made directly (resolve, in_doubt, ...) comes after it."""
        with self._lock:
            idle = self._dispatcher is None
        if not idle:
            # Only the order matters here: the operation that follows reports its own error.
            with contextlib.suppress(JournalError):
                self._call(_Op(None, [], [], "flush"), "flush")

    def _load_scripts(self) -> None:
        for script in self._scripts:
            self._client.script_load(script.script)

    def _renew(self, held: list[tuple[str, str]]) -> None:
        self._renew_script(
            keys=[self._lease_key(key) for _token, key in held],
            args=[self._lease_ms] + [token for token, _key in held],
        )

    def _forget_parent(self) -> None:
        """In a forked child: the parent's claims, threads, queue, lock and id are not ours."""
        self._owner = uuid.uuid4().hex
        self._tokens = itertools.count()
        self._lock = threading.Lock()
        self._held = {}
        self._renewer = None
        self._dispatcher = None

    def _renew_held(self) -> bool:
        """Renew this object's claims (the renewer thread's work): whether to go on."""
        with self._lock:
            if self._closed:
                return False
            held = list(self._held.items())
        if held:
            try:
                self._renew(held)
            except redis.exceptions.RedisError as error:
                _log.warning("%r could not renew %d claim(s): %s", self, len(held), error)
        return True


class _Op:
    """One script call for the dispatcher thread, and how to tell its caller it is done.

    A blocking caller waits on `done`; an async caller gives `wake`: the function that
    makes its event loop run a callback soon (from another thread), and the callback. A
    caller that does not wait (record, release) gives neither.
    """

    __slots__ = ("args", "doing", "done", "error", "keys", "script", "value", "wake")

    def __init__(self, script: Any, keys: list[str], args: list[Any], doing: str) -> None:
        self.script = script
        self.keys = keys
        self.args = args
        self.doing = doing
        self.value: Any = None
        self.error: Exception | None = None
        self.done: threading.Event | None = None
        self.wake: tuple[Callable[..., object], Callable[[], object]] | None = None


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():  # a cancelled waiter's future is done already
        future.set_result(None)


def _call_all(callbacks: list[Callable[[], object]]) -> None:
    for callback in callbacks:
        callback()


def _after_fork(journal_ref: weakref.ref[RedisJournal]) -> None:
    journal = journal_ref()
    if journal is not None:
        journal._forget_parent()


class _Renewer:
    """A daemon thread renewing one journal's claims every third of a lease.

    It holds the journal weakly, so a journal dropped without `close()` is not kept alive.
    """

    def __init__(self, journal: RedisJournal) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run,
            args=(weakref.ref(journal), journal.lease / 3),
            name=f"postal-redis-renewer:{journal.namespace}",
            daemon=True,
        )
        self._thread.start()

    def _run(self, journal_ref: weakref.ref[RedisJournal], every: float) -> None:
        while not self._stopped.wait(every):
            journal = journal_ref()
            if journal is None or not journal._renew_held():
                return
            del journal

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


_FIRST_POLL = 0.005
_LAST_POLL = 0.1
"""`wait` looks at a busy key again after 5 ms, then doubling up to every 100 ms."""


def _check_key(key: str) -> None:
    if not isinstance(key, str):
        raise InvalidArgumentTypeError("key", f"must be a str, not {type(key).__name__}")
    if not key:
        raise InvalidArgumentError("key", "must not be empty")


def _escape_glob(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _utc(milliseconds: bytes | str | None) -> datetime | None:
    text = _text(milliseconds)
    if not text:
        return None
    return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)


def _entry_from_reply(key: str, reply: Sequence[Any]) -> JournalEntry:
    """A `JournalEntry` from the `entry` reply of the scripts below."""
    _marker, state, fingerprint, result, claimed_at, finished_at = (_text(part) for part in reply)
    return JournalEntry(
        key=key,
        state=EntryState(state),
        result=result_from_json(result) if result else None,
        fingerprint=fingerprint or None,
        claimed_at=_utc(claimed_at),
        finished_at=_utc(finished_at),
    )


# The journal's scripts. Each key's entry is a hash (state, token, owner, pid, host,
# fingerprint, result, claimed_at, finished_at; times in ms of Redis' clock); its lease is
# a string key holding the claim's token, expiring after the lease; the `unfinished`
# sorted set holds the keys not yet sent, by claim time, for `in_doubt()`. A pending entry
# whose lease key is gone is in doubt: `settle` writes that down when it sees it.

_SETTLE = """
local function now_ms()
    local now = redis.call('TIME')
    return string.format('%.0f', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
end
local function settle(entry, lease)
    local state = redis.call('HGET', entry, 'state')
    if state == 'pending' and redis.call('EXISTS', lease) == 0 then
        redis.call('HSET', entry, 'state', 'in_doubt')
        state = 'in_doubt'
    end
    return state
end
local function reply(entry, state)
    local fields = redis.call('HMGET', entry, 'fingerprint', 'result', 'claimed_at',
        'finished_at')
    return {'entry', state, fields[1] or '', fields[2] or '', fields[3] or '', fields[4] or ''}
end
"""

# KEYS: entry, lease, unfinished. ARGV: token, owner, pid, host, fingerprint, lease ms, key.
_CLAIM = """
local state = settle(KEYS[1], KEYS[2])
if not state then
    local now = now_ms()
    redis.call('HSET', KEYS[1], 'state', 'pending', 'token', ARGV[1], 'owner', ARGV[2],
        'pid', ARGV[3], 'host', ARGV[4], 'fingerprint', ARGV[5], 'claimed_at', now)
    redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[6])
    redis.call('ZADD', KEYS[3], now, ARGV[7])
    return {'claimed'}
end
return reply(KEYS[1], state)
"""

# KEYS: entry, lease.
_GET = """
local state = settle(KEYS[1], KEYS[2])
if not state then return {} end
return reply(KEYS[1], state)
"""

# KEYS: entry, lease, unfinished. ARGV: token, result, key. A result under the claim's
# token is recorded even if the lease ran out meanwhile: it is better than a doubt.
_RECORD = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'state', 'sent', 'result', ARGV[2], 'finished_at',
    string.format('%.0f', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)))
redis.call('HDEL', KEYS[1], 'token')
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[3])
return 1
"""

# KEYS: entry, lease, unfinished. ARGV: token, key.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
"""

# KEYS: the claims' leases. ARGV: lease ms, then the claims' tokens. Only a lease that
# still exists is extended: one that ran out has made its key in doubt for good.
_RENEW = """
for i, lease in ipairs(KEYS) do
    if redis.call('GET', lease) == ARGV[i + 1] then
        redis.call('PEXPIRE', lease, ARGV[1])
    end
end
return 0
"""

# KEYS: the claims' entries, then their leases. ARGV: their tokens.
_ABANDON = """
local n = #ARGV
for i = 1, n do
    if redis.call('HGET', KEYS[i], 'token') == ARGV[i]
            and redis.call('HGET', KEYS[i], 'state') == 'pending' then
        redis.call('HSET', KEYS[i], 'state', 'in_doubt')
        redis.call('DEL', KEYS[n + i])
    end
end
return 0
"""

# KEYS: entry, lease, unfinished. ARGV: sent ('1'/'0'), result ('' for none), key.
_RESOLVE = """
local state = settle(KEYS[1], KEYS[2])
if state == 'pending' then return 'busy' end
if ARGV[1] == '0' then
    redis.call('DEL', KEYS[1], KEYS[2])
    redis.call('ZREM', KEYS[3], ARGV[3])
    return 'freed'
end
local now = now_ms()
redis.call('HSET', KEYS[1], 'state', 'sent', 'finished_at', now)
if ARGV[2] == '' then
    redis.call('HDEL', KEYS[1], 'result', 'token')
else
    redis.call('HSET', KEYS[1], 'result', ARGV[2])
    redis.call('HDEL', KEYS[1], 'token')
end
if not redis.call('HGET', KEYS[1], 'claimed_at') then
    redis.call('HSET', KEYS[1], 'claimed_at', now)
end
redis.call('ZREM', KEYS[3], ARGV[3])
return 'sent'
"""
