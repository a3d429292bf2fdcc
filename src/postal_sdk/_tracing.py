"""OpenTelemetry spans for the SDK's API calls.

Nothing is imported from OpenTelemetry unless a client is built with `tracing=`; an
untraced client pays one `is None` test per call. A traced client wraps each API call
(every retry of it included) in one span of kind CLIENT, with the attributes of
OpenTelemetry's HTTP client conventions and `postal.*` ones. Spans never hold the API key,
a request body or a message's content.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from postal_sdk import __version__
from postal_sdk.errors import APIError, ConfigurationError, InvalidArgumentTypeError

if TYPE_CHECKING:
    import httpx
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = ["Call", "Tracing", "make_tracing"]

_API_PREFIX = "/api/v1/"


class Tracing:
    """The tracer of one client (shared by its `with_options` copies)."""

    def __init__(self, provider: TracerProvider | None) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, StatusCode

        self._current_span = trace.get_current_span
        self._client = SpanKind.CLIENT
        self._error = StatusCode.ERROR
        # Without a provider, the global one: also the one set after this client was built.
        self._tracer: Tracer = trace.get_tracer("postal_sdk", __version__, tracer_provider=provider)
        self._url_attributes: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def call(
        self, method: str, url: httpx.URL, payload: Mapping[str, Any] | None
    ) -> Iterator[Call]:
        """A span around one API call, current while the call runs (retries included)."""
        path = url.path
        attributes = {**self._attributes(url), "http.request.method": method}
        message_id = payload.get("id") if payload is not None else None
        if isinstance(message_id, int):
            attributes["postal.message.id"] = message_id
        with self._tracer.start_as_current_span(
            f"{method} {path}",
            kind=self._client,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            call = Call(span)
            try:
                yield call
            except BaseException as error:
                # An HTTP error status wins over the exception it became (the convention).
                if call.status_code is None or call.status_code < 400:
                    kind = type(error)
                    span.set_attribute("error.type", f"{kind.__module__}.{kind.__qualname__}")
                if isinstance(error, APIError) and error.code:
                    span.set_attribute("postal.error.code", error.code)
                if isinstance(error, Exception):
                    # The SDK's error texts are redacted of the API key.
                    span.record_exception(error)
                span.set_status(self._error, type(error).__name__)
                raise

    def on_retry(self, retry: int, delay: float, cause: str) -> None:
        """Note a retry on the call's span (the current one): an event and the resend count."""
        span = self._current_span()
        span.set_attribute("http.request.resend_count", retry)
        span.add_event(
            "postal.retry",
            {
                "postal.retry.number": retry,
                "postal.retry.delay": delay,
                "postal.retry.cause": cause,
            },
        )

    def _attributes(self, url: httpx.URL) -> dict[str, Any]:
        key = str(url)
        found = self._url_attributes.get(key)
        if found is None:
            port = url.port or (443 if url.scheme == "https" else 80)
            path = url.path
            # Rebuilt from its parts: userinfo or a query string never reach a span.
            shown_port = f":{url.port}" if url.port else ""
            found = self._url_attributes[key] = {
                "server.address": url.host,
                "server.port": port,
                "url.full": f"{url.scheme}://{url.host}{shown_port}{path}",
                "url.scheme": url.scheme,
                "postal.endpoint": path.removeprefix(_API_PREFIX),
            }
        return found


class Call:
    """What the span of one API call learns as the call goes on."""

    def __init__(self, span: Span) -> None:
        self._span = span
        self.status_code: int | None = None

    def responded(self, status_code: int) -> None:
        """The HTTP status of the reply that ended the call (after any retries)."""
        self.status_code = status_code
        self._span.set_attribute("http.response.status_code", status_code)
        if status_code >= 400:
            self._span.set_attribute("error.type", str(status_code))

    def succeeded(self, data: Any) -> None:
        """The reply's `data`: for a send, the ids of the messages Postal queued."""
        messages = data.get("messages") if isinstance(data, Mapping) else None
        if isinstance(messages, Mapping):
            ids = [
                sent["id"]
                for sent in messages.values()
                if isinstance(sent, Mapping) and isinstance(sent.get("id"), int)
            ]
            self._span.set_attribute("postal.message.ids", ids)


def make_tracing(tracing: bool | TracerProvider) -> Tracing | None:
    """The client's `tracing=` option, checked: `False`, `True` or a `TracerProvider`."""
    if tracing is False:
        return None
    if tracing is not True and not callable(getattr(tracing, "get_tracer", None)):
        raise InvalidArgumentTypeError(
            "tracing", f"must be a bool or an OpenTelemetry TracerProvider, not {tracing!r}"
        )
    try:
        return Tracing(None if tracing is True else tracing)
    except ImportError as error:
        raise ConfigurationError(
            "tracing", "needs OpenTelemetry: pip install 'postal-sdk[otel]'"
        ) from error
