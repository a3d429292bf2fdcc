"""A faithful in-memory fake of Postal's HTTP API, for testing code that sends mail.

In-process, no sockets:

```python
fake = FakePostal()
async with httpx.AsyncClient(transport=fake.transport(), base_url="http://postal") as http:
    ...
[entry] = fake.outbox
```

Over real HTTP (needs uvicorn, the `testing` extra):

```python
with fake.serve() as base_url:
    ...
```

It follows Postal's wire contract: authentication before parsing, the parameter rules,
validation order and error codes, ids, tokens, lookups and their type quirks. Script
what happens after a send with `FakePostal.deliver`, `load` and `click`, and Postal's
scheduled checks with `check_dns` and `check_send_limit`; make requests fail with
`FakePostal.add_fault` and the fault classes below.

Webhooks (needs the `webhooks` extra): the fake signs and POSTs Postal's events to the
URLs given to `FakePostal.add_webhook`, retrying as Postal does, and serves its key at
`/.well-known/jwks.json`:

```python
fake.add_webhook("http://app/webhooks/postal", transport=httpx.ASGITransport(app))
fake.deliver(message_id, "Sent")
[attempt] = await fake.flush_webhooks_async()
```
"""

from postal_sdk.testing._asgi import ConnectionDropUnsupportedError, FakeASGIApp
from postal_sdk.testing._fake import DEFAULT_API_KEY, HOLD_EXPIRY_SECONDS, FakePostal
from postal_sdk.testing._faults import (
    BadGateway,
    DropAfterProcessing,
    DropBeforeProcessing,
    Fault,
    FaultRule,
    IncompleteBody,
    Latency,
    NonJSONBody,
    ServiceUnavailable,
    TruncatedBody,
)
from postal_sdk.testing._mime import FakeAttachment
from postal_sdk.testing._records import (
    DeliveryStatus,
    DNSStatus,
    EventHook,
    FakeClick,
    FakeDelivery,
    FakeEvent,
    FakeLoad,
    FakeMessage,
    LoggedRequest,
    OutboxEntry,
    SendHook,
    SendLimitEventName,
    VerifiedDomain,
)
from postal_sdk.testing._routes import Endpoint
from postal_sdk.testing._state import FakeServer
from postal_sdk.testing._transport import FakeTransport
from postal_sdk.testing._webhooks import (
    WEBHOOK_RETRY_DELAYS,
    WEBHOOK_TIMEOUT,
    FakeWebhook,
    WebhookAttempt,
    WebhookRequest,
)

__all__ = [
    "DEFAULT_API_KEY",
    "HOLD_EXPIRY_SECONDS",
    "WEBHOOK_RETRY_DELAYS",
    "WEBHOOK_TIMEOUT",
    "BadGateway",
    "ConnectionDropUnsupportedError",
    "DNSStatus",
    "DeliveryStatus",
    "DropAfterProcessing",
    "DropBeforeProcessing",
    "Endpoint",
    "EventHook",
    "FakeASGIApp",
    "FakeAttachment",
    "FakeClick",
    "FakeDelivery",
    "FakeEvent",
    "FakeLoad",
    "FakeMessage",
    "FakePostal",
    "FakeServer",
    "FakeTransport",
    "FakeWebhook",
    "Fault",
    "FaultRule",
    "IncompleteBody",
    "Latency",
    "LoggedRequest",
    "NonJSONBody",
    "OutboxEntry",
    "SendHook",
    "SendLimitEventName",
    "ServiceUnavailable",
    "TruncatedBody",
    "VerifiedDomain",
    "WebhookAttempt",
    "WebhookRequest",
]
