"""Postal's routing table: the API's four actions, any of four methods (§1.1), and the JWKS."""

from __future__ import annotations

import re
from typing import Literal, cast

import attrs

Endpoint = Literal["send/message", "send/raw", "messages/message", "messages/deliveries"]
"""One of the four API actions, named by its path under `/api/v1/`."""

ROUTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH"})
"""Every routed method runs the action; Rails answers HEAD through the GET route."""

JWKS_METHODS = frozenset({"GET", "HEAD"})
"""The methods of `get ".well-known/jwks.json"`, the signing key's route (§2.5)."""

# Rails `match` routes take an optional `.format` suffix and ignore a trailing slash.
_API_PATH = re.compile(
    r"/api/v1/(send/message|send/raw|messages/message|messages/deliveries)(?:\.([^/.]+))?/?"
)

_JWKS_PATH = re.compile(r"/\.well-known/jwks\.json/?")


@attrs.frozen
class Route:
    """Where a path leads: the action and the format suffix it was called with."""

    endpoint: Endpoint
    format: str | None


def route(path: str) -> Route | None:
    """The API route for `path`, or `None` when Postal would answer 404."""
    match = _API_PATH.fullmatch(path)
    if match is None:
        return None
    return Route(cast("Endpoint", match.group(1)), match.group(2))


def is_jwks(path: str) -> bool:
    """Whether `path` is where Postal serves its signing key as a JWK Set."""
    return _JWKS_PATH.fullmatch(path) is not None


def endpoint_of(path: str) -> Endpoint | None:
    """The action `path` routes to, if any."""
    found = route(path)
    return None if found is None else found.endpoint


def fault_key(path: str) -> str:
    """What a fault's `path` is compared with: the action name, or the path itself.

    Accepts `"send/message"`, `"/api/v1/send/message"` (or any routed spelling of it)
    and plain paths such as `"/.well-known/jwks.json"`.
    """
    if not path.startswith("/"):
        path = f"/api/v1/{path}"
    return endpoint_of(path) or path
