"""Checks and defaults for the client's options, applied when a client is built."""

from __future__ import annotations

import os

import httpx

from postal_sdk.errors import ConfigurationError, InvalidArgumentTypeError

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "check_max_concurrency",
    "check_max_response_size",
    "check_max_retries",
    "check_timeout",
    "check_total_timeout",
    "resolve_api_key",
    "resolve_base_url",
]

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=30.0)
"""Postal's send does a reverse-DNS lookup (up to ~15 s) and a DB insert per recipient."""

DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_CONCURRENCY = 100

DEFAULT_TOTAL_TIMEOUT = 120.0
"""Seconds one attempt may take in all: four times the default read timeout.

Room for Postal's slowest send (its reply may take the whole 30 s read timeout) and then
for reading the largest reply (`DEFAULT_MAX_RESPONSE_SIZE`) at under 1 MB/s; what it
stops is a server that trickles its reply, which the read timeout, counted per read, never
would."""

DEFAULT_MAX_RESPONSE_SIZE = 64 * 1024 * 1024
"""Bytes a reply may hold, head included: the largest reply Postal can give, with room.

That reply is `messages/message` with every expansion, of the largest message Postal
takes: 14 MiB, its `smtp_server.max_message_size` default (the HTTP API checks no size,
so this is the largest Postal accepts from its other door, and a proxy in front of the API
usually allows less). `raw_message` is that message in base64 (4/3 larger) with a newline
every 60 characters, written `\n` in JSON (62/60 larger): 14 MiB x 4/3 x 62/60 = 19.3 MiB.
`attachments` repeats the attachments in the same base64, at most another 19.3 MiB;
`plain_body` and `html_body` repeat the decoded text parts, at most 14 MiB more. Together
about 53 MiB; 64 MiB leaves room for JSON escaping and the other expansions, and still
stops a runaway server long before it costs the process its memory."""


def resolve_base_url(base_url: str | None) -> str:
    """The base URL from the argument or `POSTAL_BASE_URL`, checked, without a trailing slash."""
    if base_url is None:
        base_url = os.environ.get("POSTAL_BASE_URL")
        if not base_url:
            raise ConfigurationError(
                "base_url", "no Postal URL: pass base_url= or set POSTAL_BASE_URL"
            )
    if not isinstance(base_url, str):
        raise InvalidArgumentTypeError("base_url", f"must be a str, not {type(base_url).__name__}")
    try:
        url = httpx.URL(base_url.strip())
    except httpx.InvalidURL as exc:
        raise ConfigurationError("base_url", f"is not a URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            "base_url",
            f"needs http:// or https:// and a host, like https://postal.example.com, "
            f"not {base_url!r}",
        )
    if url.query or url.fragment:
        raise ConfigurationError("base_url", "must not have a query or fragment")
    path = url.path.rstrip("/")
    if "/api/" in f"{path}/":
        raise ConfigurationError(
            "base_url",
            f"give the Postal host only (like https://{url.host}), "
            f"without the API path {url.path!r}",
        )
    return str(url.copy_with(path=path or "/")).rstrip("/")


def resolve_api_key(api_key: str | None) -> str:
    """The API key from the argument or `POSTAL_API_KEY`, checked."""
    if api_key is None:
        api_key = os.environ.get("POSTAL_API_KEY")
        if api_key is None:
            raise ConfigurationError("api_key", "no API key: pass api_key= or set POSTAL_API_KEY")
    if not isinstance(api_key, str):
        raise InvalidArgumentTypeError("api_key", f"must be a str, not {type(api_key).__name__}")
    if not api_key.strip():
        raise ConfigurationError("api_key", "is empty")
    if any(char in api_key for char in "\r\n\0") or api_key != api_key.strip():
        raise ConfigurationError("api_key", "contains whitespace or control characters")
    return api_key


def check_timeout(timeout: float | httpx.Timeout) -> httpx.Timeout:
    """An `httpx.Timeout` from a number of seconds or a `Timeout`; negatives are refused."""
    if isinstance(timeout, httpx.Timeout):
        parts = (timeout.connect, timeout.read, timeout.write, timeout.pool)
        if any(part is not None and part < 0 for part in parts):
            raise ConfigurationError("timeout", f"must not be negative: {timeout!r}")
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidArgumentTypeError(
            "timeout", f"must be seconds or an httpx.Timeout, not {type(timeout).__name__}"
        )
    if not timeout > 0:
        raise ConfigurationError("timeout", f"must be more than 0 seconds, not {timeout!r}")
    return httpx.Timeout(float(timeout))


def _check_count(argument: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentTypeError(argument, f"must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ConfigurationError(argument, f"must be at least {minimum}, not {value}")
    return value


def check_max_retries(max_retries: int) -> int:
    """`max_retries` checked: a whole number, 0 or more."""
    return _check_count("max_retries", max_retries, 0)


def check_max_concurrency(max_concurrency: int) -> int:
    """`max_concurrency` checked: a whole number, 1 or more."""
    return _check_count("max_concurrency", max_concurrency, 1)


def check_total_timeout(total_timeout: float) -> float:
    """`total_timeout` checked: seconds, more than 0."""
    if isinstance(total_timeout, bool) or not isinstance(total_timeout, (int, float)):
        raise InvalidArgumentTypeError(
            "total_timeout", f"must be seconds, not {type(total_timeout).__name__}"
        )
    if not total_timeout > 0 or total_timeout != total_timeout or total_timeout == float("inf"):
        raise ConfigurationError(
            "total_timeout", f"must be a finite number of seconds above 0, not {total_timeout!r}"
        )
    return float(total_timeout)


def check_max_response_size(max_response_size: int) -> int:
    """`max_response_size` checked: a whole number of bytes, 1 or more."""
    return _check_count("max_response_size", max_response_size, 1)
