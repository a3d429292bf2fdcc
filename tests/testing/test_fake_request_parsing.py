"""Parameters come from a JSON body, else a `params` field holding JSON, else nowhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from postal_sdk.testing import FakePostal

Call = Callable[..., httpx.Response]
SEND = "/api/v1/send/message"


def test_json_mode_needs_the_content_type_in_lower_case(
    api: httpx.Client, message_params: dict[str, Any]
) -> None:
    response = api.post(
        SEND, content=json.dumps(message_params), headers={"Content-Type": "Application/JSON"}
    )

    # Not JSON mode and no `params` field: the parameters are empty.
    assert response.json()["data"]["code"] == "NoRecipients"


def test_a_json_content_type_with_a_charset_is_json_mode(
    api: httpx.Client, message_params: dict[str, Any]
) -> None:
    response = api.post(
        SEND,
        content=json.dumps(message_params),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    assert response.json()["status"] == "success"


def test_params_can_be_json_in_the_query_string(
    api: httpx.Client, message_params: dict[str, Any]
) -> None:
    response = api.post(SEND, params={"params": json.dumps(message_params)})

    assert response.json()["status"] == "success"


def test_params_can_be_json_in_a_urlencoded_form(
    api: httpx.Client, message_params: dict[str, Any]
) -> None:
    response = api.post(SEND, data={"params": json.dumps(message_params)})

    assert response.json()["status"] == "success"


def test_params_can_be_json_in_a_multipart_form(
    api: httpx.Client, message_params: dict[str, Any]
) -> None:
    response = api.post(
        SEND,
        data={"params": json.dumps(message_params)},
        files={"ignored": ("a.txt", b"file content")},
    )

    assert response.json()["status"] == "success"


def test_a_post_without_content_type_is_read_as_a_form(
    api: httpx.Client, message_params: dict[str, Any]
) -> None:
    body = httpx.QueryParams({"params": json.dumps(message_params)})

    response = api.post(SEND, content=str(body).encode())

    assert response.json()["status"] == "success"


def test_plain_form_fields_are_ignored(api: httpx.Client, message_params: dict[str, Any]) -> None:
    response = api.post(SEND, data=message_params)

    assert response.json()["data"]["code"] == "NoRecipients"


def test_a_blank_params_field_means_no_parameters(api: httpx.Client) -> None:
    response = api.post("/api/v1/messages/message", data={"params": "  "})

    assert response.json()["status"] == "parameter-error"


def test_a_body_of_another_type_is_ignored(
    api: httpx.Client, message_params: dict[str, Any]
) -> None:
    response = api.post(
        SEND, content=json.dumps(message_params), headers={"Content-Type": "text/plain"}
    )

    assert response.json()["data"]["code"] == "NoRecipients"


def test_invalid_json_gives_400_with_an_empty_body(api: httpx.Client) -> None:
    response = api.post(SEND, content=b"{oops", headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.content == b""


def test_invalid_json_gives_a_json_400_to_a_json_client(api: httpx.Client) -> None:
    response = api.post(
        SEND,
        content=b"[1, NaN]",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )

    assert response.status_code == 400
    assert response.json() == {"status": 400, "error": "Bad Request"}


def test_invalid_json_in_the_params_field_gives_500(api: httpx.Client) -> None:
    response = api.post(SEND, data={"params": "{oops"})

    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "something went wrong" in response.text


def test_invalid_json_in_the_params_field_gives_a_json_500_to_a_json_client(
    api: httpx.Client,
) -> None:
    response = api.post(SEND, data={"params": "{oops"}, headers={"Accept": "application/json"})

    assert response.status_code == 500
    assert response.json() == {"status": 500, "error": "Internal Server Error"}


@pytest.mark.parametrize("params", ["[1]", "null", "5"])
def test_a_params_field_that_is_not_an_object_gives_500(api: httpx.Client, params: str) -> None:
    response = api.post(SEND, params={"params": params})

    assert response.status_code == 500


def test_a_json_array_body_is_wrapped_and_its_keys_are_missing(
    call: Call, message_params: dict[str, Any]
) -> None:
    response = call("send/message", [message_params])

    assert response.json()["data"]["code"] == "NoRecipients"


def test_an_empty_json_body_means_no_parameters(api: httpx.Client) -> None:
    response = api.post(SEND, headers={"Content-Type": "application/json"})

    assert response.json()["data"]["code"] == "NoRecipients"


def test_json_mode_also_reads_the_query_string_as_strings(api: httpx.Client) -> None:
    # `id` arrives as the string "1", which Postal cannot look up.
    response = api.post("/api/v1/messages/message", params={"id": "1"}, json={})

    assert response.status_code == 500


def test_the_json_body_wins_over_the_query_string(api: httpx.Client) -> None:
    response = api.post("/api/v1/messages/message", params={"id": "1"}, json={"id": 1})

    assert response.json()["data"]["code"] == "MessageNotFound"


def test_json_mode_drops_nulls_from_arrays(
    call: Call, fake: FakePostal, message_params: dict[str, Any]
) -> None:
    response = call("send/message", {**message_params, "to": [None, "a@example.org", [None]]})

    assert list(response.json()["data"]["messages"]) == ["a@example.org"]


def test_form_mode_keeps_nulls_and_skips_them_as_recipients(
    api: httpx.Client, message_params: dict[str, Any]
) -> None:
    params = {**message_params, "to": [None, "a@example.org"]}

    response = api.post(SEND, data={"params": json.dumps(params)})

    assert list(response.json()["data"]["messages"]) == ["a@example.org"]


def test_multipart_parts_without_a_name_are_ignored(
    api: httpx.Client, message_params: dict[str, Any]
) -> None:
    body = (
        "--b\r\nContent-Disposition: form-data\r\n\r\nnameless\r\n"
        '--b\r\nContent-Disposition: form-data; name="params"\r\n\r\n'
        f"{json.dumps(message_params)}\r\n--b--\r\n"
    )

    response = api.post(
        SEND, content=body.encode(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )

    assert response.json()["status"] == "success"


def test_media_type_parameters_in_accept_are_understood(api: httpx.Client) -> None:
    response = api.post(
        SEND,
        content=b"{",
        headers={"Content-Type": "application/json", "Accept": "application/json; charset=utf-8"},
    )

    assert response.json() == {"status": 400, "error": "Bad Request"}
