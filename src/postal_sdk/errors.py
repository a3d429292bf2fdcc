"""The exception hierarchy: every outcome of Postal's wire contract has a class.

Catch `PostalError` for anything the SDK raises, `APIError` for anything Postal itself
answered with, or a single code's class (`MessageNotFound`, `NoRecipients`, ...).
`ERROR_CLASSES` is the contract's error catalogue as a table, code to class.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

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
    def id(self) -> Any:
        """The id Postal reports it looked for."""
        return self.data.get("id")


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
