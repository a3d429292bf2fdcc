"""`webhook_view`: the fake Postal's signed webhooks through Django's whole WSGI stack
(sessions, CSRF, LoginRequiredMiddleware), and every refusal."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core import mail
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client, override_settings

from postal_sdk.django import webhook_received
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal, NonJSONBody
from postal_sdk.webhooks import MessageLoaded, MessageSent, WebhookEvent, sign_webhook_body
from tests.django.conftest import LOGIN_REQUIRED, make_backend

PATH = "/webhooks/postal"
QUICK = (0.01,)


@pytest.fixture
def received() -> Iterator[list[WebhookEvent]]:
    events: list[WebhookEvent] = []

    def record(sender: object, event: WebhookEvent, **kwargs: Any) -> None:
        events.append(event)

    webhook_received.connect(record)
    yield events
    webhook_received.disconnect(record)


@pytest.fixture
def webhook(fake: FakePostal, postal_url: str) -> None:
    """The fake posts its webhooks to the Django app, through WSGI, in this thread."""
    transport = httpx.WSGITransport(app=WSGIHandler())
    fake.add_webhook(f"http://app.test{PATH}", transport=transport, retry_delays=QUICK)


def _send_one(fake: FakePostal) -> int:
    message = mail.EmailMessage("Hi", "Body", "app@example.com", ["john@example.org"])
    make_backend().send_messages([message])
    message_id: int = message.postal_status.message_id  # type: ignore[attr-defined]
    return message_id


def _client() -> Client:
    return Client(enforce_csrf_checks=True, raise_request_exception=False)


@pytest.mark.usefixtures("webhook")
def test_a_signed_webhook_sends_the_typed_event(
    fake: FakePostal, received: list[WebhookEvent]
) -> None:
    message_id = _send_one(fake)

    fake.deliver(message_id, "Sent")

    [attempt] = fake.webhook_log
    assert attempt.status_code == 200
    [event] = received
    assert isinstance(event, MessageSent)
    assert event.payload.message.id == message_id
    assert event.uuid == attempt.uuid


@pytest.mark.usefixtures("webhook")
def test_a_rotated_key_is_fetched_again(
    fake: FakePostal, received: list[WebhookEvent], other_key: rsa.RSAPrivateKey
) -> None:
    message_id = _send_one(fake)
    fake.deliver(message_id, "Sent")

    fake.signing_key = other_key
    fake.load(message_id)

    assert [a.status_code for a in fake.webhook_log] == [200, 200]
    assert [type(e) for e in received] == [MessageSent, MessageLoaded]
    assert sum(r.path == "/.well-known/jwks.json" for r in fake.requests) == 2


@pytest.mark.usefixtures("webhook")
def test_the_keys_are_fetched_once_for_many_webhooks(
    fake: FakePostal, received: list[WebhookEvent]
) -> None:
    message_id = _send_one(fake)

    for _ in range(3):
        fake.load(message_id)

    assert len(received) == 3
    assert sum(r.path == "/.well-known/jwks.json" for r in fake.requests) == 1


def _genuine(fake: FakePostal) -> tuple[bytes, dict[str, str]]:
    message_id = _send_one(fake)
    fake.deliver(message_id, "Sent")
    [genuine] = fake.webhook_log
    return genuine.body, dict(genuine.headers)


@pytest.mark.usefixtures("webhook")
@pytest.mark.parametrize(
    ("forgery", "reason"),
    [
        ("no signature header", "missing_signature"),
        ("only the legacy SHA-1 signature", "legacy_signature_only"),
        ("bad base64", "malformed_signature"),
        ("signed by another key", "bad_signature"),
        ("one changed byte", "bad_signature"),
        ("unknown kid", "unknown_key"),
        ("body over the cap", "body_too_large"),
        ("signed but not JSON", "not_json"),
    ],
)
def test_a_webhook_that_does_not_verify_is_refused_with_400(
    fake: FakePostal,
    received: list[WebhookEvent],
    other_key: rsa.RSAPrivateKey,
    forgery: str,
    reason: str,
) -> None:
    body, headers = _genuine(fake)
    received.clear()
    if forgery == "no signature header":
        del headers["X-Postal-Signature-256"], headers["X-Postal-Signature"]
    elif forgery == "only the legacy SHA-1 signature":
        del headers["X-Postal-Signature-256"]
    elif forgery == "bad base64":
        headers["X-Postal-Signature-256"] = "not base64!"
    elif forgery == "signed by another key":
        headers["X-Postal-Signature-256"] = sign_webhook_body(body, other_key)[
            "X-Postal-Signature-256"
        ]
    elif forgery == "one changed byte":
        body = body.replace(b'"Sent"', b'"Sant"', 1)
    elif forgery == "unknown kid":
        headers.update(sign_webhook_body(body, other_key))
    elif forgery == "body over the cap":
        body = body[:-1] + b" " * 2_000_000 + b"}"
        headers.update(sign_webhook_body(body, fake.signing_key))
    else:
        body = b"<html>not an event</html>"
        headers.update(sign_webhook_body(body, fake.signing_key))

    response = _client().post(PATH, body, content_type="application/json", headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == reason
    assert response.json()["detail"]
    assert received == []


@pytest.mark.usefixtures("webhook")
def test_a_sha1_only_signature_is_accepted_when_the_setting_allows_it(
    fake: FakePostal, postal_url: str, received: list[WebhookEvent]
) -> None:
    body, headers = _genuine(fake)
    del headers["X-Postal-Signature-256"]

    with override_settings(
        POSTAL={
            "BASE_URL": postal_url,
            "API_KEY": DEFAULT_API_KEY,
            "WEBHOOK_ALLOW_LEGACY_SHA1": True,
        }
    ):
        response = _client().post(PATH, body, content_type="application/json", headers=headers)

    assert response.status_code == 200
    assert len(received) == 2


@pytest.mark.usefixtures("postal_url")
def test_an_unsigned_body_is_refused_before_anything_is_parsed(
    received: list[WebhookEvent],
) -> None:
    headers = {"X-Postal-Signature-256": base64.b64encode(b"x" * 256).decode()}

    response = _client().post(PATH, b"{}", content_type="application/json", headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "bad_signature"


@pytest.mark.usefixtures("postal_url")
def test_only_post_is_allowed() -> None:
    assert _client().get(PATH).status_code == 405


@pytest.mark.usefixtures("webhook")
def test_unavailable_keys_answer_503_so_postal_retries(
    fake: FakePostal, received: list[WebhookEvent]
) -> None:
    fake.add_fault(NonJSONBody(), path="/.well-known/jwks.json", times=1)
    message_id = _send_one(fake)

    fake.deliver(message_id, "Sent")
    fake.flush_webhooks()

    assert [a.status_code for a in fake.webhook_log] == [503, 200]
    assert len(received) == 1


@pytest.mark.usefixtures("webhook")
def test_a_receiver_that_fails_makes_postal_retry(fake: FakePostal) -> None:
    calls: list[str] = []

    def flaky(sender: object, event: WebhookEvent, **kwargs: Any) -> None:
        calls.append(event.uuid)
        if len(calls) == 1:
            raise RuntimeError("database down")

    webhook_received.connect(flaky)
    try:
        message_id = _send_one(fake)
        fake.deliver(message_id, "Sent")
        fake.flush_webhooks()
    finally:
        webhook_received.disconnect(flaky)

    assert [a.status_code for a in fake.webhook_log] == [500, 200]
    assert len(set(calls)) == 1
    assert len(calls) == 2


@pytest.mark.usefixtures("webhook")
def test_deduplication_on_the_uuid_sends_a_redelivered_event_once(
    fake: FakePostal, postal_url: str, received: list[WebhookEvent]
) -> None:
    postal = {
        "BASE_URL": postal_url,
        "API_KEY": DEFAULT_API_KEY,
        "WEBHOOK_DEDUPLICATE_CACHE": "default",
    }
    with override_settings(POSTAL=postal):
        body, headers = _genuine(fake)

        again = _client().post(PATH, body, content_type="application/json", headers=headers)

    assert again.status_code == 200
    assert again.json() == {"uuid": fake.webhook_log[0].uuid, "duplicate": True}
    assert len(received) == 1


@pytest.mark.usefixtures("webhook")
def test_a_failed_receiver_does_not_mark_the_event_as_seen(
    fake: FakePostal, postal_url: str
) -> None:
    calls: list[str] = []

    def flaky(sender: object, event: WebhookEvent, **kwargs: Any) -> None:
        calls.append(event.uuid)
        if len(calls) == 1:
            raise RuntimeError("database down")

    postal = {
        "BASE_URL": postal_url,
        "API_KEY": DEFAULT_API_KEY,
        "WEBHOOK_DEDUPLICATE_CACHE": "default",
    }
    webhook_received.connect(flaky)
    try:
        with override_settings(POSTAL=postal):
            message_id = _send_one(fake)
            fake.deliver(message_id, "Sent")
            fake.flush_webhooks()
    finally:
        webhook_received.disconnect(flaky)

    assert [a.status_code for a in fake.webhook_log] == [500, 200]
    assert len(calls) == 2


def test_the_view_is_exempt_from_login_required_and_csrf() -> None:
    from postal_sdk.django import webhook_view

    assert getattr(webhook_view, "csrf_exempt", False) is True
    if LOGIN_REQUIRED:
        assert getattr(webhook_view, "login_required", True) is False
