"""Serving the fake over real HTTP: uvicorn on a background thread.

uvicorn is an optional dependency (the `testing` extra), imported only here.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from postal_sdk.testing._asgi import ASGIApp

if TYPE_CHECKING:
    import uvicorn

STARTUP_TIMEOUT = 10.0
"""Seconds to wait for uvicorn to accept connections."""


@contextmanager
def serve_in_thread(
    app: ASGIApp, *, host: str, port: int, tls: Mapping[str, Any] | None = None
) -> Iterator[str]:
    """Run `app` under uvicorn on a thread; yield its base URL while it serves.

    With `tls` (uvicorn's `ssl_*` options: `ssl_certfile`, `ssl_keyfile`, `ssl_ca_certs`,
    `ssl_cert_reqs`), it serves HTTPS.
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError(
            "serving the fake Postal over HTTP needs uvicorn: "
            "pip install 'postal-sdk[testing]' (or use FakePostal.transport())"
        ) from exc

    # Binding here, not in uvicorn, gives the port (even an ephemeral one) before start.
    # IPPROTO_TCP explicitly: asyncio turns TCP_NODELAY on for accepted connections only
    # when the listener's proto says TCP, and without it every reply that uvicorn writes in
    # two parts waits ~40 ms for the client's delayed ACK.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen()
        bound_port = listener.getsockname()[1]
        config = uvicorn.Config(
            app,
            http="h11",  # The connection-dropping faults rely on the h11 protocol's transport.
            ws="none",
            lifespan="off",
            loop="asyncio",
            log_config=None,  # Leave the host application's logging alone.
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            **(tls or {}),
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [listener]},
            name=f"fake-postal-{bound_port}",
            daemon=True,
        )
        thread.start()
        try:
            _wait_until_started(server, thread)
            yield f"{'https' if tls else 'http'}://{host}:{bound_port}"
        finally:
            server.should_exit = True
            thread.join()
    finally:
        listener.close()


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake Postal server did not start")
        time.sleep(0.005)


@asynccontextmanager
async def serve_in_thread_async(app: ASGIApp, *, host: str, port: int) -> AsyncIterator[str]:
    """`serve_in_thread` whose start and stop run on a worker thread, not the event loop."""
    serving = serve_in_thread(app, host=host, port=port)
    base_url = await anyio.to_thread.run_sync(serving.__enter__)
    try:
        yield base_url
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(serving.__exit__, None, None, None)
