"""One OpenTelemetry span per API call, on asyncio, trio and the sync client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from postal_sdk import (
    AsyncPostal,
    MessageNotFound,
    Postal,
    ServerSuspended,
    UnauthenticatedFromAddress,
    UnexpectedResponseError,
)
from postal_sdk.models import Message
from postal_sdk.testing import DEFAULT_API_KEY, BadGateway, FakePostal, ServiceUnavailable

SECRET_BODY = "the secret plain body"


def welcome(sender: str = "app@example.com") -> Message:
    return Message(
        from_=sender,
        to=["john@example.org", "jane@example.org"],
        subject="Welcome",
        plain_body=SECRET_BODY,
    )


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = exporter.get_finished_spans()
    return span


def everything_recorded(span: ReadableSpan) -> str:
    events = [(event.name, dict(event.attributes or {})) for event in span.events]
    return json.dumps([span.name, dict(span.attributes or {}), events], default=str)


def check_send_span(span: ReadableSpan, fake: FakePostal) -> None:
    attributes: dict[str, Any] = dict(span.attributes or {})
    assert span.name == "POST /api/v1/send/message"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    ids = sorted(message.id for message in fake.outbox[0].created)
    assert attributes == {
        "http.request.method": "POST",
        "server.address": "postal.test",
        "server.port": 80,
        "url.full": "http://postal.test/api/v1/send/message",
        "url.scheme": "http",
        "postal.endpoint": "send/message",
        "http.response.status_code": 200,
        "postal.message.ids": tuple(sorted(attributes["postal.message.ids"])),
    }
    assert sorted(attributes["postal.message.ids"]) == ids


def check_nothing_secret(span: ReadableSpan) -> None:
    recorded = everything_recorded(span)
    assert DEFAULT_API_KEY not in recorded
    assert SECRET_BODY not in recorded
    assert "Welcome" not in recorded


@pytest.mark.anyio
async def test_a_send_is_one_client_span_with_http_and_postal_attributes(
    async_postal: AsyncPostal, fake: FakePostal, exporter: InMemorySpanExporter
) -> None:
    await async_postal.send_message(welcome())

    span = only_span(exporter)
    check_send_span(span, fake)
    check_nothing_secret(span)


def test_a_sync_send_is_one_client_span_with_http_and_postal_attributes(
    postal: Postal, fake: FakePostal, exporter: InMemorySpanExporter
) -> None:
    postal.send_message(welcome())

    span = only_span(exporter)
    check_send_span(span, fake)
    check_nothing_secret(span)


@pytest.mark.anyio
async def test_retries_are_events_of_the_one_span(
    async_postal: AsyncPostal, fake: FakePostal, exporter: InMemorySpanExporter
) -> None:
    fake.add_fault(ServiceUnavailable(retry_after=0), path="send/message", times=2)

    await async_postal.send_message(welcome())

    span = only_span(exporter)
    assert [event.name for event in span.events] == ["postal.retry", "postal.retry"]
    first, second = (dict(event.attributes or {}) for event in span.events)
    assert first == {
        "postal.retry.number": 1,
        "postal.retry.delay": 0.0,
        "postal.retry.cause": "HTTP 503",
    }
    assert second["postal.retry.number"] == 2
    assert span.attributes is not None
    assert span.attributes["http.request.resend_count"] == 2
    assert span.attributes["http.response.status_code"] == 200
    check_nothing_secret(span)


def test_sync_retries_are_events_of_the_one_span(
    postal: Postal, fake: FakePostal, exporter: InMemorySpanExporter
) -> None:
    fake.add_fault(ServiceUnavailable(retry_after=0), path="send/message", times=1)

    postal.send_message(welcome())

    span = only_span(exporter)
    assert [event.name for event in span.events] == ["postal.retry"]
    assert span.attributes is not None
    assert span.attributes["http.request.resend_count"] == 1


@pytest.mark.anyio
async def test_a_postal_error_names_its_type_and_code(
    async_postal: AsyncPostal, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(UnauthenticatedFromAddress):
        await async_postal.send_message(welcome(sender="app@unverified.example"))

    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "postal_sdk.errors.UnauthenticatedFromAddress"
    assert span.attributes["postal.error.code"] == "UnauthenticatedFromAddress"
    assert span.attributes["http.response.status_code"] == 200
    assert [event.name for event in span.events] == ["exception"]
    check_nothing_secret(span)


def test_a_lookup_records_the_message_id_it_asked_for(
    postal: Postal, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(MessageNotFound):
        postal.get_message(424242)

    span = only_span(exporter)
    assert span.name == "POST /api/v1/messages/message"
    assert span.attributes is not None
    assert span.attributes["postal.endpoint"] == "messages/message"
    assert span.attributes["postal.message.id"] == 424242
    assert span.attributes["postal.error.code"] == "MessageNotFound"


@pytest.mark.anyio
async def test_an_http_error_status_is_the_error_type(
    async_postal: AsyncPostal, fake: FakePostal, exporter: InMemorySpanExporter
) -> None:
    fake.add_fault(BadGateway(), path="send/message")

    with pytest.raises(UnexpectedResponseError):
        await async_postal.with_options(max_retries=0).send_message(welcome())

    span = only_span(exporter)
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 502
    assert span.attributes["error.type"] == "502"


@pytest.mark.anyio
async def test_each_call_of_a_batch_has_its_own_span(
    async_postal: AsyncPostal, exporter: InMemorySpanExporter
) -> None:
    async with async_postal.send_many([welcome() for _ in range(5)], concurrency=3) as outcomes:
        assert all([outcome.ok async for outcome in outcomes])

    spans = exporter.get_finished_spans()
    assert len(spans) == 5
    assert len({span.context.span_id for span in spans}) == 5


@pytest.mark.anyio
async def test_the_span_is_a_child_of_the_callers_span(
    async_postal: AsyncPostal, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with provider.get_tracer("app").start_as_current_span("signup") as parent:
        await async_postal.send_message(welcome())

    sent, signup = exporter.get_finished_spans()
    assert sent.parent is not None
    assert sent.parent.span_id == parent.get_span_context().span_id
    assert signup.name == "signup"


@pytest.mark.anyio
async def test_fetching_the_webhook_keys_is_a_traced_call_too(
    async_postal: AsyncPostal, exporter: InMemorySpanExporter
) -> None:
    await async_postal.fetch_webhook_keys()

    span = only_span(exporter)
    assert span.name == "GET /.well-known/jwks.json"
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 200


def test_a_suspended_server_is_recorded_by_the_sync_client(
    postal: Postal, fake: FakePostal, exporter: InMemorySpanExporter
) -> None:
    fake.server.suspended = True

    with pytest.raises(ServerSuspended):
        postal.send_message(welcome())

    assert only_span(exporter).attributes == {
        **dict(only_span(exporter).attributes or {}),
        "postal.error.code": "ServerSuspended",
        "error.type": "postal_sdk.errors.ServerSuspended",
    }


def test_the_sync_batchs_sends_are_children_of_the_callers_span(
    postal: Postal, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with (
        provider.get_tracer("app").start_as_current_span("newsletter") as parent,
        postal.send_many([welcome() for _ in range(4)], concurrency=2) as outcomes,
    ):
        assert all(outcome.ok for outcome in outcomes)

    *sends, newsletter = exporter.get_finished_spans()
    assert newsletter.name == "newsletter"
    assert len(sends) == 4
    for span in sends:
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
