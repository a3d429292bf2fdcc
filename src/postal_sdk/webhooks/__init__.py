"""Verify Postal's webhook requests and read them as typed events.

Postal signs the exact body bytes of every webhook with its installation's RSA key
(contract §5.4): `X-Postal-Signature-256` (RSA-SHA256, since Postal 3.2), the legacy
`X-Postal-Signature` (RSA-SHA1) and `X-Postal-Signature-KID`. Verify the body as it was
received: re-encoded JSON does not match (Rails writes `<` as `\\u003c`). Needs the
`webhooks` extra: `pip install 'postal-sdk[webhooks]'`.

In a web handler (Starlette/FastAPI here; any framework's raw body and headers work):

```python
verifier = WebhookVerifier(DKIM_TXT_VALUE, max_age=timedelta(hours=1))

async def postal_webhook(request: Request) -> Response:
    try:
        event = verifier.verify(await request.body(), request.headers)
    except WebhookError as error:   # bad or missing signature, too old, or not an event
        return Response(error.reason, status_code=400)
    if await already_handled(event.idempotency_key):   # Postal retries with the same uuid
        return Response(status_code=204)
    match event:
        case MessageSent() | MessageDelayed():
            ...
    return Response(status_code=204)
```

Postal rotates keys only when its operator replaces `signing.key`. A verifier loaded from
`/.well-known/jwks.json` then raises `UnknownKeyError` (with the new `kid`): fetch the JWKS
again, once (the kid comes from the request, so never refetch for every unknown kid), and
retry with `verifier.with_keys(WebhookKeySet.from_jwks(document))`.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Protocol

import attrs

from postal_sdk.errors import InvalidArgumentError, InvalidArgumentTypeError, WebhookTooOldError
from postal_sdk.webhooks._events import (
    EVENT_TYPES,
    BouncePayload,
    DeliveryEvent,
    DeliveryPayload,
    DomainDNSError,
    DomainDNSErrorPayload,
    LinkClickPayload,
    LoadPayload,
    MessageBounced,
    MessageDelayed,
    MessageDeliveryFailed,
    MessageHeld,
    MessageLinkClicked,
    MessageLoaded,
    MessageSent,
    SendLimitApproaching,
    SendLimitEvent,
    SendLimitExceeded,
    SendLimitPayload,
    UnknownEvent,
    WebhookError,
    WebhookEvent,
    WebhookEventBase,
    WebhookMessage,
    WebhookParseError,
    WebhookParseFailure,
    WebhookServer,
    parse_event,
)
from postal_sdk.webhooks._keys import (
    SignatureAlgorithm,
    UnknownKeyError,
    WebhookKey,
    WebhookKeyError,
    WebhookKeySet,
    WebhookKeySource,
    WebhookVerificationError,
    WebhookVerificationFailure,
    compute_kid,
    dkim_record,
    jwks_document,
    key_set,
    sign_webhook_body,
)

__all__ = [
    "EVENT_TYPES",
    "SIGNATURE_HEADER",
    "SIGNATURE_KID_HEADER",
    "SIGNATURE_SHA256_HEADER",
    "BouncePayload",
    "DeliveryEvent",
    "DeliveryPayload",
    "DomainDNSError",
    "DomainDNSErrorPayload",
    "HeadersLike",
    "LinkClickPayload",
    "LoadPayload",
    "MessageBounced",
    "MessageDelayed",
    "MessageDeliveryFailed",
    "MessageHeld",
    "MessageLinkClicked",
    "MessageLoaded",
    "MessageSent",
    "SendLimitApproaching",
    "SendLimitEvent",
    "SendLimitExceeded",
    "SendLimitPayload",
    "SignatureAlgorithm",
    "UnknownEvent",
    "UnknownKeyError",
    "WebhookError",
    "WebhookEvent",
    "WebhookEventBase",
    "WebhookKey",
    "WebhookKeyError",
    "WebhookKeySet",
    "WebhookKeySource",
    "WebhookMessage",
    "WebhookParseError",
    "WebhookParseFailure",
    "WebhookServer",
    "WebhookTooOldError",
    "WebhookVerificationError",
    "WebhookVerificationFailure",
    "WebhookVerifier",
    "compute_kid",
    "dkim_record",
    "jwks_document",
    "parse_event",
    "sign_webhook_body",
]

SIGNATURE_SHA256_HEADER = "X-Postal-Signature-256"
"""RSA PKCS#1 v1.5 over SHA-256 of the body, strict base64."""
SIGNATURE_HEADER = "X-Postal-Signature"
"""The legacy RSA PKCS#1 v1.5 over SHA-1 of the body, strict base64."""
SIGNATURE_KID_HEADER = "X-Postal-Signature-KID"
"""The `kid` of the signing key, as in Postal's JWKS."""


class HeadersLike(Protocol):
    """Request headers: anything whose `items()` gives (name, value) pairs.

    A dict, or the headers of httpx, Starlette/FastAPI, aiohttp, Django or Werkzeug/Flask.
    """

    def items(self) -> Iterable[tuple[str, str]]:
        """The header (name, value) pairs."""
        ...


def _header(headers: HeadersLike, name: str) -> str | None:
    """The header's value, whatever the letter case of its name."""
    wanted = name.lower()
    values = {value for key, value in headers.items() if key.lower() == wanted}
    if len(values) > 1:
        raise WebhookVerificationError("malformed_signature", f"{name} is given twice")
    return values.pop() if values else None


def _decode_signature(value: str, name: str) -> bytes:
    try:
        signature = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise WebhookVerificationError("malformed_signature", f"{name} is not base64") from exc
    if not signature:
        raise WebhookVerificationError("malformed_signature", f"{name} is empty")
    return signature


def _max_age(max_age: float | timedelta | None) -> float | None:
    if max_age is None:
        return None
    if isinstance(max_age, timedelta):
        seconds = max_age.total_seconds()
    elif isinstance(max_age, (int, float)) and not isinstance(max_age, bool):
        seconds = float(max_age)
    else:
        raise InvalidArgumentTypeError(
            "max_age", f"must be seconds or a timedelta, not {type(max_age).__name__}"
        )
    if not seconds > 0:
        raise InvalidArgumentError("max_age", f"must be a positive duration, not {max_age!r}")
    return seconds


def _raw_body(body: bytes | bytearray | memoryview) -> bytes:
    if isinstance(body, str):
        raise InvalidArgumentTypeError(
            "body", "must be the raw request bytes; decoded text may not be what Postal signed"
        )
    return bytes(body)


@attrs.frozen
class WebhookVerifier:
    """Checks that webhook requests were signed by Postal, and reads their events.

    `keys` is the trusted key (or keys), in any form of `WebhookKeySource`: a PEM
    string, a JWKS document (text or parsed), a DKIM record, a `WebhookKey` or
    `WebhookKeySet`; anything else is a `TypeError` that names the loader to use.
    The SHA-256 signature is always preferred: a request that has one is verified with it
    alone. A request with only the legacy SHA-1 signature (Postal before 3.2) is accepted
    only with `allow_legacy_sha1=True`. The key is chosen by `X-Postal-Signature-KID`;
    without that header (Postal before 3.2) every trusted key is tried. Bodies over
    `max_body_size` bytes are refused before any work.

    `max_age` (seconds or a `timedelta`) refuses, with `WebhookTooOldError`, a signed
    event whose own `timestamp` is older than that: a captured request replayed later.
    Postal stamps an event when it queues it and its retries keep that stamp for about
    36 minutes, so allow more (an hour leaves room for a backlog and clock skew), and
    remember handled `uuid`s for at least as long: the two together refuse every replay.
    The default, `None`, checks no age: a delivery delayed past any fixed window would
    otherwise be lost for good, since every retry carries the same old timestamp.
    """

    keys: WebhookKeySet = attrs.field(converter=key_set)
    allow_legacy_sha1: bool = attrs.field(default=False, kw_only=True)
    max_body_size: int = attrs.field(default=1_000_000, kw_only=True)
    max_age: float | None = attrs.field(default=None, kw_only=True, converter=_max_age)

    def __attrs_post_init__(self) -> None:
        if self.max_body_size < 1:
            raise InvalidArgumentError("max_body_size", "must be a positive number of bytes")

    def verify(self, body: bytes | bytearray | memoryview, headers: HeadersLike) -> WebhookEvent:
        """Verify the request, then read its event.

        Raises `WebhookVerificationError` (or its `UnknownKeyError`) when the signature
        does not hold, `WebhookParseError` when a signed body is not an event, and
        `WebhookTooOldError` when the event is older than `max_age`.
        """
        raw = _raw_body(body)
        self.verify_signature(raw, headers)
        event = parse_event(raw)
        if self.max_age is not None:
            # After the signature: the timestamp is only worth reading once it is Postal's.
            age = time.time() - event.timestamp.timestamp()
            if age > self.max_age:
                raise WebhookTooOldError(event.timestamp, age, self.max_age)
        return event

    def verify_signature(self, body: bytes | bytearray | memoryview, headers: HeadersLike) -> None:
        """Check the request's signature; raises `WebhookVerificationError` if it does not hold.

        The body is not parsed, so `max_age` is not checked: use `verify` for that.
        """
        raw = _raw_body(body)
        if len(raw) > self.max_body_size:
            raise WebhookVerificationError(
                "body_too_large", f"the body has {len(raw)} bytes, over {self.max_body_size}"
            )
        signature, algorithm = self._signature(headers)
        for key in self._candidates(headers):
            if key.verifies(signature, raw, algorithm):
                return
        raise WebhookVerificationError(
            "bad_signature", f"the {algorithm.upper()} signature does not match the body"
        )

    def with_keys(self, keys: WebhookKeySource) -> WebhookVerifier:
        """A copy of this verifier that trusts `keys` instead (after a JWKS refetch)."""
        return attrs.evolve(self, keys=keys)

    def _signature(self, headers: HeadersLike) -> tuple[bytes, SignatureAlgorithm]:
        # A SHA-256 signature is never passed over for SHA-1: a bad one must fail.
        sha256 = _header(headers, SIGNATURE_SHA256_HEADER)
        if sha256 is not None:
            return _decode_signature(sha256, SIGNATURE_SHA256_HEADER), "sha256"
        sha1 = _header(headers, SIGNATURE_HEADER)
        if sha1 is None:
            raise WebhookVerificationError(
                "missing_signature", f"the request has no {SIGNATURE_SHA256_HEADER} header"
            )
        if not self.allow_legacy_sha1:
            raise WebhookVerificationError(
                "legacy_signature_only",
                f"the request has only the SHA-1 {SIGNATURE_HEADER}; "
                "pass allow_legacy_sha1=True to accept it",
            )
        return _decode_signature(sha1, SIGNATURE_HEADER), "sha1"

    def _candidates(self, headers: HeadersLike) -> Iterable[WebhookKey]:
        kid = _header(headers, SIGNATURE_KID_HEADER)
        if kid is None:
            return self.keys
        key = self.keys.get(kid)
        if key is None:
            raise UnknownKeyError(kid, self.keys.kids)
        return (key,)
