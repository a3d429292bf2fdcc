"""Send a welcome mail (from a sync and an async view), and list Postal's events."""

import json
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from examples.django_app.receivers import EVENTS
from postal_sdk.django import SendMessagesError, asend_messages


def _welcome(request: HttpRequest) -> EmailMultiAlternatives:
    data = json.loads(request.body)
    message = EmailMultiAlternatives(
        subject="Welcome",
        body=f"Hello {data['name']}, welcome aboard.",
        to=[data["to"]],
    )
    message.attach_alternative(f"<p>Hello <b>{data['name']}</b>, welcome aboard.</p>", "text/html")
    message.tags = ["welcome"]  # type: ignore[attr-defined]  # read as anymail reads it
    return message


def _answer(message: EmailMultiAlternatives) -> dict[str, Any]:
    status = message.postal_status  # type: ignore[attr-defined]
    return {
        "message_id": status.message_id_header,
        "messages": {address: r.message_id for address, r in status.recipients.items()},
    }


@csrf_exempt
@require_POST
def send_welcome(request: HttpRequest) -> JsonResponse:
    """Send through EMAIL_BACKEND (postal_sdk.django.EmailBackend)."""
    message = _welcome(request)
    try:
        message.send()
    except SendMessagesError as error:
        return JsonResponse({"error": str(error)}, status=502)
    return JsonResponse(_answer(message))


@csrf_exempt
@require_POST
async def send_welcome_async(request: HttpRequest) -> JsonResponse:
    """Send from an async view: AsyncPostal, without blocking the event loop."""
    message = _welcome(request)
    try:
        await asend_messages([message])
    except SendMessagesError as error:
        return JsonResponse({"error": str(error)}, status=502)
    return JsonResponse(_answer(message))


@require_GET
def list_events(request: HttpRequest) -> JsonResponse:
    """Every Postal event received, in arrival order."""
    return JsonResponse(EVENTS, safe=False)
