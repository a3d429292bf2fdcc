"""`RateLimit`: the slots it hands out, and the input it refuses."""

from __future__ import annotations

import threading

import pytest

from postal_sdk import InvalidArgumentError, InvalidArgumentTypeError, RateLimit
from postal_sdk.pacing import Pacer


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("postal_sdk.pacing.time", clock)
    return clock


def slots(pace: RateLimit, count: int, clock: Clock) -> list[float]:
    """When each of `count` sends reserved at once may leave, on the test's clock."""
    return [clock.now + pace.reserve() for _ in range(count)]


def test_sends_reserved_at_once_are_spaced_evenly(clock: Clock) -> None:
    pace = RateLimit(600, per="hour")
    assert slots(pace, 4, clock) == [1000.0, 1006.0, 1012.0, 1018.0]


def test_a_quiet_spell_saves_up_no_quota(clock: Clock) -> None:
    pace = RateLimit(10, per="second")
    pace.reserve()
    clock.now += 3600
    assert slots(pace, 3, clock) == pytest.approx([4600.0, 4600.1, 4600.2])


def test_burst_lets_that_many_leave_at_once_then_keeps_the_rate(clock: Clock) -> None:
    pace = RateLimit(1, per="second", burst=3)
    assert slots(pace, 5, clock) == [1000.0, 1000.0, 1000.0, 1001.0, 1002.0]


def test_per_takes_names_and_seconds(clock: Clock) -> None:
    assert RateLimit(2, per="minute").interval == 30.0
    assert RateLimit(10, per=2.5).interval == 0.25
    assert RateLimit(50).interval == 0.02
    assert RateLimit.parse("600/hour").interval == 6.0
    assert RateLimit.parse("10/2.5").period == 2.5


def test_one_rate_limit_is_one_pace_for_every_thread(clock: Clock) -> None:
    pace = RateLimit(100, per="second")
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            wait = pace.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([n / 100 for n in range(200)])


def test_a_rate_limit_is_a_pacer() -> None:
    assert isinstance(RateLimit(1), Pacer)


def test_a_rate_limit_shows_what_it_was_given() -> None:
    pace = RateLimit(600, per="hour", burst=5)
    assert (pace.count, pace.period, pace.burst) == (600, 3600.0, 5)
    assert repr(pace) == "RateLimit(600, per='hour', burst=5)"
    assert repr(RateLimit(10, per=2.5)) == "RateLimit(10, per=2.5)"


@pytest.mark.anyio
async def test_the_async_form_reserves_the_same_pace(clock: Clock) -> None:
    pace = RateLimit(4, per="second")
    assert [await pace.async_reserve(), pace.reserve(), await pace.async_reserve()] == [
        0.0,
        0.25,
        0.5,
    ]


@pytest.mark.parametrize(
    ("count", "per", "burst", "error", "argument"),
    [
        (0, "second", 1, InvalidArgumentError, "count"),
        (-5, "hour", 1, InvalidArgumentError, "count"),
        (1.5, "hour", 1, InvalidArgumentTypeError, "count"),
        (True, "hour", 1, InvalidArgumentTypeError, "count"),
        (10, "fortnight", 1, InvalidArgumentError, "per"),
        (10, -1, 1, InvalidArgumentError, "per"),
        (10, 0, 1, InvalidArgumentError, "per"),
        (10, float("inf"), 1, InvalidArgumentError, "per"),
        (10, float("nan"), 1, InvalidArgumentError, "per"),
        (10, None, 1, InvalidArgumentTypeError, "per"),
        (10, "second", 0, InvalidArgumentError, "burst"),
    ],
)
def test_bad_rates_are_refused_at_construction(
    count: object, per: object, burst: object, error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=argument):
        RateLimit(count, per, burst=burst)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["600", "600/", "x/hour", "600/fortnight", "0/hour"])
def test_bad_rate_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgumentError):
        RateLimit.parse(text)
