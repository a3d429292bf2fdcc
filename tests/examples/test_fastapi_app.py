"""The FastAPI example, end to end: app → AsyncPostal → fake Postal → signed webhook → app.

Everything runs in-process on the test's event loop (asyncio and trio): the app through
httpx's ASGI transport with its lifespan entered by hand, the fake through its transport.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from examples.fastapi_app import Settings, create_app
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal, NonJSONBody
from postal_sdk.webhooks import sign_webhook_body

pytestmark = pytest.mark.anyio

WEBHOOK_URL = "http://app.test/webhooks/postal"
JWKS = "/.well-known/jwks.json"
QUICK = (0.01,) * 5
MESSAGE = {"to": ["john@example.org"], "subject": "Welcome", "text": "Hello"}


def _rsa_2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return _rsa_2048()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return _rsa_2048()


@pytest.fixture
def fake(signing_key: rsa.RSAPrivateKey) -> FakePostal:
    return FakePostal(signing_key=signing_key)


@pytest.fixture
def clients() -> list[httpx.AsyncClient]:
    """Every httpx client the app made for its AsyncPostal."""
    return []


@pytest.fixture
def app(fake: FakePostal, clients: list[httpx.AsyncClient]) -> FastAPI:
    def http_client() -> httpx.AsyncClient:
        clients.append(httpx.AsyncClient(transport=fake.transport()))
        return clients[-1]

    app = create_app(
        Settings(
            base_url="http://postal.example.com",
            api_key=DEFAULT_API_KEY,
            http_client_factory=http_client,
            max_webhook_body=10_000,
        )
    )
    fake.add_webhook(WEBHOOK_URL, transport=httpx.ASGITransport(app), retry_delays=QUICK)
    return app


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app between its startup and shutdown, and a client to call it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            yield client


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


async def send_and_deliver(client: httpx.AsyncClient, fake: FakePostal) -> int:
    """Send a message through the app, have Postal deliver it; the message id."""
    queued = await client.post("/messages", json=MESSAGE)
    status = (await client.get(f"/messages/{queued.json()['request_id']}")).json()
    message_id: int = status["messages"]["john@example.org"]
    fake.deliver(message_id, "Sent")
    await fake.flush_webhooks_async()
    return message_id


async def test_a_send_and_its_webhook_go_end_to_end(
    client: httpx.AsyncClient, fake: FakePostal
) -> None:
    queued = await client.post("/messages", json=MESSAGE)
    assert queued.status_code == 202
    assert queued.json()["state"] == "queued"

    status = (await client.get(f"/messages/{queued.json()['request_id']}")).json()
    assert status["state"] == "sent"
    [entry] = fake.outbox
    assert entry.params["subject"] == "Welcome"
    message_id = status["messages"]["john@example.org"]
    assert status["message_id"] == entry.message_id

    fake.deliver(message_id, "Sent")
    [attempt] = await fake.flush_webhooks_async()

    assert attempt.status_code == 200
    events = (await client.get("/events")).json()
    assert [(e["uuid"], e["event"], e["message"]) for e in events] == [
        (attempt.uuid, "MessageSent", message_id)
    ]


async def test_the_answer_goes_out_before_the_message_is_sent(
    app: FastAPI, fake: FakePostal
) -> None:
    outbox_when_answered: list[int] = []
    body = json.dumps(MESSAGE).encode()
    requests = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def receive() -> dict[str, Any]:
        return next(requests)

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            outbox_when_answered.append(len(fake.outbox))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/messages",
        "raw_path": b"/messages",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"app.test")],
        "client": ("127.0.0.1", 1234),
        "server": ("app.test", 80),
    }
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)  # returns once the background task has run

    assert outbox_when_answered == [0]
    assert len(fake.outbox) == 1


async def test_a_failed_send_is_reported(client: httpx.AsyncClient, fake: FakePostal) -> None:
    fake.server.suspended = True

    queued = await client.post("/messages", json=MESSAGE)
    status = (await client.get(f"/messages/{queued.json()['request_id']}")).json()

    assert status["state"] == "failed"
    assert status["error"].startswith("ServerSuspended")


async def test_a_message_postal_would_refuse_is_not_queued(
    client: httpx.AsyncClient, fake: FakePostal
) -> None:
    response = await client.post("/messages", json={**MESSAGE, "subject": "Hi\r\nBcc: x@y.z"})

    assert response.status_code == 422
    assert "subject" in response.json()["detail"]
    assert fake.outbox == ()


async def test_an_unknown_send_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/messages/nope")).status_code == 404


async def test_a_redelivered_webhook_is_acknowledged_but_recorded_once(
    client: httpx.AsyncClient, fake: FakePostal
) -> None:
    await send_and_deliver(client, fake)
    [attempt] = fake.webhook_log

    again = await client.post("/webhooks/postal", content=attempt.body, headers=attempt.headers)

    assert again.status_code == 200
    assert again.json() == {"uuid": attempt.uuid, "duplicate": True}
    assert len((await client.get("/events")).json()) == 1


async def test_postal_retries_until_the_app_answers(
    client: httpx.AsyncClient, fake: FakePostal
) -> None:
    fake.add_fault(NonJSONBody(), path=JWKS, times=1)  # a proxy answers for Postal at first

    await send_and_deliver(client, fake)

    assert [a.status_code for a in fake.webhook_log] == [503, 200]
    assert len({a.uuid for a in fake.webhook_log}) == 1
    assert len((await client.get("/events")).json()) == 1


async def test_a_rotated_key_is_fetched_again_and_accepted(
    client: httpx.AsyncClient, fake: FakePostal, other_key: rsa.RSAPrivateKey
) -> None:
    message_id = await send_and_deliver(client, fake)

    fake.signing_key = other_key
    fake.load(message_id)
    [attempt] = await fake.flush_webhooks_async()

    assert attempt.status_code == 200
    events = (await client.get("/events")).json()
    assert [e["event"] for e in events] == ["MessageSent", "MessageLoaded"]
    assert sum(request.path == JWKS for request in fake.requests) == 2


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
async def test_a_webhook_that_does_not_verify_is_refused_and_not_recorded(
    client: httpx.AsyncClient,
    fake: FakePostal,
    other_key: rsa.RSAPrivateKey,
    forgery: str,
    reason: str,
) -> None:
    await send_and_deliver(client, fake)
    [genuine] = fake.webhook_log
    body, headers = genuine.body, dict(genuine.headers)
    if forgery == "no signature header":
        del headers["X-Postal-Signature-256"], headers["X-Postal-Signature"]
    elif forgery == "only the legacy SHA-1 signature":
        del headers["X-Postal-Signature-256"]
    elif forgery == "bad base64":
        headers["X-Postal-Signature-256"] = "not base64!"
    elif forgery == "signed by another key":
        signature = sign_webhook_body(body, other_key)["X-Postal-Signature-256"]
        headers["X-Postal-Signature-256"] = signature
    elif forgery == "one changed byte":
        body = body.replace(b'"Sent"', b'"Sant"', 1)
    elif forgery == "unknown kid":
        headers.update(sign_webhook_body(body, other_key))
    elif forgery == "body over the cap":
        body = body[:-1] + b" " * 10_000 + b"}"
        headers.update(sign_webhook_body(body, fake.signing_key))
    else:
        body = b"<html>not an event</html>"
        headers.update(sign_webhook_body(body, fake.signing_key))

    response = await client.post("/webhooks/postal", content=body, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == reason
    assert response.json()["detail"]
    assert len((await client.get("/events")).json()) == 1


async def test_a_signature_is_checked_before_anything_is_parsed(
    client: httpx.AsyncClient,
) -> None:
    headers = {"X-Postal-Signature-256": base64.b64encode(b"x" * 256).decode()}

    response = await client.post("/webhooks/postal", content=b"{}", headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "bad_signature"


async def test_the_app_makes_its_client_in_the_lifespan_and_closes_it(
    app: FastAPI, clients: list[httpx.AsyncClient]
) -> None:
    async with running(app):
        first = app.state.postal
        assert not first.is_closed
    async with running(app):
        second = app.state.postal

    assert first is not second
    assert first.is_closed
    assert second.is_closed
    assert len(clients) == 2
    assert all(client.is_closed for client in clients)


async def test_the_app_reads_postal_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POSTAL_BASE_URL", "https://postal.example.com")
    monkeypatch.setenv("POSTAL_API_KEY", "key-from-env")
    app = create_app()

    async with app.router.lifespan_context(app):
        postal = app.state.postal
        assert postal.base_url == "https://postal.example.com"

    assert postal.is_closed
