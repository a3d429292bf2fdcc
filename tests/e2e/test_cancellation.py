"""A send cancelled while in flight (async only: a thread cannot be cancelled).

The request may well have reached Postal, and the connection it was on still has a reply
coming: the client must drop that connection rather than hand the late reply to the next
request, and give back its place under the concurrency limit.
"""

from __future__ import annotations

import gc
import socket
import warnings
from collections.abc import Iterator

import anyio
import pytest

from postal_sdk import AsyncPostal, RawMessage
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal, Latency
from tests.e2e.support import NO_WAIT, message, subjects_sent

pytestmark = pytest.mark.anyio


async def test_a_send_cancelled_in_flight_leaves_the_client_usable(
    base_url: str, fake: FakePostal
) -> None:
    fake.add_fault(Latency(0.5), times=1)
    postal = AsyncPostal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT, max_concurrency=1)

    async with postal:
        with anyio.move_on_after(0.1) as waiting:
            await postal.send_message(message("cancelled"))
        with anyio.fail_after(2):  # The one place under the limit was given back.
            after = await postal.send_message(message("after"))

    assert waiting.cancelled_caught
    assert subjects_sent(fake) == ["cancelled", "after"]  # Postal got the cancelled one.
    assert after.message_id == fake.outbox[1].message_id  # Its own reply, not the late one.


@pytest.fixture
def stalled_url() -> Iterator[str]:
    """A loopback server that accepts connections but never reads: a long body stalls."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_send_cancelled_while_its_body_is_written_leaves_no_unclosed_generator(
    stalled_url: str,
) -> None:
    """trio warns (a ResourceWarning, an error under `-W error`) about every async
    generator collected before it was exhausted. httpx's `ByteStream.__aiter__` (the
    request body) is one, and a send cancelled while its body is being written leaves it
    so: encode/httpx#3686, open PRs #3700 and #3777."""
    big = RawMessage(
        mail_from="app@example.com",
        rcpt_to=["john@example.org"],
        data=b"From: app@example.com\r\n\r\n" + b"x" * 12_000_000,
    )
    postal = AsyncPostal(stalled_url, DEFAULT_API_KEY, backoff=NO_WAIT)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with postal:
            with anyio.move_on_after(0.3) as waiting:
                await postal.send_raw(big)
        gc.collect()

    assert waiting.cancelled_caught
    assert [str(w.message) for w in caught if "Async generator" in str(w.message)] == []
