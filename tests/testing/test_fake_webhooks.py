"""The fake's webhooks: Postal's signed events, its retry rules, and its JWKS (contract §5)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from postal_sdk import AsyncPostal
from postal_sdk.testing import (
    DEFAULT_API_KEY,
    WEBHOOK_RETRY_DELAYS,
    FakePostal,
)
from postal_sdk.testing import _webhooks as _fake_webhooks
from postal_sdk.webhooks import (
    EVENT_TYPES,
    DomainDNSError,
    MessageBounced,
    MessageDelayed,
    MessageDeliveryFailed,
    MessageHeld,
    MessageLinkClicked,
    MessageLoaded,
    MessageSent,
    SendLimitApproaching,
    SendLimitExceeded,
    WebhookKeySet,
    WebhookVerifier,
    compute_kid,
    jwks_document,
    parse_event,
)

URL = "http://app.test/webhooks/postal"
QUICK = (0.01,) * 5
MESSAGE = {
    "to": ["john@example.org"],
    "from": "App <app@example.com>",
    "subject": "Tom & Jerry <3",
    "plain_body": "Hello",
    "tag": "welcome",
}


def _rsa_2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return _rsa_2048()


@pytest.fixture(scope="module")
def next_key() -> rsa.RSAPrivateKey:
    return _rsa_2048()


@pytest.fixture
def fake(signing_key: rsa.RSAPrivateKey) -> FakePostal:
    return FakePostal(signing_key=signing_key)


def send(fake: FakePostal, **changes: Any) -> int:
    """Send a message to john@example.org through the fake; its id."""
    with httpx.Client(transport=fake.transport(), base_url="http://postal.example.com") as http:
        reply = http.post(
            "/api/v1/send/message",
            json={**MESSAGE, **changes},
            headers={"X-Server-API-Key": DEFAULT_API_KEY},
        ).json()
    return int(reply["data"]["messages"]["john@example.org"]["id"])


class Receiver:
    """A webhook endpoint for `httpx.MockTransport`: answers `statuses` in turn, then 204."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 204)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


async def read_body(receive: Any) -> bytes:
    """The whole request body, as an ASGI app must read it."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def asgi_receiver(
    received: list[bytes], status: int = 204, *, delay: float = 0.0
) -> httpx.ASGITransport:
    """An in-process ASGI endpoint (an async-only transport) that records the bodies."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append(await read_body(receive))
        await anyio.sleep(delay)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return httpx.ASGITransport(app)


# JWKS


def test_the_jwks_is_served_without_authentication_both_ways_in(
    http: httpx.Client, signing_key: rsa.RSAPrivateKey
) -> None:
    response = http.get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == jwks_document(signing_key.public_key())
    assert WebhookKeySet.from_jwks(response.content).kids == (
        compute_kid(signing_key.public_key()),
    )


def test_the_jwks_answers_head_and_refuses_other_methods(http: httpx.Client) -> None:
    head = http.head("/.well-known/jwks.json/")
    post = http.post("/.well-known/jwks.json")

    assert head.status_code == 200
    assert head.content == b""
    assert post.status_code == 404


def test_a_fake_generates_a_2048_bit_key_on_first_use() -> None:
    fake = FakePostal()
    with httpx.Client(transport=fake.transport(), base_url="http://postal") as http:
        served = WebhookKeySet.from_jwks(http.get("/.well-known/jwks.json").content)

    assert fake.signing_key.key_size == 2048
    assert served.kids == (compute_kid(fake.signing_key.public_key()),)


def test_a_signing_key_must_be_rsa() -> None:
    with pytest.raises(TypeError, match="RSA private key"):
        FakePostal(signing_key=ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]


# What is sent


def test_an_event_is_posted_signed_as_postal_signs_it(
    fake: FakePostal, signing_key: rsa.RSAPrivateKey
) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport())
    message_id = send(fake)

    fake.deliver(message_id, "Sent", output="250 OK", sent_with_ssl=True, time=0.42)

    [request] = receiver.requests
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Postal/3.3.6"
    assert request.headers["x-postal-signature-kid"] == compute_kid(signing_key.public_key())
    assert base64.b64decode(request.headers["x-postal-signature"], validate=True)
    verifier = WebhookVerifier(WebhookKeySet.from_jwks(jwks_document(signing_key.public_key())))
    event = verifier.verify(request.content, request.headers)
    legacy = WebhookVerifier(verifier.keys, allow_legacy_sha1=True)
    without_sha256 = {k: v for k, v in request.headers.items() if not k.endswith("-256")}
    legacy.verify_signature(request.content, without_sha256)
    assert isinstance(event, MessageSent)
    assert event.payload.output == "250 OK"
    assert event.payload.sent_with_ssl is True
    assert event.payload.time == 0.42
    assert fake.pending_webhooks == ()
    [attempt] = fake.webhook_log
    assert attempt.succeeded
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 204, None)
    assert (attempt.url, attempt.event, attempt.uuid) == (URL, "MessageSent", event.uuid)
    assert attempt.body == request.content


def test_the_body_is_the_envelope_as_rails_writes_it(fake: FakePostal) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport())
    message_id = send(fake)

    fake.deliver(message_id, "Sent")

    body = receiver.requests[0].content
    assert b"Tom \\u0026 Jerry \\u003c3" in body
    assert b"&" not in body
    assert b"<" not in body
    assert b", " not in body
    assert body != json.dumps(json.loads(body), separators=(",", ":")).encode()
    envelope = json.loads(body)
    assert list(envelope) == ["event", "timestamp", "payload", "uuid"]
    assert envelope["payload"]["message"]["subject"] == "Tom & Jerry <3"


def test_the_message_object_describes_the_fake_message(fake: FakePostal) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport())
    message = fake.message(send(fake))

    fake.deliver(message.id, "Sent", timestamp=1713450642.09)

    payload = json.loads(receiver.requests[0].content)["payload"]
    assert payload == {
        "message": {
            "id": message.id,
            "token": message.token,
            "direction": "outgoing",
            "message_id": message.message_id,
            "to": "john@example.org",
            "from": "app@example.com",
            "subject": "Tom & Jerry <3",
            "timestamp": message.timestamp,
            "spam_status": "NotChecked",
            "tag": "welcome",
        },
        "status": "Sent",
        "details": fake.message(message.id).deliveries[0].details,
        "output": "",
        "sent_with_ssl": False,
        "timestamp": 1713450642.09,
        "time": None,
    }


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        ("Sent", MessageSent),
        ("SoftFail", MessageDelayed),
        ("HardFail", MessageDeliveryFailed),
        ("Held", MessageHeld),
    ],
)
def test_each_delivery_status_sends_its_event(
    fake: FakePostal, status: Any, event_type: type[Any]
) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport())
    message_id = send(fake)

    fake.deliver(message_id, status)

    event = parse_event(receiver.requests[0].content)
    assert isinstance(event, event_type)
    assert event.payload.status == status
    assert event.payload.message.id == message_id


@pytest.mark.parametrize("status", ["HoldCancelled", "Processed", "Error"])
def test_other_delivery_statuses_send_nothing(fake: FakePostal, status: Any) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport())
    message_id = send(fake)

    fake.deliver(message_id, status)

    assert receiver.requests == []
    assert fake.webhook_log == ()


def test_a_bounce_sends_message_bounced_about_a_stored_incoming_bounce(fake: FakePostal) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport())
    message_id = send(fake)

    fake.deliver(message_id, "Bounced", timestamp=2000.0)

    event = parse_event(receiver.requests[0].content)
    assert isinstance(event, MessageBounced)
    assert event.payload.original_message.id == message_id
    bounce = fake.message(event.payload.bounce.id)
    assert bounce.direction == event.payload.bounce.direction == "incoming"
    assert bounce.bounce is True
    assert bounce.timestamp == 2000.0
    assert event.payload.bounce.to == "main@rp.postal.example.com"
    assert bounce.subject == "Mail delivery failed: returning message to sender"


def test_a_bounce_is_stored_only_for_a_webhook_that_receives_it(fake: FakePostal) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, events=["MessageSent"], transport=receiver.transport())
    message_id = send(fake)

    fake.deliver(message_id, "Bounced")

    assert receiver.requests == []
    assert [message.id for message in fake.server.messages] == [message_id]


def test_loads_and_clicks_send_their_events(fake: FakePostal) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport())
    message_id = send(fake)

    fake.load(message_id, ip_address="192.0.2.7", user_agent="Mail/1.0")
    fake.click(message_id, "https://example.org/a?b=1&c=2")
    fake.click(message_id, "https://example.org/a?b=1&c=2", ip_address=None)
    fake.click(message_id, "https://example.org/other")

    loaded, *clicked = (parse_event(request.content) for request in receiver.requests)
    assert isinstance(loaded, MessageLoaded)
    assert (loaded.payload.ip_address, loaded.payload.user_agent) == ("192.0.2.7", "Mail/1.0")
    first, again, other = (
        event.payload for event in clicked if isinstance(event, MessageLinkClicked)
    )
    assert first.url == "https://example.org/a?b=1&c=2"
    assert again.ip_address is None
    assert first.token == again.token != other.token
    assert len(first.token) == 16


def test_a_webhook_receives_only_the_events_it_subscribes_to(fake: FakePostal) -> None:
    sent_only, clicks_only = Receiver(), Receiver()
    fake.add_webhook(URL, events=["MessageSent"], transport=sent_only.transport())
    fake.add_webhook(URL, events="MessageLinkClicked", transport=clicks_only.transport())
    message_id = send(fake)

    fake.deliver(message_id, "SoftFail")
    fake.deliver(message_id, "Sent")
    fake.click(message_id, "https://example.org")

    assert [parse_event(r.content).event for r in sent_only.requests] == ["MessageSent"]
    assert [parse_event(r.content).event for r in clicks_only.requests] == ["MessageLinkClicked"]
    assert fake.webhooks[0].events == frozenset({"MessageSent"})


def test_each_webhook_gets_its_own_request_uuid(fake: FakePostal) -> None:
    first, second = Receiver(), Receiver()
    fake.add_webhook(URL, transport=first.transport())
    fake.add_webhook("https://other.test/hook", transport=second.transport())

    fake.deliver(send(fake), "Sent")

    one, two = (json.loads(r.requests[0].content) for r in (first, second))
    assert one["uuid"] != two["uuid"]
    assert one["timestamp"] == two["timestamp"]
    assert one["payload"] == two["payload"]


def test_a_webhook_belongs_to_one_server(fake: FakePostal) -> None:
    other = fake.add_server("other", api_keys=["other-key"], domains=["example.com"])
    main_receiver, other_receiver = Receiver(), Receiver()
    fake.add_webhook(URL, transport=main_receiver.transport())
    webhook = fake.add_webhook(URL, transport=other_receiver.transport(), server=other)

    fake.deliver(send(fake), "Sent")

    assert len(main_receiver.requests) == 1
    assert other_receiver.requests == []
    assert webhook.server == "other"


def test_basic_auth_comes_from_the_url(fake: FakePostal) -> None:
    receiver = Receiver()
    fake.add_webhook("https://user:secret@app.test/hook", transport=receiver.transport())

    fake.deliver(send(fake), "Sent")

    expected = "Basic " + base64.b64encode(b"user:secret").decode()
    assert receiver.requests[0].headers["authorization"] == expected


def test_a_webhook_gets_real_http_without_a_transport(fake: FakePostal) -> None:
    received: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append(await read_body(receive))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    from postal_sdk.testing._server import serve_in_thread

    with serve_in_thread(app, host="127.0.0.1", port=0) as base_url:
        fake.add_webhook(f"{base_url}/hook")
        fake.deliver(send(fake), "Sent")

    assert len(received) == 1
    assert fake.webhook_log[0].status_code == 200


# Retries


def test_a_failed_request_is_retried_with_the_same_body_until_it_succeeds(
    fake: FakePostal,
) -> None:
    receiver = Receiver(500, 404, 302)
    fake.add_webhook(URL, transport=receiver.transport(), retry_delays=QUICK)
    fake.deliver(send(fake), "Sent")

    assert len(fake.pending_webhooks) == 1
    made = fake.flush_webhooks()

    assert [a.attempt for a in made] == [2, 3, 4]
    assert [(a.status_code, a.will_retry) for a in fake.webhook_log] == [
        (500, True),
        (404, True),
        (302, True),
        (204, False),
    ]
    assert len({request.content for request in receiver.requests}) == 1
    assert len({a.uuid for a in fake.webhook_log}) == 1
    assert not fake.pending_webhooks
    assert fake.flush_webhooks() == ()


@pytest.mark.parametrize("status", [200, 201, 202, 299])
def test_any_2xx_is_a_success(fake: FakePostal, status: int) -> None:
    fake.add_webhook(URL, transport=Receiver(status).transport(), retry_delays=QUICK)

    fake.deliver(send(fake), "Sent")

    assert [a.succeeded for a in fake.webhook_log] == [True]


def test_postal_gives_up_after_six_attempts(fake: FakePostal) -> None:
    receiver = Receiver(*[503] * 10)
    webhook = fake.add_webhook(URL, transport=receiver.transport(), retry_delays=QUICK)
    fake.deliver(send(fake), "Sent")

    fake.flush_webhooks()

    assert webhook.max_attempts == len(WEBHOOK_RETRY_DELAYS) + 1 == 6
    assert [(a.attempt, a.will_retry) for a in fake.webhook_log] == [
        (1, True),
        (2, True),
        (3, True),
        (4, True),
        (5, True),
        (6, False),
    ]
    assert len(receiver.requests) == 6
    assert fake.pending_webhooks == ()


def test_retries_wait_for_the_schedule(fake: FakePostal) -> None:
    fake.add_webhook(URL, transport=Receiver(500).transport(), retry_delays=(0.2,))
    fake.deliver(send(fake), "Sent")

    fake.flush_webhooks()

    first, second = fake.webhook_log
    assert second.timestamp - first.timestamp >= 0.2


def test_the_default_schedule_is_postals() -> None:
    assert WEBHOOK_RETRY_DELAYS == (120, 180, 360, 600, 900)
    webhook = FakePostal().add_webhook(URL)
    assert (webhook.timeout, webhook.retry_delays) == (5.0, WEBHOOK_RETRY_DELAYS)


def raising(error: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return httpx.MockTransport(handler)


def test_a_timeout_or_a_refused_connection_is_a_failure(fake: FakePostal) -> None:
    fake.add_webhook(URL, transport=raising(httpx.ReadTimeout("slow")), retry_delays=())
    fake.add_webhook(URL, transport=raising(httpx.ConnectError("refused")), retry_delays=())
    fake.add_webhook(URL, transport=raising(httpx.ConnectError("")), retry_delays=())

    fake.deliver(send(fake), "Sent")

    assert [(a.status_code, a.error, a.will_retry) for a in fake.webhook_log] == [
        (None, "no answer within 5 s", False),
        (None, "ConnectError: refused", False),
        (None, "ConnectError", False),
    ]
    assert not any(a.succeeded for a in fake.webhook_log)


def test_an_error_in_the_transport_itself_surfaces_and_the_requests_stay(
    fake: FakePostal,
) -> None:
    bugs = [RuntimeError("bug in the app")]
    later = Receiver()

    def buggy(request: httpx.Request) -> httpx.Response:
        if bugs:
            raise bugs.pop()
        return httpx.Response(200)

    fake.add_webhook(URL, transport=httpx.MockTransport(buggy))
    fake.add_webhook("http://later.test/", transport=later.transport())
    message_id = send(fake)

    with pytest.raises(RuntimeError, match="bug in the app"):
        fake.deliver(message_id, "Sent")

    assert len(fake.pending_webhooks) == 2
    assert later.requests == []
    made = fake.flush_webhooks()
    assert [(a.url, a.attempt, a.status_code) for a in made] == [
        (URL, 1, 200),
        ("http://later.test/", 1, 204),
    ]


# Async delivery


@pytest.mark.anyio
async def test_an_async_transport_waits_for_the_async_flush(fake: FakePostal) -> None:
    received: list[bytes] = []
    fake.add_webhook(URL, transport=asgi_receiver(received))
    fake.deliver(send(fake), "Sent")

    [pending] = fake.pending_webhooks
    assert received == []
    with pytest.raises(TypeError, match="flush_webhooks_async"):
        fake.flush_webhooks()
    [attempt] = await fake.flush_webhooks_async()

    assert received == [pending.body]
    assert (attempt.uuid, attempt.status_code) == (pending.uuid, 204)
    assert fake.pending_webhooks == ()


@pytest.mark.anyio
async def test_the_async_flush_retries_on_schedule(fake: FakePostal) -> None:
    received: list[bytes] = []
    fake.add_webhook(URL, transport=asgi_receiver(received, 500), retry_delays=(0.01, 0.01))
    fake.deliver(send(fake), "Sent")

    made = await fake.flush_webhooks_async()

    assert [(a.attempt, a.status_code, a.will_retry) for a in made] == [
        (1, 500, True),
        (2, 500, True),
        (3, 500, False),
    ]
    assert len(set(received)) == 1


@pytest.mark.anyio
async def test_an_app_that_does_not_answer_in_time_fails_the_attempt(fake: FakePostal) -> None:
    received: list[bytes] = []
    fake.add_webhook(
        URL, transport=asgi_receiver(received, delay=10), timeout=0.05, retry_delays=()
    )
    fake.deliver(send(fake), "Sent")

    with anyio.fail_after(5):
        [attempt] = await fake.flush_webhooks_async()

    assert (attempt.status_code, attempt.error) == (None, "no answer within 0.05 s")
    assert len(received) == 1


@pytest.mark.anyio
async def test_the_async_flush_reports_transport_errors(fake: FakePostal) -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    fake.add_webhook(URL, transport=_AsyncOnly(refuse), retry_delays=())
    fake.deliver(send(fake), "Sent")

    made = await fake.flush_webhooks_async()

    assert [(a.status_code, a.error) for a in made] == [(None, "ConnectError: refused")]


@pytest.mark.anyio
async def test_an_app_that_raises_fails_the_async_flush_loudly(fake: FakePostal) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("bug in the app")

    fake.add_webhook(URL, transport=httpx.ASGITransport(app))
    fake.deliver(send(fake), "Sent")

    with pytest.raises(Exception) as caught:  # noqa: PT011 (the group of the task group)
        await fake.flush_webhooks_async()

    assert "bug in the app" in repr(caught.value)
    assert len(fake.pending_webhooks) == 1
    assert fake.webhook_log == ()


@pytest.mark.anyio
async def test_requests_due_together_are_sent_concurrently(fake: FakePostal) -> None:
    started = {"a": anyio.Event(), "b": anyio.Event()}

    def endpoint(mine: str, other: str) -> httpx.ASGITransport:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await read_body(receive)
            started[mine].set()
            with anyio.fail_after(2):
                await started[other].wait()
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        return httpx.ASGITransport(app)

    fake.add_webhook("http://a.test/", transport=endpoint("a", "b"))
    fake.add_webhook("http://b.test/", transport=endpoint("b", "a"))
    fake.deliver(send(fake), "Sent")

    made = await fake.flush_webhooks_async()

    assert sorted(a.url for a in made if a.succeeded) == ["http://a.test/", "http://b.test/"]


@pytest.mark.anyio
async def test_the_async_flush_runs_a_sync_only_transport_on_a_thread(fake: FakePostal) -> None:
    answers = iter([500, 200])

    class SyncOnly(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(next(answers))

    fake.add_webhook(URL, transport=SyncOnly(), retry_delays=QUICK)
    fake.deliver(send(fake), "Sent")

    made = await fake.flush_webhooks_async()

    assert [(a.attempt, a.status_code) for a in made] == [(2, 200)]


@pytest.mark.anyio
async def test_a_cancelled_flush_leaves_its_requests_for_the_next(fake: FakePostal) -> None:
    received: list[bytes] = []
    statuses = iter([500, 204])

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append(await read_body(receive))
        await send({"type": "http.response.start", "status": next(statuses), "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fake.add_webhook(URL, transport=httpx.ASGITransport(app), retry_delays=(0.3,))
    fake.deliver(send(fake), "Sent")

    with anyio.move_on_after(0.1):
        await fake.flush_webhooks_async()
    made = await fake.flush_webhooks_async()

    assert [(a.attempt, a.status_code) for a in made] == [(2, 204)]
    assert len(received) == 2


@pytest.mark.anyio
async def test_async_postal_verifies_the_fakes_webhooks(fake: FakePostal) -> None:
    received: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    fake.add_webhook(URL, transport=_AsyncOnly(record))
    fake.deliver(send(fake), "Sent")
    await fake.flush_webhooks_async()

    http = httpx.AsyncClient(transport=fake.transport())
    async with (
        http,
        AsyncPostal(
            base_url="http://postal.example.com", api_key=DEFAULT_API_KEY, http_client=http
        ) as postal,
    ):
        event = await postal.verify_webhook(received[0].content, received[0].headers)

    assert isinstance(event, MessageSent)
    assert event.uuid == fake.webhook_log[0].uuid


class _AsyncOnly(httpx.AsyncBaseTransport):
    def __init__(self, handler: Callable[[httpx.Request], Any]) -> None:
        self._handler = handler

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        response: httpx.Response = await self._handler(request)
        return response


# Key rotation


def test_a_new_signing_key_signs_later_attempts_and_is_served(
    fake: FakePostal, signing_key: rsa.RSAPrivateKey, next_key: rsa.RSAPrivateKey
) -> None:
    receiver = Receiver(500)
    fake.add_webhook(URL, transport=receiver.transport(), retry_delays=QUICK)
    fake.deliver(send(fake), "Sent")

    fake.signing_key = next_key
    fake.flush_webhooks()

    kids = [request.headers["x-postal-signature-kid"] for request in receiver.requests]
    assert kids == [compute_kid(signing_key.public_key()), compute_kid(next_key.public_key())]
    with httpx.Client(transport=fake.transport(), base_url="http://postal") as http:
        served = http.get("/.well-known/jwks.json").json()
    assert served == jwks_document(next_key.public_key())


# Events about the server itself


def test_a_dns_check_that_finds_a_problem_sends_domain_dns_error(fake: FakePostal) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport())
    [domain] = fake.server.domains

    found = fake.check_dns(
        "example.com",
        spf_status="Invalid",
        spf_error="SPF record exists but doesn't include spf.postal.example.com",
        mx_status="Missing",
        mx_error="There are no MX records for example.com",
        checked_at=1713450642.118,
    )

    assert found
    [request] = receiver.requests
    event = parse_event(request.content)
    assert isinstance(event, DomainDNSError)
    payload = event.payload
    assert (payload.domain, payload.uuid) == ("example.com", domain.uuid)
    assert payload.dns_checked_at is not None
    assert payload.dns_checked_at.timestamp() == pytest.approx(1713450642.118)
    assert (payload.spf_status, payload.dkim_status, payload.mx_status) == (
        "Invalid",
        "OK",
        "Missing",
    )
    assert payload.spf_error == "SPF record exists but doesn't include spf.postal.example.com"
    assert payload.dkim_error is None
    assert (payload.return_path_status, payload.return_path_error) == ("OK", None)
    # Rails writes the check's time as it writes every time in JSON.
    assert json.loads(request.content)["payload"]["dns_checked_at"] == "2024-04-18T14:30:42.118Z"


def test_the_server_object_describes_the_fake_server(fake: FakePostal) -> None:
    other = fake.add_server("Billing Mail", api_keys=["billing"], domains=["billing.example"])
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport(), server=other)

    fake.check_dns("billing.example", dkim_status="Missing", server=other)

    server = parse_event(receiver.requests[0].content).payload.server  # type: ignore[union-attr]
    assert (server.uuid, server.name) == (other.uuid, "Billing Mail")
    assert (server.permalink, server.organization) == ("billing-mail", other.organization)
    assert other.uuid != fake.server.uuid


def test_a_dns_check_that_finds_nothing_wrong_sends_nothing(fake: FakePostal) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport())

    assert not fake.check_dns("example.com")
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("domain", "changes", "error", "match"),
    [
        ("other.example", {}, ValueError, "has no domain 'other.example'"),
        ("example.com", {"spf_status": "Broken"}, ValueError, "spf_status must be one of"),
        ("example.com", {"mx_error": 42}, TypeError, "mx_error must be a str"),
    ],
)
def test_a_dns_check_of_what_postal_would_not_check_is_refused(
    fake: FakePostal, domain: str, changes: dict[str, Any], error: type[Exception], match: str
) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport())

    with pytest.raises(error, match=match):
        fake.check_dns(domain, **changes)
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        *((0, None), (89, None), (90, SendLimitApproaching), (99, SendLimitApproaching)),
        *((100, SendLimitExceeded), (250, SendLimitExceeded)),
    ],
)
def test_the_send_limit_notice_follows_the_volume(
    fake: FakePostal, volume: int, expected: type[SendLimitApproaching | SendLimitExceeded] | None
) -> None:
    receiver = Receiver()
    fake.add_webhook(URL, transport=receiver.transport())

    sent = fake.check_send_limit(volume, 100)

    assert sent == (None if expected is None else expected.__name__)
    events = [parse_event(request.content) for request in receiver.requests]
    assert [type(event) for event in events] == ([] if expected is None else [expected])
    for event in events:
        assert isinstance(event, (SendLimitApproaching, SendLimitExceeded))
        assert (event.payload.volume, event.payload.limit) == (volume, 100)
        assert event.payload.server.name == "main"


def test_only_webhooks_for_all_events_get_send_limit_notices(fake: FakePostal) -> None:
    everything, chosen = Receiver(), Receiver()
    fake.add_webhook(URL, transport=everything.transport())
    fake.add_webhook(URL, events=["MessageSent", "DomainDNSError"], transport=chosen.transport())

    fake.check_send_limit(100, 100)
    fake.check_dns("example.com", dkim_status="Invalid")

    assert [parse_event(r.content).event for r in everything.requests] == [
        "SendLimitExceeded",
        "DomainDNSError",
    ]
    assert [parse_event(r.content).event for r in chosen.requests] == ["DomainDNSError"]


@pytest.mark.parametrize(
    ("volume", "limit", "match"),
    [(-1, 10, "volume"), (5, 0, "no limit"), (True, 10, "volume"), (5, 2.5, "limit")],
)
def test_a_send_limit_notice_with_impossible_figures_is_refused(
    fake: FakePostal, volume: Any, limit: Any, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        fake.check_send_limit(volume, limit)


# Removing a webhook


def test_a_removed_webhook_gets_no_more_events_and_its_pending_requests_go(
    fake: FakePostal,
) -> None:
    kept, removed = Receiver(500), Receiver(500)
    keep = fake.add_webhook(URL, transport=kept.transport(), retry_delays=QUICK)
    drop = fake.add_webhook("https://other.test/hook", transport=removed.transport())
    message_id = send(fake)
    fake.deliver(message_id, "Sent")
    assert len(fake.pending_webhooks) == 2

    fake.remove_webhook(drop)
    fake.deliver(message_id, "Held")
    fake.flush_webhooks()

    assert fake.webhooks == (keep,)
    assert len(removed.requests) == 1  # the first attempt, made before it was removed
    # MessageHeld's first attempt is made at once; MessageSent's retry by the flush.
    assert [parse_event(r.content).event for r in kept.requests] == [
        "MessageSent",
        "MessageHeld",
        "MessageSent",
    ]
    assert not fake.pending_webhooks


@pytest.mark.anyio
async def test_a_webhook_removed_during_a_flush_is_not_tried_again(fake: FakePostal) -> None:
    attempted = anyio.Event()

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)
        attempted.set()
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    webhook = fake.add_webhook(URL, transport=httpx.ASGITransport(failing), retry_delays=(0.2,) * 5)
    fake.deliver(send(fake), "Sent")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(fake.flush_webhooks_async)
            await attempted.wait()
            # The flush now waits out the retry delay, with the request in hand.
            fake.remove_webhook(webhook)

    assert [attempt.will_retry for attempt in fake.webhook_log] == [True]
    assert not fake.pending_webhooks


def test_a_webhook_removed_while_its_request_is_attempted_is_not_retried(
    fake: FakePostal,
) -> None:
    webhooks = []

    def remove_then_fail(request: httpx.Request) -> httpx.Response:
        fake.remove_webhook(webhooks[0])
        return httpx.Response(500)

    webhooks.append(fake.add_webhook(URL, transport=httpx.MockTransport(remove_then_fail)))
    fake.deliver(send(fake), "Sent")

    assert [attempt.will_retry for attempt in fake.webhook_log] == [True]
    assert not fake.pending_webhooks
    assert fake.flush_webhooks() == ()


def test_removing_a_webhook_the_fake_does_not_have_is_refused(fake: FakePostal) -> None:
    webhook = fake.add_webhook(URL, transport=Receiver().transport())
    fake.remove_webhook(webhook)

    with pytest.raises(ValueError, match="is not a webhook of this fake"):
        fake.remove_webhook(webhook)
    twin = FakePostal().add_webhook(URL, transport=Receiver().transport())
    with pytest.raises(ValueError, match="is not a webhook of this fake"):
        fake.remove_webhook(twin)


# Configuration


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"url": "ftp://app.test/hook"}, ValueError, "http"),
        ({"url": "http://app.test/a b"}, ValueError, "plain characters"),
        ({"events": ["MessageSent", "MessageOpened"]}, ValueError, "MessageOpened"),
        ({"events": []}, ValueError, "at least one event"),
        ({"events": ["SendLimitExceeded"]}, ValueError, "only to webhooks for all events"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": float("inf")}, ValueError, "timeout"),
        ({"retry_delays": (1, -1)}, ValueError, "retry_delays"),
        ({"retry_delays": (float("nan"),)}, ValueError, "retry_delays"),
        ({"transport": object()}, TypeError, "httpx transport"),
    ],
)
def test_bad_webhook_settings_are_refused(
    fake: FakePostal, changes: dict[str, Any], error: type[Exception], match: str
) -> None:
    arguments: dict[str, Any] = {"url": URL, **changes}

    with pytest.raises(error, match=match):
        fake.add_webhook(**arguments)
    assert fake.webhooks == ()


def test_webhooks_without_cryptography_ask_for_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(sys.modules):
        if name == "cryptography" or name.startswith("cryptography."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "postal_sdk.webhooks._keys")
    fake = FakePostal()

    with pytest.raises(ImportError, match=r"pip install 'postal-sdk\[webhooks\]'"):
        fake.add_webhook(URL)
    with pytest.raises(ImportError, match="cryptography"):
        fake.signing_key  # noqa: B018
    assert fake.webhooks == ()


def test_the_fake_knows_every_event_the_sdk_parses() -> None:
    assert EVENT_TYPES.keys() == _fake_webhooks.EVENTS


def test_the_fake_works_without_cryptography_except_for_webhooks() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["cryptography"] = None
        import httpx
        from postal_sdk.testing import DEFAULT_API_KEY, FakePostal

        fake = FakePostal()
        with httpx.Client(transport=fake.transport(), base_url="http://p") as http:
            reply = http.post(
                "/api/v1/send/message",
                json={"to": ["a@example.org"], "from": "app@example.com", "plain_body": "x"},
                headers={"X-Server-API-Key": DEFAULT_API_KEY},
            ).json()
            fake.deliver(reply["data"]["messages"]["a@example.org"]["id"], "Sent")
            try:
                http.get("/.well-known/jwks.json")
            except ImportError as error:
                print("jwks:", error)
        print(reply["status"], fake.server.messages[0].status)
        """
    )
    result = subprocess.run(  # noqa: S603 (the test's own interpreter and script)
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert "postal-sdk[webhooks]" in result.stdout
    assert result.stdout.splitlines()[-1] == "success Sent"


def test_each_attempt_records_the_headers_it_sent(fake: FakePostal) -> None:
    fake.add_webhook(URL, transport=Receiver().transport())
    fake.deliver(send(fake), "Sent")

    assert set(fake.webhook_log[0].headers) == {
        "Content-Type",
        "User-Agent",
        "X-Postal-Signature",
        "X-Postal-Signature-256",
        "X-Postal-Signature-KID",
    }
