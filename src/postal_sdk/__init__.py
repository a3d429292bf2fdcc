"""postal-sdk: an async-first Python client for the HTTP API of Postal.

async with AsyncPostal(base_url="https://postal.example.com", api_key="...") as postal:
    sent = await postal.send_message(Message(from_="app@example.com", to=["john@example.com"],
                                             subject="Hi", plain_body="Hello"))
"""

from __future__ import annotations

__version__ = "0.1.0"

from postal_sdk._async.client import AsyncPostal
from postal_sdk._async.fanout import AsyncSendMany, SendOutcome, SendProgress
from postal_sdk._retry import Backoff
from postal_sdk._sync.client import Postal
from postal_sdk._sync.fanout import SendMany
from postal_sdk.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    MessageNotFound,
    MessageRejectedError,
    ParameterError,
    PostalError,
    ResponseTooLargeError,
    ServerSuspended,
    UnexpectedResponseError,
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

__all__ = [
    "EXPANSIONS",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "ActivityEntries",
    "AsyncPostal",
    "AsyncSendMany",
    "Attachment",
    "AuthenticationError",
    "Backoff",
    "Click",
    "ClientClosedError",
    "ConfigurationError",
    "Delivery",
    "Expansion",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "Load",
    "Message",
    "MessageAttachment",
    "MessageDetails",
    "MessageInfo",
    "MessageInspection",
    "MessageNotFound",
    "MessageRejectedError",
    "MessageStatus",
    "ParameterError",
    "Postal",
    "PostalError",
    "RawMessage",
    "ResponseTooLargeError",
    "SendMany",
    "SendOutcome",
    "SendProgress",
    "SendResult",
    "SentMessage",
    "ServerSuspended",
    "UnexpectedResponseError",
    "__version__",
]
