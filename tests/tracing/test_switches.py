"""Tracing and `POSTAL_LOG` are off unless asked for, and then cost nothing to import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from postal_sdk import AsyncPostal, InvalidArgumentTypeError

SEND = """
import httpx
from postal_sdk import Message, Postal
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal

fake = FakePostal(domains=["example.com"])
with httpx.Client(transport=fake.transport()) as http, Postal(
    "http://postal.test", DEFAULT_API_KEY, http_client=http, **OPTIONS
) as postal:
    postal.send_message(Message(from_="app@example.com", to=["a@example.org"], plain_body="x"))
"""


def run(program: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(  # noqa: S603 - our own interpreter and program
        [sys.executable, "-c", textwrap.dedent(program)],
        capture_output=True,
        text=True,
        check=True,
        env={**{k: v for k, v in os.environ.items() if k != "POSTAL_LOG"}, **env},
    )


def test_an_untraced_client_imports_no_opentelemetry() -> None:
    program = "OPTIONS = {}\n" + SEND + "\nimport sys\nprint('opentelemetry' in sys.modules)"
    assert run(program).stdout.strip() == "False"


def test_tracing_true_records_with_the_global_provider() -> None:
    program = (
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        OPTIONS = {"tracing": True}
        """
        + textwrap.indent(SEND, "        ")
        + """
        print([span.name for span in exporter.get_finished_spans()])
        """
    )
    assert run(program).stdout.strip() == "['POST /api/v1/send/message']"


def test_tracing_without_opentelemetry_asks_for_the_extra() -> None:
    program = """
        import sys
        sys.modules["opentelemetry"] = None
        from postal_sdk import AsyncPostal, ConfigurationError
        try:
            AsyncPostal("http://postal.test", "key", tracing=True)
        except ConfigurationError as error:
            print(error)
        """
    assert "pip install 'postal-sdk[otel]'" in run(program).stdout


@pytest.mark.parametrize("wrong", ["yes", 1, None, object()])
def test_tracing_takes_a_bool_or_a_tracer_provider(wrong: object) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="tracing"):
        AsyncPostal("http://postal.test", "key", tracing=wrong)  # type: ignore[arg-type]


@pytest.mark.parametrize(("setting", "shown"), [("debug", True), ("INFO", False)])
def test_postal_log_sends_the_sdks_log_to_stderr(setting: str, shown: bool) -> None:
    result = run("OPTIONS = {}\n" + SEND, POSTAL_LOG=setting)
    # Each request is logged at debug level: shown with debug, not with info.
    line = "POST /api/v1/send/message: HTTP 200"
    assert (line in result.stderr) is shown
    if shown:
        assert "postal_sdk" in result.stderr
        assert "DEBUG" in result.stderr


def test_postal_log_info_shows_retries() -> None:
    program = (
        "from postal_sdk import Backoff\nfrom postal_sdk.testing import ServiceUnavailable\n"
        "OPTIONS = {'backoff': Backoff(0, 0, 0)}\n"
        + SEND.replace(
            'fake = FakePostal(domains=["example.com"])',
            'fake = FakePostal(domains=["example.com"])\n'
            "fake.add_fault(ServiceUnavailable(retry_after=0), times=1)",
        )
    )
    result = run(program, POSTAL_LOG="info")
    assert "retry 1 of 2" in result.stderr
    assert "INFO" in result.stderr


@pytest.mark.parametrize("setting", ["", "verbose"])
def test_postal_log_unset_or_unknown_changes_nothing(setting: str) -> None:
    program = (
        "import logging\nimport postal_sdk\n"
        "logger = logging.getLogger('postal_sdk')\n"
        "print(logger.level, logger.handlers)"
    )
    assert run(program, POSTAL_LOG=setting).stdout.strip() == "0 []"


def test_configure_logging_attaches_one_stderr_handler_at_the_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    from postal_sdk._logs import configure_logging

    logger = logging.getLogger("postal_sdk")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)

    configure_logging(" Debug ")

    [handler] = logger.handlers
    assert isinstance(handler, logging.StreamHandler)
    assert handler.stream is sys.stderr
    assert logger.level == logging.DEBUG


def test_configure_logging_ignores_a_value_it_does_not_know(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    from postal_sdk._logs import configure_logging

    logger = logging.getLogger("postal_sdk")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)

    configure_logging("loud")

    assert (logger.handlers, logger.level) == ([], logging.NOTSET)
