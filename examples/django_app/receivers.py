"""What the example does with Postal's events: keeps them in memory, in arrival order.

A real project writes them to its database; `webhook_view` has already verified the
signature and, with `WEBHOOK_DEDUPLICATE_CACHE`, dropped redeliveries of a uuid.
"""

from typing import Any

from django.dispatch import receiver

from postal_sdk.django import webhook_received
from postal_sdk.webhooks import DeliveryEvent, MessageBounced, WebhookEvent

EVENTS: list[dict[str, Any]] = []


@receiver(webhook_received)
def record_event(sender: object, event: WebhookEvent, **kwargs: Any) -> None:
    """Keep the event's uuid, type and the id of the message it is about."""
    message_id = None
    if isinstance(event, DeliveryEvent):
        message_id = event.payload.message.id
    elif isinstance(event, MessageBounced):
        message_id = event.payload.original_message.id
    EVENTS.append({"uuid": event.uuid, "event": event.event, "message": message_id})
