"""Every outcome of the contract maps to its exception: error codes, parameter errors,
replies that are not Postal envelopes, and network failures."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from postal_sdk import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AsyncPostal,
    Message,
    ParameterError,
    UnexpectedResponseError,
)
from postal_sdk import errors as postal_errors
from tests.client.support import DELIVERIES_URL, MESSAGE_URL, SEND_MESSAGE_URL, envelope

pytestmark = pytest.mark.anyio

MESSAGE = Message(from_="app@example.com", to=["john@example.com"], plain_body="Hello")

# The contract's error catalogue (postal-api.md section 3), as Postal writes each reply.
CATALOGUE: list[tuple[str, dict[str, Any], type[APIError], str | None]] = [
    (
        "AccessDenied",
        {"message": "Must be authenticated as a server.", "code": "AccessDenied"},
        postal_errors.AccessDenied,
        "Must be authenticated as a server.",
    ),
    (
        "InvalidServerAPIKey",
        {
            "message": "The API token provided in X-Server-API-Key was not valid.",
            "token": "wrongkey",
            "code": "InvalidServerAPIKey",
        },
        postal_errors.InvalidServerAPIKey,
        "The API token provided in X-Server-API-Key was not valid.",
    ),
    ("ServerSuspended", {"code": "ServerSuspended"}, postal_errors.ServerSuspended, None),
    (
        "NoRecipients",
        {
            "message": "There are no recipients defined to receive this message",
            "code": "NoRecipients",
        },
        postal_errors.NoRecipients,
        "There are no recipients defined to receive this message",
    ),
    (
        "TooManyToAddresses",
        {
            "message": "The maximum number of To addresses has been reached (maximum 50)",
            "code": "TooManyToAddresses",
        },
        postal_errors.TooManyToAddresses,
        "The maximum number of To addresses has been reached (maximum 50)",
    ),
    (
        "TooManyCCAddresses",
        {
            "message": "The maximum number of CC addresses has been reached (maximum 50)",
            "code": "TooManyCCAddresses",
        },
        postal_errors.TooManyCCAddresses,
        "The maximum number of CC addresses has been reached (maximum 50)",
    ),
    (
        "TooManyBCCAddresses",
        {
            "message": "The maximum number of BCC addresses has been reached (maximum 50)",
            "code": "TooManyBCCAddresses",
        },
        postal_errors.TooManyBCCAddresses,
        "The maximum number of BCC addresses has been reached (maximum 50)",
    ),
    (
        "NoContent",
        {"message": "There is no content defined for this e-mail", "code": "NoContent"},
        postal_errors.NoContent,
        "There is no content defined for this e-mail",
    ),
    (
        "FromAddressMissing",
        {"message": "The From address is missing and is required", "code": "FromAddressMissing"},
        postal_errors.FromAddressMissing,
        "The From address is missing and is required",
    ),
    (
        "UnauthenticatedFromAddress",
        {
            "message": "The From address is not authorised to send mail from this server",
            "code": "UnauthenticatedFromAddress",
        },
        postal_errors.UnauthenticatedFromAddress,
        "The From address is not authorised to send mail from this server",
    ),
    (
        "UnauthenticatedFromAddress (send/raw, no message)",
        {"code": "UnauthenticatedFromAddress"},
        postal_errors.UnauthenticatedFromAddress,
        None,
    ),
    (
        "AttachmentMissingName",
        {"message": "An attachment is missing a name", "code": "AttachmentMissingName"},
        postal_errors.AttachmentMissingName,
        "An attachment is missing a name",
    ),
    (
        "AttachmentMissingData",
        {"message": "An attachment is missing data", "code": "AttachmentMissingData"},
        postal_errors.AttachmentMissingData,
        "An attachment is missing data",
    ),
    (
        "MessageNotFound",
        {"message": "No message found matching provided ID", "id": 123, "code": "MessageNotFound"},
        postal_errors.MessageNotFound,
        "No message found matching provided ID",
    ),
]


@pytest.mark.parametrize(
    ("data", "expected", "message"),
    [pytest.param(data, cls, text, id=name) for name, data, cls, text in CATALOGUE],
)
async def test_each_error_code_raises_its_class_with_code_message_and_data(
    async_postal: AsyncPostal,
    respx_mock: respx.MockRouter,
    data: dict[str, Any],
    expected: type[APIError],
    message: str | None,
) -> None:
    respx_mock.post(SEND_MESSAGE_URL).mock(
        return_value=httpx.Response(200, json=envelope(data, status="error"))
    )
    with pytest.raises(expected) as caught:
        await async_postal.send_message(MESSAGE)
    assert type(caught.value) is expected
    assert caught.value.code == data["code"]
    assert caught.value.message == message
    assert caught.value.data["code"] == data["code"]


def test_the_catalogue_covers_every_class_in_the_code_table() -> None:
    assert {cls for _, _, cls, _ in CATALOGUE} == set(postal_errors.ERROR_CLASSES.values())


async def test_message_not_found_carries_the_id_postal_looked_for(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(MESSAGE_URL).mock(
        return_value=httpx.Response(
            200,
            json=envelope(
                {
                    "message": "No message found matching provided ID",
                    "id": 99,
                    "code": "MessageNotFound",
                },
                status="error",
            ),
        )
    )
    with pytest.raises(postal_errors.MessageNotFound) as caught:
        await async_postal.get_message(99)
    assert caught.value.id == 99


async def test_an_unknown_error_code_raises_the_base_api_error(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(SEND_MESSAGE_URL).mock(
        return_value=httpx.Response(
            200, json=envelope({"message": "new in Postal 4", "code": "BrandNew"}, status="error")
        )
    )
    with pytest.raises(APIError) as caught:
        await async_postal.send_message(MESSAGE)
    assert type(caught.value) is APIError
    assert str(caught.value) == "BrandNew: new in Postal 4"


async def test_a_parameter_error_carries_postals_message(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(DELIVERIES_URL).mock(
        return_value=httpx.Response(
            200,
            json=envelope(
                {"message": "`id` parameter is required but is missing"},
                status="parameter-error",
            ),
        )
    )
    with pytest.raises(ParameterError) as caught:
        await async_postal.get_deliveries(5)
    assert caught.value.code is None
    assert caught.value.message == "`id` parameter is required but is missing"


PROXY_502 = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)

NOT_ENVELOPES = [
    pytest.param(400, b"", {"content-type": "text/html"}, id="400-empty-bad-json"),
    pytest.param(403, b"", {}, id="403-empty-wrong-host"),
    pytest.param(
        404, b"<html>The page you were looking for doesn't exist</html>", {}, id="404-html"
    ),
    pytest.param(500, b"<html>We're sorry, but something went wrong.</html>", {}, id="500-html"),
    pytest.param(502, PROXY_502.encode(), {"content-type": "text/html"}, id="502-proxy-html"),
    pytest.param(200, b"<html>maintenance</html>", {}, id="200-not-json"),
    pytest.param(200, b'{"status":"success","time":0.01,"fla', {}, id="200-truncated-json"),
    pytest.param(200, b'{"status":400,"error":"Bad Request"}', {}, id="200-json-not-envelope"),
    pytest.param(200, b'["a", "list"]', {}, id="200-json-array"),
    pytest.param(200, b'{"status":"weird","data":{}}', {}, id="200-unknown-status"),
    pytest.param(
        200, b'{"status":"error","data":{"message":"no code"}}', {}, id="200-error-no-code"
    ),
]


@pytest.mark.parametrize(("status_code", "body", "headers"), NOT_ENVELOPES)
async def test_a_reply_that_is_not_an_envelope_raises_unexpected_response(
    async_postal: AsyncPostal,
    respx_mock: respx.MockRouter,
    status_code: int,
    body: bytes,
    headers: dict[str, str],
) -> None:
    respx_mock.post(SEND_MESSAGE_URL).mock(
        return_value=httpx.Response(status_code, content=body, headers=headers)
    )
    with pytest.raises(UnexpectedResponseError) as caught:
        await async_postal.send_message(MESSAGE)
    assert caught.value.status_code == status_code
    assert caught.value.body_excerpt == body.decode()[:200]
    assert str(status_code) in str(caught.value)


async def test_a_403_explains_the_host_restriction(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(SEND_MESSAGE_URL).mock(return_value=httpx.Response(403))
    with pytest.raises(UnexpectedResponseError, match="Host"):
        await async_postal.send_message(MESSAGE)


async def test_a_long_body_is_cut_to_a_short_excerpt(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(SEND_MESSAGE_URL).mock(return_value=httpx.Response(502, text="x" * 10_000))
    with pytest.raises(UnexpectedResponseError) as caught:
        await async_postal.send_message(MESSAGE)
    assert caught.value.body_excerpt == "x" * 200


async def test_success_data_that_breaks_the_contract_raises_unexpected_response(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(SEND_MESSAGE_URL).mock(
        return_value=httpx.Response(200, json=envelope({"messages": "not an object"}))
    )
    with pytest.raises(UnexpectedResponseError, match="contract"):
        await async_postal.send_message(MESSAGE)


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ConnectError("connection refused"), APIConnectionError),
        (httpx.RemoteProtocolError("server disconnected"), APIConnectionError),
        (httpx.ReadError("connection reset"), APIConnectionError),
        (httpx.ConnectTimeout("connect timed out"), APITimeoutError),
        (httpx.ReadTimeout("read timed out"), APITimeoutError),
        (httpx.WriteTimeout("write timed out"), APITimeoutError),
        (httpx.PoolTimeout("no connection free"), APITimeoutError),
    ],
)
async def test_network_failures_raise_connection_errors_caused_by_the_httpx_error(
    async_postal: AsyncPostal,
    respx_mock: respx.MockRouter,
    failure: httpx.HTTPError,
    expected: type[APIConnectionError],
) -> None:
    respx_mock.post(DELIVERIES_URL).mock(side_effect=failure)
    with pytest.raises(expected) as caught:
        await async_postal.with_options(max_retries=0).get_deliveries(1)
    assert type(caught.value) is expected
    assert caught.value.__cause__ is failure
