"""Faults, in-process and over real HTTP: what the client sees and what Postal processed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from postal_sdk.testing import (
    BadGateway,
    DropAfterProcessing,
    DropBeforeProcessing,
    FakePostal,
    IncompleteBody,
    Latency,
    NonJSONBody,
    ServiceUnavailable,
    TruncatedBody,
)

Call = Callable[..., httpx.Response]


def test_latency_delays_the_response_of_a_processed_request(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    fake.add_fault(Latency(0.2), times=1)

    started = time.monotonic()
    response = call("send/message", message_params)

    assert time.monotonic() - started >= 0.2
    assert response.json()["status"] == "success"
    assert fake.requests[0].fault == Latency(0.2)


def test_latency_beyond_the_read_timeout_times_out_after_processing(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    fake.add_fault(Latency(1.0), times=1)

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        call("send/message", message_params, timeout=0.1)

    assert time.monotonic() - started < 0.9
    assert len(fake.outbox) == 1


def test_a_drop_before_processing_loses_the_request(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    fake.add_fault(DropBeforeProcessing(), times=1)

    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        call("send/message", message_params)

    assert fake.outbox == ()
    [request] = fake.requests
    assert (request.processed, request.status_code) == (False, None)
    assert request.json() == message_params


def test_a_drop_after_processing_sends_the_message_anyway(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    fake.add_fault(DropAfterProcessing(), times=1)

    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        call("send/message", message_params)

    assert len(fake.outbox) == 1
    [request] = fake.requests
    assert (request.processed, request.status_code) == (True, None)


def test_a_bad_gateway_is_the_proxys_html_page(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    fake.add_fault(BadGateway(), times=1)

    response = call("send/message", message_params)

    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert "<h1>502 Bad Gateway</h1>" in response.text
    assert fake.outbox == ()
    assert not fake.requests[0].processed


def test_service_unavailable_says_when_to_retry(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    fake.add_fault(ServiceUnavailable(retry_after=7), times=1)
    fake.add_fault(ServiceUnavailable(retry_after="Wed, 21 Oct 2015 07:28:00 GMT"), times=1)

    first = call("send/message", message_params)
    second = call("send/message", message_params)

    assert (first.status_code, first.headers["retry-after"]) == (503, "7")
    assert second.headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert fake.outbox == ()


def test_a_non_json_body_comes_with_200(fake: FakePostal, call: Call) -> None:
    fake.add_fault(NonJSONBody(body="OK", content_type="text/plain"), times=1)

    response = call("messages/message", {"id": 1})

    assert (response.status_code, response.text) == (200, "OK")
    assert response.headers["content-type"] == "text/plain"
    assert not fake.requests[0].processed


def test_a_truncated_body_is_cut_json_with_a_matching_length(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    fake.add_fault(TruncatedBody(), times=1)

    response = call("send/message", message_params)

    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.text.startswith('{"status":"success"')
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(fake.outbox) == 1


def test_an_incomplete_body_fails_the_read_after_processing(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    fake.add_fault(IncompleteBody(), times=1)

    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        call("send/message", message_params)

    assert len(fake.outbox) == 1
    assert fake.requests[0].status_code == 200


def test_a_fault_applies_to_its_path_only_and_for_its_number_of_times(
    fake: FakePostal, call: Call, message_params: dict[str, Any]
) -> None:
    rule = fake.add_fault(BadGateway(), path="/api/v1/send/message", times=2)

    lookups = [call("messages/message", {"id": 1}).status_code for _ in range(2)]
    sends = [call("send/message", message_params).status_code for _ in range(3)]

    assert lookups == [200, 200]
    assert sends == [502, 502, 200]
    assert (rule.used, rule.exhausted, rule.path) == (2, True, "send/message")


def test_a_fault_without_times_applies_always(fake: FakePostal, call: Call) -> None:
    rule = fake.add_fault(ServiceUnavailable(), path="messages/message")

    statuses = [call("messages/message", {"id": 1}).status_code for _ in range(3)]

    assert statuses == [503, 503, 503]
    assert not rule.exhausted


def test_a_fault_can_target_a_path_outside_the_api(fake: FakePostal, http: httpx.Client) -> None:
    fake.add_fault(BadGateway(), path="/.well-known/jwks.json")

    assert http.get("/.well-known/jwks.json").status_code == 502
    assert http.get("/.well-known/other").status_code == 404


def test_the_first_applicable_rule_wins_and_faults_can_be_cleared(
    fake: FakePostal, call: Call
) -> None:
    fake.add_fault(BadGateway(), path="messages/deliveries", times=1)
    fake.add_fault(ServiceUnavailable(), times=1)
    fake.add_fault(NonJSONBody())

    statuses = [call("messages/message", {"id": 1}).status_code for _ in range(2)]
    fake.clear_faults()

    assert statuses == [503, 200]
    assert call("messages/message", {"id": 1}).json()["status"] == "error"
