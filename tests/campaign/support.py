"""Helpers shared by the campaign tests: arrival times at the fake, and their checks."""

from __future__ import annotations

import time

from postal_sdk.testing import FakePostal, OutboxEntry

WINDOW_FRACTION = 0.1
"""The burst check looks at every window of a tenth of the pace's period."""


def arrivals(fake: FakePostal) -> list[float]:
    """The monotonic time at which the fake accepted each send, recorded as it happens."""
    times: list[float] = []

    def stamp(entry: OutboxEntry) -> None:
        times.append(time.monotonic())

    fake.send_hooks.append(stamp)
    return times


SLACK = 2
"""Sends a stretch of arrivals may hold beyond its share: scheduling lateness only.

A pace gives each send a slot `1 / rate` after the one before. A send that leaves late
(the machine is busy) arrives closer to the next one, which is on time; so a stretch of
arrivals may hold one send more at each end than its length allows, never more.
"""


OPENING = 4
"""Sends over real HTTP that may open a connection: `assert_paced(..., opening=OPENING)`.

A send's wait for its slot ends before its request is made; a send that must open a
new connection first (the first few of a run) arrives that much later, next to the
sends after it. The pace is judged from the arrivals after them.
"""


def assert_paced(times: list[float], rate: float, *, opening: int = 0) -> None:
    """No stretch of arrivals is faster than `rate` per second (2% and `SLACK` allowed),
    whatever its length: the whole run, and every window of a tenth of a second.

    Only the "too fast" side is checked: a loaded machine may make sends late, never
    early, and a pace must never let them through faster than it was asked to.
    """
    times = times[opening:]
    assert len(times) >= 2
    for i, start in enumerate(times):
        for j in range(i + 1, len(times)):
            assert j - i <= (times[j] - start) * rate * 1.02 + SLACK, (i, j)
    window = WINDOW_FRACTION
    most = max(
        sum(1 for other in times[i:] if other < start + window) for i, start in enumerate(times)
    )
    assert most <= window * rate * 1.02 + SLACK + 1


class CountingPacer:
    """A `Pacer` that never waits and counts the slots reserved from it."""

    def __init__(self) -> None:
        self.reserved = 0

    def reserve(self) -> float:
        self.reserved += 1
        return 0.0

    async def async_reserve(self) -> float:
        return self.reserve()
