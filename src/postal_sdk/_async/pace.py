"""Waiting for a send's slot under the rate limits that apply to it (the client's, the batch's)."""

from __future__ import annotations

from collections.abc import Sequence

from postal_sdk._synchronization import async_sleep
from postal_sdk.pacing import Pacer

__all__ = ["async_pace"]


async def async_pace(pacers: Sequence[Pacer]) -> None:
    """Wait until every pace lets one more send leave.

    One after the other, the narrowest (the batch's) first: a slot of the client's pace is
    reserved only once the batch's has come, so the client's slots go out in the order
    they were reserved and keep their spacing, and a batch waiting on its own pace holds
    no slot of the client's.
    """
    for pacer in pacers:
        delay = await pacer.async_reserve()
        if delay > 0:
            await async_sleep(delay)
