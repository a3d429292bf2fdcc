"""Sending the same way on every transport the SDK has, and the same way with plain httpx."""

from __future__ import annotations

import ssl
from typing import Any

import anyio
import httpx

from postal_sdk import AsyncPostal, Message, Postal, SendResult
from postal_sdk.testing import DEFAULT_API_KEY

FLAVOURS = ["asyncio", "trio", "aiohttp", "sync"]
"""The SDK's transports: its own asyncio pool, the sharded httpcore pools under trio, the
aiohttp backend under asyncio, and the sync client's sharded pools."""

MESSAGE = Message(
    from_="app@example.com", to=["john@example.com"], subject="Hi", plain_body="Hello"
)


def _backend(flavour: str) -> str:
    return "trio" if flavour == "trio" else "asyncio"


def send(flavour: str, base_url: str, **options: Any) -> SendResult:
    """One `send_message` by a client built with `options`, on `flavour`; no retries."""
    options.setdefault("max_retries", 0)
    if flavour == "sync":
        with Postal(base_url, DEFAULT_API_KEY, **options) as postal:
            return postal.send_message(MESSAGE)
    if flavour == "aiohttp":
        options["http_backend"] = "aiohttp"

    async def sending() -> SendResult:
        async with AsyncPostal(base_url, DEFAULT_API_KEY, **options) as postal:
            return await postal.send_message(MESSAGE)

    return anyio.run(sending, backend=_backend(flavour))


def httpx_get(flavour: str, url: str, **options: Any) -> None:
    """A GET of `url` by `httpx.Client(**options)`, or `httpx.AsyncClient` on `flavour`'s loop."""
    if flavour == "sync":
        with httpx.Client(**options) as client:
            client.get(url)
        return

    async def getting() -> None:
        async with httpx.AsyncClient(**options) as client:
            await client.get(url)

    anyio.run(getting, backend=_backend(flavour))


def ca_context(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)
