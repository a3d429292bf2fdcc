"""The few primitives `scripts/unasync.py` cannot translate, as hand-written pairs.

`_async/` imports the `Async...`/`async_...` names; the generated `_sync/` code imports the
same names without the prefix, so the generator needs no special cases.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import anyio

__all__ = [
    "AsyncLimiter",
    "AsyncLock",
    "AsyncShield",
    "Limiter",
    "Lock",
    "Shield",
    "async_sleep",
    "sleep",
]


class AsyncLimiter:
    """Caps the requests in flight across every task that shares one client."""

    def __init__(self, total: int) -> None:
        self._limiter = anyio.CapacityLimiter(total)

    @property
    def total(self) -> int:
        return int(self._limiter.total_tokens)

    async def __aenter__(self) -> None:
        try:
            # A free slot is taken without a trip through the event loop; every request
            # still yields to the loop while it waits for its reply.
            self._limiter.acquire_nowait()
        except anyio.WouldBlock:
            await self._limiter.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._limiter.release()


class Limiter:
    """Caps the requests in flight across every thread that shares one client."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._semaphore = threading.BoundedSemaphore(total)

    @property
    def total(self) -> int:
        return self._total

    def __enter__(self) -> None:
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


class AsyncShield:
    """Shields a block from cancellation: bookkeeping that must finish once a send is over."""

    def __init__(self) -> None:
        self._scope = anyio.CancelScope(shield=True)

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._scope.__exit__(exc_type, exc, tb)


class Shield:
    """Nothing to shield from: a thread is not cancelled midway."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


async def async_sleep(seconds: float) -> None:
    """Sleep without blocking the event loop."""
    await anyio.sleep(seconds)


def sleep(seconds: float) -> None:
    """Sleep the calling thread."""
    time.sleep(seconds)
