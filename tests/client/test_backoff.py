"""The backoff schedule: exponential with full jitter, Retry-After honoured and capped."""

from __future__ import annotations

import email.utils
import time

import pytest

from postal_sdk import Backoff, InvalidArgumentError
from postal_sdk._retry import retry_after_seconds


def test_delays_stay_within_the_exponential_ceiling() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0)
    for retry, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0)]:
        delays = [backoff.delay(retry) for _ in range(200)]
        assert all(0.0 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling / 2  # full jitter spreads over the whole range


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    backoff = Backoff(retry_after_cap=10.0)
    assert backoff.delay(0, retry_after=3.0) == 3.0
    assert backoff.delay(5, retry_after=3600.0) == 10.0


@pytest.mark.parametrize("field", ["initial", "maximum", "retry_after_cap"])
@pytest.mark.parametrize("value", [-1, "1", True])
def test_a_negative_or_non_numeric_backoff_is_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidArgumentError):
        Backoff(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("soon", None), ("", None)],
)
def test_retry_after_seconds_are_read(header: str, expected: float | None) -> None:
    assert retry_after_seconds({"retry-after": header}) == expected


def test_retry_after_may_be_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = retry_after_seconds({"retry-after": later})
    assert seconds is not None
    assert 25 <= seconds <= 31
    assert retry_after_seconds({}) is None
