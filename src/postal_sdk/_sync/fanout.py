"""`send_many` for the sync `Postal`: the async batch, driven from a private event loop.

Written by hand (`scripts/unasync.py` skips it). A thread pool of blocking sends was 0.54x
the async batch at 64 in flight (threads contend for the GIL, and each one's httpx stack
costs more than a task's), so the sync batch runs the async one: `SendMany` starts an
event loop in a thread of its own (an anyio blocking portal), builds an `AsyncPostal`
there from the sync client's options, and runs `AsyncSendMany` on it. Semantics are
therefore the async batch's, value classes included.

What stays in the caller's thread: taking messages from the input (so a generator, a
database cursor or a Django queryset runs in the thread that made it, never on the event
loop) and everything the caller sees (outcomes, `on_progress`, exceptions). The threads
share two queues and rarely wake each other: the caller keeps up to `concurrency`
messages in a deque ahead of the sends (waking the loop only when the batch found it
empty), and a pump task on the loop hands the outcomes over in lists, a trip only once
the loop has run out of work (or gathered `concurrency` outcomes): a thread woken while
the other is busy takes the GIL from it at each of its socket calls. Memory stays
proportional to `concurrency`: the async batch's window of `2 * concurrency`, the
messages in the deque, and at most `2 * concurrency` outcomes handed over and not yet
yielded (the pump waits beyond that).
The loop's tasks start in a copy of the caller's context, so its contextvars (a current
tracing span) apply to the sends.

A client made with the caller's own `http_client` (an `httpx.Client`) keeps sending
through it: its requests run in worker threads, `concurrency` at a time, and the event
loop only schedules them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import attrs
import httpx

from postal_sdk._async.fanout import (
    AsyncSendMany,
    InterruptedSend,
    KeyFunction,
    ProgressHook,
    SendFailure,
    SendOutcome,
    SendProgress,
    SendSuccess,
    check_concurrency,
    check_source,
)
from postal_sdk._synchronization import AsyncLimiter
from postal_sdk.models import Message, RawMessage

if TYPE_CHECKING:
    from postal_sdk._async.client import AsyncPostal
    from postal_sdk._sync.client import Postal
    from postal_sdk.pacing import Pacer

__all__ = [
    "KeyFunction",
    "MessageSource",
    "ProgressHook",
    "SendFailure",
    "SendMany",
    "SendOutcome",
    "SendProgress",
    "SendSuccess",
]

MessageSource = Iterable[Message | RawMessage]
"""What `Postal.send_many` takes: any iterable of messages."""


class SendMany:
    """A `send_many` batch: a context manager that is also the iterator of outcomes.

    ```python
    with postal.send_many(messages, concurrency=16) as outcomes:
        for outcome in outcomes:
            if not outcome.ok:
                log.warning("message %d failed: %s", outcome.index, outcome.error)
    ```

    The semantics are those of `AsyncSendMany` (it runs one, on an event loop of its own).
    Iterate only inside the block. Leaving the block, by the end of the loop, `break` or
    an exception (Ctrl-C included), stops the batch: messages not yet taken are never
    sent, and sends still under way are cut off. After an early exit the batch tells
    every message it took apart: the outcomes the loop received; `unreported`, outcomes
    complete but not yet yielded; `interrupted`, `(index, message)` of the sends cut off
    under way, which Postal may or may not have queued (with the client's own
    `http_client`, a request already in a worker thread cannot be cut off: it finishes,
    and its outcome is in `unreported`; a message taken whose request had not reached a
    worker thread yet is cut off before it, so Postal has not queued any message listed in
    `interrupted`). `submitted` is how many messages the batch took:
    every index from there on was never sent. The input is read in the caller's thread,
    up to `concurrency` messages ahead of the sends. If the input itself raises, the
    sends under way finish and are yielded first, then the exception ends the loop.

    The batch's sends count against its own limit of `concurrency` (at most the client's
    `max_concurrency`), not against the requests other threads make with the client.
    """

    def __init__(
        self,
        client: Postal,
        messages: MessageSource,
        *,
        concurrency: int | None = None,
        ordered: bool = False,
        on_progress: ProgressHook | None = None,
        rate_limit: Pacer | None = None,
        key: KeyFunction | None = None,
    ) -> None:
        check_source(messages, allow_async=False)
        self._client = client
        self._messages = messages
        self._concurrency = check_concurrency(concurrency, client.max_concurrency)
        self._ordered = bool(ordered)
        self._on_progress = on_progress
        self._rate_limit = rate_limit
        self._key = key

        self._entered = False
        self._exited = False
        self._stack = contextlib.ExitStack()
        self._portal: anyio.from_thread.BlockingPortal
        self._call_soon: Callable[..., object]
        self._batch: AsyncSendMany | None = None
        self._feed = _Feed()
        self._source: Iterator[object]
        self._source_done = False
        # From the event loop to this thread: lists of outcomes, and the signals below.
        self._outbox: queue.SimpleQueue[list[SendOutcome] | BaseException | str] = (
            queue.SimpleQueue()
        )
        self._ready: deque[SendOutcome] = deque()
        self._finished = False
        # Outcomes handed to this thread, and yielded by it: the loop hands over at most
        # `2 * concurrency` more than were yielded, then waits for `_room`.
        self._handed = 0
        self._yielded = 0
        self._room: anyio.Event
        self._pump_waits = False
        # A BaseException raised in the caller's http_client, in a worker thread: raised in
        # the caller's thread (it would end the event loop, raised there).
        self._fatal: BaseException | None = None
        self._succeeded = 0
        self._failed = 0
        self.unreported: tuple[SendOutcome, ...] = ()
        """Outcomes complete but not yet yielded when the block ended."""
        self.interrupted: tuple[InterruptedSend, ...] = ()
        """`(index, message)` of the sends cut off under way when the block ended."""

    @property
    def concurrency(self) -> int:
        """The most sends this batch has in flight at once."""
        return self._concurrency

    @property
    def submitted(self) -> int:
        """How many messages the batch took from the input so far."""
        return 0 if self._batch is None else self._batch.submitted

    def __enter__(self) -> SendMany:
        if self._entered:
            raise RuntimeError("a send_many batch can be entered only once")
        self._client._check_open()
        self._entered = True
        self._source = iter(self._messages)
        with self._stack:
            self._portal = self._stack.enter_context(
                anyio.from_thread.start_blocking_portal("asyncio")
            )
            self._batch = self._stack.enter_context(
                self._portal.wrap_async_context_manager(self._run())
            )
            self._stack = self._stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exited = True
        batch = self._batch
        try:
            self._stack.__exit__(exc_type, exc, tb)
        finally:
            if batch is not None:
                # The event loop is done: what it handed over and was not read is here.
                with contextlib.suppress(queue.Empty):
                    while True:
                        handed = self._outbox.get_nowait()
                        if isinstance(handed, list):
                            self._ready.extend(handed)
                self.unreported = (*self._ready, *batch.unreported)
                self.interrupted = batch.interrupted
            self._ready.clear()

    def __iter__(self) -> SendMany:
        return self

    def __next__(self) -> SendOutcome:
        if not self._entered or self._exited:
            raise RuntimeError(
                "iterate a send_many batch inside its block: "
                "`with postal.send_many(...) as outcomes: for o in outcomes`"
            )
        while True:
            if self._ready:
                return self._yield(self._ready[0])
            if self._finished:
                raise StopIteration
            if self._client.is_closed:
                # Closed by another thread mid-batch: later sends fail as the client's own do.
                self._portal.call(self._close_async_client)
            self._feed_input()
            handed = self._outbox.get()
            if self._fatal is not None:
                fatal, self._fatal = self._fatal, None
                self._finished = True
                raise fatal
            if isinstance(handed, list):
                self._ready.extend(handed)
            elif isinstance(handed, BaseException):
                self._finished = True
                raise handed
            elif handed == _DONE:
                self._finished = True

    def _yield(self, outcome: SendOutcome) -> SendOutcome:
        succeeded = self._succeeded + outcome.ok
        failed = self._failed + (not outcome.ok)
        if self._on_progress is not None:
            # Before the outcome leaves the buffer: if the hook raises, it stays unreported.
            self._on_progress(SendProgress(self.submitted, succeeded, failed))
        self._ready.popleft()
        self._succeeded, self._failed = succeeded, failed
        self._yielded += 1
        if self._pump_waits and self._handed - self._yielded < self._window:
            self._pump_waits = False
            self._call_soon(self._room.set)
        self._feed_input()
        return outcome

    @property
    def _window(self) -> int:
        return 2 * self._concurrency

    def _feed_input(self) -> None:
        """In the caller's thread: keep up to `concurrency` messages ahead of the batch."""
        feed = self._feed
        if self._source_done:
            return
        wanted = self._concurrency - len(feed.items)
        if wanted <= 0:
            return
        try:
            for _ in range(wanted):
                feed.items.append(next(self._source))
        except StopIteration:
            self._source_done = feed.ended = True
        except Exception as error:  # noqa: BLE001 - raised by the batch once sends finish
            feed.error = error
            self._source_done = feed.ended = True
        if feed.starved:
            feed.starved = False
            self._call_soon(feed.arrived.set)

    @contextlib.asynccontextmanager
    async def _run(self) -> AsyncIterator[AsyncSendMany]:
        """On the event loop: the async client and batch, for as long as the block lasts."""
        self._call_soon = asyncio.get_running_loop().call_soon_threadsafe
        self._feed.on_starved = functools.partial(self._outbox.put, _STARVED)
        async with contextlib.AsyncExitStack() as stack:
            postal = await stack.enter_async_context(await self._async_client(stack))
            batch = AsyncSendMany(
                postal,
                self._feed,
                concurrency=self._concurrency,
                ordered=self._ordered,
                rate_limit=self._rate_limit,
                key=self._key,
            )
            await stack.enter_async_context(batch)
            raised: BaseException | None = None
            async with anyio.create_task_group() as pump:
                pump.start_soon(self._pump, batch)
                try:
                    yield batch
                except BaseException as error:  # noqa: BLE001 - re-raised below, as it is
                    raised = error
                pump.cancel_scope.cancel()
            if raised is not None:
                # Outside the task group, which would wrap it in an exception group.
                raise raised

    async def _pump(self, batch: AsyncSendMany) -> None:
        """On the event loop: hand every outcome over as it comes, a window at a time."""
        outbox = self._outbox
        try:
            while True:
                ready = batch._take_ready()
                if ready:
                    try:
                        await self._gather(batch, ready)
                    finally:
                        # Cancelled or not: outcomes taken from the batch are handed over.
                        ready += batch._take_ready()
                        self._handed += len(ready)
                        outbox.put(ready)
                    await self._wait_for_room()
                elif batch._finished():
                    return
                else:
                    await batch._wait()
        except Exception as error:  # noqa: BLE001 - the input's, raised in the caller's thread
            outbox.put(error)
        finally:
            # However the pump ends (cancelled when a send raised a BaseException, which
            # ends the batch's task group): the caller's thread must not wait in vain.
            outbox.put(_DONE)

    async def _gather(self, batch: AsyncSendMany, ready: list[SendOutcome]) -> None:
        """Add to `ready` the outcomes that come while the event loop still has work.

        Each trip to the caller's thread wakes it, and while it runs the two threads take
        the GIL from each other at every socket call the loop makes: the outcomes go over
        once the loop has nothing left to do (two turns in a row brought none), or a
        window's worth is ready, or the batch waits for input only the caller can give.
        """
        idle = 0
        while idle < _IDLE_TURNS and len(ready) < self._concurrency and not self._feed.starved:
            await anyio.lowlevel.checkpoint()
            more = batch._take_ready()
            if more:
                ready += more
                idle = 0
            else:
                idle += 1

    async def _wait_for_room(self) -> None:
        while self._handed - self._yielded >= self._window:
            self._room = anyio.Event()
            self._pump_waits = True
            # Checked again after the flag is up: the caller may have caught up meanwhile.
            if self._handed - self._yielded < self._window:
                self._pump_waits = False
                return
            await self._room.wait()

    async def _async_client(self, stack: contextlib.AsyncExitStack) -> AsyncPostal:
        """An `AsyncPostal` like the sync client: its options, pace, journal and tracing."""
        from postal_sdk._async import client as async_client
        from postal_sdk._http.transport import async_pooled_client

        client, connection = self._client, self._client._connection
        http: httpx.AsyncClient
        if connection.owns_http:
            http = async_pooled_client(
                self._concurrency,
                client._options.timeout,
                "httpx",
                connection.connecting,
                max_response_size=connection.max_response_size,
            )
        else:
            transport = _ThreadedTransport(connection.http, self._concurrency, self._on_fatal)
            http = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, headers=connection.http.headers)
            )
        # Made as `with_options` makes its copies: the checks were made by the sync client.
        postal = object.__new__(async_client.AsyncPostal)
        postal._options = async_client._Options(**attrs.asdict(client._options, recurse=False))
        postal._connection = async_client._Connection(
            http=http,
            limiter=AsyncLimiter(self._concurrency),
            owns_http=connection.owns_http,
            pacer=connection.pacer,
            journal=connection.journal,
            tracing=connection.tracing,
            connecting=connection.connecting,
            max_response_size=connection.max_response_size,
        )
        postal._request_headers = async_client._request_headers(postal._options)
        postal._urls = {}
        postal._is_copy = False
        return postal

    def _on_fatal(self, error: BaseException) -> None:
        """In a worker thread: keep `error` for the caller's thread, and wake it."""
        self._fatal = error
        self._outbox.put(_DONE)

    async def _close_async_client(self) -> None:
        assert self._batch is not None
        await self._batch._client.aclose()


_IDLE_TURNS = 2
"""Turns of the event loop without a new outcome after which the loop counts as idle."""
_DONE = "done"
"""From the event loop: the batch has ended, every outcome was handed over."""
_STARVED = "starved"
"""From the event loop: the batch waits for messages that only the caller's thread takes."""


class _Feed:
    """The batch's input: a deque the caller's thread fills and the event loop empties.

    Appending and popping at either end of a deque are atomic, so neither side locks; the
    loop waits on `arrived` only when the deque is empty, after raising `starved` (and
    looking again, for what came meanwhile), and the caller's thread then wakes it.
    """

    def __init__(self) -> None:
        # Whatever the input held: an item that is not a message gets its error outcome.
        self.items: deque[Any] = deque()
        self.ended = False
        self.error: Exception | None = None
        self.starved = False
        self.arrived: anyio.Event
        self.on_starved: Callable[[], object] = lambda: None

    def __aiter__(self) -> _Feed:
        return self

    async def __anext__(self) -> Message | RawMessage:
        while True:
            if self.items:
                item: Message | RawMessage = self.items.popleft()
                return item
            if self.ended:
                # Set after `error` and after the last message: both are seen by now.
                if self.items:
                    continue
                if self.error is not None:
                    error, self.error = self.error, None
                    raise error
                raise StopAsyncIteration
            self.arrived = anyio.Event()
            self.starved = True
            if self.items or self.ended:
                self.starved = False
                continue
            self.on_starved()
            await self.arrived.wait()


class _ThreadedTransport(httpx.AsyncBaseTransport):
    """Sends each request through the caller's own `httpx.Client`, in a worker thread."""

    def __init__(
        self, client: httpx.Client, concurrency: int, on_fatal: Callable[[BaseException], None]
    ) -> None:
        self._client = client
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._on_fatal = on_fatal

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        send = functools.partial(self._send, request, body)
        return await anyio.to_thread.run_sync(send, limiter=self._limiter)

    def _send(self, request: httpx.Request, body: bytes) -> httpx.Response:
        # Built by the caller's client, as the sync Postal builds it: its defaults apply.
        sync_request = self._client.build_request(
            request.method,
            request.url,
            content=body,
            headers=request.headers,
            # The async client puts its timeout in the request as a dict of the four phases.
            timeout=httpx.Timeout(**request.extensions["timeout"]),
        )
        try:
            response = self._client.send(sync_request)
        except Exception:
            raise
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            # Not an error of this send: the caller's thread raises it, and the batch ends.
            self._on_fatal(error)
            raise httpx.TransportError(f"the batch ends: {error!r}") from None
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=response.content,
            request=request,
        )
