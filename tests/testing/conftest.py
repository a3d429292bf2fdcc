"""Fixtures: a fresh fake per test, reached in-process or over a real uvicorn server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from postal_sdk.testing import DEFAULT_API_KEY, FakePostal
from postal_sdk.testing._server import serve_in_thread

Call = Callable[..., httpx.Response]


class _CurrentFake:
    """An ASGI app forwarding to the running test's fake, so one server serves all tests."""

    def __init__(self) -> None:
        self.fake: FakePostal | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.fake is not None
        await self.fake.asgi_app(scope, receive, send)


@pytest.fixture(scope="session")
def shared_server() -> Iterator[tuple[_CurrentFake, str]]:
    current = _CurrentFake()
    with serve_in_thread(current, host="127.0.0.1", port=0) as base_url:
        yield current, base_url


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fake() -> FakePostal:
    return FakePostal()


@pytest.fixture(params=["transport", "http"])
def client_kwargs(request: pytest.FixtureRequest, fake: FakePostal) -> dict[str, Any]:
    """What an httpx client needs to reach the fake: in-process, or over real HTTP."""
    if request.param == "transport":
        return {
            "base_url": "http://postal.example.com",
            "transport": fake.transport(),
            "timeout": 5,
        }
    current, base_url = request.getfixturevalue("shared_server")
    current.fake = fake
    return {"base_url": base_url, "timeout": 5}


@pytest.fixture
def http(client_kwargs: dict[str, Any]) -> Iterator[httpx.Client]:
    """A client without an API key."""
    with httpx.Client(**client_kwargs) as client:
        yield client


@pytest.fixture
def api(client_kwargs: dict[str, Any]) -> Iterator[httpx.Client]:
    """A client that authenticates as the fake's main server."""
    headers = {"X-Server-API-Key": DEFAULT_API_KEY}
    with httpx.Client(headers=headers, **client_kwargs) as client:
        yield client


@pytest.fixture
def call(api: httpx.Client) -> Call:
    """POST JSON parameters to an action: `call("send/message", {...})`."""

    def post(endpoint: str, params: Any = None, **kwargs: Any) -> httpx.Response:
        return api.post(f"/api/v1/{endpoint}", json={} if params is None else params, **kwargs)

    return post


@pytest.fixture
def message_params() -> dict[str, Any]:
    """A send/message request Postal accepts."""
    return {
        "to": ["john@example.org"],
        "from": "App <app@example.com>",
        "subject": "Hi",
        "plain_body": "Hello",
    }


@pytest.fixture
def sent_id(call: Call, message_params: dict[str, Any]) -> int:
    """The id of a message sent to john@example.org."""
    reply = call("send/message", message_params).json()
    return int(reply["data"]["messages"]["john@example.org"]["id"])
