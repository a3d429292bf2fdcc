"""Webhook bodies for the ten events as Postal writes them, and the events they hold.

The bodies are compact JSON as Rails encodes it, so `<`, `>` and `&` in strings are
written `\\u003c`, `\\u003e` and `\\u0026`: re-encoding them with `json.dumps` gives other
bytes, and those other bytes would not verify.
"""

from __future__ import annotations

from datetime import datetime, timezone

from postal_sdk.webhooks import (
    BouncePayload,
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
    SendLimitExceeded,
    SendLimitPayload,
    WebhookEvent,
    WebhookMessage,
    WebhookServer,
)


def at(unix_seconds: float) -> datetime:
    """The aware UTC datetime of a Unix timestamp."""
    return datetime.fromtimestamp(unix_seconds, tz=timezone.utc)


_MESSAGE = (
    rb'{"id":12345,"token":"Xk2J9qLm0PaZr7Tb","direction":"outgoing",'
    rb'"message_id":"7f0e4c1a-5b2d-4e8f-9a3c-1d2e3f4a5b6c@rp.postal.example.com",'
    rb'"to":"john@example.com","from":"app@example.org",'
    rb'"subject":"Welcome \u003cJohn\u003e \u0026 friends","timestamp":1713450640.101,'
    rb'"spam_status":"NotChecked","tag":"welcome"}'
)
MESSAGE = WebhookMessage(
    id=12345,
    token="Xk2J9qLm0PaZr7Tb",
    direction="outgoing",
    message_id="7f0e4c1a-5b2d-4e8f-9a3c-1d2e3f4a5b6c@rp.postal.example.com",
    to="john@example.com",
    from_="app@example.org",
    subject="Welcome <John> & friends",
    timestamp=at(1713450640.101),
    spam_status="NotChecked",
    tag="welcome",
)

_BOUNCE = (
    rb'{"id":12399,"token":"b0UnCeT0kEn12345","direction":"incoming",'
    rb'"message_id":"20240418143100.1A2B3C@mx.example.com",'
    rb'"to":"bounces+12345@rp.postal.example.com","from":"",'
    rb'"subject":"Undelivered Mail Returned to Sender","timestamp":1713450661.5,'
    rb'"spam_status":"NotSpam","tag":null}'
)
BOUNCE = WebhookMessage(
    id=12399,
    token="b0UnCeT0kEn12345",
    direction="incoming",
    message_id="20240418143100.1A2B3C@mx.example.com",
    to="bounces+12345@rp.postal.example.com",
    from_="",
    subject="Undelivered Mail Returned to Sender",
    timestamp=at(1713450661.5),
    spam_status="NotSpam",
    tag=None,
)

_SERVER = (
    rb'{"uuid":"5a3c0f5e-9d1b-4c47-8a51-0e2f7b6c9d10","name":"Main \u0026 Marketing",'
    rb'"permalink":"main","organization":"acme"}'
)
SERVER = WebhookServer(
    uuid="5a3c0f5e-9d1b-4c47-8a51-0e2f7b6c9d10",
    name="Main & Marketing",
    permalink="main",
    organization="acme",
)

_UUID = "0b6c8f7e-6f0a-4c7e-9a3e-2d6f3b1f9e55"
_SENT_AT = 1713450642.118503


def _envelope(event: str, payload: bytes) -> bytes:
    # Member order as WebhookDeliveryService#generate_payload builds the hash.
    head = f'{{"event":"{event}","timestamp":{_SENT_AT!r},"payload":'
    return head.encode() + payload + f',"uuid":"{_UUID}"}}'.encode()


BODIES: dict[str, bytes] = {
    "MessageSent": _envelope(
        "MessageSent",
        b'{"message":' + _MESSAGE + b',"status":"Sent",'
        b'"details":"Message for john@example.com accepted by mx.example.com (192.0.2.10)",'
        b'"output":"250 2.0.0 OK 1713450642 q7si123 - gsmtp","sent_with_ssl":true,'
        b'"timestamp":1713450642.09,"time":0.42}',
    ),
    "MessageDelayed": _envelope(
        "MessageDelayed",
        b'{"message":' + _MESSAGE + b',"status":"SoftFail",'
        b'"details":"Temporary SMTP delivery error when sending to mx.example.com",'
        b'"output":"451 4.7.1 Greylisted, please try again later","sent_with_ssl":false,'
        b'"timestamp":1713450642.09,"time":5.12}',
    ),
    "MessageDeliveryFailed": _envelope(
        "MessageDeliveryFailed",
        b'{"message":' + _MESSAGE + b',"status":"HardFail",'
        b'"details":"Permanent SMTP delivery error when sending to mx.example.com",'
        rb'"output":"550 5.1.1 \u003cjohn@example.com\u003e: Recipient address rejected",'
        b'"sent_with_ssl":true,"timestamp":1713450642.09,"time":0.31}',
    ),
    "MessageHeld": _envelope(
        "MessageHeld",
        b'{"message":' + _MESSAGE + b',"status":"Held",'
        b'"details":"Message held because send limit (500) has been reached.",'
        b'"output":"","sent_with_ssl":null,"timestamp":1713450642.09,"time":null}',
    ),
    "MessageBounced": _envelope(
        "MessageBounced",
        b'{"original_message":' + _MESSAGE + b',"bounce":' + _BOUNCE + b"}",
    ),
    "MessageLinkClicked": _envelope(
        "MessageLinkClicked",
        b'{"message":' + _MESSAGE + b","
        rb'"url":"https://example.com/welcome?utm_source=postal\u0026ref=1",'
        b'"token":"VJzsFA0S","ip_address":"203.0.113.7",'
        b'"user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"}',
    ),
    "MessageLoaded": _envelope(
        "MessageLoaded",
        b'{"message":' + _MESSAGE + b',"ip_address":"66.249.84.1",'
        b'"user_agent":"Mozilla/5.0 (via ggpht.com GoogleImageProxy)"}',
    ),
    "DomainDNSError": _envelope(
        "DomainDNSError",
        b'{"server":' + _SERVER + b',"domain":"example.org",'
        b'"uuid":"d1f04a2e-7c3b-4e5f-8a9b-0c1d2e3f4a5b","dns_checked_at":1713450000.0,'
        b'"spf_status":"Invalid",'
        b'"spf_error":"An SPF record exists but it doesn\'t include spf.postal.example.com",'
        b'"dkim_status":"OK","dkim_error":null,"mx_status":"Missing",'
        b'"mx_error":"There are no MX records for example.org",'
        b'"return_path_status":"OK","return_path_error":null}',
    ),
    "SendLimitApproaching": _envelope(
        "SendLimitApproaching", b'{"server":' + _SERVER + b',"volume":450,"limit":500}'
    ),
    "SendLimitExceeded": _envelope(
        "SendLimitExceeded", b'{"server":' + _SERVER + b',"volume":500,"limit":500}'
    ),
}
"""A realistic body of each event, by event name."""


def _delivery(
    status: str, details: str, output: str, ssl: bool | None, time: float | None
) -> DeliveryPayload:
    return DeliveryPayload(
        message=MESSAGE,
        status=status,
        details=details,
        output=output,
        sent_with_ssl=ssl,
        timestamp=at(1713450642.09),
        time=time,
    )


EVENTS: dict[str, WebhookEvent] = {
    "MessageSent": MessageSent(
        uuid=_UUID,
        timestamp=at(_SENT_AT),
        payload=_delivery(
            "Sent",
            "Message for john@example.com accepted by mx.example.com (192.0.2.10)",
            "250 2.0.0 OK 1713450642 q7si123 - gsmtp",
            True,
            0.42,
        ),
    ),
    "MessageDelayed": MessageDelayed(
        uuid=_UUID,
        timestamp=at(_SENT_AT),
        payload=_delivery(
            "SoftFail",
            "Temporary SMTP delivery error when sending to mx.example.com",
            "451 4.7.1 Greylisted, please try again later",
            False,
            5.12,
        ),
    ),
    "MessageDeliveryFailed": MessageDeliveryFailed(
        uuid=_UUID,
        timestamp=at(_SENT_AT),
        payload=_delivery(
            "HardFail",
            "Permanent SMTP delivery error when sending to mx.example.com",
            "550 5.1.1 <john@example.com>: Recipient address rejected",
            True,
            0.31,
        ),
    ),
    "MessageHeld": MessageHeld(
        uuid=_UUID,
        timestamp=at(_SENT_AT),
        payload=_delivery(
            "Held", "Message held because send limit (500) has been reached.", "", None, None
        ),
    ),
    "MessageBounced": MessageBounced(
        uuid=_UUID,
        timestamp=at(_SENT_AT),
        payload=BouncePayload(original_message=MESSAGE, bounce=BOUNCE),
    ),
    "MessageLinkClicked": MessageLinkClicked(
        uuid=_UUID,
        timestamp=at(_SENT_AT),
        payload=LinkClickPayload(
            message=MESSAGE,
            url="https://example.com/welcome?utm_source=postal&ref=1",
            token="VJzsFA0S",
            ip_address="203.0.113.7",
            user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
        ),
    ),
    "MessageLoaded": MessageLoaded(
        uuid=_UUID,
        timestamp=at(_SENT_AT),
        payload=LoadPayload(
            message=MESSAGE,
            ip_address="66.249.84.1",
            user_agent="Mozilla/5.0 (via ggpht.com GoogleImageProxy)",
        ),
    ),
    "DomainDNSError": DomainDNSError(
        uuid=_UUID,
        timestamp=at(_SENT_AT),
        payload=DomainDNSErrorPayload(
            server=SERVER,
            domain="example.org",
            uuid="d1f04a2e-7c3b-4e5f-8a9b-0c1d2e3f4a5b",
            dns_checked_at=at(1713450000.0),
            spf_status="Invalid",
            spf_error="An SPF record exists but it doesn't include spf.postal.example.com",
            dkim_status="OK",
            dkim_error=None,
            mx_status="Missing",
            mx_error="There are no MX records for example.org",
            return_path_status="OK",
            return_path_error=None,
        ),
    ),
    "SendLimitApproaching": SendLimitApproaching(
        uuid=_UUID,
        timestamp=at(_SENT_AT),
        payload=SendLimitPayload(server=SERVER, volume=450, limit=500),
    ),
    "SendLimitExceeded": SendLimitExceeded(
        uuid=_UUID,
        timestamp=at(_SENT_AT),
        payload=SendLimitPayload(server=SERVER, volume=500, limit=500),
    ),
}
"""The event each body of `BODIES` holds."""
