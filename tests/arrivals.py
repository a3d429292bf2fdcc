"""`Arrivals`: what a `FakePostal` accepted, and when, for tests of many sending processes."""

from __future__ import annotations

import threading
import time

from postal_sdk.testing import OutboxEntry


class Arrivals:
    """The subject of every send the fake accepted, and when (monotonic seconds) it did.

    Append it to the fake's `send_hooks`; it is called from the fake's threads.
    """

    def __init__(self) -> None:
        self.sends: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __call__(self, entry: OutboxEntry) -> None:
        with self._lock:
            self.sends.append((time.monotonic(), str(entry.params.get("subject"))))

    def subjects(self) -> list[str]:
        """The subjects so far, in the order they arrived."""
        with self._lock:
            return [subject for _, subject in self.sends]
