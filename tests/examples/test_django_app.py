"""The Django example, end to end over real HTTP, with no mocks in between.

The project runs under uvicorn in a subprocess (its own settings module, so the rest
of the suite is not configured for it); the fake Postal is served over HTTP from this
process. A view sends through `EmailBackend` to the fake; the fake's signed webhook is
POSTed to `webhook_view`, which fetches the keys from the fake's JWKS to verify it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from postal_sdk.testing import DEFAULT_API_KEY, FakePostal

pytest.importorskip("django")
pytest.importorskip("cryptography")

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def fake() -> FakePostal:
    return FakePostal()


@pytest.fixture
def postal_url(fake: FakePostal) -> Iterator[str]:
    with fake.serve() as url:
        yield url


@pytest.fixture
def app(postal_url: str, fake: FakePostal) -> Iterator[httpx.Client]:
    """The example project under uvicorn; a client to call it."""
    port = _free_port()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "examples.django_app.settings",
        "POSTAL_BASE_URL": postal_url,
        "POSTAL_API_KEY": DEFAULT_API_KEY,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    server = subprocess.Popen(  # noqa: S603 - a fixed command line
        [
            sys.executable,
            "-m",
            "uvicorn",
            "examples.django_app.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=environment,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                try:
                    client.get("/events")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, "the Django example did not start"
                    assert time.monotonic() < deadline, "the Django example did not start"
                    time.sleep(0.05)
            fake.add_webhook(f"{base_url}/webhooks/postal", retry_delays=(0.01,))
            yield client
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("path", ["/messages", "/messages/async"])
def test_a_view_sends_and_the_signed_webhook_comes_back(
    app: httpx.Client, fake: FakePostal, path: str
) -> None:
    response = app.post(path, json={"to": "John <john@example.org>", "name": "John"})

    assert response.status_code == 200, response.text
    [entry] = fake.outbox
    assert entry.endpoint == "send/message"
    assert entry.params["subject"] == "Welcome"
    assert entry.params["tag"] == "welcome"
    assert "<b>John</b>" in entry.params["html_body"]
    message_id = response.json()["messages"]["john@example.org"]
    assert response.json()["message_id"] == entry.message_id

    fake.deliver(message_id, "Sent")

    [attempt] = fake.webhook_log
    assert attempt.status_code == 200
    assert app.get("/events").json() == [
        {"uuid": attempt.uuid, "event": "MessageSent", "message": message_id}
    ]
    assert any(request.path == "/.well-known/jwks.json" for request in fake.requests)


def test_a_redelivered_webhook_is_recorded_once(app: httpx.Client, fake: FakePostal) -> None:
    response = app.post("/messages", json={"to": "john@example.org", "name": "John"})
    fake.deliver(response.json()["messages"]["john@example.org"], "Sent")
    [attempt] = fake.webhook_log

    again = app.post("/webhooks/postal", content=attempt.body, headers=attempt.headers)

    assert again.json() == {"uuid": attempt.uuid, "duplicate": True}
    assert len(app.get("/events").json()) == 1


def test_a_forged_webhook_is_refused(app: httpx.Client, fake: FakePostal) -> None:
    response = app.post("/messages", json={"to": "john@example.org", "name": "John"})
    fake.deliver(response.json()["messages"]["john@example.org"], "Sent")
    [attempt] = fake.webhook_log

    forged = app.post(
        "/webhooks/postal",
        content=attempt.body.replace(b"MessageSent", b"MessageHeld"),
        headers=attempt.headers,
    )

    assert forged.status_code == 400
    assert forged.json()["error"] == "bad_signature"
    assert len(app.get("/events").json()) == 1


def test_a_refused_message_is_reported(app: httpx.Client, fake: FakePostal) -> None:
    response = app.post("/messages", json={"to": "jöhn@example.org", "name": "John"})

    assert response.status_code == 502
    assert "non-ASCII local part" in response.json()["error"]
    assert fake.outbox == ()
