"""The four API actions, and what each needs besides its parameters.

Each action takes the authenticated server's `Context` and the parsed parameters and
returns a `Reply`, or raises `ServerCrash` where Postal's Ruby code would raise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from postal_sdk.testing._lookups import deliveries, message
from postal_sdk.testing._records import OutboxEntry
from postal_sdk.testing._responses import Reply
from postal_sdk.testing._routes import Endpoint
from postal_sdk.testing._sending import send_message, send_raw
from postal_sdk.testing._state import FakeServer


@attrs.frozen
class Context:
    """What an action needs besides its parameters."""

    server: FakeServer
    record_send: Callable[[OutboxEntry], None]
    web_hostname: str
    return_path_domain: str


ACTIONS: Mapping[Endpoint, Callable[[Context, dict[str, Any]], Reply]] = {
    "send/message": send_message,
    "send/raw": send_raw,
    "messages/message": message,
    "messages/deliveries": deliveries,
}
