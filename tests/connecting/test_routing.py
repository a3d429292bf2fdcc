"""Which transport a request takes: proxied requests never go through one httpcore pool (its
throughput falls as concurrency rises), direct ones keep the default transport."""

from __future__ import annotations

import httpx
import pytest

from postal_sdk._config import DEFAULT_TIMEOUT
from postal_sdk._http.connecting import Connecting, check_connecting
from postal_sdk._http.transport import (
    AsyncDefaultTransport,
    AsyncShardedTransport,
    ShardedTransport,
    async_pooled_client,
    pooled_client,
)

pytestmark = pytest.mark.anyio

PROXY = "http://proxy.example.com:3128"


def _connecting(monkeypatch: pytest.MonkeyPatch) -> Connecting | None:
    monkeypatch.setenv("ALL_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", "postal.internal")
    return check_connecting(verify=True, cert=None, proxy=None, trust_env=True, own_client=True)


async def test_the_async_client_routes_proxied_urls_to_sharded_pools(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connecting = _connecting(monkeypatch)
    async with async_pooled_client(64, DEFAULT_TIMEOUT, "httpx", connecting) as client:
        proxied = client._transport_for_url(httpx.URL("https://postal.example.com/api"))
        direct = client._transport_for_url(httpx.URL("https://postal.internal/api"))
    assert isinstance(proxied, AsyncShardedTransport)
    assert len(proxied._shards) == 16
    assert isinstance(direct, AsyncDefaultTransport)


def test_the_sync_client_routes_proxied_urls_to_sharded_pools(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connecting = _connecting(monkeypatch)
    with pooled_client(64, DEFAULT_TIMEOUT, "httpx", connecting) as client:
        proxied = client._transport_for_url(httpx.URL("https://postal.example.com/api"))
        direct = client._transport_for_url(httpx.URL("https://postal.internal/api"))
    assert isinstance(proxied, ShardedTransport)
    assert len(proxied._shards) == 16
    assert isinstance(direct, ShardedTransport)
    assert direct is not proxied


async def test_without_any_proxy_the_client_mounts_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # NO_PROXY alone routes nothing elsewhere: the fast path stays free of pattern matching.
    monkeypatch.setenv("NO_PROXY", "postal.internal")
    connecting = check_connecting(
        verify=True, cert=None, proxy=None, trust_env=True, own_client=True
    )
    async with async_pooled_client(8, DEFAULT_TIMEOUT, "httpx", connecting) as client:
        assert client._mounts == {}
