"""`postal fake-server`: its banner, and what the standalone fake does by itself.

A fake Postal in its own process has no test to script what happens to messages, nor to
flush its webhooks: `FakeAutomation` does both while it serves.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from postal_sdk.cli._output import one_line

if TYPE_CHECKING:
    from postal_sdk.testing import DeliveryStatus, FakePostal, OutboxEntry

__all__ = ["DELIVERY_STATUSES", "FakeAutomation", "print_fake_server"]

DELIVERY_STATUSES = ("Sent", "SoftFail", "HardFail", "Held", "Bounced")
"""What `fake-server --deliver` can make of every accepted message."""
POLL_SECONDS = 0.05
"""How often the standalone fake looks for new sends, webhook attempts and requests to retry."""
ERROR_PAUSE_SECONDS = 5.0
"""How long the fake waits before flushing webhooks again after a flush raised."""


def print_fake_server(
    fake: FakePostal, base_url: str, status: DeliveryStatus | None, *, as_json: bool
) -> None:
    """The banner: where the fake serves, its key, webhooks, signing keys and deliveries."""
    api_key = fake.server.api_keys[0]
    webhooks = [webhook.url for webhook in fake.webhooks]
    jwks_url = f"{base_url}/.well-known/jwks.json"
    if as_json:
        served = {
            "base_url": base_url,
            "api_key": api_key,
            "webhooks": webhooks,
            "deliver": status,
            "jwks_url": jwks_url,
        }
        print(json.dumps(served))
    else:
        print(f"Fake Postal serving at {base_url}")
        print(f"  API key:          {api_key}")
        print(f"  verified domains: {', '.join(d.name for d in fake.server.domains)}")
        hooks = f"{', '.join(webhooks)} (all events)" if webhooks else "none"
        print(f"  webhooks:         {hooks}")
        print(f"  signing keys:     {jwks_url}")
        if status is None:
            print("  deliveries:       none (accepted messages stay Pending)")
        else:
            print(f"  deliveries:       every accepted message is delivered as {status}")
        print("Press Ctrl-C to stop.")
    sys.stdout.flush()


class FakeAutomation:
    """What the standalone fake does by itself while it serves, on a background thread.

    It delivers every accepted message as `status` (unless `None`), retries failed
    webhook requests on Postal's schedule, and logs each webhook attempt as one line
    on stderr. Only FakePostal's public API is used: a send hook queues each accepted
    send (from the moment this is built, so build it before serving), the thread calls
    `deliver` for them, and runs `flush_webhooks_async`, which (unlike `flush_webhooks`)
    can be cancelled while it waits minutes for a retry, so that stopping is prompt.
    """

    def __init__(self, fake: FakePostal, status: DeliveryStatus | None) -> None:
        self._fake = fake
        self._status = status
        self._stop = threading.Event()
        # Filled by the fake's send hook on the serving thread; delivered from this one, so
        # that a reply never waits for the webhook attempts a delivery makes.
        self._accepted: queue.SimpleQueue[OutboxEntry] = queue.SimpleQueue()
        if status is not None:
            fake.send_hooks.append(self._accepted.put)
        self._reported = 0  # webhook_log entries printed
        self._paused_until = 0.0  # time.monotonic() before which no flush starts
        # A daemon, so that a Ctrl-C landing between start and `with` cannot hang the exit.
        self._thread = threading.Thread(
            target=self._run, name="fake-postal-automation", daemon=True
        )

    def __enter__(self) -> FakeAutomation:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        if self._accepted.put in self._fake.send_hooks:
            self._fake.send_hooks.remove(self._accepted.put)

    def _run(self) -> None:
        try:
            anyio.run(self._work)
        except Exception as exc:  # noqa: BLE001 - a dead helper thread must still say why
            _log(f"background work stopped: {_first_error(exc)}")
        # Attempts that ended while stopping are reported too.
        self._report_attempts()

    async def _work(self) -> None:
        async with anyio.create_task_group() as group:
            if self._status is not None:
                group.start_soon(self._deliver_accepted)
            if self._fake.webhooks:
                group.start_soon(self._retry_webhooks)
                group.start_soon(self._report_attempts_forever)
            # Abandoned on cancel: a helper that fails must end the work, not wait for Ctrl-C.
            await anyio.to_thread.run_sync(self._stop.wait, abandon_on_cancel=True)
            group.cancel_scope.cancel()

    async def _deliver_accepted(self) -> None:
        while True:
            # `deliver` makes the first webhook attempts at once, over blocking HTTP.
            await anyio.to_thread.run_sync(self._deliver_new)
            await anyio.sleep(POLL_SECONDS)

    def _deliver_new(self) -> None:
        assert self._status is not None
        while not self._stop.is_set():
            try:
                entry = self._accepted.get_nowait()
            except queue.Empty:
                return
            for message in entry.created:
                try:
                    self._fake.deliver(message, self._status)
                except Exception as exc:  # noqa: BLE001 - one bad delivery must not stop the rest
                    _log(f"delivering message {message.id} failed: {_first_error(exc)}")

    async def _retry_webhooks(self) -> None:
        async with anyio.create_task_group() as flushes:
            while True:
                await anyio.sleep(POLL_SECONDS)
                if self._fake.pending_webhooks and time.monotonic() >= self._paused_until:
                    # A flush takes only the requests that no other flush (nor a `deliver`
                    # making a first attempt) holds, and keeps them until they succeed or
                    # give up, sleeping until each is due. So a new flush every poll picks
                    # up each new failure on its own schedule, however long older ones
                    # wait; one that finds nothing to take returns at once.
                    flushes.start_soon(self._flush)

    async def _flush(self) -> None:
        try:
            await self._fake.flush_webhooks_async()
        except Exception as exc:  # noqa: BLE001 - logged; the requests stay pending
            _log(f"flushing webhooks failed: {_first_error(exc)}")
            # Not a line every poll while the same request keeps raising.
            self._paused_until = time.monotonic() + ERROR_PAUSE_SECONDS

    async def _report_attempts_forever(self) -> None:
        while True:
            self._report_attempts()
            await anyio.sleep(POLL_SECONDS)

    def _report_attempts(self) -> None:
        log = self._fake.webhook_log
        webhooks = {webhook.url: webhook for webhook in self._fake.webhooks}
        for attempt in log[self._reported :]:
            webhook = webhooks[attempt.url]
            outcome = (
                f"HTTP {attempt.status_code}"
                if attempt.status_code is not None
                else attempt.error or "no answer"
            )
            if attempt.will_retry:
                delay = webhook.retry_delays[attempt.attempt - 1]
                outcome += f"; retrying in {delay:g} s"
            elif not attempt.succeeded:
                outcome += "; giving up"
            _log(
                f"webhook {attempt.event} to {attempt.url} "
                f"(attempt {attempt.attempt} of {webhook.max_attempts}): {outcome}"
            )
        self._reported = len(log)


def _log(line: str) -> None:
    print(f"postal fake-server: {line}", file=sys.stderr, flush=True)


def _first_error(error: BaseException) -> str:
    """The first real error inside exception groups, as one line."""
    while isinstance(inner := getattr(error, "exceptions", None), tuple) and inner:
        error = inner[0]
    return f"{type(error).__name__}: {one_line(error)}"
