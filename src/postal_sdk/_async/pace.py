"""Waiting for a send's slot under the rate limits that apply to it (the client's, the batch's)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from postal_sdk._synchronization import async_sleep
from postal_sdk.pacing import Pacer

__all__ = ["LATE", "async_pace"]

LATE = 0.02
"""Seconds after its slot past which a send takes a new slot instead of leaving (or the
pace's `interval`, when it has one and it is shorter).

A send reserves a slot ahead and sleeps until it comes. If the process was too busy to
wake it in time (a stalled event loop, a starved thread), every send whose slot came
meanwhile would leave at once: a burst. A send that wakes this late takes a new slot
instead, so the sends after a stall are spaced like the others; the slots missed are
lost, never caught up, and the pace errs on the slow side.
"""


async def async_pace(pacers: Sequence[Pacer]) -> None:
    """Wait until every pace lets one more send leave.

    One after the other, the narrowest (the batch's) first: a slot of the client's pace is
    reserved only once the batch's has come, so the client's slots go out in the order
    they were reserved and keep their spacing, and a batch waiting on its own pace holds
    no slot of the client's.
    """
    for pacer in pacers:
        late = min(LATE, getattr(pacer, "interval", LATE))
        while True:
            delay = await pacer.async_reserve()
            if delay <= 0:
                break
            due = time.monotonic() + delay
            await async_sleep(delay)
            if time.monotonic() - due <= late:
                break
