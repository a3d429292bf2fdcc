"""`postal fake-server --webhook/--deliver`: signed events to a real receiver on loopback."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import httpx
import pytest

from postal_sdk import Message, Postal
from postal_sdk.cli import main
from postal_sdk.cli._fake_server import FakeAutomation
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal
from postal_sdk.webhooks import (
    MessageDeliveryFailed,
    MessageSent,
    WebhookKeySet,
    WebhookVerifier,
)

WAIT = 10.0  # generous: only reached when something is broken


@attrs.frozen
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records every POST and answers `statuses` in turn.

    After the last status, it keeps answering with that one.
    """

    def __init__(self, *statuses: int) -> None:
        self.posts: queue.Queue[Received] = queue.Queue()
        answers = list(statuses or (204,))
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posts.put(Received(self.path, dict(self.headers), body, time.monotonic()))
                status = answers.pop(0) if len(answers) > 1 else answers[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output is no place for an access log

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/postal"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def next_post(self) -> Received:
        return self.posts.get(timeout=WAIT)


@attrs.define
class Served:
    process: subprocess.Popen[str]
    banner: dict[str, Any]

    def postal(self) -> Postal:
        return Postal(self.banner["base_url"], self.banner["api_key"])

    def stop(self) -> str:
        """Stop it as Ctrl-C does; its stderr. Fails unless it exits 0 promptly."""
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=WAIT)
        assert self.process.returncode == 0, err
        return err


def start_fake_server(*options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and command, options of the test
        [sys.executable, "-m", "postal_sdk.cli", "fake-server", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def fake_server(*options: str) -> Iterator[Served]:
    process = start_fake_server("--json", *options)
    try:
        assert process.stdout is not None
        yield Served(process, json.loads(process.stdout.readline()))
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def send_one(postal: Postal) -> int:
    sent = postal.send_message(
        Message(from_="app@example.com", to=["john@example.org"], plain_body="Hi")
    )
    return sent.messages["john@example.org"].id


def verifier_for(jwks_url: str) -> WebhookVerifier:
    return WebhookVerifier(WebhookKeySet.from_jwks(httpx.get(jwks_url).content))


@pytest.mark.parametrize(
    ("options", "status", "event_type"),
    [
        ((), "Sent", MessageSent),  # a webhook alone delivers as Sent
        (("--deliver", "HardFail"), "HardFail", MessageDeliveryFailed),
    ],
)
def test_each_accepted_message_is_delivered_and_its_event_posted_signed(
    options: tuple[str, ...], status: str, event_type: type[Any]
) -> None:
    with Receiver() as receiver, fake_server("--webhook", receiver.url, *options) as served:
        base_url = served.banner["base_url"]
        assert served.banner["webhooks"] == [receiver.url]
        assert served.banner["deliver"] == status
        assert served.banner["jwks_url"] == f"{base_url}/.well-known/jwks.json"
        with served.postal() as postal:
            message_id = send_one(postal)
            post = receiver.next_post()
            event = verifier_for(served.banner["jwks_url"]).verify(post.body, post.headers)
            assert isinstance(event, event_type)
            assert event.payload.message.id == message_id
            assert event.payload.message.to == "john@example.org"
            assert post.path == "/hooks/postal"
            assert [d.status for d in postal.get_deliveries(message_id)] == [status]
        err = served.stop()
    assert receiver.posts.empty()
    assert f"webhook {event_type.__name__} to {receiver.url} (attempt 1 of 6): HTTP 204" in err


@pytest.mark.parametrize("with_webhook", [True, False])
def test_without_a_delivery_status_accepted_messages_stay_pending(with_webhook: bool) -> None:
    with Receiver() as receiver:
        options = ("--webhook", receiver.url, "--deliver", "none") if with_webhook else ()
        with fake_server(*options) as served:
            assert served.banner["deliver"] is None
            assert served.banner["webhooks"] == ([receiver.url] if with_webhook else [])
            with served.postal() as postal:
                message_id = send_one(postal)
                time.sleep(0.3)  # six polls of the outbox: time enough to deliver, were it on
                info = postal.get_message(message_id, expansions=["status"])
                assert info.status is not None
                assert info.status.status == "Pending"
                assert postal.get_deliveries(message_id) == []
            err = served.stop()
    assert receiver.posts.empty()
    assert err == ""


def test_a_failed_webhook_waits_for_postals_retry_schedule_and_stopping_does_not() -> None:
    with Receiver(500) as receiver, fake_server("--webhook", receiver.url) as served:
        with served.postal() as postal:
            message_id = send_one(postal)
            first = receiver.next_post()
            # Still serving while the request waits for its retry, two minutes on.
            assert [d.status for d in postal.get_deliveries(message_id)] == ["Sent"]
        started = time.monotonic()
        err = served.stop()
        assert time.monotonic() - started < 5
    assert json.loads(first.body)["event"] == "MessageSent"
    assert receiver.posts.empty()
    assert err.splitlines() == [
        f"postal fake-server: webhook MessageSent to {receiver.url} (attempt 1 of 6): "
        "HTTP 500; retrying in 120 s"
    ]


def test_the_human_banner_names_the_webhooks_the_deliveries_and_the_keys() -> None:
    served = Served(
        start_fake_server(
            *("--webhook", "http://127.0.0.1:9/a", "--webhook", "http://127.0.0.1:9/b"),
            *("--deliver", "Held"),
        ),
        {},
    )
    try:
        assert served.process.stdout is not None
        banner = [served.process.stdout.readline() for _ in range(7)]
        served.stop()
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.communicate()
    base_url = banner[0].split()[-1]
    assert "http://127.0.0.1:9/a, http://127.0.0.1:9/b (all events)" in banner[3]
    assert f"{base_url}/.well-known/jwks.json" in banner[4]
    assert "delivered as Held" in banner[5]
    assert banner[6] == "Press Ctrl-C to stop.\n"


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/hooks", "http://example.com/a hook", "http:///hooks", "example.com"],
)
def test_a_webhook_url_postal_would_refuse_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    status = main(["fake-server", "--port", "0", "--webhook", url])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""  # refused before serving
    assert err.startswith("postal: error: argument --webhook: ")
    assert err.count("\n") == 1


def test_webhooks_without_cryptography_name_the_extra_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("cryptography", "postal_sdk.webhooks._keys"):
        monkeypatch.setitem(sys.modules, module, None)
    status = main(["fake-server", "--port", "0", "--webhook", "http://127.0.0.1:9/hooks"])
    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert err.count("\n") == 1
    assert "pip install 'postal-sdk[webhooks]'" in err


def test_serving_without_uvicorn_names_the_extra_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    status = main(["fake-server", "--port", "0"])
    _, err = capsys.readouterr()
    assert status == 1
    assert err.count("\n") == 1
    assert "uvicorn" in err
    assert "Traceback" not in err


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def in_process_postal(fake: FakePostal) -> Postal:
    http = httpx.Client(transport=fake.transport())
    return Postal("http://postal.example.com", DEFAULT_API_KEY, http_client=http)


def test_messages_are_delivered_without_any_webhook(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakePostal()
    with in_process_postal(fake) as postal, FakeAutomation(fake, "Held"):
        first, second = send_one(postal), send_one(postal)
        wait_until(lambda: fake.message(second).status == "Held")
    assert [d.status for d in fake.message(first).deliveries] == ["Held"]
    assert [d.status for d in fake.message(second).deliveries] == ["Held"]
    assert capsys.readouterr().err == ""


def test_a_failed_webhook_is_retried_with_the_same_body_once_its_delay_is_over(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakePostal()
    with Receiver(500, 204) as receiver, in_process_postal(fake) as postal:
        fake.add_webhook(receiver.url, retry_delays=[0.3])
        with FakeAutomation(fake, "Sent"):
            send_one(postal)
            first, second = receiver.next_post(), receiver.next_post()
            # Stopping cancels an attempt still waiting for its answer: let this one end.
            wait_until(lambda: len(fake.webhook_log) == 2)
        assert second.body == first.body
        assert 0.3 <= second.at - first.at < 0.3 + 2
        assert fake.pending_webhooks == ()
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"postal fake-server: webhook MessageSent to {receiver.url} (attempt 1 of 2): "
        "HTTP 500; retrying in 0.3 s",
        f"postal fake-server: webhook MessageSent to {receiver.url} (attempt 2 of 2): HTTP 204",
    ]


def test_a_retry_far_off_does_not_hold_up_a_nearer_one_nor_stopping() -> None:
    fake = FakePostal()
    with Receiver(500) as receiver, in_process_postal(fake) as postal:
        fake.add_webhook(receiver.url, retry_delays=[0.3, 60])
        with FakeAutomation(fake, "Sent"):
            send_one(postal)
            early = [receiver.next_post(), receiver.next_post()]  # attempt 2 waits 60 s
            send_one(postal)
            late = [receiver.next_post(), receiver.next_post()]
            # The second request's retry comes on time, not after the first's 60 s.
            assert 0.3 <= late[1].at - late[0].at < 0.3 + 2
            wait_until(lambda: len(fake.webhook_log) == 4)
            started = time.monotonic()
        assert time.monotonic() - started < 2
    assert {json.loads(post.body)["uuid"] for post in early} != {
        json.loads(post.body)["uuid"] for post in late
    }
    assert len(fake.pending_webhooks) == 2  # left for their retries, not lost
    assert [attempt.attempt for attempt in fake.webhook_log] == [1, 2, 1, 2]


def test_a_receiver_that_is_down_is_logged_and_deliveries_go_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakePostal()
    with Receiver() as receiver:
        down = receiver.url.replace("/hooks/postal", "")
    # The receiver has shut down: its port refuses connections now.
    fake.add_webhook(down)
    with in_process_postal(fake) as postal, FakeAutomation(fake, "SoftFail"):
        first, second = send_one(postal), send_one(postal)
        wait_until(lambda: len(fake.webhook_log) == 2)
    assert [fake.message(first).status, fake.message(second).status] == ["SoftFail"] * 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert all("MessageDelayed" in line and "ConnectError" in line for line in err)
    assert all(line.endswith("retrying in 120 s") for line in err)
