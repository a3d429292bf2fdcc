"""Building, copying and closing a client; the API key never leaks."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from postal_sdk import (
    AsyncPostal,
    ClientClosedError,
    ConfigurationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    Message,
    PostalError,
)
from tests.client.support import (
    API_KEY,
    BASE_URL,
    DELIVERIES_URL,
    NO_WAIT,
    SEND_MESSAGE_URL,
    envelope,
)

pytestmark = pytest.mark.anyio

MESSAGE = Message(from_="app@example.com", to=["john@example.com"], plain_body="Hello")


async def test_a_closed_client_refuses_every_call(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(DELIVERIES_URL).mock(
        return_value=httpx.Response(200, json=envelope([]))
    )
    client = AsyncPostal(BASE_URL, API_KEY)
    await client.aclose()
    await client.aclose()
    assert client.is_closed
    with pytest.raises(ClientClosedError):
        await client.get_deliveries(1)
    with pytest.raises(ClientClosedError):
        await client.with_options(max_retries=1).get_deliveries(1)
    with pytest.raises(ClientClosedError):
        async with client:
            pass
    assert route.call_count == 0


async def test_leaving_the_block_closes_the_client() -> None:
    async with AsyncPostal(BASE_URL, API_KEY) as client:
        assert not client.is_closed
    assert client.is_closed


async def test_a_users_own_http_client_is_used_with_its_defaults_and_never_closed(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(DELIVERIES_URL).mock(
        return_value=httpx.Response(200, json=envelope([]))
    )
    async with httpx.AsyncClient(headers={"X-Tenant": "acme"}) as own:
        client = AsyncPostal(BASE_URL, API_KEY, http_client=own)
        async with client:
            assert await client.get_deliveries(1) == []
        assert client.is_closed
        assert not own.is_closed
    assert route.calls.last.request.headers["X-Tenant"] == "acme"  # its defaults still apply


async def test_closing_a_copy_leaves_the_original_open(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(DELIVERIES_URL).mock(return_value=httpx.Response(200, json=envelope([])))
    async with AsyncPostal(BASE_URL, API_KEY) as client:
        copy = client.with_options(timeout=3.0, max_retries=0, backoff=NO_WAIT)
        await copy.aclose()
        assert await client.get_deliveries(1) == []
        assert await copy.get_deliveries(1) == []
        assert copy.base_url == client.base_url == BASE_URL
        assert copy.max_concurrency == client.max_concurrency


async def test_configuration_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(DELIVERIES_URL).mock(
        return_value=httpx.Response(200, json=envelope([]))
    )
    monkeypatch.setenv("POSTAL_BASE_URL", BASE_URL + "/")
    monkeypatch.setenv("POSTAL_API_KEY", API_KEY)
    async with AsyncPostal() as client:
        await client.get_deliveries(1)
    assert route.calls.last.request.headers["X-Server-API-Key"] == API_KEY


@pytest.mark.parametrize("missing", ["POSTAL_BASE_URL", "POSTAL_API_KEY"])
async def test_a_missing_setting_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setenv("POSTAL_BASE_URL", BASE_URL)
    monkeypatch.setenv("POSTAL_API_KEY", API_KEY)
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigurationError, match=missing):
        AsyncPostal()


async def test_the_api_key_is_not_in_the_repr() -> None:
    async with AsyncPostal(BASE_URL, API_KEY) as client:
        assert API_KEY not in repr(client)
        assert API_KEY not in repr(client.with_options(max_retries=1))
        assert BASE_URL in repr(client)


async def test_the_echoed_key_is_redacted_from_invalid_server_api_key(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(SEND_MESSAGE_URL).mock(
        return_value=httpx.Response(
            200,
            json=envelope(
                {
                    "message": "The API token provided in X-Server-API-Key was not valid.",
                    "token": API_KEY,
                    "code": "InvalidServerAPIKey",
                },
                status="error",
            ),
        )
    )
    with pytest.raises(PostalError) as caught:
        await async_postal.send_message(MESSAGE)
    error = caught.value
    everything = [str(error), repr(error), *map(repr, error.args), repr(vars(error))]
    assert not [text for text in everything if API_KEY in text]
    assert error.data["token"] == "[REDACTED]"  # type: ignore[attr-defined]


async def test_a_body_echoing_the_key_is_redacted_from_the_excerpt(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(SEND_MESSAGE_URL).mock(
        return_value=httpx.Response(502, text=f"<html>bad key {API_KEY}</html>")
    )
    with pytest.raises(PostalError) as caught:
        await async_postal.send_message(MESSAGE)
    assert API_KEY not in str(caught.value)
    assert API_KEY not in repr(vars(caught.value))


async def test_the_api_key_never_reaches_a_log_record(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    respx_mock.post(DELIVERIES_URL).mock(
        side_effect=[
            httpx.ConnectError(f"refused {API_KEY}"),
            httpx.Response(200, json=envelope([])),
        ]
    )
    with caplog.at_level(logging.DEBUG):
        await async_postal.get_deliveries(1)
    assert caplog.records
    assert all(API_KEY not in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"base_url": "postal.example.com"}, ConfigurationError),
        ({"base_url": "ftp://postal.example.com"}, ConfigurationError),
        ({"base_url": "https://postal.example.com/api/v1"}, ConfigurationError),
        ({"base_url": "https://postal.example.com/api/v1/send/message"}, ConfigurationError),
        ({"base_url": "https://postal.example.com?x=1"}, ConfigurationError),
        ({"base_url": "https://exa mple.com:port"}, ConfigurationError),
        ({"base_url": 42}, InvalidArgumentTypeError),
        ({"api_key": ""}, ConfigurationError),
        ({"api_key": "   "}, ConfigurationError),
        ({"api_key": "key\r\nX-Injected: 1"}, ConfigurationError),
        ({"api_key": b"bytes"}, InvalidArgumentTypeError),
        ({"timeout": -1}, ConfigurationError),
        ({"timeout": 0}, ConfigurationError),
        ({"timeout": "10"}, InvalidArgumentTypeError),
        ({"timeout": httpx.Timeout(5.0, read=-1.0)}, ConfigurationError),
        ({"max_retries": -1}, ConfigurationError),
        ({"max_retries": 1.5}, InvalidArgumentTypeError),
        ({"max_retries": True}, InvalidArgumentTypeError),
        ({"max_concurrency": 0}, ConfigurationError),
        ({"max_concurrency": -4}, ConfigurationError),
        ({"http_client": object()}, InvalidArgumentTypeError),
        ({"headers": [("X", "1")]}, InvalidArgumentTypeError),
        ({"headers": {"X": 1}}, InvalidArgumentTypeError),
        ({"backoff": 3}, InvalidArgumentTypeError),
    ],
)
async def test_bad_options_fail_at_construction(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    options: dict[str, object] = {"base_url": BASE_URL, "api_key": API_KEY, **kwargs}
    with pytest.raises(error):
        AsyncPostal(**options)  # type: ignore[arg-type]


async def test_a_base_url_may_sit_under_a_path_prefix(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("https://proxy.test/postal/api/v1/messages/deliveries").mock(
        return_value=httpx.Response(200, json=envelope([]))
    )
    async with AsyncPostal("https://proxy.test/postal/", API_KEY) as client:
        await client.get_deliveries(1)
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("message_id", "error"),
    [
        ("123", InvalidArgumentTypeError),
        (1.0, InvalidArgumentTypeError),
        (True, InvalidArgumentTypeError),
        (None, InvalidArgumentTypeError),
        (0, InvalidArgumentError),
        (-5, InvalidArgumentError),
    ],
)
async def test_a_bad_message_id_fails_before_any_request(
    async_postal: AsyncPostal,
    respx_mock: respx.MockRouter,
    message_id: object,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await async_postal.get_message(message_id)  # type: ignore[arg-type]
    with pytest.raises(error):
        await async_postal.get_deliveries(message_id)  # type: ignore[arg-type]
    assert not respx_mock.calls


@pytest.mark.parametrize(
    ("expansions", "error"),
    [
        ("status", InvalidArgumentTypeError),
        (["status", "statuses"], InvalidArgumentError),
    ],
)
async def test_bad_expansions_fail_before_any_request(
    async_postal: AsyncPostal,
    respx_mock: respx.MockRouter,
    expansions: object,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await async_postal.get_message(1, expansions=expansions)  # type: ignore[arg-type]
    assert not respx_mock.calls


async def test_sending_something_that_is_not_a_message_fails_before_any_request(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter
) -> None:
    with pytest.raises(InvalidArgumentTypeError):
        await async_postal.send_message({"from": "a@b", "to": ["c@d"]})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError):
        await async_postal.send_raw(MESSAGE)  # type: ignore[arg-type]
    assert not respx_mock.calls
