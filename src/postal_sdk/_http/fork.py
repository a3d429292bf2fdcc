"""Which process a transport's connections belong to, so that a forked child leaves them be.

A client built before `os.fork()` (gunicorn `--preload`, Celery's prefork pool) holds
connections, and under asyncio transports of the parent's event loop. The child must not
close them: closing an asyncio transport removes its socket from the loop's epoll
instance, which parent and child share, and the parent then never sees its replies. A
transport that finds `generation` changed since it opened its connections gives them to
`abandon` and opens fresh ones. What is abandoned stays referenced for the life of the
child, never closed nor collected (collecting would close it): the few descriptors it
holds are the price of leaving the parent's connections exactly as they were.
"""

from __future__ import annotations

import os

__all__ = ["abandon", "current"]

_generation = 0
_abandoned: list[object] = []


def current() -> int:
    """A number that changes in each child forked since the interpreter started."""
    return _generation


def abandon(inherited: object) -> None:
    """Keep `inherited` (connections of the parent process) unused and unclosed, for good."""
    _abandoned.append(inherited)


def _forked() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_forked)
