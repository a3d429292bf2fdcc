"""`send_many`: many sends with bounded concurrency and memory, one outcome per message.

Not translated by `scripts/unasync.py`: the sync twin, `postal_sdk._sync.fanout`, is a
thread pool written by hand. The value classes here (`SendOutcome`, `SendProgress`) are
shared by both.

How a batch runs: `concurrency` worker tasks, in a task group owned by the `async with`
block, each take the next message from the source, send it, and leave its outcome in a
buffer that the caller's `async for` empties. A worker takes a message only while fewer
than `2 * concurrency` are taken but not yet yielded, so a slow consumer (or, in input
order, one slow send) pauses the sending instead of growing the buffer: memory is
proportional to `concurrency`, whatever the number of messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
)
from types import TracebackType
from typing import TYPE_CHECKING, Literal, TypeAlias

import anyio
import anyio.abc
import attrs

from postal_sdk._async.journaling import should_end_batch
from postal_sdk.errors import BatchAborted, InvalidArgumentError, InvalidArgumentTypeError
from postal_sdk.models import Message, RawMessage, SendResult
from postal_sdk.pacing import Pacer

if TYPE_CHECKING:
    from postal_sdk._async.client import AsyncPostal

__all__ = [
    "AsyncMessageSource",
    "AsyncSendMany",
    "InterruptedSend",
    "KeyFunction",
    "KeyRegistry",
    "ProgressHook",
    "SendFailure",
    "SendOutcome",
    "SendProgress",
    "SendSuccess",
]

AsyncMessageSource = Iterable[Message | RawMessage] | AsyncIterable[Message | RawMessage]
"""What `AsyncPostal.send_many` takes: any iterable or async iterable of messages."""

_WINDOW_PER_WORKER = 2
"""Messages taken but not yet yielded, per unit of concurrency (in flight or buffered)."""


@attrs.frozen
class SendSuccess:
    """A message of a `send_many` batch that Postal accepted: `result` is its reply.

    `index` is the message's position in the input (from 0). `ok` is `True` and `error`
    `None`, so that `if outcome.ok is True:` tells a type checker which of the two it is.
    """

    index: int
    message: Message | RawMessage
    result: SendResult
    error: None = attrs.field(default=None, init=False)

    @property
    def ok(self) -> Literal[True]:
        """Always `True`: Postal accepted the message."""
        return True

    @property
    def replayed(self) -> bool:
        """Whether an earlier run sent it: the result was read from the journal, not resent."""
        return self.result.replayed


@attrs.frozen
class SendFailure:
    """A message of a `send_many` batch that was not sent, or was refused: `error` says why.

    `index` is the message's position in the input (from 0) and `message` the item as it
    was given, so an item that is not a message is here too, with an
    `InvalidArgumentTypeError`. `ok` is `False` and `result` `None`.
    """

    index: int
    message: Message | RawMessage | object
    error: Exception
    result: None = attrs.field(default=None, init=False)

    @property
    def ok(self) -> Literal[False]:
        """Always `False`: the message was not accepted."""
        return False

    @property
    def replayed(self) -> Literal[False]:
        """Always `False`: a replay is a success read from the journal."""
        return False


SendOutcome: TypeAlias = SendSuccess | SendFailure
"""What became of one message of a `send_many` batch: a `SendSuccess` or a `SendFailure`.

A check narrows it for a type checker: after `if outcome.ok is True:`,
`if outcome.error is None:`, `isinstance(outcome, SendSuccess)` or `case SendSuccess():`,
`outcome.result` is a `SendResult`, not `None`, under mypy and pyright alike (and
`outcome.ok is False` makes it a `SendFailure`). A bare `if outcome.ok:` narrows under mypy
only: pyright, by design, narrows a union on a literal attribute by comparison, not by its
truth.
"""

InterruptedSend: TypeAlias = tuple[int, Message | RawMessage]
"""`(index, message)` of a send cancelled while under way (see `AsyncSendMany`)."""


@attrs.frozen
class SendProgress:
    """Counts of a `send_many` batch, handed to its `on_progress` hook.

    `submitted` counts the messages taken from the input so far; `succeeded` and
    `failed` count the outcomes yielded so far.
    """

    submitted: int
    succeeded: int
    failed: int

    @property
    def completed(self) -> int:
        """The outcomes yielded so far."""
        return self.succeeded + self.failed


ProgressHook = Callable[[SendProgress], object]
"""Called with the batch's counts after each outcome is yielded (from the caller's task)."""

KeyFunction = Callable[[int, Message | RawMessage], str]
"""`send_many(key=...)`: the idempotency key of the message at an index of the input."""


class KeyRegistry:
    """The keys a batch has given out, so that two of its messages never share one."""

    def __init__(self, key: KeyFunction) -> None:
        self._key = key
        self._owners: dict[str, int] = {}

    def key_of(self, index: int, message: Message | RawMessage) -> str:
        """The message's key, checked.

        Raises:
            InvalidArgumentError: The function raised (chained), or another message of
                the batch has the same key.
            InvalidArgumentTypeError: The function returned something else than a str.
        """
        try:
            key = self._key(index, message)
        except Exception as error:
            raise InvalidArgumentError(
                f"key({index})", f"raised {type(error).__name__}: {error}"
            ) from error
        if not isinstance(key, str) or not key:
            raise InvalidArgumentTypeError(
                f"key({index})", f"must return a non-empty str, not {key!r}"
            )
        owner = self._owners.setdefault(key, index)
        if owner != index:
            raise InvalidArgumentError(
                f"key({index})",
                f"{key!r} is also the key of message {owner} of this batch: a key names one "
                "message, so this one is not sent",
            )
        return key


def check_concurrency(concurrency: int | None, max_concurrency: int) -> int:
    """`concurrency` checked, and capped at the client's `max_concurrency`."""
    if concurrency is None:
        return max_concurrency
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise InvalidArgumentTypeError(
            "concurrency", f"must be an int, not {type(concurrency).__name__}"
        )
    if concurrency < 1:
        raise InvalidArgumentError("concurrency", f"must be at least 1, not {concurrency}")
    return min(concurrency, max_concurrency)


def check_source(messages: object, *, allow_async: bool) -> None:
    """Refuse, at the call, what cannot be a stream of messages."""
    if isinstance(messages, (str, bytes, bytearray, memoryview, Message, RawMessage)):
        raise InvalidArgumentTypeError(
            "messages", f"must be an iterable of messages, not a {type(messages).__name__}"
        )
    if isinstance(messages, Iterable) or (allow_async and isinstance(messages, AsyncIterable)):
        return
    kinds = "an iterable or async iterable" if allow_async else "an iterable"
    raise InvalidArgumentTypeError(
        "messages", f"must be {kinds} of messages, not {type(messages).__name__}"
    )


def not_a_message(index: int, item: object) -> InvalidArgumentTypeError:
    """The error outcome of an input item that is neither a `Message` nor a `RawMessage`."""
    return InvalidArgumentTypeError(
        f"messages[{index}]", f"must be a Message or RawMessage, not {type(item).__name__}"
    )


class AsyncSendMany:
    """A `send_many` batch: an async context manager that is also the iterator of outcomes.

    ```python
    async with postal.send_many(messages, concurrency=50) as outcomes:
        async for outcome in outcomes:
            if not outcome.ok:
                log.warning("message %d failed: %s", outcome.index, outcome.error)
    ```

    Iterate only inside the block. Leaving the block, by the end of the loop, `break`, an
    exception or cancellation, stops the batch: messages not yet taken from the input are
    never sent, and sends still under way are cancelled. After an early exit the batch
    tells every message it took apart:

    - the outcomes the loop received;
    - `unreported`: outcomes that were complete, but not yet yielded;
    - `interrupted`: `(index, message)` of the sends cancelled while under way, which
      Postal may or may not have queued;

    and `submitted` is how many messages were taken: every index from there on was never
    sent. An async generator given as input is closed when the batch ends before it does.
    If the input itself raises, the sends under way finish and are yielded first, then the
    exception ends the loop.

    The batch stops early when a send fails in a way every later send would (an
    authentication error, a suspended server, a server that cannot be reached after the
    retries, a journal or pace that cannot record): no more messages are taken, the sends
    under way finish and are yielded, then the loop raises `BatchAborted` with that error
    as `cause` and `submitted` as where to resume: every index below it has had its
    outcome, none from it on was sent.
    """

    def __init__(
        self,
        client: AsyncPostal,
        messages: AsyncMessageSource,
        *,
        concurrency: int | None = None,
        ordered: bool = False,
        on_progress: ProgressHook | None = None,
        rate_limit: Pacer | None = None,
        key: KeyFunction | None = None,
    ) -> None:
        check_source(messages, allow_async=True)
        self._client = client
        self._messages = messages
        self._concurrency = check_concurrency(concurrency, client.max_concurrency)
        self._ordered = bool(ordered)
        self._on_progress = on_progress
        self._pacer = rate_limit
        self._keys = None if key is None else KeyRegistry(key)
        self._abort_cause: Exception | None = None

        self._entered = False
        self._exited = False
        # Made in __aenter__: the event loop's primitives need the running loop.
        self._task_group: anyio.abc.TaskGroup
        self._source: Iterator[object] | AsyncIterator[object]
        # Held while an `__anext__` of an async input is under way (see `_take`).
        self._source_busy = False
        self._source_free: anyio.Event | None = None
        self._source_done = False
        self._source_error: Exception | None = None
        self._window: anyio.Semaphore
        self._in_flight: dict[int, Message | RawMessage] = {}
        self._done_in_order: dict[int, SendOutcome] = {}
        self._done: deque[SendOutcome] = deque()
        self._wakeup: anyio.Event
        self._workers = 0
        self._next_index = 0
        self._yielded = 0
        self._succeeded = 0
        self._failed = 0
        self.unreported: tuple[SendOutcome, ...] = ()
        """Outcomes complete but not yet yielded when the block ended."""
        self.interrupted: tuple[InterruptedSend, ...] = ()
        """`(index, message)` of the sends cancelled under way when the block ended."""

    @property
    def concurrency(self) -> int:
        """The most sends this batch has in flight at once."""
        return self._concurrency

    @property
    def submitted(self) -> int:
        """How many messages were taken from the input so far."""
        return self._next_index

    async def __aenter__(self) -> AsyncSendMany:
        if self._entered:
            raise RuntimeError("a send_many batch can be entered only once")
        self._client._check_open()
        self._entered = True
        messages = self._messages
        self._source = aiter(messages) if isinstance(messages, AsyncIterable) else iter(messages)
        self._window = anyio.Semaphore(self._concurrency * _WINDOW_PER_WORKER)
        self._wakeup = anyio.Event()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._workers = self._concurrency
        for _ in range(self._concurrency):
            task_group.start_soon(self._work)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._exited = True
        task_group = self._task_group
        # Whatever ended the block, the batch ends with it: nothing is sent after this.
        task_group.cancel_scope.cancel()
        try:
            if exc is None or isinstance(exc, anyio.get_cancelled_exc_class()):
                return await task_group.__aexit__(exc_type, exc, tb)
            # The task group would wrap the caller's own exception in an ExceptionGroup:
            # end the workers (they only get cancelled) and let it through as it is.
            await task_group.__aexit__(None, None, None)
            return None
        finally:
            pending = sorted(self._done_in_order.items()) if self._ordered else ()
            self.unreported = (*self._done, *(outcome for _, outcome in pending))
            self.interrupted = tuple(sorted(self._in_flight.items()))
            self._done.clear()
            self._done_in_order.clear()
            self._in_flight.clear()
            if isinstance(self._source, AsyncGenerator) and not self._source_done:
                # Left to the garbage collector, an unfinished async generator is finalised
                # outside any task (trio warns about it); its `finally` blocks run here instead.
                with anyio.CancelScope(shield=True):
                    await self._source.aclose()

    def __aiter__(self) -> AsyncSendMany:
        return self

    async def __anext__(self) -> SendOutcome:
        if not self._entered or self._exited:
            raise RuntimeError(
                "iterate a send_many batch inside its block: "
                "`async with postal.send_many(...) as outcomes: async for o in outcomes`"
            )
        while True:
            outcome = self._peek_ready()
            if outcome is not None:
                self._report(outcome)
                return outcome
            if self._finished():
                raise StopAsyncIteration
            await self._wait()

    # The sync `SendMany` drives a batch from another thread with these: it takes every
    # outcome ready at once (one trip between threads for many outcomes), and wakes a
    # waiting `_wait` when its input runs dry.

    def _take_ready(self) -> list[SendOutcome]:
        """Every outcome ready now, each taken as `__anext__` takes it."""
        ready: list[SendOutcome] = []
        outcome = self._peek_ready()
        while outcome is not None:
            self._report(outcome)
            ready.append(outcome)
            outcome = self._peek_ready()
        return ready

    def _finished(self) -> bool:
        """Whether every worker is done; raises `BatchAborted`, or the input's exception once."""
        if self._workers:
            return False
        if self._abort_cause is not None:
            raise BatchAborted(self._abort_cause, self._next_index)
        if self._source_error is not None:
            error, self._source_error = self._source_error, None
            raise error
        return True

    async def _wait(self) -> None:
        """Until an outcome is ready, a worker ends, or `_wake` is called."""
        self._wakeup = anyio.Event()
        await self._wakeup.wait()

    def _wake(self) -> None:
        self._wakeup.set()

    def _peek_ready(self) -> SendOutcome | None:
        if self._ordered:
            return self._done_in_order.get(self._yielded)
        return self._done[0] if self._done else None

    def _report(self, outcome: SendOutcome) -> None:
        succeeded = self._succeeded + outcome.ok
        failed = self._failed + (not outcome.ok)
        if self._on_progress is not None:
            # Before the outcome leaves the buffer: if the hook raises, it stays unreported.
            self._on_progress(SendProgress(self._next_index, succeeded, failed))
        if self._ordered:
            del self._done_in_order[self._yielded]
        else:
            self._done.popleft()
        self._succeeded, self._failed = succeeded, failed
        self._yielded += 1
        self._window.release()

    async def _work(self) -> None:
        try:
            while True:
                await self._take_room()
                taken = await self._take()
                if taken is None:
                    self._window.release()
                    return
                index, item = taken
                if isinstance(item, (Message, RawMessage)):
                    self._in_flight[index] = item
                    outcome = await self._send(index, item)
                    del self._in_flight[index]
                else:
                    outcome = SendFailure(index, item, not_a_message(index, item))
                if self._ordered:
                    self._done_in_order[index] = outcome
                else:
                    self._done.append(outcome)
                self._wakeup.set()
        finally:
            self._workers -= 1
            self._wakeup.set()

    async def _take_room(self) -> None:
        try:
            # Room in the window is taken without a trip through the event loop: that trip
            # would put the next send behind every reply waiting to be read (a worker
            # still yields to the loop while it waits for its own reply).
            self._window.acquire_nowait()
        except anyio.WouldBlock:
            await self._window.acquire()

    async def _take(self) -> tuple[int, object] | None:
        """The next message and its index, or `None` once the input is done (or failed)."""
        if self._source_done or self._abort_cause is not None:
            return None
        source = self._source
        try:
            if isinstance(source, Iterator):
                item = next(source)
            else:
                # An async generator refuses a second `__anext__` while one is pending: one
                # worker at a time takes. Not with a lock: a free lock costs a turn of the
                # event loop, and a lock hands itself to its waiters in turn, one per turn
                # of the loop, so once workers queued (the input waited once) every later
                # message waited for a turn. Here the waiters all wake when the taker is
                # done, and whoever comes first takes, without a turn of the loop.
                while self._source_busy:
                    if self._source_free is None:
                        self._source_free = anyio.Event()
                    await self._source_free.wait()
                self._source_busy = True
                try:
                    if self._source_done or self._abort_cause is not None:
                        return None
                    item = await anext(source)
                finally:
                    self._source_busy = False
                    free, self._source_free = self._source_free, None
                    if free is not None:
                        free.set()
        except (StopIteration, StopAsyncIteration):
            self._source_done = True
            return None
        except Exception as error:  # noqa: BLE001 - re-raised to the caller once sends finish
            self._source_done = True
            self._source_error = error
            return None
        index = self._next_index
        self._next_index += 1
        return index, item

    async def _send(self, index: int, item: Message | RawMessage) -> SendOutcome:
        try:
            key = None if self._keys is None else self._keys.key_of(index, item)
            result = await self._client._send(item, key, self._pacer)
        except Exception as error:  # noqa: BLE001 - one message's failure is its outcome
            if self._abort_cause is None and should_end_batch(error):
                self._abort_cause = error
            return SendFailure(index, item, error)
        return SendSuccess(index, item, result)
