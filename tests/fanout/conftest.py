"""Fixtures for the fan-out and transport tests: in-process fake Postals and a socket one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from postal_sdk import AsyncPostal, Postal
from tests.fanout.support import (
    API_KEY,
    BASE_URL,
    NO_WAIT,
    FakePostal,
    SocketPostal,
)


@pytest.fixture(params=["asyncio", "trio"], scope="module")
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Both event loops; module-scoped so hypothesis may run many examples per test."""
    return str(request.param)


@pytest.fixture
def fake() -> FakePostal:
    """A fake Postal answering in-process, by the subject of each message."""
    return FakePostal()


@pytest.fixture
async def async_postal(fake: FakePostal) -> AsyncIterator[AsyncPostal]:
    async with (
        fake.async_client() as http,
        AsyncPostal(
            BASE_URL, API_KEY, backoff=NO_WAIT, max_concurrency=16, http_client=http
        ) as client,
    ):
        yield client


@pytest.fixture
def postal(fake: FakePostal) -> Iterator[Postal]:
    with (
        fake.sync_client() as http,
        Postal(BASE_URL, API_KEY, backoff=NO_WAIT, max_concurrency=16, http_client=http) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def socket_postal() -> Iterator[SocketPostal]:
    """A Postal-like HTTP/1.1 server on 127.0.0.1 whose behaviour the API key picks."""
    with SocketPostal() as server:
        yield server
