"""Routes, methods, and the shape of every handled response."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from postal_sdk.testing import FakePostal

Call = Callable[..., httpx.Response]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH"])
def test_every_routed_method_runs_the_action(
    api: httpx.Client, method: str, message_params: dict[str, Any]
) -> None:
    response = api.request(method, "/api/v1/send/message", json=message_params)

    assert response.json()["status"] == "success"


def test_head_runs_the_action_and_sends_no_body(
    fake: FakePostal, api: httpx.Client, message_params: dict[str, Any]
) -> None:
    response = api.request("HEAD", "/api/v1/send/message", json=message_params)

    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0
    assert len(fake.outbox) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/v1/send/message"),
        ("OPTIONS", "/api/v1/send/message"),
        ("POST", "/api/v1/send/nothing"),
        ("POST", "/api/v2/send/message"),
        ("POST", "/.well-known/jwks.json"),
    ],
)
def test_other_methods_and_paths_get_rails_404_page(
    api: httpx.Client, method: str, path: str
) -> None:
    response = api.request(method, path)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "doesn't exist" in response.text


def test_the_404_is_json_for_a_json_client(api: httpx.Client) -> None:
    response = api.get("/nowhere", headers={"Accept": "application/json"})

    assert response.json() == {"status": 404, "error": "Not Found"}


@pytest.mark.parametrize(
    "accept",
    ["text/html", "application/json, text/plain, */*", "text/html;q=0.5, application/json;q=x"],
)
def test_the_404_is_html_unless_json_is_preferred(api: httpx.Client, accept: str) -> None:
    response = api.get("/nowhere", headers={"Accept": accept})

    assert response.headers["content-type"].startswith("text/html")


def test_json_preference_follows_quality_values(api: httpx.Client) -> None:
    response = api.get("/nowhere", headers={"Accept": "text/html;q=0.1, application/json"})

    assert response.json()["status"] == 404


@pytest.mark.parametrize("suffix", ["/", ".json", ".xml"])
def test_a_format_suffix_or_trailing_slash_still_routes(api: httpx.Client, suffix: str) -> None:
    response = api.post(f"/api/v1/messages/message{suffix}", json={"id": 1})

    assert response.json()["data"]["code"] == "MessageNotFound"


def test_a_json_format_suffix_makes_rails_errors_json(api: httpx.Client) -> None:
    response = api.post("/api/v1/messages/message.json", json={"id": "1"})

    assert response.json() == {"status": 500, "error": "Internal Server Error"}


def test_the_envelope_has_four_keys_in_order_and_http_200(call: Call) -> None:
    response = call("messages/message", {"id": 1})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert list(response.json()) == ["status", "time", "flags", "data"]
    assert response.json()["flags"] == {}
    assert isinstance(response.json()["time"], float)


def test_the_error_code_is_the_last_key(call: Call) -> None:
    data = call("messages/message", {"id": 7}).json()["data"]

    assert list(data) == ["message", "id", "code"]


def test_json_is_encoded_as_rails_does(call: Call, message_params: dict[str, Any]) -> None:
    text = "<b> & \u2028 é"
    sent = call("send/message", {**message_params, "subject": text, "tag": text}).json()
    message_id = sent["data"]["messages"]["john@example.org"]["id"]

    response = call("messages/message", {"id": message_id, "_expansions": ["details"]})

    assert '"tag":"\\u003cb\\u003e \\u0026 \\u2028 é"' in response.content.decode()
    assert response.json()["data"]["details"]["subject"] == text
