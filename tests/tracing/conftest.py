"""An OpenTelemetry SDK that keeps the spans in memory, and clients traced with it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from postal_sdk import AsyncPostal, Backoff, Postal
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal

BASE_URL = "http://postal.test"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def fake() -> FakePostal:
    return FakePostal(domains=["example.com"])


@pytest.fixture
async def async_postal(fake: FakePostal, provider: TracerProvider) -> AsyncIterator[AsyncPostal]:
    async with (
        httpx.AsyncClient(transport=fake.transport()) as http,
        AsyncPostal(
            BASE_URL, DEFAULT_API_KEY, http_client=http, backoff=Backoff(0, 0, 0), tracing=provider
        ) as postal,
    ):
        yield postal


@pytest.fixture
def postal(fake: FakePostal, provider: TracerProvider) -> Iterator[Postal]:
    with (
        httpx.Client(transport=fake.transport()) as http,
        Postal(
            BASE_URL, DEFAULT_API_KEY, http_client=http, backoff=Backoff(0, 0, 0), tracing=provider
        ) as postal,
    ):
        yield postal
