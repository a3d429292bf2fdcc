"""`send_many` for the sync `Postal`: a bounded thread pool, one outcome per message.

Written by hand (`scripts/unasync.py` skips it): threads cannot be generated from tasks.
The semantics are those of `postal_sdk._async.fanout`, whose value classes it shares.

How a batch runs: the caller's thread takes messages from the input (so a generator
runs in the thread that made it) and hands each to a pool of `concurrency` threads,
never more than `concurrency` at once and never more than `2 * concurrency` taken but
not yet yielded; the threads put each outcome on a queue that the caller's `for` loop
empties. Memory is proportional to `concurrency`, whatever the number of messages.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING

from postal_sdk._async.fanout import (
    KeyFunction,
    KeyRegistry,
    ProgressHook,
    SendOutcome,
    SendProgress,
    check_concurrency,
    check_source,
    not_a_message,
)
from postal_sdk._sync.journaling import should_end_batch
from postal_sdk.errors import BatchAborted
from postal_sdk.models import Message, RawMessage
from postal_sdk.pacing import Pacer

if TYPE_CHECKING:
    from postal_sdk._sync.client import Postal

__all__ = [
    "KeyFunction",
    "MessageSource",
    "ProgressHook",
    "SendMany",
    "SendOutcome",
    "SendProgress",
]

MessageSource = Iterable[Message | RawMessage]
"""What `Postal.send_many` takes: any iterable of messages."""

_WINDOW_PER_WORKER = 2
"""Messages taken but not yet yielded, per unit of concurrency (in flight or buffered)."""


class SendMany:
    """A `send_many` batch: a context manager that is also the iterator of outcomes.

    ```python
    with postal.send_many(messages, concurrency=16) as outcomes:
        for outcome in outcomes:
            if not outcome.ok:
                log.warning("message %d failed: %s", outcome.index, outcome.error)
    ```

    Iterate only inside the block. Leaving the block, by the end of the loop, `break` or
    an exception, stops taking messages from the input, and waits for the sends under way
    (a thread cannot be interrupted mid-request; each send is bounded by the client's
    timeout). After an early exit, every message taken (`submitted` of them; from there
    on nothing was sent) is either among the outcomes the loop received or in
    `unreported`. `interrupted` is always empty here: no send is abandoned midway. If the
    input itself raises, the sends under way finish and are yielded first, then the
    exception ends the loop. A batch stops early with `BatchAborted`, as the async one.
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
        self._pacer = rate_limit
        self._keys = None if key is None else KeyRegistry(key)
        self._abort_cause: Exception | None = None

        self._entered = False
        self._exited = False
        self._source: Iterator[object]
        self._pool: ThreadPoolExecutor
        self._source_done = False
        self._source_error: Exception | None = None
        self._finished: queue.SimpleQueue[SendOutcome | BaseException] = queue.SimpleQueue()
        self._running = 0
        self._done_in_order: dict[int, SendOutcome] = {}
        self._done: deque[SendOutcome] = deque()
        self._next_index = 0
        self._yielded = 0
        self._succeeded = 0
        self._failed = 0
        self.unreported: tuple[SendOutcome, ...] = ()
        """Outcomes complete but not yet yielded when the block ended."""
        self.interrupted: tuple[tuple[int, object], ...] = ()
        """Always empty: the sync batch waits for the sends under way when it ends."""

    @property
    def concurrency(self) -> int:
        """The most sends this batch has in flight at once."""
        return self._concurrency

    @property
    def submitted(self) -> int:
        """How many messages were taken from the input so far."""
        return self._next_index

    def __enter__(self) -> SendMany:
        if self._entered:
            raise RuntimeError("a send_many batch can be entered only once")
        self._client._check_open()
        self._entered = True
        self._source = iter(self._messages)
        self._pool = ThreadPoolExecutor(
            max_workers=self._concurrency, thread_name_prefix="postal-send-many"
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exited = True
        self._pool.shutdown(wait=True)
        while self._running:
            self._collect(self._finished.get())
        pending = sorted(self._done_in_order.items()) if self._ordered else ()
        self.unreported = (*self._done, *(outcome for _, outcome in pending))
        self._done.clear()
        self._done_in_order.clear()

    def __iter__(self) -> SendMany:
        return self

    def __next__(self) -> SendOutcome:
        if not self._entered or self._exited:
            raise RuntimeError(
                "iterate a send_many batch inside its block: "
                "`with postal.send_many(...) as outcomes: for o in outcomes`"
            )
        while True:
            self._submit_more()
            outcome = self._peek_ready()
            if outcome is not None:
                self._report(outcome)
                return outcome
            if self._running == 0:
                if self._abort_cause is not None:
                    raise BatchAborted(self._abort_cause, self._next_index)
                if self._source_error is not None:
                    error, self._source_error = self._source_error, None
                    raise error
                raise StopIteration
            self._collect(self._finished.get())

    def _submit_more(self) -> None:
        window = self._concurrency * _WINDOW_PER_WORKER
        while (
            not self._source_done
            and self._abort_cause is None
            and self._running < self._concurrency
            and self._next_index - self._yielded < window
        ):
            try:
                item = next(self._source)
            except StopIteration:
                self._source_done = True
                return
            except Exception as error:  # noqa: BLE001 - re-raised to the caller once sends finish
                self._source_done = True
                self._source_error = error
                return
            index = self._next_index
            self._next_index += 1
            if isinstance(item, (Message, RawMessage)):
                self._running += 1
                self._pool.submit(self._run, index, item)
            else:
                self._store(SendOutcome(index, item, error=not_a_message(index, item)))

    def _run(self, index: int, item: Message | RawMessage) -> None:
        """In a pool thread: one send, its outcome put on the queue whatever happens."""
        try:
            key = None if self._keys is None else self._keys.key_of(index, item)
            result = self._client._send(item, key, self._pacer)
        except Exception as error:  # noqa: BLE001 - one message's failure is its outcome
            self._finished.put(SendOutcome(index, item, error=error))
        except BaseException as error:
            self._finished.put(error)
            raise
        else:
            self._finished.put(SendOutcome(index, item, result=result))

    def _collect(self, finished: SendOutcome | BaseException) -> None:
        self._running -= 1
        if isinstance(finished, BaseException):
            raise finished
        if (
            self._abort_cause is None
            and finished.error is not None
            and should_end_batch(finished.error)
        ):
            self._abort_cause = finished.error
        self._store(finished)

    def _store(self, outcome: SendOutcome) -> None:
        if self._ordered:
            self._done_in_order[outcome.index] = outcome
        else:
            self._done.append(outcome)

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
