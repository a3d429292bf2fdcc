"""postal-sdk: an async-first Python client for the HTTP API of Postal.

async with AsyncPostal(base_url="https://postal.example.com", api_key="...") as postal:
    sent = await postal.send_message(Message(from_="app@example.com", to=["john@example.com"],
                                             subject="Hi", plain_body="Hello"))
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
import os
from typing import TYPE_CHECKING, Any

# The errors and the models are loaded with the package: they need neither httpx nor anyio.
from postal_sdk.errors import (
    AccessDenied,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AttachmentMissingData,
    AttachmentMissingName,
    AuthenticationError,
    BatchAborted,
    ClientClosedError,
    ConfigurationError,
    FromAddressMissing,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidServerAPIKey,
    JournalError,
    MessageNotFound,
    MessageRejectedError,
    NoContent,
    NoRecipients,
    ParameterError,
    PostalError,
    SendInDoubt,
    ServerSuspended,
    TooManyBCCAddresses,
    TooManyCCAddresses,
    TooManyToAddresses,
    UnauthenticatedFromAddress,
    UnexpectedResponseError,
    UnknownKeyError,
    WebhookError,
    WebhookKeyError,
    WebhookParseError,
    WebhookTooOldError,
    WebhookVerificationError,
)
from postal_sdk.models import (
    EXPANSIONS,
    ActivityEntries,
    Attachment,
    Click,
    Delivery,
    Expansion,
    Load,
    Message,
    MessageAttachment,
    MessageDetails,
    MessageInfo,
    MessageInspection,
    MessageStatus,
    RawMessage,
    SendResult,
    SentMessage,
)
from postal_sdk.pacing import RateLimit

if TYPE_CHECKING:
    from postal_sdk._async.client import AsyncPostal
    from postal_sdk._async.fanout import (
        AsyncSendMany,
        SendFailure,
        SendOutcome,
        SendProgress,
        SendSuccess,
    )
    from postal_sdk._retry import Backoff
    from postal_sdk._sync.client import Postal
    from postal_sdk._sync.fanout import SendMany

# What needs httpx, anyio or the clients is imported on first use, by `__getattr__` below:
# `import postal_sdk` stays cheap for a program that uses only part of the SDK.
# To export a name: add it to `__all__`, and either import it above (a module as cheap as
# errors.py) or, for anything that imports httpx or anyio, import it in the TYPE_CHECKING
# block (for type checkers) and add its one line here, name to module (for the runtime).
# tests/package/test_lazy_imports.py checks that the three agree.
_LAZY: dict[str, str] = {
    "AsyncPostal": "postal_sdk._async.client",
    "AsyncSendMany": "postal_sdk._async.fanout",
    "Backoff": "postal_sdk._retry",
    "Postal": "postal_sdk._sync.client",
    "SendFailure": "postal_sdk._async.fanout",
    "SendMany": "postal_sdk._sync.fanout",
    "SendOutcome": "postal_sdk._async.fanout",
    "SendProgress": "postal_sdk._async.fanout",
    "SendSuccess": "postal_sdk._async.fanout",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups find it without calling this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if os.environ.get("POSTAL_LOG"):
    # The SDK's log on stderr at that level, as openai-python's OPENAI_LOG: see _logs.py.
    from postal_sdk._logs import configure_logging

    configure_logging(os.environ["POSTAL_LOG"])

__all__ = [
    "EXPANSIONS",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AccessDenied",
    "ActivityEntries",
    "AsyncPostal",
    "AsyncSendMany",
    "Attachment",
    "AttachmentMissingData",
    "AttachmentMissingName",
    "AuthenticationError",
    "Backoff",
    "BatchAborted",
    "Click",
    "ClientClosedError",
    "ConfigurationError",
    "Delivery",
    "Expansion",
    "FromAddressMissing",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InvalidServerAPIKey",
    "JournalError",
    "Load",
    "Message",
    "MessageAttachment",
    "MessageDetails",
    "MessageInfo",
    "MessageInspection",
    "MessageNotFound",
    "MessageRejectedError",
    "MessageStatus",
    "NoContent",
    "NoRecipients",
    "ParameterError",
    "Postal",
    "PostalError",
    "RateLimit",
    "RawMessage",
    "SendFailure",
    "SendInDoubt",
    "SendMany",
    "SendOutcome",
    "SendProgress",
    "SendResult",
    "SendSuccess",
    "SentMessage",
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
    "WebhookTooOldError",
    "WebhookVerificationError",
    "__version__",
]
