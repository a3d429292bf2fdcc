"""The client's side of the transport's bounds: `total_timeout` and `max_response_size` checked
when the client is built, refused with a caller's own `http_client`; sends queued when the
client closes; one client used from two event loops at once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from postal_sdk import (
    APIConnectionError,
    APITimeoutError,
    AsyncPostal,
    ClientClosedError,
    ConfigurationError,
    InvalidArgumentTypeError,
    Postal,
    PostalError,
    SendResult,
)
from tests.e2e.support import message
from tests.transport.support import Gate, ScriptedServer
from tests.transport.test_hostile_servers import OK, trickled_body

URL = "https://postal.example.com"
CLIENTS = [AsyncPostal, Postal]


@pytest.mark.parametrize("cls", CLIENTS)
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("total_timeout", 0),
        ("total_timeout", -1.0),
        ("total_timeout", float("nan")),
        ("total_timeout", float("inf")),
        ("max_response_size", 0),
        ("max_response_size", -5),
    ],
)
def test_a_bound_out_of_range_is_a_configuration_error_naming_it(
    cls: Any, option: str, value: object
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        cls(URL, "key", **{option: value})
    assert caught.value.argument == option


@pytest.mark.parametrize("cls", CLIENTS)
@pytest.mark.parametrize(
    ("option", "value"),
    [("total_timeout", "10"), ("total_timeout", True), ("max_response_size", 1.5)],
)
def test_a_bound_of_the_wrong_type_is_refused_naming_it(
    cls: Any, option: str, value: object
) -> None:
    with pytest.raises(InvalidArgumentTypeError) as caught:
        cls(URL, "key", **{option: value})
    assert caught.value.argument == option


@pytest.mark.parametrize(
    ("cls", "http"), [(AsyncPostal, httpx.AsyncClient), (Postal, httpx.Client)]
)
@pytest.mark.parametrize(("option", "value"), [("total_timeout", 5.0), ("max_response_size", 10)])
def test_a_bound_with_the_callers_own_http_client_is_a_configuration_error(
    cls: Any, http: Any, option: str, value: object
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        cls(URL, "key", http_client=http(), **{option: value})
    assert caught.value.argument == option
    assert "http_client" in str(caught.value)


@pytest.mark.parametrize(
    ("cls", "http"), [(AsyncPostal, httpx.AsyncClient), (Postal, httpx.Client)]
)
def test_with_options_refuses_a_total_timeout_for_the_callers_own_http_client(
    cls: Any, http: Any
) -> None:
    postal = cls(URL, "key", http_client=http())

    with pytest.raises(ConfigurationError, match="total_timeout"):
        postal.with_options(total_timeout=5.0)


@pytest.mark.parametrize("cls", CLIENTS)
def test_with_options_checks_the_total_timeout(cls: Any) -> None:
    with pytest.raises(ConfigurationError, match="total_timeout"):
        cls(URL, "key").with_options(total_timeout=0)


@pytest.fixture
def gate() -> Iterator[tuple[Gate, str]]:
    gate = Gate(OK)
    with ScriptedServer(gate) as server:
        try:
            yield gate, server.url.rstrip("/")
        finally:
            gate.opened.set()


@pytest.mark.anyio
async def test_sends_queued_for_a_slot_when_the_client_closes_raise_client_closed_error(
    gate: tuple[Gate, str],
) -> None:
    server, url = gate
    postal = AsyncPostal(url, "key", max_concurrency=1, max_retries=0)
    outcomes: list[object] = []

    async def send() -> None:
        try:
            outcomes.append(await postal.send_message(message()))
        except PostalError as error:
            outcomes.append(error)

    async with anyio.create_task_group() as tasks:
        for _ in range(3):
            tasks.start_soon(send)
        deadline = time.monotonic() + 10
        while server.requests < 1:
            assert time.monotonic() < deadline, "the first send never reached the server"
            await anyio.sleep(0.01)
        await postal.aclose()
        server.opened.set()

    assert server.requests == 1
    # The send in flight ends as its transport lets it (trio's httpcore pool cuts it off).
    assert sum(isinstance(outcome, (SendResult, APIConnectionError)) for outcome in outcomes) == 1
    assert sum(isinstance(outcome, ClientClosedError) for outcome in outcomes) == 2


def test_one_client_used_from_two_event_loops_at_once_is_refused_not_hung(
    gate: tuple[Gate, str],
) -> None:
    server, url = gate
    postal = AsyncPostal(url, "key", max_retries=0)
    first: list[object] = []
    loop = asyncio.new_event_loop()

    def other_loop() -> None:
        first.append(loop.run_until_complete(postal.send_message(message("first"))))

    thread = threading.Thread(target=other_loop)
    thread.start()
    try:
        while server.requests < 1:
            thread.join(0.01)
        with pytest.raises(ConfigurationError, match="one event loop"):
            asyncio.run(postal.send_message(message("second")))
    finally:
        server.opened.set()
        thread.join(10)
        # Closed on the loop its connection belongs to.
        loop.run_until_complete(postal.aclose())
        loop.close()
    assert len(first) == 1
    assert isinstance(first[0], SendResult)
    assert server.requests == 1


@pytest.mark.anyio
async def test_a_total_timeout_from_with_options_bounds_that_copys_sends() -> None:
    with ScriptedServer(trickled_body) as server:
        async with AsyncPostal(server.url.rstrip("/"), "key", max_retries=0) as postal:
            with pytest.raises(APITimeoutError, match=r"total_timeout \(0.5 s\)"):
                await postal.with_options(total_timeout=0.5).send_message(message())
