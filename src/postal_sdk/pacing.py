"""Pacing: send at a steady rate, under a Postal server's hourly send limit.

Postal accepts mail past a server's send limit and then *holds* it for seven days, to be
released by hand. A `RateLimit` spaces sends evenly instead:

    postal = AsyncPostal(rate_limit=RateLimit(600, per="hour"))   # one send every 6 s

Every rate limit implements the `Pacer` protocol, the one thing the clients ask of it:
reserve the next slot and say how long to wait for it. `RateLimit` keeps its pace in this
process (shared by every client and thread given the same object);
`postal_sdk.redis.RedisRateLimit` keeps one pace for every process that shares a name.

The algorithm is GCRA (the generic cell rate algorithm, as in ATM networks and most
rate-limiting proxies): the pace keeps the *theoretical arrival time* `tat` of the next
send. A reservation at time `now` gets the slot `max(now, tat - tolerance)` and moves
`tat` to `max(tat, now) + interval`, where `interval = period / count` and
`tolerance = (burst - 1) * interval`. So sends leave one `interval` apart; after an idle
spell at most `burst` of them may leave at once; and a pace never "saves up" a window's
quota to spend it in one go.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Literal, Protocol, runtime_checkable

from postal_sdk.errors import InvalidArgumentError, InvalidArgumentTypeError

__all__ = ["PERIODS", "Pacer", "Period", "RateLimit", "check_rate"]

Period = Literal["second", "minute", "hour"]
"""The names `per=` takes; a positive number of seconds is also accepted."""

PERIODS: dict[str, float] = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
"""Seconds in each named period."""


@runtime_checkable
class Pacer(Protocol):
    """What the clients ask of a rate limit (`RateLimit`, `postal_sdk.redis.RedisRateLimit`).

    A send calls `reserve()` (sync client) or `await async_reserve()` (async client) once,
    just before its request is made (after waiting for its turn in `send_many`, before the
    journal records its intent), then sleeps for the seconds returned. Retries of that one
    send do not reserve again: they are the same send, and Postal's limit counts messages
    it queued. A slot reserved by a send that is then cancelled is spent, never returned:
    a pace errs on the slow side.

    Implementations must be safe to share between threads (the blocking form) and between
    tasks (the async form, which must not block the event loop and must work on asyncio
    and trio). A pace that cannot tell when the next slot is (its store is unreachable)
    raises a `PostalError` instead of returning 0: it fails closed, and the send is not made.

    A send that wakes later than its slot by more than the pace's `interval` (seconds
    between two sends at the steady rate; an optional attribute, 20 ms when missing)
    reserves again instead of leaving: after a stall of the process, its sends stay
    spaced instead of leaving together.
    """

    def reserve(self) -> float:
        """Reserve the next slot: the seconds to wait before this send may leave (>= 0)."""
        ...

    async def async_reserve(self) -> float:
        """`reserve()` for the async client: the same slot, without blocking the loop."""
        ...


def check_rate(count: int, per: Period | float, burst: int = 1) -> tuple[int, float, int]:
    """`(count, period in seconds, burst)` checked, as `RateLimit` takes them.

    Shared by every `Pacer` that takes a rate, so they refuse the same input alike.

    Raises:
        InvalidArgumentTypeError: A `count` or `burst` that is not an int, a `per` that is
            neither a name nor a number.
        InvalidArgumentError: A `count` or `burst` below 1, an unknown name, or a number of
            seconds that is not positive and finite.
    """
    if isinstance(count, bool) or not isinstance(count, int):
        raise InvalidArgumentTypeError("count", f"must be an int, not {type(count).__name__}")
    if count < 1:
        raise InvalidArgumentError("count", f"must be at least 1 send, not {count}")
    if isinstance(burst, bool) or not isinstance(burst, int):
        raise InvalidArgumentTypeError("burst", f"must be an int, not {type(burst).__name__}")
    if burst < 1:
        raise InvalidArgumentError("burst", f"must be at least 1, not {burst}")
    if isinstance(per, str):
        try:
            period = PERIODS[per]
        except KeyError:
            names = ", ".join(repr(name) for name in PERIODS)
            raise InvalidArgumentError(
                "per", f"unknown period {per!r}: use {names} or a number of seconds"
            ) from None
    elif isinstance(per, (int, float)) and not isinstance(per, bool):
        period = float(per)
        if not (period > 0 and math.isfinite(period)):
            raise InvalidArgumentError("per", f"must be a positive number of seconds, not {per}")
    else:
        raise InvalidArgumentTypeError(
            "per", f"must be 'second', 'minute', 'hour' or seconds, not {type(per).__name__}"
        )
    return count, period, burst


class RateLimit:
    """At most `count` sends `per` period, spaced evenly: a `Pacer` kept in this process.

    ```python
    RateLimit(600, per="hour")          # one send every 6 s
    RateLimit(50, per="second")         # one every 20 ms
    RateLimit(10, per=2.5)              # ten every 2.5 s
    RateLimit(600, per="hour", burst=5) # up to 5 at once after a quiet spell, same average
    ```

    `per` is `"second"`, `"minute"`, `"hour"` or a positive number of seconds. Over any
    stretch of time the sends never exceed `count` per period (plus `burst - 1`): a rate
    of 600 an hour is one send every 6 s, not 600 sends in the hour's first second. The
    pace belongs to the object: give one `RateLimit` to several clients (or threads, or
    event loops) and they share it.

    Raises:
        InvalidArgumentError, InvalidArgumentTypeError: A `count` or `burst` below 1, or a
            `per` that is not a known name or a positive number of seconds.
    """

    def __init__(self, count: int, per: Period | float = "second", *, burst: int = 1) -> None:
        self._count, self._period, self._burst = check_rate(count, per, burst)
        self._per = per
        self._interval = self._period / self._count
        self._tolerance = (self._burst - 1) * self._interval
        self._lock = threading.Lock()
        # The theoretical arrival time of the next send, on the monotonic clock.
        self._tat = -math.inf

    @classmethod
    def parse(cls, text: str, *, burst: int = 1) -> RateLimit:
        """A rate written as `COUNT/PERIOD`: `"600/hour"`, `"50/second"`, `"10/2.5"` (seconds).

        The form the command line's `--rate` takes.

        Raises:
            InvalidArgumentError: Text of another form, or a bad count or period.
        """
        count_text, _, per_text = text.strip().partition("/")
        per: Period | float
        try:
            count = int(count_text)
            # No "/" leaves `per_text` empty, which float() refuses too.
            per = per_text if per_text in PERIODS else float(per_text)  # type: ignore[assignment]
        except ValueError:
            raise InvalidArgumentError(
                "rate", f"expected COUNT/PERIOD like '600/hour' or '10/2.5', not {text!r}"
            ) from None
        return cls(count, per, burst=burst)

    @property
    def count(self) -> int:
        """Sends allowed per period."""
        return self._count

    @property
    def period(self) -> float:
        """The period, in seconds."""
        return self._period

    @property
    def burst(self) -> int:
        """How many sends may leave at once after a quiet spell (1: none at once)."""
        return self._burst

    @property
    def interval(self) -> float:
        """Seconds between two sends at the steady rate: `period / count`."""
        return self._interval

    def __repr__(self) -> str:
        burst = f", burst={self._burst}" if self._burst != 1 else ""
        return f"RateLimit({self._count}, per={self._per!r}{burst})"

    def reserve(self) -> float:
        """Reserve the next slot: the seconds to wait before this send may leave."""
        with self._lock:
            now = time.monotonic()
            tat = max(self._tat, now)
            slot = max(now, tat - self._tolerance)
            self._tat = tat + self._interval
        return slot - now

    async def async_reserve(self) -> float:
        """`reserve()` for the async client (takes microseconds: it never blocks the loop)."""
        return self.reserve()
