"""The Postal host's webhook signing keys, fetched from `/.well-known/jwks.json` and cached."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING

from postal_sdk._synchronization import AsyncLock

if TYPE_CHECKING:
    from postal_sdk._async.client import AsyncPostal
    from postal_sdk.webhooks import HeadersLike, WebhookEvent, WebhookKeySet

__all__ = ["AsyncWebhookKeys"]


class AsyncWebhookKeys:
    """A cached JWK Set, fetched on first use and fetched again once on an unknown KID.

    The KID comes from the request, so an unknown one may be an attacker's: a refetch it
    triggers happens at most once per `refetch_interval` seconds.
    """

    def __init__(self, client: AsyncPostal, refetch_interval: float) -> None:
        self._client = client
        self._refetch_interval = refetch_interval
        self._keys: WebhookKeySet | None = None
        self._last_refetch = float("-inf")
        self._lock = AsyncLock()

    async def current(self) -> WebhookKeySet:
        """The cached keys, fetched first if there are none yet."""
        keys = self._keys
        if keys is None:
            async with self._lock:
                if self._keys is None:
                    self._keys = await self._client.fetch_webhook_keys()
                keys = self._keys
        return keys

    async def verify(
        self,
        body: bytes | bytearray | memoryview,
        headers: HeadersLike,
        *,
        allow_legacy_sha1: bool,
        max_body_size: int,
        max_age: float | timedelta | None,
    ) -> WebhookEvent:
        """Verify a webhook with the cached keys, refetching them once for an unknown KID."""
        from postal_sdk.webhooks import UnknownKeyError, WebhookVerifier

        keys = await self.current()
        verifier = WebhookVerifier(
            keys, allow_legacy_sha1=allow_legacy_sha1, max_body_size=max_body_size, max_age=max_age
        )
        try:
            return verifier.verify(body, headers)
        except UnknownKeyError:
            fresh = await self._refetch(keys)
            if fresh is None:
                raise
        return verifier.with_keys(fresh).verify(body, headers)

    async def _refetch(self, stale: WebhookKeySet) -> WebhookKeySet | None:
        async with self._lock:
            if self._keys is not stale and self._keys is not None:
                return self._keys  # another caller refetched while this one waited
            now = time.monotonic()
            if now - self._last_refetch < self._refetch_interval:
                return None
            self._last_refetch = now
            self._keys = await self._client.fetch_webhook_keys()
            return self._keys
