"""Type-checked by `mypy --strict` in `nox -s typecheck`: postal_sdk.django as a user writes it."""

from __future__ import annotations

from typing import Any

from django.core.mail import EmailMessage, get_connection
from django.urls import URLPattern, path

from postal_sdk.django import (
    EmailBackend,
    PostalRecipientStatus,
    PostalStatus,
    SendMessagesError,
    asend_messages,
    webhook_received,
    webhook_view,
)
from postal_sdk.webhooks import MessageSent, WebhookEvent

urlpatterns: list[URLPattern] = [path("webhooks/postal", webhook_view)]


def send(messages: list[EmailMessage]) -> int:
    connection = EmailBackend(fail_silently=False, concurrency=50)
    try:
        with connection:
            return connection.send_messages(messages)
    except SendMessagesError as error:
        for index, message, failure in error.failures:
            print(index, message, failure)
        return error.sent


def postal_id(message: EmailMessage, address: str) -> int | None:
    status: PostalStatus = message.postal_status  # type: ignore[attr-defined]
    recipient: PostalRecipientStatus = status.recipients[address]
    return recipient.message_id


async def send_from_a_view(messages: list[EmailMessage]) -> int:
    sent: int = await asend_messages(messages, fail_silently=True, connection=get_connection())
    return sent


def on_event(sender: object, event: WebhookEvent, **kwargs: Any) -> None:
    if isinstance(event, MessageSent):
        print(event.payload.message.id)


webhook_received.connect(on_event)
