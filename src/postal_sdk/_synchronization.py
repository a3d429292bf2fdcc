"""The few primitives `scripts/unasync.py` cannot translate, as hand-written pairs.

`_async/` imports the `Async...`/`async_...` names; the generated `_sync/` code imports the
same names without the prefix, so the generator needs no special cases.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType

import anyio
import sniffio

from postal_sdk._http import fork
from postal_sdk.errors import ConfigurationError

__all__ = [
    "AsyncLimiter",
    "AsyncLock",
    "Limiter",
    "Lock",
    "async_sleep",
    "sleep",
]


class AsyncLimiter:
    """Caps the requests in flight across every task that shares one client.

    It also keeps a client to one event loop at a time: a request from a second loop while
    the first has requests in flight is refused, since the slots' waiters of one loop
    cannot be woken from another (it would hang). In a forked child it starts afresh: the
    parent's requests that held slots do not run there.
    """

    def __init__(self, total: int) -> None:
        self._total = total
        self._reset()

    def _reset(self) -> None:
        self._limiter = anyio.CapacityLimiter(self._total)
        self._generation = fork.current()
        self._loop: object = None
        self._users = 0

    @property
    def total(self) -> int:
        return self._total

    async def __aenter__(self) -> None:
        if self._generation != fork.current():
            self._reset()
        loop = _event_loop()
        if not self._users:
            self._loop = loop
        elif loop is not self._loop:
            raise ConfigurationError(
                "event loop",
                "this client has requests in flight on another event loop: a client serves "
                "one event loop at a time; build one client per event loop",
            )
        self._users += 1
        try:
            # A free slot is taken without a trip through the event loop; every request
            # still yields to the loop while it waits for its reply.
            self._limiter.acquire_nowait()
        except anyio.WouldBlock:
            try:
                await self._limiter.acquire()
            except BaseException:
                self._users -= 1
                raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._users -= 1
        self._limiter.release()


def _event_loop() -> object:
    """The running event loop: asyncio's, or trio's run (its root task)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        if sniffio.current_async_library() != "trio":
            raise
        import trio  # Imported here: trio is running, so it is installed.

        return trio.lowlevel.current_root_task()


class Limiter:
    """Caps the requests in flight across every thread that shares one client."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._semaphore = threading.BoundedSemaphore(total)
        self._generation = fork.current()

    @property
    def total(self) -> int:
        return self._total

    def __enter__(self) -> None:
        if self._generation != fork.current():
            # A forked child: the parent's threads that held slots do not run here.
            self._semaphore = threading.BoundedSemaphore(self._total)
            self._generation = fork.current()
        self._semaphore.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._semaphore.release()


class AsyncLock:
    """Mutual exclusion between tasks."""

    def __init__(self) -> None:
        self._lock = anyio.Lock()

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()


class Lock:
    """Mutual exclusion between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()


async def async_sleep(seconds: float) -> None:
    """Sleep without blocking the event loop."""
    await anyio.sleep(seconds)


def sleep(seconds: float) -> None:
    """Sleep the calling thread."""
    time.sleep(seconds)
