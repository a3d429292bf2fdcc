"""Verifying webhooks with the keys the client fetches from Postal's JWKS endpoint."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest
import respx
from cryptography.hazmat.primitives.asymmetric import rsa

from postal_sdk import AsyncPostal, UnexpectedResponseError
from postal_sdk.webhooks import (
    MessageSent,
    UnknownKeyError,
    WebhookTooOldError,
    WebhookVerificationError,
    jwks_document,
    sign_webhook_body,
)
from tests.client.support import BASE_URL

pytestmark = pytest.mark.anyio

JWKS_URL = f"{BASE_URL}/.well-known/jwks.json"
BODY = json.dumps(
    {
        "event": "MessageSent",
        "timestamp": 1713450642.118503,
        "uuid": "0b6c8f7e-6f0a-4c7e-9a3e-2d6f3b1f9e55",
        "payload": {
            "message": {
                "id": 12345,
                "token": "Xk2J9qLm0PaZr7Tb",
                "direction": "outgoing",
                "message_id": "7f0e@rp.postal.example.com",
                "to": "john@example.com",
                "from": "app@example.org",
                "subject": "Welcome",
                "timestamp": 1713450640.101,
                "spam_status": "NotChecked",
                "tag": "welcome",
            },
            "status": "Sent",
            "details": "accepted",
            "output": "250 2.0.0 OK",
            "sent_with_ssl": True,
            "timestamp": 1713450642.09,
            "time": 0.42,
        },
    }
).encode()


def jwks(key: rsa.RSAPrivateKey) -> httpx.Response:
    return httpx.Response(200, json=jwks_document(key.public_key()))


async def test_a_webhook_is_verified_with_keys_fetched_once_and_cached(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter, signing_keys: list[rsa.RSAPrivateKey]
) -> None:
    current = signing_keys[0]
    route = respx_mock.get(JWKS_URL).mock(return_value=jwks(current))
    headers = sign_webhook_body(BODY, current)
    event = await async_postal.verify_webhook(BODY, headers)
    again = await async_postal.with_options(max_retries=0).verify_webhook(BODY, headers)
    assert isinstance(event, MessageSent)
    assert event == again
    assert event.uuid == "0b6c8f7e-6f0a-4c7e-9a3e-2d6f3b1f9e55"
    assert route.call_count == 1
    assert "X-Server-API-Key" not in route.calls.last.request.headers


async def test_a_rotated_key_is_found_by_fetching_the_keys_once_more(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter, signing_keys: list[rsa.RSAPrivateKey]
) -> None:
    old, new, stranger = signing_keys
    route = respx_mock.get(JWKS_URL).mock(side_effect=[jwks(old), jwks(new), jwks(new)])
    await async_postal.verify_webhook(BODY, sign_webhook_body(BODY, old))
    event = await async_postal.verify_webhook(BODY, sign_webhook_body(BODY, new))
    assert isinstance(event, MessageSent)
    assert route.call_count == 2
    with pytest.raises(UnknownKeyError):
        await async_postal.verify_webhook(BODY, sign_webhook_body(BODY, stranger))
    assert route.call_count == 2  # no second refetch within the interval


async def test_a_forged_signature_is_refused(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter, signing_keys: list[rsa.RSAPrivateKey]
) -> None:
    current, _, stranger = signing_keys
    respx_mock.get(JWKS_URL).mock(return_value=jwks(current))
    forged = {
        **sign_webhook_body(BODY, stranger),
        "X-Postal-Signature-KID": sign_webhook_body(BODY, current)["X-Postal-Signature-KID"],
    }
    with pytest.raises(WebhookVerificationError) as caught:
        await async_postal.verify_webhook(BODY, forged)
    assert caught.value.reason == "bad_signature"
    with pytest.raises(WebhookVerificationError):
        await async_postal.verify_webhook(
            BODY.replace(b"Welcome", b"Welcomf"), sign_webhook_body(BODY, current)
        )


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(404, text="<html>Not Found</html>"),
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json={"keys": []}),
    ],
)
async def test_a_host_without_a_usable_jwk_set_raises_unexpected_response(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter, reply: httpx.Response
) -> None:
    respx_mock.get(JWKS_URL).mock(return_value=reply)
    with pytest.raises(UnexpectedResponseError):
        await async_postal.fetch_webhook_keys()


def signed_at(timestamp: float, key: rsa.RSAPrivateKey) -> tuple[bytes, dict[str, str]]:
    body = BODY.replace(b"1713450642.118503", str(timestamp).encode())
    return body, sign_webhook_body(body, key)


async def test_verify_webhook_refuses_an_event_older_than_max_age(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter, signing_keys: list[rsa.RSAPrivateKey]
) -> None:
    respx_mock.get(JWKS_URL).mock(return_value=jwks(signing_keys[0]))
    body, headers = signed_at(time.time() - 7200, signing_keys[0])

    with pytest.raises(WebhookTooOldError) as caught:
        await async_postal.verify_webhook(body, headers, max_age=timedelta(hours=1))
    assert caught.value.reason == "too_old"
    assert isinstance(await async_postal.verify_webhook(body, headers), MessageSent)


async def test_verify_webhook_accepts_postals_last_retry_within_an_hour(
    async_postal: AsyncPostal, respx_mock: respx.MockRouter, signing_keys: list[rsa.RSAPrivateKey]
) -> None:
    respx_mock.get(JWKS_URL).mock(return_value=jwks(signing_keys[0]))
    # The sixth attempt leaves about 36 minutes after the event was stamped.
    body, headers = signed_at(time.time() - 36 * 60, signing_keys[0])

    event = await async_postal.verify_webhook(body, headers, max_age=3600)

    assert isinstance(event, MessageSent)
