"""The SDK's own HTTP clients over a real socket: same errors, timeouts and retries on both.

`http_backend="httpx"` (the sharded pure-httpx pool) and `"aiohttp"` (httpx-aiohttp) must
be indistinguishable to a caller: each behaviour below runs on both.
"""

from __future__ import annotations

import logging
import sys

import httpx
import pytest

from postal_sdk import (
    APIConnectionError,
    APITimeoutError,
    AsyncPostal,
    ConfigurationError,
    Postal,
    UnexpectedResponseError,
)
from postal_sdk._http.transport import AsyncShardedTransport, HTTPBackend, ShardedTransport
from tests.fanout.support import NO_WAIT, SocketPostal, message

pytestmark = pytest.mark.anyio

SHORT_READ = httpx.Timeout(5.0, read=0.2)


@pytest.fixture(params=["httpx", "aiohttp"])
def http_backend(request: pytest.FixtureRequest, anyio_backend: str) -> HTTPBackend:
    if request.param == "aiohttp" and anyio_backend == "trio":
        pytest.skip("aiohttp runs only under asyncio")
    backend: HTTPBackend = request.param
    return backend


def client(
    server: SocketPostal, behaviour: str, backend: HTTPBackend, **options: object
) -> AsyncPostal:
    return AsyncPostal(
        server.url,
        behaviour,
        http_backend=backend,
        backoff=NO_WAIT,
        **options,  # type: ignore[arg-type]
    )


async def test_a_send_succeeds_on_either_backend(
    socket_postal: SocketPostal, http_backend: HTTPBackend
) -> None:
    async with client(socket_postal, "ok", http_backend) as postal:
        sent = await postal.send_message(message())
    assert sent.messages["user0@example.com"].id == 1


async def test_a_refused_connection_is_retried_then_reported(
    socket_postal: SocketPostal, http_backend: HTTPBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="postal_sdk")
    postal = AsyncPostal(
        socket_postal.refused_url, "ok", http_backend=http_backend, backoff=NO_WAIT
    )
    async with postal:
        with pytest.raises(APIConnectionError) as caught:
            await postal.send_message(message())

    assert not isinstance(caught.value, APITimeoutError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    retries = [record for record in caplog.records if "retry" in record.getMessage()]
    assert len(retries) == 2


async def test_a_read_timeout_is_an_api_timeout_error_and_the_send_is_not_repeated(
    socket_postal: SocketPostal, http_backend: HTTPBackend
) -> None:
    before = socket_postal.requests
    async with client(socket_postal, "slow", http_backend, timeout=SHORT_READ) as postal:
        with pytest.raises(APITimeoutError) as caught:
            await postal.send_message(message())

    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert socket_postal.requests == before + 1


@pytest.mark.parametrize("behaviour", ["drop", "truncated", "garbage"])
async def test_a_send_that_fails_after_it_was_sent_is_not_repeated(
    socket_postal: SocketPostal, http_backend: HTTPBackend, behaviour: str
) -> None:
    before = socket_postal.requests
    async with client(socket_postal, behaviour, http_backend) as postal:
        with pytest.raises(APIConnectionError) as caught:
            await postal.send_message(message())

    assert not isinstance(caught.value, APITimeoutError)
    assert isinstance(caught.value.__cause__, httpx.TransportError)
    assert not isinstance(caught.value.__cause__, (httpx.ConnectError, httpx.TimeoutException))
    assert socket_postal.requests == before + 1


async def test_a_reply_that_is_not_an_envelope_is_an_unexpected_response_error(
    socket_postal: SocketPostal, http_backend: HTTPBackend
) -> None:
    async with client(socket_postal, "html", http_backend) as postal:
        with pytest.raises(UnexpectedResponseError) as caught:
            await postal.send_message(message())
    assert caught.value.status_code == 502
    assert "Bad Gateway" in caught.value.body_excerpt


async def test_send_many_over_a_socket_opens_at_most_one_connection_per_slot(
    socket_postal: SocketPostal, http_backend: HTTPBackend
) -> None:
    before = socket_postal.connections
    async with (
        client(socket_postal, "ok", http_backend, max_concurrency=6) as postal,
        postal.send_many([message()] * 60) as outcomes,
    ):
        results = [outcome async for outcome in outcomes]

    assert all(outcome.ok for outcome in results)
    assert len(results) == 60
    assert socket_postal.connections - before <= 6


async def test_the_sharded_pool_frees_a_slot_whether_the_request_succeeds_or_fails(
    socket_postal: SocketPostal,
) -> None:
    transport = AsyncShardedTransport(8)
    async with httpx.AsyncClient(transport=transport) as http:
        assert (await http.post(socket_postal.url, content=b"{}")).status_code == 200
        with pytest.raises(httpx.ConnectError):
            await http.post(socket_postal.refused_url, content=b"{}")
    assert [shard.busy for shard in transport._shards] == [0, 0]


async def test_closing_a_reply_twice_frees_its_slot_once(socket_postal: SocketPostal) -> None:
    transport = AsyncShardedTransport(4)
    request = httpx.Request("POST", socket_postal.url, content=b"{}")
    response = await transport.handle_async_request(request)
    assert isinstance(response.stream, httpx.AsyncByteStream)
    assert b"".join([chunk async for chunk in response.stream])
    await response.stream.aclose()
    await response.stream.aclose()
    await transport.aclose()
    assert [shard.busy for shard in transport._shards] == [0]


def test_closing_a_sync_reply_twice_frees_its_slot_once(socket_postal: SocketPostal) -> None:
    transport = ShardedTransport(4)
    response = transport.handle_request(httpx.Request("POST", socket_postal.url, content=b"{}"))
    assert isinstance(response.stream, httpx.SyncByteStream)
    assert b"".join(response.stream)
    response.stream.close()
    response.stream.close()
    transport.close()
    assert [shard.busy for shard in transport._shards] == [0]


def test_the_sync_sharded_pool_frees_a_slot_whether_the_request_succeeds_or_fails(
    socket_postal: SocketPostal,
) -> None:
    transport = ShardedTransport(5)
    with httpx.Client(transport=transport) as http:
        assert http.post(socket_postal.url, content=b"{}").status_code == 200
        with pytest.raises(httpx.ConnectError):
            http.post(socket_postal.refused_url, content=b"{}")
    assert [shard.busy for shard in transport._shards] == [0, 0]


@pytest.mark.parametrize(
    ("behaviour", "error", "cause"),
    [
        ("slow", APITimeoutError, httpx.ReadTimeout),
        ("drop", APIConnectionError, httpx.RemoteProtocolError),
    ],
)
def test_the_sync_client_reports_failures_like_the_async_one(
    socket_postal: SocketPostal, behaviour: str, error: type[Exception], cause: type[Exception]
) -> None:
    before = socket_postal.requests
    with (
        Postal(socket_postal.url, behaviour, timeout=SHORT_READ, backoff=NO_WAIT) as postal,
        pytest.raises(error) as caught,
    ):
        postal.send_message(message())
    assert isinstance(caught.value.__cause__, cause)
    assert socket_postal.requests == before + 1


def test_the_sync_client_sends_many_over_a_socket(socket_postal: SocketPostal) -> None:
    with (
        Postal(socket_postal.url, "ok", max_concurrency=4) as postal,
        postal.send_many([message()] * 20) as outcomes,
    ):
        assert sum(outcome.ok for outcome in outcomes) == 20


def test_the_sync_client_refuses_the_aiohttp_backend() -> None:
    with pytest.raises(ConfigurationError, match="AsyncPostal under asyncio"):
        Postal("https://postal.test", "key", http_backend="aiohttp")


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="http_backend"):
        AsyncPostal("https://postal.test", "key", http_backend="requests")  # type: ignore[arg-type]


async def test_a_backend_with_the_callers_own_http_client_is_refused() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigurationError, match="http_client or http_backend"):
            AsyncPostal("https://postal.test", "key", http_client=http, http_backend="aiohttp")


@pytest.fixture
def without_aiohttp_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)


@pytest.mark.usefixtures("without_aiohttp_extra")
def test_the_aiohttp_backend_without_the_extra_says_how_to_install_it() -> None:
    with pytest.raises(ConfigurationError, match=r"postal-sdk\[aiohttp\]"):
        AsyncPostal("https://postal.test", "key", http_backend="aiohttp")


async def test_the_aiohttp_backend_under_trio_is_refused_at_the_first_request(
    anyio_backend: str, socket_postal: SocketPostal
) -> None:
    if anyio_backend != "trio":
        pytest.skip("the refusal is for trio")
    async with client(socket_postal, "ok", "aiohttp") as postal:
        with pytest.raises(ConfigurationError, match="only under asyncio"):
            await postal.send_message(message())
