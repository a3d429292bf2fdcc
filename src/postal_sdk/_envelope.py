"""Postal's reply envelope: `{status, time, flags, data}` to data, or to the right exception.

The mapping from an HTTP reply to an outcome lives here, once, for every endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from postal_sdk.errors import (
    ERROR_CLASSES,
    REDACTED,
    APIError,
    InvalidServerAPIKey,
    ParameterError,
    UnexpectedResponseError,
    redact,
)

__all__ = ["EXCERPT_LENGTH", "excerpt", "unwrap"]

EXCERPT_LENGTH = 200

_HINTS = {
    400: "Postal could not parse the request body",
    403: "Postal answers 403 with no body when the Host is not its configured web hostname: "
    "use that hostname in base_url",
    404: "no such path: check that base_url points at the Postal web host",
}


def excerpt(content: bytes, secret: str) -> str:
    """The start of a body, fit for an error message, with the API key cut out."""
    text = content[: EXCERPT_LENGTH * 4].decode("utf-8", errors="replace")
    return redact(text, secret)[:EXCERPT_LENGTH]


def unwrap(status_code: int, content: bytes, secret: str) -> Any:
    """The `data` of a success envelope; raises for every other reply."""
    if status_code != 200:
        reason = _HINTS.get(status_code, "not a Postal envelope")
        raise UnexpectedResponseError(status_code, excerpt(content, secret), reason)
    try:
        envelope = json.loads(content)
    except ValueError:
        raise UnexpectedResponseError(
            status_code, excerpt(content, secret), "the body is not JSON"
        ) from None
    if not isinstance(envelope, dict) or "data" not in envelope:
        raise UnexpectedResponseError(
            status_code, excerpt(content, secret), "the JSON is not a Postal envelope"
        )
    status = envelope.get("status")
    data = envelope["data"]
    if status == "success":
        return data
    if status == "error" and isinstance(data, dict) and isinstance(data.get("code"), str):
        raise _api_error(data)
    if status == "parameter-error" and isinstance(data, dict):
        message = data.get("message")
        raise ParameterError(message if isinstance(message, str) else None, data)
    raise UnexpectedResponseError(
        status_code, excerpt(content, secret), f"unknown envelope status {status!r}"
    )


def _api_error(data: Mapping[str, Any]) -> APIError:
    code: str = data["code"]
    cls = ERROR_CLASSES.get(code, APIError)
    if cls is InvalidServerAPIKey and "token" in data:
        # Postal echoes the rejected key back; it must not reach logs or tracebacks.
        data = {**data, "token": REDACTED}
    message = data.get("message")
    return cls(code, message if isinstance(message, str) else None, data)
