"""`webhook_view`: verify Postal's signed webhooks, and send `webhook_received`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from postal_sdk._sync.client import Postal
from postal_sdk.django._settings import PostalSettings, client_error, read_settings
from postal_sdk.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    PostalError,
    WebhookError,
)

__all__ = ["webhook_received", "webhook_view"]

logger = logging.getLogger("postal_sdk.django")

webhook_received = Signal()
"""Sent by `webhook_view` for each verified event: `event` (a `WebhookEvent`), `request`.

A receiver that raises makes the view answer 500, so Postal sends the event again later.
"""

_DEDUPLICATION_PREFIX = "postal_sdk.webhook:"

# One sync client per process verifies every webhook: it caches the JWKS (fetched on
# first use, refetched at most once a minute for an unknown key id). Rebuilt when the
# POSTAL setting changes.
_verifier_lock = threading.Lock()
_verifier: tuple[tuple[Any, ...], Postal] | None = None


def _verifying_client(postal_settings: PostalSettings) -> Postal:
    global _verifier
    options = postal_settings.sync_client_options()
    identity = tuple(sorted((key, repr(value)) for key, value in options.items()))
    with _verifier_lock:
        if _verifier is not None and _verifier[0] == identity:
            return _verifier[1]
        try:
            client = Postal(**options)
        except (InvalidArgumentError, InvalidArgumentTypeError) as error:
            raise client_error(error) from error
        if _verifier is not None:
            _verifier[1].close()
        _verifier = (identity, client)
        return client


def _forget_client(*, setting: str, **kwargs: Any) -> None:
    global _verifier
    if setting == "POSTAL":
        with _verifier_lock:
            if _verifier is not None:
                _verifier[1].close()
            _verifier = None


setting_changed.connect(_forget_client)


def _no_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Exempt from Django 5.1's LoginRequiredMiddleware: Postal has no session."""
    try:
        from django.contrib.auth.decorators import login_not_required
    except ImportError:  # Django before 5.1 has no such middleware
        return view
    marked: Callable[..., HttpResponse] = login_not_required(view)
    return marked


@_no_login_required
@csrf_exempt
@require_POST
def webhook_view(request: HttpRequest) -> HttpResponse:
    """Receive a webhook from Postal: verify it, then send `webhook_received`.

    The signature over the raw body is checked with the keys from `BASE_URL`'s
    `/.well-known/jwks.json` (cached for the process). Answers 400 with
    `{"error": reason, "detail": ...}` for a missing, malformed or wrong signature, a
    changed body, an unknown key, a SHA-1-only signature (unless
    `POSTAL["WEBHOOK_ALLOW_LEGACY_SHA1"]`), a body over `WEBHOOK_MAX_BODY_SIZE`, or a
    signed body that is no Postal event; 503 when Postal's keys cannot be fetched (Postal
    retries); 200 with `{"uuid": ..., "duplicate": false}` once the receivers ran. With
    `POSTAL["WEBHOOK_DEDUPLICATE_CACHE"]` naming a cache, an event whose uuid was
    already received answers 200 with `"duplicate": true` and sends nothing.
    CSRF-exempt, POST only, and reachable under `LoginRequiredMiddleware`.
    """
    postal_settings = read_settings()
    client = _verifying_client(postal_settings)
    try:
        event = client.verify_webhook(
            request.body,
            request.headers,
            allow_legacy_sha1=postal_settings.webhook_allow_legacy_sha1,
            max_body_size=postal_settings.webhook_max_body_size,
        )
    except WebhookError as error:
        logger.warning("refused a webhook: %s", error)
        return JsonResponse({"error": error.reason, "detail": str(error)}, status=400)
    except PostalError as error:
        logger.warning("cannot verify webhooks, Postal's keys are unavailable: %s", error)
        return JsonResponse({"error": "keys_unavailable", "detail": str(error)}, status=503)

    alias = postal_settings.webhook_deduplicate_cache
    key = _DEDUPLICATION_PREFIX + event.idempotency_key
    if alias is not None:
        cache = caches[alias]
        if not cache.add(key, True, timeout=postal_settings.webhook_deduplicate_timeout):
            return JsonResponse({"uuid": event.uuid, "duplicate": True})
    try:
        webhook_received.send(sender=webhook_view, event=event, request=request)
    except BaseException:
        if alias is not None:
            # Not handled: Postal's retry must be handled, not taken for a duplicate.
            caches[alias].delete(key)
        raise
    return JsonResponse({"uuid": event.uuid, "duplicate": False})
