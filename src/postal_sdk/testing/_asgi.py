"""The fake as a plain ASGI application, for serving it over real HTTP.

Dropping a connection without a response is not part of ASGI: an app that raises or
returns without answering gets a 500 from uvicorn. The app therefore closes the
connection's socket itself, through the transport uvicorn's `receive` is bound to, and
then waits for uvicorn to notice the disconnect, so uvicorn sends nothing either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from postal_sdk.testing._exchange import Exchange, HTTPRequest

Scope = MutableMapping[str, Any]
ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Handler = Callable[[HTTPRequest], Exchange]


class ConnectionDropUnsupportedError(RuntimeError):
    """The ASGI server gives the app no way to close a connection without answering."""


class FakeASGIApp:
    """A `FakePostal` as an ASGI 3 application (HTTP and lifespan scopes).

    Get it from `FakePostal.asgi_app`. Faults that drop the connection need uvicorn
    (which `FakePostal.serve()` uses); everything else works under any ASGI server.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await _run_lifespan(receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # The client left before the request was complete: nothing to answer.
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
        )
        query = scope.get("query_string", b"").decode("latin-1")
        exchange = self._handler(HTTPRequest(scope["method"], scope["path"], query, headers, body))
        await anyio.sleep(exchange.delay)
        await _carry_out(exchange, receive, send)


async def _run_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _carry_out(exchange: Exchange, receive: Receive, send: Send) -> None:
    response = exchange.response
    if response is None:
        await _drop_connection(receive)
        return
    headers = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers
    ]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    if exchange.cut_at is None:
        await send({"type": "http.response.body", "body": response.body})
        return
    await send(
        {"type": "http.response.body", "body": response.body[: exchange.cut_at], "more_body": True}
    )
    await _drop_connection(receive)


async def _drop_connection(receive: Receive) -> None:
    """Close the socket under the request, then wait until the server has noticed."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    close = getattr(transport, "close", None)
    if not callable(close):
        raise ConnectionDropUnsupportedError(
            "this ASGI server gives the app no way to drop a connection; serve the fake "
            "with uvicorn (FakePostal.serve) or use FakePostal.transport()"
        )
    close()
    # The body was read in full, so the only message left is the disconnect.
    await receive()
