"""Django integration: an email backend, async sending, and a webhook view.

Needs the `django` extra (`pip install 'postal-sdk[django]'`; the webhook view also
needs `webhooks`). In settings.py:

```python
EMAIL_BACKEND = "postal_sdk.django.EmailBackend"
POSTAL = {"BASE_URL": "https://postal.example.com", "API_KEY": "..."}
```

and in urls.py:

```python
path("webhooks/postal", postal_sdk.django.webhook_view)
```

See docs/django.md for every setting, the mapping of Django's messages, async
sending, webhooks, deduplication and `message.postal_status`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import django.core.mail
from django.core.mail import EmailMessage, get_connection

from postal_sdk.django._backend import EmailBackend
from postal_sdk.django._mapping import UNSUPPORTED_ATTRIBUTES, UnsupportedFeatureError, to_postal
from postal_sdk.django._status import PostalRecipientStatus, PostalStatus, SendMessagesError
from postal_sdk.django._webhook import webhook_received, webhook_view

__all__ = [
    "UNSUPPORTED_ATTRIBUTES",
    "EmailBackend",
    "PostalRecipientStatus",
    "PostalStatus",
    "SendMessagesError",
    "UnsupportedFeatureError",
    "asend_messages",
    "to_postal",
    "webhook_received",
    "webhook_view",
]


async def asend_messages(
    messages: Sequence[EmailMessage], *, fail_silently: bool = False, connection: Any = None
) -> int:
    """Send Django messages from async code without blocking the event loop.

    Django has no async mail API (no `aget_connection`, no `EmailMessage.asend`, up to 6.1).
    This sends through `connection` (by default the default mailer: `EMAIL_BACKEND`, or
    `MAILERS["default"]` on Django 6.1+): with `EmailBackend` the messages go out through
    `AsyncPostal` and its fan-out; any other backend (Django's locmem backend in tests,
    for one) runs its `send_messages` in a worker thread. Returns the number sent, as
    `send_messages` does.
    """
    if connection is None:
        connection = _default_connection(fail_silently)
    if isinstance(connection, EmailBackend):
        return await connection.asend_messages(messages)
    from asgiref.sync import sync_to_async

    sent: int = await sync_to_async(connection.send_messages)(messages)
    return sent


def _default_connection(fail_silently: bool) -> Any:
    mailers = getattr(django.core.mail, "mailers", None)
    if mailers is None:  # Django before 6.1
        return get_connection(fail_silently=fail_silently)
    # Django 6.1 deprecates get_connection() for MAILERS["default"].
    connection = mailers.default
    if fail_silently:
        connection.fail_silently = True
    return connection
