"""The exception hierarchy: every outcome of Postal's wire contract has a class.

Catch `PostalError` for anything the SDK raises, `APIError` for anything Postal itself
answered with, or a single code's class (`MessageNotFound`, `NoRecipients`, ...).
`ERROR_CLASSES` is the contract's error catalogue as a table, code to class.

The webhook errors (`WebhookError` and below) are here too, not in `postal_sdk.webhooks`,
so that catching them needs neither that module nor its `cryptography` dependency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "ERROR_CLASSES",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AccessDenied",
    "AttachmentMissingData",
    "AttachmentMissingName",
    "AuthenticationError",
    "BatchAborted",
    "ClientClosedError",
    "ConfigurationError",
    "FromAddressMissing",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InvalidServerAPIKey",
    "JournalError",
    "MessageNotFound",
    "MessageRejectedError",
    "NoContent",
    "NoRecipients",
    "ParameterError",
    "PostalError",
    "SendInDoubt",
    "ServerSuspended",
    "TooManyBCCAddresses",
    "TooManyCCAddresses",
    "TooManyToAddresses",
    "UnauthenticatedFromAddress",
    "UnexpectedResponseError",
    "UnknownKeyError",
    "WebhookError",
    "WebhookKeyError",
    "WebhookParseError",
    "WebhookParseFailure",
    "WebhookTooOldError",
    "WebhookVerificationError",
    "WebhookVerificationFailure",
]

REDACTED = "[REDACTED]"


def redact(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` (the API key) replaced by `[REDACTED]`."""
    return text.replace(secret, REDACTED) if secret else text


class PostalError(Exception):
    """The root of every exception the SDK raises on purpose.

    Every one pickles and copies with its attributes (to cross a process or a task queue),
    whatever its constructor takes: the traceback and the chained cause are left behind,
    as for any exception.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own reduce calls `cls(*self.args)`, which these constructors do not
        # take; and a mappingproxy attribute (`APIError.data`) does not pickle.
        state = {
            name: dict(value) if isinstance(value, MappingProxyType) else value
            for name, value in vars(self).items()
        }
        return (_restore, (type(self), self.args, state))

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        vars(self).update(state or {})


def _restore(cls: type[PostalError], args: tuple[Any, ...], state: dict[str, Any]) -> PostalError:
    error = cls.__new__(cls)
    error.args = args
    error.__setstate__(state)
    return error


class InvalidArgumentError(PostalError, ValueError):
    """An argument has a value the SDK refuses before any request is made.

    `argument` names the offending argument or message field (for example `"to"`,
    `"attachments[2].name"`, `"base_url"`).
    """

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.argument = argument
        self.problem = problem


class InvalidArgumentTypeError(PostalError, TypeError):
    """An argument has a type the SDK refuses before any request is made."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.argument = argument
        self.problem = problem


class ConfigurationError(InvalidArgumentError):
    """The client cannot be built: a missing API key or base URL, or a bad option."""


class ClientClosedError(PostalError, RuntimeError):
    """The client was used after `aclose()`/`close()` or after its `with` block ended."""


class APIError(PostalError):
    """Postal answered with an envelope whose status is not `success`.

    `code` is Postal's error code (`None` for a parameter error), `message` its text
    (Postal leaves it out for some codes), and `data` the whole `data` object of the
    reply, with any echoed API key redacted.
    """

    def __init__(self, code: str | None, message: str | None, data: Mapping[str, Any]) -> None:
        self.code = code
        self.message = message
        self.data: Mapping[str, Any] = MappingProxyType(dict(data))
        super().__init__(self._describe())

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        super().__setstate__(state)
        self.data = MappingProxyType(dict(self.data))

    def _describe(self) -> str:
        if self.code and self.message:
            return f"{self.code}: {self.message}"
        return self.code or self.message or "Postal reported an error"


class ParameterError(APIError):
    """Postal's `parameter-error` envelope: a required parameter was missing."""

    def __init__(self, message: str | None, data: Mapping[str, Any]) -> None:
        super().__init__(None, message, data)


class AuthenticationError(APIError):
    """The API key was missing or unknown to Postal."""


class AccessDenied(AuthenticationError):
    """No `X-Server-API-Key` reached Postal."""


class InvalidServerAPIKey(AuthenticationError):
    """Postal knows no API credential with the key that was sent.

    Postal echoes the key back as `token`; the SDK replaces it with `[REDACTED]`.
    """


class ServerSuspended(APIError):
    """The Postal server, or its organization, is suspended."""


class MessageRejectedError(APIError):
    """Postal refused to queue a message (one of the send validation codes)."""


class NoRecipients(MessageRejectedError):
    """The message had no To, Cc or Bcc recipient."""


class TooManyToAddresses(MessageRejectedError):
    """More than 50 To addresses."""


class TooManyCCAddresses(MessageRejectedError):
    """More than 50 Cc addresses."""


class TooManyBCCAddresses(MessageRejectedError):
    """More than 50 Bcc addresses."""


class NoContent(MessageRejectedError):
    """Neither a plain nor an HTML body (whitespace-only counts as none)."""


class FromAddressMissing(MessageRejectedError):
    """The message had no From address."""


class UnauthenticatedFromAddress(MessageRejectedError):
    """The From (or Sender) domain is not a verified domain of the Postal server."""


class AttachmentMissingName(MessageRejectedError):
    """An attachment had a blank name."""


class AttachmentMissingData(MessageRejectedError):
    """An attachment's decoded data was blank."""


class MessageNotFound(APIError):
    """No message with that id exists on this server (or it was removed by retention)."""

    @property
    def id(self) -> int | None:
        """The id Postal reports it looked for (`None` if its reply had no integer id)."""
        found = self.data.get("id")
        return found if isinstance(found, int) and not isinstance(found, bool) else None


ERROR_CLASSES: Mapping[str, type[APIError]] = MappingProxyType(
    {
        cls.__name__: cls
        for cls in (
            AccessDenied,
            InvalidServerAPIKey,
            ServerSuspended,
            NoRecipients,
            TooManyToAddresses,
            TooManyCCAddresses,
            TooManyBCCAddresses,
            NoContent,
            FromAddressMissing,
            UnauthenticatedFromAddress,
            AttachmentMissingName,
            AttachmentMissingData,
            MessageNotFound,
        )
    }
)


class UnexpectedResponseError(PostalError):
    """The reply was not a Postal envelope: a non-200 status, or a body that is not one.

    Seen in practice: 400 with an empty body (invalid JSON), 403 with an empty body (the
    `Host` is not Postal's configured hostname), HTML error pages from Rails or from a
    reverse proxy, truncated bodies. `body_excerpt` holds the start of the body.
    """

    def __init__(self, status_code: int, body_excerpt: str, reason: str) -> None:
        self.status_code = status_code
        self.body_excerpt = body_excerpt
        self.reason = reason
        shown = f": {body_excerpt!r}" if body_excerpt else " (empty body)"
        super().__init__(f"HTTP {status_code}, {reason}{shown}")


class APIConnectionError(PostalError):
    """The request failed in the network: no connection, a dropped connection, bad TLS.

    The httpx exception is chained as `__cause__`.
    """


class APITimeoutError(APIConnectionError):
    """A connect, read, write or pool timeout."""


class JournalError(PostalError):
    """The journal could not record a keyed send: the message was not sent.

    Its store is unreachable, read-only, full or closed. A send whose intent could not be
    recorded is never made.
    """


class SendInDoubt(PostalError):
    """An earlier send with this idempotency key may have reached Postal: it is not resent.

    The journal holds the key's intent but no result: the sender crashed, or its request
    failed in a way that does not tell whether Postal queued the message (a read
    timeout, a connection dropped after the request was written). Look the message up
    in Postal, then settle the key with the journal's `resolve()`. `key` is the key.
    """

    def __init__(self, key: str, reason: str = "an earlier send may have reached Postal") -> None:
        super().__init__(f"idempotency key {key!r} is in doubt: {reason}; it is not resent")
        self.key = key
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.reason))


class BatchAborted(PostalError):
    """A `send_many` batch stopped early: every later send would have failed the same way.

    Raised by the batch's loop (never inside an `ExceptionGroup`) after the sends under
    way finished and were yielded, when one failed with an authentication error, a
    suspended server, a server that could not be reached after the retries, or a
    `JournalError` (the journal or the pace could not record the send). `cause`
    is that error. `submitted` is where to resume: every index below it has had its
    outcome, and none from it on was sent.
    """

    def __init__(self, cause: Exception, submitted: int) -> None:
        super().__init__(
            f"batch stopped after {submitted} message(s): every later send would fail "
            f"({type(cause).__name__}: {cause})"
        )
        self.cause = cause
        self.submitted = submitted

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.cause, self.submitted))


class WebhookError(PostalError):
    """The root of the webhook errors; `reason` says which problem, as a short constant."""

    reason: str

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


WebhookParseFailure = Literal["not_json", "not_an_envelope", "invalid_event"]
"""Why a body is not a webhook event.

- `not_json`: the body is not JSON text (or not UTF-8/16/32);
- `not_an_envelope`: not an object with `event` (a string), `timestamp`, `uuid` and
  `payload` (an object);
- `invalid_event`: a known event whose fields do not match the contract.
"""


class WebhookParseError(WebhookError):
    """The body is not a Postal webhook event; `reason` says how."""

    reason: WebhookParseFailure

    def __init__(self, reason: WebhookParseFailure, message: str) -> None:
        super().__init__(reason, message)


WebhookVerificationFailure = Literal[
    "missing_signature",
    "legacy_signature_only",
    "malformed_signature",
    "bad_signature",
    "unknown_key",
    "body_too_large",
    "invalid_key",
    "too_old",
]
"""Why a request could not be verified.

- `missing_signature`: no `X-Postal-Signature-256` (nor `X-Postal-Signature`) header;
- `legacy_signature_only`: only the SHA-1 `X-Postal-Signature`, and SHA-1 is not allowed;
- `malformed_signature`: a signature header that is not strict base64, or given twice
  with different values;
- `bad_signature`: the signature does not match the body and key (another key, a changed
  body);
- `unknown_key`: `X-Postal-Signature-KID` names no known key (`UnknownKeyError`);
- `body_too_large`: the body is over the verifier's `max_body_size`;
- `invalid_key`: key material (PEM, DKIM record, JWK, JWKS) is unusable (`WebhookKeyError`);
- `too_old`: a validly signed event whose `timestamp` is older than the verifier's
  `max_age` (`WebhookTooOldError`): a replay, or a delivery later than allowed.
"""


class WebhookVerificationError(WebhookError):
    """A webhook request could not be proven to come from Postal: reject it.

    `reason` says why (see `WebhookVerificationFailure`).
    """

    reason: WebhookVerificationFailure

    def __init__(self, reason: WebhookVerificationFailure, message: str) -> None:
        super().__init__(reason, message)


class UnknownKeyError(WebhookVerificationError):
    """The request was signed with a key this verifier does not know (`kid`).

    Postal may have a new signing key: fetch its JWKS again, once, and retry.
    """

    def __init__(self, kid: str, known: Iterable[str]) -> None:
        self.kid = kid
        # The kid comes from the request: show a bounded, escaped excerpt of it.
        shown = ", ".join(known) or "none"
        super().__init__("unknown_key", f"no key has kid {kid[:80]!r} (known: {shown})")


class WebhookKeyError(WebhookVerificationError):
    """Key material that cannot be used: a bad PEM, DKIM record, JWK or JWKS, or not RSA.

    A subclass of `WebhookVerificationError` so that code rejecting unverifiable requests
    also rejects them when the keys themselves are broken.
    """

    def __init__(self, message: str) -> None:
        super().__init__("invalid_key", message)


class WebhookTooOldError(WebhookVerificationError):
    """A validly signed event older than the verifier's `max_age`: refuse it as a replay.

    `timestamp` is the event's own (when Postal queued it; its retries keep it), `age`
    the seconds from then to the check, and `max_age` the limit in seconds.
    """

    def __init__(self, timestamp: datetime, age: float, max_age: float) -> None:
        self.timestamp = timestamp
        self.age = age
        self.max_age = max_age
        super().__init__(
            "too_old",
            f"the event is {age:.0f} s old ({timestamp.isoformat()}), over max_age {max_age:g} s",
        )
