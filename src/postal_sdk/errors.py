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
    "ClientClosedError",
    "ConfigurationError",
    "FromAddressMissing",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InvalidServerAPIKey",
    "MessageNotFound",
    "MessageRejectedError",
    "NoContent",
    "NoRecipients",
    "ParameterError",
    "PostalError",
    "ResponseTooLargeError",
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
    """The root of every exception the SDK raises on purpose."""


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


class ResponseTooLargeError(UnexpectedResponseError):
    """The reply was larger than the client's `max_response_size`, head included.

    Reading stopped at that byte and the connection was dropped, so memory stays bounded.
    `limit` is the size in bytes; `status_code` is the reply's status, or 0 when even its
    head was too large. The request itself reached the server: a send was delivered.
    """

    def __init__(self, limit: int, status_code: int, request: str) -> None:
        self.limit = limit
        self.status_code = status_code
        self.body_excerpt = ""
        self.reason = (
            f"{request}: the reply is larger than max_response_size ({limit} bytes); "
            "a client with a larger max_response_size can read it"
        )
        PostalError.__init__(self, self.reason)


class APIConnectionError(PostalError):
    """The request failed in the network: no connection, a dropped connection, bad TLS.

    The httpx exception is chained as `__cause__`.
    """


class APITimeoutError(APIConnectionError):
    """A connect, read, write or pool timeout."""
