# Generated from tests/client/_async/test_retries.py by scripts/unasync.py: do not edit by hand.
# Edit the async source and run `nox -s unasync`.
"""Which requests are repeated, and how often: a send is never sent twice by accident."""

from __future__ import annotations

import httpx
import pytest
import respx

from postal_sdk import APIConnectionError, Message, Postal, UnexpectedResponseError
from tests.client.support import (
    API_KEY,
    BASE_URL,
    DELIVERIES_URL,
    MESSAGE_URL,
    NO_WAIT,
    SEND_DATA,
    SEND_MESSAGE_URL,
    envelope,
)

pytestmark = pytest.mark.sync

MESSAGE = Message(from_="app@example.com", to=["john@example.com"], plain_body="Hello")
SUCCESS = httpx.Response(200, json=envelope(SEND_DATA))
DELIVERIES = httpx.Response(200, json=envelope([]))


@pytest.mark.parametrize(
    "failure",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset by peer"),
        httpx.ReadTimeout("read timed out"),
        httpx.WriteError("broken pipe"),
    ],
)
def test_send_is_not_retried_after_the_request_was_sent(
    postal: Postal, respx_mock: respx.MockRouter, failure: httpx.HTTPError
) -> None:
    route = respx_mock.post(SEND_MESSAGE_URL).mock(side_effect=[failure, SUCCESS])
    with pytest.raises(APIConnectionError):
        postal.send_message(MESSAGE)
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.PoolTimeout("no connection free"),
    ],
)
def test_send_is_retried_when_the_request_never_left(
    postal: Postal, respx_mock: respx.MockRouter, failure: httpx.HTTPError
) -> None:
    route = respx_mock.post(SEND_MESSAGE_URL).mock(side_effect=[failure, failure, SUCCESS])
    sent = postal.send_message(MESSAGE)
    assert sent.message_id == SEND_DATA["message_id"]
    assert route.call_count == 3


@pytest.mark.parametrize("status_code", [429, 503])
def test_send_is_retried_when_postal_asks_with_retry_after(
    postal: Postal, respx_mock: respx.MockRouter, status_code: int
) -> None:
    busy = httpx.Response(status_code, headers={"Retry-After": "1"})
    route = respx_mock.post(SEND_MESSAGE_URL).mock(side_effect=[busy, SUCCESS])
    postal.send_message(MESSAGE)
    assert route.call_count == 2


@pytest.mark.parametrize("status_code", [429, 500, 502, 503])
def test_send_is_not_retried_on_an_error_status_without_retry_after(
    postal: Postal, respx_mock: respx.MockRouter, status_code: int
) -> None:
    route = respx_mock.post(SEND_MESSAGE_URL).mock(
        side_effect=[httpx.Response(status_code), SUCCESS]
    )
    with pytest.raises(UnexpectedResponseError):
        postal.send_message(MESSAGE)
    assert route.call_count == 1


@pytest.mark.parametrize(
    "first",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset by peer"),
        httpx.Response(500, text="<html>We're sorry</html>"),
        httpx.Response(502),
        httpx.Response(503),
        httpx.Response(429),
    ],
)
def test_reads_are_retried_after_failures_that_may_follow_sending(
    postal: Postal, respx_mock: respx.MockRouter, first: httpx.Response | Exception
) -> None:
    route = respx_mock.post(DELIVERIES_URL).mock(side_effect=[first, DELIVERIES])
    assert postal.get_deliveries(1) == []
    assert route.call_count == 2


def test_reads_are_not_retried_on_a_client_error_status(
    postal: Postal, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(MESSAGE_URL).mock(side_effect=[httpx.Response(404), DELIVERIES])
    with pytest.raises(UnexpectedResponseError):
        postal.get_message(1)
    assert route.call_count == 1


def test_retries_stop_after_max_retries_with_the_last_failure(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(DELIVERIES_URL).mock(side_effect=httpx.ConnectError("refused"))
    client = Postal(BASE_URL, API_KEY, max_retries=3, backoff=NO_WAIT)
    with client, pytest.raises(APIConnectionError, match="refused"):
        client.get_deliveries(1)
    assert route.call_count == 4


def test_max_retries_can_be_overridden_for_one_call(
    postal: Postal, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(DELIVERIES_URL).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError):
        postal.with_options(max_retries=0).get_deliveries(1)
    assert route.call_count == 1
    with pytest.raises(APIConnectionError):
        postal.get_deliveries(1)
    assert route.call_count == 1 + 3


def test_an_error_envelope_is_never_retried(postal: Postal, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(MESSAGE_URL).mock(
        return_value=httpx.Response(200, json=envelope({"code": "ServerSuspended"}, "error"))
    )
    with pytest.raises(Exception, match="ServerSuspended"):
        postal.get_message(1)
    assert route.call_count == 1
