"""The retry policy, in one place: what is retried, and how long to wait.

Sending is not idempotent (Postal has no idempotency key), so a send is retried only when
the request provably never reached Postal, or when the server asks for a retry with
`Retry-After`. Reads are also retried on the failures that may have happened after the
request was sent.
"""

from __future__ import annotations

import email.utils
import random
import ssl
import time
from collections.abc import Mapping

import attrs
import httpx

from postal_sdk.errors import InvalidArgumentError

__all__ = [
    "Backoff",
    "certificate_failure",
    "is_certificate_failure",
    "retry_after_seconds",
    "should_retry_error",
    "should_retry_status",
]

_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before a single byte of the request left: safe to repeat for any request."""

_MAYBE_SENT = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
"""Failures after the request may have reached Postal: repeated only for reads."""


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidArgumentError(attribute.name, f"must be a number >= 0, not {value!r}")


@attrs.frozen
class Backoff:
    """How long to wait between retries: exponential backoff with full jitter.

    The n-th retry waits a random time between 0 and `min(maximum, initial * 2**n)`
    seconds. A `Retry-After` from the server is honoured instead, capped at
    `retry_after_cap`. `Backoff(initial=0, maximum=0, retry_after_cap=0)` retries at once,
    which is what tests of code that uses the SDK usually want.
    """

    initial: float = attrs.field(default=0.5, validator=_non_negative)
    maximum: float = attrs.field(default=8.0, validator=_non_negative)
    retry_after_cap: float = attrs.field(default=60.0, validator=_non_negative)

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry `retry_number` (0 for the first retry)."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        ceiling = min(self.maximum, self.initial * 2.0**retry_number)
        return random.uniform(0.0, ceiling)


def should_retry_error(error: httpx.HTTPError, *, idempotent: bool) -> bool:
    """Whether a request that failed in the network may be sent again."""
    if isinstance(error, _NEVER_SENT):
        return not is_certificate_failure(error)
    return idempotent and isinstance(error, _MAYBE_SENT)


def is_certificate_failure(error: BaseException) -> bool:
    """Whether `error` comes from a refused certificate or a hostname mismatch.

    Such a failure comes back on every attempt: retrying it only repeats the handshake
    (three per message, three hundred for a batch of a hundred).
    """
    return certificate_failure(error) is not None


def certificate_failure(error: BaseException) -> ssl.SSLCertVerificationError | None:
    """The TLS verification error at the bottom of `error`'s causes, if there is one.

    Each transport wraps it differently (httpx's own errors, trio's BrokenResourceError
    with no text, aiohttp's ClientConnectorCertificateError), but keeps it in the chain.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        # aiohttp keeps the ssl error on its own exception rather than as the cause.
        kept = getattr(current, "certificate_error", None)
        if isinstance(kept, ssl.SSLCertVerificationError):
            return kept
        current = current.__cause__ or current.__context__
    return None


def should_retry_status(status_code: int, retry_after: float | None, *, idempotent: bool) -> bool:
    """Whether a request answered with this HTTP status may be sent again.

    A 429 or 503 that carries `Retry-After` is the server saying the request was not
    handled; any other 5xx may have been, so only reads are repeated then.
    """
    if status_code in (429, 503) and retry_after is not None:
        return True
    return idempotent and (status_code == 429 or status_code >= 500)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The delay a `Retry-After` header asks for (seconds or an HTTP date), if any."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
