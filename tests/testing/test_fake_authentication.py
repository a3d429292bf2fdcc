"""Authentication runs first, on every action, and answers with HTTP 200 envelopes."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from postal_sdk.testing import FakePostal

Call = Callable[..., httpx.Response]

ENDPOINTS = ["send/message", "send/raw", "messages/message", "messages/deliveries"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_request_without_a_key_is_access_denied(http: httpx.Client, endpoint: str) -> None:
    response = http.post(f"/api/v1/{endpoint}")

    assert response.status_code == 200
    assert response.json()["status"] == "error"
    assert response.json()["data"] == {
        "message": "Must be authenticated as a server.",
        "code": "AccessDenied",
    }


def test_an_empty_key_counts_as_missing(http: httpx.Client) -> None:
    response = http.post("/api/v1/send/message", headers={"X-Server-API-Key": ""})

    assert response.json()["data"]["code"] == "AccessDenied"


def test_a_whitespace_key_counts_as_missing(fake: FakePostal) -> None:
    # Over real HTTP the server strips the whitespace; in-process it reaches Postal's check.
    with httpx.Client(transport=fake.transport(), base_url="http://postal") as http:
        response = http.post("/api/v1/send/message", headers={"X-Server-API-Key": " \t "})

    assert response.json()["data"]["code"] == "AccessDenied"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_unknown_key_is_invalid_and_echoed_as_token(http: httpx.Client, endpoint: str) -> None:
    response = http.post(f"/api/v1/{endpoint}", headers={"X-Server-API-Key": "wrongkey"})

    assert response.status_code == 200
    assert list(response.json()["data"].items()) == [
        ("message", "The API token provided in X-Server-API-Key was not valid."),
        ("token", "wrongkey"),
        ("code", "InvalidServerAPIKey"),
    ]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_suspended_server_answers_server_suspended_without_a_message(
    fake: FakePostal, api: httpx.Client, endpoint: str
) -> None:
    fake.server.suspended = True

    response = api.post(f"/api/v1/{endpoint}", json={"id": 1})

    assert response.json()["data"] == {"code": "ServerSuspended"}


def test_a_server_can_be_unsuspended(fake: FakePostal, call: Call) -> None:
    fake.server.suspended = True
    fake.server.suspended = False

    assert call("messages/message", {"id": 1}).json()["data"]["code"] == "MessageNotFound"


def test_authentication_runs_before_the_body_is_parsed(http: httpx.Client) -> None:
    response = http.post(
        "/api/v1/send/message", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 200
    assert response.json()["data"]["code"] == "AccessDenied"


def test_keys_are_matched_without_regard_to_letter_case(
    fake: FakePostal, http: httpx.Client
) -> None:
    response = http.post(
        "/api/v1/messages/message",
        json={"id": 1},
        headers={"X-Server-API-Key": fake.server.api_keys[0].upper()},
    )

    assert response.json()["data"]["code"] == "MessageNotFound"


def test_each_key_opens_its_own_server_with_its_own_ids(
    fake: FakePostal, http: httpx.Client
) -> None:
    other = fake.add_server("other", api_keys=["other-key", "second-key"], domains=["other.org"])
    message = {"to": "a@example.org", "from": "x@other.org", "plain_body": "hi"}

    first = http.post(
        "/api/v1/send/message", json=message, headers={"X-Server-API-Key": "other-key"}
    )
    second = http.post(
        "/api/v1/send/message", json=message, headers={"X-Server-API-Key": "second-key"}
    )
    on_main = http.post(
        "/api/v1/messages/message",
        json={"id": 1},
        headers={"X-Server-API-Key": "fake-postal-api-key"},
    )

    assert first.json()["data"]["messages"]["a@example.org"]["id"] == 1
    assert second.json()["data"]["messages"]["a@example.org"]["id"] == 2
    assert [message.id for message in other.messages] == [1, 2]
    assert on_main.json()["data"]["code"] == "MessageNotFound"


def test_a_key_opens_only_one_server(fake: FakePostal) -> None:
    with pytest.raises(ValueError, match="in use already"):
        fake.add_server("other", api_keys=[fake.server.api_keys[0].upper()])


def test_server_names_are_unique(fake: FakePostal) -> None:
    with pytest.raises(ValueError, match="exists already"):
        fake.add_server("main")


def test_a_blank_key_cannot_be_added(fake: FakePostal) -> None:
    with pytest.raises(ValueError, match="blank"):
        fake.server.add_api_key("  ")


class TestHostAuthorization:
    """With a configured hostname, Rails refuses any other Host with an empty 403."""

    def test_another_host_gets_403_with_an_empty_body(self) -> None:
        fake = FakePostal(hostname="postal.example.com")
        with httpx.Client(transport=fake.transport(), base_url="http://192.0.2.7:5000") as http:
            response = http.post("/api/v1/send/message", json={})

        assert response.status_code == 403
        assert response.content == b""
        assert fake.requests[0].processed

    def test_the_configured_host_with_any_port_and_case_is_served(self) -> None:
        fake = FakePostal(hostname="postal.example.com")
        base_url = "https://Postal.Example.com:8443"
        with httpx.Client(transport=fake.transport(), base_url=base_url) as http:
            response = http.post("/api/v1/send/message", json={})

        assert response.json()["data"]["code"] == "AccessDenied"

    def test_the_received_header_names_the_configured_host(self) -> None:
        fake = FakePostal(hostname="mail.example.net")
        headers = {"X-Server-API-Key": "fake-postal-api-key"}
        message = {"to": "a@example.org", "from": "x@example.com", "plain_body": "hi"}
        with httpx.Client(
            transport=fake.transport(), base_url="http://mail.example.net", headers=headers
        ) as http:
            http.post("/api/v1/send/message", json=message)

        [received] = fake.message(1).headers["received"]
        assert received.startswith("from api (")
        assert " by mail.example.net with HTTP; " in received
