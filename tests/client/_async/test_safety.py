"""The API key and the message stay where they belong: redirects are never followed, and
the key is cut out of every error."""

from __future__ import annotations

import httpx
import pytest
import respx

from postal_sdk import (
    APIConnectionError,
    APIError,
    AsyncPostal,
    Message,
    ParameterError,
    UnexpectedResponseError,
)
from tests.client.support import API_KEY, BASE_URL, NO_WAIT, SEND_MESSAGE_URL, envelope

pytestmark = pytest.mark.anyio

MESSAGE = Message(from_="app@example.com", to=["john@example.com"], plain_body="Hello")
ELSEWHERE = "https://elsewhere.test/api/v1/send/message"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@respx.mock
async def test_a_redirect_is_an_error_that_names_its_location(
    async_postal: AsyncPostal, status: int
) -> None:
    respx.post(SEND_MESSAGE_URL).respond(status, headers={"Location": ELSEWHERE})
    elsewhere = respx.post(ELSEWHERE).respond(200, json=envelope({}))

    with pytest.raises(UnexpectedResponseError) as raised:
        await async_postal.send_message(MESSAGE)

    assert raised.value.status_code == status
    assert ELSEWHERE in raised.value.reason
    assert "not followed" in str(raised.value)
    assert not elsewhere.called


@respx.mock
async def test_a_users_client_that_follows_redirects_does_not_follow_the_sdks() -> None:
    sent = respx.post(SEND_MESSAGE_URL).respond(307, headers={"Location": ELSEWHERE})
    elsewhere = respx.post(ELSEWHERE).respond(200, json=envelope({}))

    async with httpx.AsyncClient(follow_redirects=True) as http:
        postal = AsyncPostal(BASE_URL, API_KEY, http_client=http, backoff=NO_WAIT)
        with pytest.raises(UnexpectedResponseError) as raised:
            await postal.send_message(MESSAGE)

    assert ELSEWHERE in raised.value.reason

    assert sent.call_count == 1
    assert not elsewhere.called


@respx.mock
async def test_a_redirect_without_location_says_so(async_postal: AsyncPostal) -> None:
    respx.post(SEND_MESSAGE_URL).respond(302)

    with pytest.raises(UnexpectedResponseError, match="no Location"):
        await async_postal.send_message(MESSAGE)


@respx.mock
async def test_a_key_echoed_in_a_redirect_location_is_redacted(async_postal: AsyncPostal) -> None:
    respx.post(SEND_MESSAGE_URL).respond(302, headers={"Location": f"{ELSEWHERE}?k={API_KEY}"})

    with pytest.raises(UnexpectedResponseError) as raised:
        await async_postal.send_message(MESSAGE)

    assert API_KEY not in str(raised.value)
    assert "[REDACTED]" in raised.value.reason


@respx.mock
async def test_a_key_echoed_anywhere_in_an_error_is_cut_from_its_text_and_data(
    async_postal: AsyncPostal,
) -> None:
    data = {
        "code": "SomeNewError",
        "message": f"the key {API_KEY} is not allowed here",
        "details": {"keys": [API_KEY, "other"], API_KEY: "as a name too"},
    }
    respx.post(SEND_MESSAGE_URL).respond(200, json=envelope(data, status="error"))

    with pytest.raises(APIError) as raised:
        await async_postal.send_message(MESSAGE)

    assert API_KEY not in str(raised.value)
    assert API_KEY not in repr(dict(raised.value.data))
    assert raised.value.message == "the key [REDACTED] is not allowed here"
    assert raised.value.data["details"]["keys"] == ["[REDACTED]", "other"]


@respx.mock
async def test_a_key_echoed_in_a_parameter_error_is_redacted(async_postal: AsyncPostal) -> None:
    data = {"message": f"Bad key {API_KEY}"}
    respx.post(SEND_MESSAGE_URL).respond(200, json=envelope(data, status="parameter-error"))

    with pytest.raises(ParameterError) as raised:
        await async_postal.send_message(MESSAGE)

    assert API_KEY not in str(raised.value)
    assert raised.value.data == {"message": "Bad key [REDACTED]"}


@respx.mock
async def test_other_connect_failures_are_still_tried_again(async_postal: AsyncPostal) -> None:
    route = respx.post(SEND_MESSAGE_URL).mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(APIConnectionError):
        await async_postal.send_message(MESSAGE)

    assert route.call_count == 3
