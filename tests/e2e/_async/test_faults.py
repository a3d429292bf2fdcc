"""Every fault, end to end, with the retry rules visible in the fake's request log.

The rule that matters: a send that may have reached Postal is never sent again (Postal
has no idempotency key), so a send is retried only when nothing reached Postal for sure
(a refused connection) or when the server says so (503 with `Retry-After`). Reads are
also retried after dropped connections, read timeouts and 5xx.
"""

from __future__ import annotations

import email.utils
import logging
import time

import httpx
import pytest

from postal_sdk import (
    APIConnectionError,
    APITimeoutError,
    AsyncPostal,
    SendResult,
    UnexpectedResponseError,
)
from postal_sdk.testing import (
    DEFAULT_API_KEY,
    BadGateway,
    DropAfterProcessing,
    DropBeforeProcessing,
    FakePostal,
    IncompleteBody,
    Latency,
    NonJSONBody,
    ServiceUnavailable,
    TruncatedBody,
)
from tests.e2e.support import (
    NO_WAIT,
    READS,
    SENDS,
    assert_no_send_processed_twice,
    message,
    on,
    raw_message,
)

pytestmark = pytest.mark.anyio

SHORT_READ = httpx.Timeout(5, read=0.2)
LATE = Latency(1.0)


async def call(postal: AsyncPostal, endpoint: str, message_id: int = 1) -> object:
    """One request to `endpoint`: a send with a new subject, or a look-up of `message_id`."""
    if endpoint == "send/message":
        return await postal.send_message(message(f"sent after {message_id}"))
    if endpoint == "send/raw":
        return await postal.send_raw(raw_message(f"raw after {message_id}"))
    if endpoint == "messages/message":
        return await postal.get_message(message_id, expansions=["status"])
    return await postal.get_deliveries(message_id)


async def sent_id(postal: AsyncPostal) -> int:
    """The id of a message sent before any fault is added."""
    sent = await postal.send_message(message("to look up"))
    return sent.messages["john@example.org"].id


def log_of(
    fake: FakePostal, endpoint: str | None = None
) -> list[tuple[bool, int | None, str | None]]:
    """(processed, status code, fault) of each request (to `endpoint`), oldest first."""
    return [
        (r.processed, r.status_code, None if r.fault is None else type(r.fault).__name__)
        for r in (fake.requests if endpoint is None else on(fake, endpoint))
    ]


@pytest.mark.parametrize("endpoint", SENDS)
async def test_a_send_dropped_after_processing_is_not_retried_and_queued_once(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str
) -> None:
    fake.add_fault(DropAfterProcessing(), path=endpoint)  # Every attempt, were there more.

    with pytest.raises(APIConnectionError) as raised:
        await call(async_postal, endpoint)
    fake.clear_faults()
    await call(async_postal, endpoint, 2)  # The client recovers from the drop.

    assert not isinstance(raised.value, APITimeoutError)
    assert isinstance(raised.value.__cause__, httpx.RemoteProtocolError)
    assert log_of(fake, endpoint) == [(True, None, "DropAfterProcessing"), (True, 200, None)]
    assert len(fake.outbox) == 2
    assert_no_send_processed_twice(fake)


@pytest.mark.parametrize("endpoint", SENDS)
async def test_a_send_dropped_before_processing_is_not_retried_either(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str
) -> None:
    """To the client a drop before processing looks exactly like one after it."""
    fake.add_fault(DropBeforeProcessing(), path=endpoint)

    with pytest.raises(APIConnectionError) as raised:
        await call(async_postal, endpoint)

    assert isinstance(raised.value.__cause__, httpx.RemoteProtocolError)
    assert log_of(fake, endpoint) == [(False, None, "DropBeforeProcessing")]
    assert fake.outbox == ()


@pytest.mark.parametrize("endpoint", READS)
@pytest.mark.parametrize(
    ("drop", "processed"), [(DropBeforeProcessing(), False), (DropAfterProcessing(), True)]
)
async def test_a_dropped_read_is_retried_and_succeeds(
    async_postal: AsyncPostal,
    fake: FakePostal,
    endpoint: str,
    drop: DropBeforeProcessing | DropAfterProcessing,
    processed: bool,
) -> None:
    message_id = await sent_id(async_postal)
    fake.add_fault(drop, path=endpoint, times=1)

    await call(async_postal, endpoint, message_id)

    assert log_of(fake, endpoint) == [(processed, None, type(drop).__name__), (True, 200, None)]


@pytest.mark.parametrize("endpoint", READS)
async def test_a_read_that_keeps_dropping_gives_up_after_max_retries(
    base_url: str, fake: FakePostal, endpoint: str
) -> None:
    postal = AsyncPostal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT, max_retries=2)
    async with postal:
        message_id = await sent_id(postal)
        fake.add_fault(DropAfterProcessing(), path=endpoint)
        with pytest.raises(APIConnectionError):
            await call(postal, endpoint, message_id)
        assert len(on(fake, endpoint)) == 3
        with pytest.raises(APIConnectionError):
            await call(postal.with_options(max_retries=0), endpoint, message_id)

    assert len(on(fake, endpoint)) == 4


@pytest.mark.parametrize("endpoint", SENDS)
@pytest.mark.parametrize(
    "retry_after", ["30", email.utils.formatdate(time.time() + 30, usegmt=True)]
)
async def test_503_with_retry_after_is_retried_for_a_send_which_is_sent_once(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str, retry_after: str
) -> None:
    fake.add_fault(ServiceUnavailable(retry_after=retry_after), path=endpoint, times=1)

    sent = await call(async_postal, endpoint)

    assert log_of(fake, endpoint) == [(False, 503, "ServiceUnavailable"), (True, 200, None)]
    [entry] = fake.outbox
    assert isinstance(sent, SendResult)
    assert entry.message_id == sent.message_id


async def test_503_on_every_attempt_gives_up_with_the_503(base_url: str, fake: FakePostal) -> None:
    fake.add_fault(ServiceUnavailable(retry_after=1))
    postal = AsyncPostal(base_url, DEFAULT_API_KEY, backoff=NO_WAIT, max_retries=2)

    async with postal:
        with pytest.raises(UnexpectedResponseError) as raised:
            await postal.send_message(message())

    assert raised.value.status_code == 503
    assert "503 Service Temporarily Unavailable" in raised.value.body_excerpt
    assert log_of(fake, "send/message") == [(False, 503, "ServiceUnavailable")] * 3
    assert fake.outbox == ()


@pytest.mark.parametrize("endpoint", SENDS)
async def test_bad_gateway_on_a_send_is_not_retried(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str
) -> None:
    """A 502 may come after Postal queued the message: the client cannot tell."""
    fake.add_fault(BadGateway(), path=endpoint)

    with pytest.raises(UnexpectedResponseError) as raised:
        await call(async_postal, endpoint)

    assert raised.value.status_code == 502
    assert raised.value.reason == "not a Postal envelope"
    assert "<title>502 Bad Gateway</title>" in raised.value.body_excerpt
    assert log_of(fake, endpoint) == [(False, 502, "BadGateway")]


@pytest.mark.parametrize("endpoint", READS)
async def test_bad_gateway_on_a_read_is_retried(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str
) -> None:
    message_id = await sent_id(async_postal)
    fake.add_fault(BadGateway(), path=endpoint, times=1)

    await call(async_postal, endpoint, message_id)

    assert log_of(fake, endpoint) == [(False, 502, "BadGateway"), (True, 200, None)]


@pytest.mark.parametrize("endpoint", [*SENDS, *READS])
async def test_a_body_that_is_not_json_raises_unexpected_response_unretried(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str
) -> None:
    message_id = await sent_id(async_postal)
    fake.add_fault(NonJSONBody(), path=endpoint)

    with pytest.raises(UnexpectedResponseError) as raised:
        await call(async_postal, endpoint, message_id)

    assert raised.value.status_code == 200
    assert raised.value.reason == "the body is not JSON"
    assert raised.value.body_excerpt.startswith("<!DOCTYPE html>\n<html><body><h1>Welcome")
    assert log_of(fake)[1:] == [(False, 200, "NonJSONBody")]  # After the first send.
    assert len(fake.outbox) == 1  # The message sent to look up, only.


@pytest.mark.parametrize("endpoint", [*SENDS, *READS])
async def test_a_truncated_body_raises_unexpected_response_after_processing(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str
) -> None:
    """HTTP completes cleanly with half a JSON body: the request was handled, so a send
    is queued, and nothing is retried (a 200 is an answer)."""
    message_id = await sent_id(async_postal)
    fake.add_fault(TruncatedBody(), path=endpoint)

    with pytest.raises(UnexpectedResponseError) as raised:
        await call(async_postal, endpoint, message_id)

    assert raised.value.status_code == 200
    assert raised.value.reason == "the body is not JSON"
    assert raised.value.body_excerpt.startswith('{"status":"success"')
    assert log_of(fake)[1:] == [(True, 200, "TruncatedBody")]  # After the first send.
    assert len(fake.outbox) == (2 if endpoint in SENDS else 1)
    assert_no_send_processed_twice(fake)


@pytest.mark.parametrize("endpoint", SENDS)
async def test_an_incomplete_body_on_a_send_raises_connection_error_unretried(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str
) -> None:
    fake.add_fault(IncompleteBody(), path=endpoint)

    with pytest.raises(APIConnectionError) as raised:
        await call(async_postal, endpoint)

    assert isinstance(raised.value.__cause__, httpx.RemoteProtocolError)
    assert log_of(fake, endpoint) == [(True, 200, "IncompleteBody")]
    assert len(fake.outbox) == 1


@pytest.mark.parametrize("endpoint", READS)
async def test_an_incomplete_body_on_a_read_is_retried(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str
) -> None:
    message_id = await sent_id(async_postal)
    fake.add_fault(IncompleteBody(), path=endpoint, times=1)

    await call(async_postal, endpoint, message_id)

    assert log_of(fake, endpoint) == [(True, 200, "IncompleteBody"), (True, 200, None)]


@pytest.mark.parametrize("endpoint", SENDS)
async def test_a_send_that_times_out_reading_is_not_retried_though_it_was_sent(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str
) -> None:
    fake.add_fault(LATE, path=endpoint)

    with pytest.raises(APITimeoutError) as raised:
        await call(async_postal.with_options(timeout=SHORT_READ), endpoint)
    fake.clear_faults()
    after = await call(async_postal, endpoint, 2)

    assert isinstance(raised.value, APIConnectionError)
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)
    assert [(r.processed, r.fault) for r in on(fake, endpoint)] == [(True, LATE), (True, None)]
    # Sent all the same: a retry would have sent it twice.
    assert len(fake.outbox) == 2
    # The late reply is not taken for the next request's: that one gets its own.
    assert isinstance(after, SendResult)
    assert after.message_id == fake.outbox[1].message_id


@pytest.mark.parametrize("endpoint", READS)
async def test_a_read_that_times_out_is_retried(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str
) -> None:
    message_id = await sent_id(async_postal)
    fake.add_fault(LATE, path=endpoint, times=1)

    await call(async_postal.with_options(timeout=SHORT_READ), endpoint, message_id)

    assert [(r.processed, r.fault) for r in on(fake, endpoint)] == [(True, LATE), (True, None)]


async def test_a_fault_applies_to_its_path_and_its_first_times_requests_only(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    message_id = await sent_id(async_postal)
    fake.add_fault(BadGateway(), path="messages/message", times=2)
    await async_postal.get_message(message_id)  # The third attempt gets through.
    fake.add_fault(BadGateway(), path="/api/v1/messages/message", times=3)
    with pytest.raises(UnexpectedResponseError):
        await async_postal.get_message(message_id)  # All three attempts fail.
    await async_postal.send_message(message("another path"))
    await async_postal.get_message(message_id)  # Both rules are used up.

    statuses = [status for _, status, _ in log_of(fake, "messages/message")]
    assert statuses == [502, 502, 200, 502, 502, 502, 200]
    assert log_of(fake, "send/message") == [(True, 200, None)] * 2


async def test_a_refused_connection_is_retried_even_for_a_send(closed_port_url: str) -> None:
    """Nothing reached a server, so the send is safe to repeat: max_retries + 1 attempts."""
    attempts: list[httpx.URL] = []

    async def count(request: httpx.Request) -> None:
        attempts.append(request.url)

    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
        postal = AsyncPostal(
            closed_port_url, DEFAULT_API_KEY, http_client=http, backoff=NO_WAIT, max_retries=2
        )
        started = time.monotonic()
        with pytest.raises(APIConnectionError) as raised:
            await postal.send_message(message())

    assert time.monotonic() - started < 2
    assert not isinstance(raised.value, APITimeoutError)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert len(attempts) == 3
    assert str(attempts[0]) == f"{closed_port_url}/api/v1/send/message"


async def test_the_default_client_retries_a_refused_connection_and_logs_each_retry(
    closed_port_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="postal_sdk")
    postal = AsyncPostal(closed_port_url, DEFAULT_API_KEY, backoff=NO_WAIT, max_retries=3)

    async with postal:
        with pytest.raises(APIConnectionError) as raised:
            await postal.send_raw(raw_message())
        retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
        caplog.clear()
        with pytest.raises(APIConnectionError):
            await postal.with_options(max_retries=0).send_raw(raw_message())

    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert [text.split("; ")[-1].split(" in ")[0] for text in retries] == [
        "retry 1 of 3",
        "retry 2 of 3",
        "retry 3 of 3",
    ]
    assert all(DEFAULT_API_KEY not in text for text in retries)
    assert [r for r in caplog.records if "retry" in r.getMessage()] == []
