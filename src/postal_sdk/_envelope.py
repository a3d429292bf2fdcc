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

__all__ = ["EXCERPT_LENGTH", "excerpt", "redirect_error", "unwrap"]

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


def redirect_error(
    status_code: int, headers: Mapping[str, str], secret: str
) -> UnexpectedResponseError:
    """The error for a 3xx reply, which the SDK never follows: it names the `Location`."""
    location = headers.get("location")
    where = f"to {redact(location, secret)!r}" if location else "with no Location"
    return UnexpectedResponseError(
        status_code,
        "",
        f"a redirect {where}, not followed so that the API key and the message stay with "
        "base_url's origin: point base_url at the Postal web host itself",
    )


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
        raise _api_error(_redacted(data, secret))
    if status == "parameter-error" and isinstance(data, dict):
        data = _redacted(data, secret)
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


def _redacted(value: Any, secret: str) -> Any:
    """`value` (a JSON value) with the API key cut out of every string, keys included.

    Postal echoes the key as `token` in InvalidServerAPIKey; a proxy or a newer Postal
    may echo it anywhere, and an error's text and `.data` reach logs and tracebacks.
    """
    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, dict):
        return {_redacted(key, secret): _redacted(item, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, secret) for item in value]
    return value
