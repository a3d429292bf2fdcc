"""Webhooks end to end: the fake signs the events it sends, and the SDK verifies them with
the keys it fetches from the served fake's `/.well-known/jwks.json`.

The webhooks reach the test through an `httpx.MockTransport` inbox; the JWKS comes over
real HTTP, through the same client and retry rules as the API (a read: retried).
"""

from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from postal_sdk import AsyncPostal
from postal_sdk.testing import BadGateway, FakePostal
from postal_sdk.webhooks import (
    MessageDelayed,
    MessageLinkClicked,
    MessageSent,
    UnknownKeyError,
    WebhookKey,
    WebhookVerificationError,
)
from tests.e2e.support import message

pytestmark = pytest.mark.anyio

JWKS = "/.well-known/jwks.json"
HOOK_URL = "https://app.example.com/hooks/postal"


@pytest.fixture(scope="module")
def signing_keys() -> list[rsa.RSAPrivateKey]:
    """Postal's signing key, and the two it is rotated to."""
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]


@pytest.fixture
def inbox(fake: FakePostal, signing_keys: list[rsa.RSAPrivateKey]) -> list[httpx.Request]:
    """The webhook requests the fake's main server sends, as the receiving app gets them."""
    received: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    fake.signing_key = signing_keys[0]
    fake.add_webhook(HOOK_URL, transport=httpx.MockTransport(receive))
    return received


def jwks_fetches(fake: FakePostal) -> int:
    return sum(request.path == JWKS for request in fake.requests)


async def test_webhooks_verify_against_the_served_jwks_and_parse_into_events(
    async_postal: AsyncPostal, fake: FakePostal, inbox: list[httpx.Request]
) -> None:
    sent = await async_postal.send_message(message("hooked"))
    message_id = sent.messages["john@example.org"].id
    fake.deliver(message_id, "SoftFail", output="451 later")
    fake.deliver(message_id, "Sent", output="250 OK")
    fake.click(message_id, "https://example.com/offer")

    events = [await async_postal.verify_webhook(r.content, r.headers) for r in inbox]

    assert [type(event) for event in events] == [MessageDelayed, MessageSent, MessageLinkClicked]
    delayed, delivered, clicked = events
    assert isinstance(delayed, MessageDelayed)
    assert isinstance(delivered, MessageSent)
    assert isinstance(clicked, MessageLinkClicked)
    assert delivered.payload.message.id == message_id
    assert delivered.payload.message.message_id == sent.message_id
    assert delivered.payload.message.subject == "hooked"
    assert (delayed.payload.output, delivered.payload.output) == ("451 later", "250 OK")
    assert clicked.payload.url == "https://example.com/offer"
    assert len({event.idempotency_key for event in events}) == 3
    assert jwks_fetches(fake) == 1  # Fetched on first use, then cached.


async def test_a_webhook_whose_body_was_altered_is_refused(
    async_postal: AsyncPostal, fake: FakePostal, inbox: list[httpx.Request]
) -> None:
    sent = await async_postal.send_message(message("hooked"))
    fake.deliver(sent.messages["john@example.org"].id, "Sent")
    [request] = inbox
    altered = request.content.replace(b'"Sent"', b'"HardFail"', 1)

    with pytest.raises(WebhookVerificationError):
        await async_postal.verify_webhook(altered, request.headers)


async def test_a_rotated_signing_key_is_fetched_again_at_most_once_a_minute(
    async_postal: AsyncPostal,
    fake: FakePostal,
    inbox: list[httpx.Request],
    signing_keys: list[rsa.RSAPrivateKey],
) -> None:
    sent = await async_postal.send_message(message("hooked"))
    message_id = sent.messages["john@example.org"].id
    fake.deliver(message_id, "SoftFail")
    await async_postal.verify_webhook(inbox[0].content, inbox[0].headers)

    fake.signing_key = signing_keys[1]  # The operator replaces Postal's signing.key.
    fake.deliver(message_id, "SoftFail")
    rotated = await async_postal.verify_webhook(inbox[1].content, inbox[1].headers)
    fake.signing_key = signing_keys[2]  # And again, within the minute.
    fake.deliver(message_id, "Sent")
    with pytest.raises(UnknownKeyError) as raised:
        await async_postal.verify_webhook(inbox[2].content, inbox[2].headers)

    assert isinstance(rotated, MessageDelayed)
    assert raised.value.kid == WebhookKey.from_public_key(signing_keys[2].public_key()).kid
    assert jwks_fetches(fake) == 2


async def test_fetching_the_webhook_keys_is_retried_like_a_read(
    async_postal: AsyncPostal, fake: FakePostal, signing_keys: list[rsa.RSAPrivateKey]
) -> None:
    fake.signing_key = signing_keys[0]
    fake.add_fault(BadGateway(), path=JWKS, times=1)

    keys = await async_postal.fetch_webhook_keys()

    assert keys.kids == (WebhookKey.from_public_key(signing_keys[0].public_key()).kid,)
    assert [(r.path, r.status_code) for r in fake.requests] == [(JWKS, 502), (JWKS, 200)]
