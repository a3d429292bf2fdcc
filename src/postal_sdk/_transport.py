"""The httpx clients the SDK builds for itself when the user does not pass one."""

from __future__ import annotations

import httpx

__all__ = ["async_pooled_client", "pooled_client"]


def _limits(max_connections: int) -> httpx.Limits:
    # The pool matches the client's concurrency limiter, so a request that holds a slot
    # never waits for a connection, and every kept-alive connection can be reused.
    return httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=5.0,
    )


def async_pooled_client(max_connections: int, timeout: httpx.Timeout) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` with a pool sized for `max_connections` requests in flight."""
    return httpx.AsyncClient(limits=_limits(max_connections), timeout=timeout)


def pooled_client(max_connections: int, timeout: httpx.Timeout) -> httpx.Client:
    """An `httpx.Client` with a pool sized for `max_connections` requests in flight."""
    return httpx.Client(limits=_limits(max_connections), timeout=timeout)
