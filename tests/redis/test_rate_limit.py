"""RedisRateLimit hands out one pace's slots to every object sharing its name, on Redis' clock.

The slots are checked as the waits `reserve` returns, at a pace slow enough (one send in
10 s) that a loaded machine's delays between two calls cannot blur them; the pace as a
server sees it is measured across processes in test_processes.py and the Celery test.
"""

from __future__ import annotations

import itertools
import warnings

import anyio
import pytest
import redis

from postal_sdk import InvalidArgumentError, JournalError
from postal_sdk.errors import InvalidArgumentTypeError
from postal_sdk.pacing import Pacer
from postal_sdk.redis import RedisRateLimit
from tests.redis.conftest import wait_until

INTERVAL = 10.0


def spaced_by_the_interval(waits: list[float], interval: float = INTERVAL) -> bool:
    """Each slot one interval after the one before (less the time between the two calls)."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(waits)]
    return waits[0] == 0 and all(interval - 1 < gap <= interval for gap in gaps)


def test_a_redis_rate_limit_is_a_pacer(redis_url: str) -> None:
    assert isinstance(RedisRateLimit(redis_url, 1, per=INTERVAL), Pacer)


def test_objects_sharing_a_name_share_one_pace(redis_url: str) -> None:
    here = RedisRateLimit(redis_url, 6, per="minute", name="postal-main")
    there = RedisRateLimit(redis.Redis.from_url(redis_url), 6, per="minute", name="postal-main")

    waits = [pace.reserve() for pace in (here, there, here, there, there, here)]

    assert spaced_by_the_interval(waits)


@pytest.mark.anyio
async def test_tasks_reserve_the_shared_slots_without_blocking_the_loop(redis_url: str) -> None:
    pace = RedisRateLimit(redis_url, 1, per=INTERVAL, name="postal-main")
    waits: list[float] = []

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(lambda: _append(waits, pace))

    assert spaced_by_the_interval(sorted(waits))


async def _append(waits: list[float], pace: RedisRateLimit) -> None:
    waits.append(await pace.async_reserve())


def test_paces_of_other_names_are_independent(redis_url: str) -> None:
    one = RedisRateLimit(redis_url, 1, per=INTERVAL, name="one")
    other = RedisRateLimit(redis_url, 1, per=INTERVAL, name="other")

    assert [one.reserve(), other.reserve()] == [0, 0]
    assert one.reserve() > INTERVAL - 1


def test_a_burst_lets_that_many_leave_at_once_then_paces(redis_url: str) -> None:
    pace = RedisRateLimit(redis_url, 1, per=INTERVAL, burst=3)

    waits = [pace.reserve() for _ in range(5)]

    assert waits[:3] == [0, 0, 0]
    assert INTERVAL - 1 < waits[3] <= INTERVAL
    assert 2 * INTERVAL - 1 < waits[4] <= 2 * INTERVAL


def test_a_process_asking_another_rate_follows_the_stored_one_and_warns(redis_url: str) -> None:
    first = RedisRateLimit(redis_url, 6, per="minute", name="postal-main")
    faster = RedisRateLimit(redis_url, 60, per="minute", name="postal-main")
    first.reserve()

    with pytest.warns(RuntimeWarning, match=r"stored in Redis as 6/60s .* asked for 60/60s"):
        wait = faster.reserve()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        later = faster.reserve()  # warned once per object

    assert INTERVAL - 1 < wait <= INTERVAL
    assert 2 * INTERVAL - 1 < later <= 2 * INTERVAL


def test_the_stored_rate_expires_once_the_pace_is_idle(redis_url: str) -> None:
    quick = RedisRateLimit(redis_url, 10, per="second", name="postal-main")
    quick.reserve()
    server = redis.Redis.from_url(redis_url)
    wait_until(lambda: not server.exists("postal-sdk:{pace:postal-main}"), "the pace to expire")
    server.close()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        slow = RedisRateLimit(redis_url, 1, per=INTERVAL, name="postal-main")
        assert [slow.reserve(), round(slow.reserve())] == [0, INTERVAL]


@pytest.mark.anyio
async def test_an_unreachable_redis_fails_the_pace_closed(unreachable_redis_url: str) -> None:
    pace = RedisRateLimit(unreachable_redis_url, 10, per="second", name="postal-main")

    with pytest.raises(JournalError, match=r"'postal-main' .* could not be reached.*was sent"):
        await pace.async_reserve()
    with pytest.raises(JournalError):
        pace.reserve()


@pytest.mark.parametrize("name", ["", "postal main", "{postal}", "postal?", "é"])
def test_a_name_unsafe_in_a_key_is_refused(redis_url: str, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot be part of a Redis key"):
        RedisRateLimit(redis_url, 10, name=name)


def test_a_bad_rate_is_refused_as_rate_limit_refuses_it(redis_url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="count"):
        RedisRateLimit(redis_url, 0, per="hour")
    with pytest.raises(InvalidArgumentError, match="per"):
        RedisRateLimit(redis_url, 10, per="fortnight")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="per"):
        RedisRateLimit(redis_url, 10, per=-1)
    with pytest.raises(InvalidArgumentTypeError, match="url_or_client"):
        RedisRateLimit(None, 10)  # type: ignore[arg-type]


def test_repr_names_the_server_and_the_rate_without_a_password(redis_url: str) -> None:
    with_password = redis_url.replace("redis://", "redis://user:s3cret@")
    pace = RedisRateLimit(with_password, 600, per="hour", name="postal-main", burst=2)

    assert "s3cret" not in repr(pace)
    assert repr(pace).endswith("600, per='hour', name='postal-main', burst=2)")
    assert (pace.name, pace.count, pace.period, pace.burst) == ("postal-main", 600, 3600.0, 2)
