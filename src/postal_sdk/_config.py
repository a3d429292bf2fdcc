"""Checks and defaults for the client's options, applied when a client is built."""

from __future__ import annotations

import os

import httpx

from postal_sdk.errors import ConfigurationError, InvalidArgumentTypeError

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "check_max_concurrency",
    "check_max_retries",
    "check_timeout",
    "resolve_api_key",
    "resolve_base_url",
]

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=30.0)
"""Postal's send does a reverse-DNS lookup (up to ~15 s) and a DB insert per recipient."""

DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_CONCURRENCY = 100


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
