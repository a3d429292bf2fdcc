"""A client survives `os.fork()`: the child that uses an inherited client opens its own
connections, and the parent's pooled connections (and its event loop) keep working.

Each test sends through the client first, so that the parent holds keep-alive
connections; forks (with `os.fork()`, or `multiprocessing`'s fork start method); lets the
child send through the inherited client and close it; then sends again in the parent, on
the connections it had before. Every message has its own subject: the fake's outbox must
hold each exactly once. Before the fix, the child closing the inherited asyncio transports
removed the parent's sockets from the epoll instance both processes share, and the
parent's next replies never came (a read timeout, on every pooled connection).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import trio

from postal_sdk import AsyncPostal, Postal
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal
from tests.e2e.support import message

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform"),
    # The fake's server runs on a thread; the child never touches it (Python 3.12+ warns).
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

BURST = 6
"""Sends at once: enough that the parent pools several connections."""

TIMEOUT = 10.0
"""Seconds a send may take: a reply the parent never sees fails the test, not hangs it."""


@pytest.fixture
def fake() -> FakePostal:
    return FakePostal()


@pytest.fixture
def base_url(fake: FakePostal) -> Iterator[str]:
    with fake.serve() as url:
        yield url


def subjects(fake: FakePostal) -> Counter[str]:
    return Counter(entry.params["subject"] for entry in fake.outbox)


def expected(*groups: str) -> Counter[str]:
    return Counter(f"{group} {index}" for group in groups for index in range(BURST))


async def send_burst(postal: AsyncPostal, group: str) -> None:
    results = await asyncio.gather(
        *(postal.send_message(message(f"{group} {index}")) for index in range(BURST))
    )
    assert len(results) == BURST


async def trio_burst(postal: AsyncPostal, group: str) -> None:
    async with trio.open_nursery() as nursery:
        for index in range(BURST):
            nursery.start_soon(postal.send_message, message(f"{group} {index}"))


def sync_burst(postal: Postal, group: str) -> None:
    for index in range(BURST):
        postal.send_message(message(f"{group} {index}"))


def in_child(work: Callable[[], None], spawn: str) -> int:
    """Run `work` in a forked child and wait for it: its exit code, 0 if `work` returned."""
    if spawn == "multiprocessing":
        process = multiprocessing.get_context("fork").Process(target=work)
        process.start()
        process.join(60)
        return process.exitcode if process.exitcode is not None else -1
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            work()
            code = 0
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


SPAWNS = ["os.fork", "multiprocessing"]


@pytest.mark.parametrize("spawn", SPAWNS)
@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
def test_an_async_client_forked_inside_its_running_loop_serves_parent_and_child(
    fake: FakePostal, base_url: str, spawn: str, backend: str
) -> None:
    async def parent() -> None:
        async with AsyncPostal(
            base_url, DEFAULT_API_KEY, timeout=TIMEOUT, max_retries=0, http_backend=backend
        ) as postal:
            await send_burst(postal, "before")

            def child() -> None:
                # A new loop in the child; the parent's is still running in the parent.
                async def use() -> None:
                    await send_burst(postal, "child")
                    await postal.aclose()

                asyncio.run(use())

            # Forked while the parent's loop runs this very task.
            code = in_child(child, spawn)
            assert code == 0
            await send_burst(postal, "after")

    asyncio.run(parent())

    assert subjects(fake) == expected("before", "child", "after")


@pytest.mark.parametrize("spawn", SPAWNS)
def test_an_async_client_forked_between_runs_of_its_loop_serves_parent_and_child(
    fake: FakePostal, base_url: str, spawn: str
) -> None:
    # As gunicorn --preload or Celery's prefork pool do: built and used, then forked while
    # the parent's loop is not running; the child runs a loop of its own.
    postal = AsyncPostal(base_url, DEFAULT_API_KEY, timeout=TIMEOUT, max_retries=0)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(send_burst(postal, "before"))

        def child() -> None:
            async def use() -> None:
                await send_burst(postal, "child")
                await postal.aclose()

            asyncio.run(use())

        assert in_child(child, spawn) == 0
        loop.run_until_complete(send_burst(postal, "after"))
        loop.run_until_complete(postal.aclose())
    finally:
        loop.close()

    assert subjects(fake) == expected("before", "child", "after")


@pytest.mark.parametrize("spawn", SPAWNS)
def test_an_async_client_forked_between_trio_runs_serves_parent_and_child(
    fake: FakePostal, base_url: str, spawn: str
) -> None:
    postal = AsyncPostal(base_url, DEFAULT_API_KEY, timeout=TIMEOUT, max_retries=0)

    def child() -> None:
        trio.run(trio_burst, postal, "child")
        trio.run(postal.aclose)

    trio.run(trio_burst, postal, "before")
    assert in_child(child, spawn) == 0
    trio.run(trio_burst, postal, "after")
    trio.run(postal.aclose)

    assert subjects(fake) == expected("before", "child", "after")


@pytest.mark.parametrize("spawn", SPAWNS)
def test_a_sync_client_forked_serves_parent_and_child(
    fake: FakePostal, base_url: str, spawn: str
) -> None:
    with Postal(base_url, DEFAULT_API_KEY, timeout=TIMEOUT, max_retries=0) as postal:
        sync_burst(postal, "before")

        def child() -> None:
            sync_burst(postal, "child")
            postal.close()

        assert in_child(child, spawn) == 0
        sync_burst(postal, "after")

    assert subjects(fake) == expected("before", "child", "after")
