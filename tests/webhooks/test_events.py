"""Reading webhook bodies into typed events (`parse_event`), without signatures."""

from __future__ import annotations

import json
from datetime import timezone

import pytest

from postal_sdk.errors import InvalidArgumentTypeError, PostalError
from postal_sdk.webhooks import (
    EVENT_TYPES,
    DeliveryEvent,
    MessageLinkClicked,
    MessageSent,
    SendLimitEvent,
    UnknownEvent,
    WebhookError,
    WebhookParseError,
    parse_event,
)

from .postal_bodies import BODIES, EVENTS, at


def _body(name: str = "MessageSent", /, **changes: object) -> bytes:
    """A body of `event` with envelope or payload members replaced (None deletes)."""
    document = json.loads(BODIES[name])
    for path, value in changes.items():
        target = document
        *parents, last = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize("name", BODIES)
def test_each_event_parses_into_its_typed_model(name: str) -> None:
    event = parse_event(BODIES[name])

    assert event == EVENTS[name]
    assert type(event) is EVENT_TYPES[name]
    assert event.event == name


def test_the_ten_wire_names_are_known() -> None:
    assert set(EVENT_TYPES) == set(BODIES)
    assert len(EVENT_TYPES) == 10


def test_delivery_and_send_limit_events_share_a_base_class() -> None:
    delivery = [name for name, cls in EVENT_TYPES.items() if issubclass(cls, DeliveryEvent)]
    limits = [name for name, cls in EVENT_TYPES.items() if issubclass(cls, SendLimitEvent)]

    assert delivery == ["MessageSent", "MessageDelayed", "MessageDeliveryFailed", "MessageHeld"]
    assert limits == ["SendLimitApproaching", "SendLimitExceeded"]


def test_rails_escapes_are_read_as_the_characters_they_stand_for() -> None:
    event = parse_event(BODIES["MessageLinkClicked"])

    assert isinstance(event, MessageLinkClicked)
    assert event.payload.message.subject == "Welcome <John> & friends"
    assert event.payload.url == "https://example.com/welcome?utm_source=postal&ref=1"


def test_timestamps_are_aware_utc_datetimes() -> None:
    event = parse_event(BODIES["MessageSent"])

    assert isinstance(event, MessageSent)
    assert event.timestamp.tzinfo is timezone.utc
    assert event.timestamp == at(1713450642.118503)
    assert event.payload.timestamp.tzinfo is timezone.utc
    assert event.payload.message.timestamp.tzinfo is timezone.utc


def test_idempotency_key_is_the_envelope_uuid_postal_keeps_across_retries() -> None:
    first, retry = parse_event(BODIES["MessageSent"]), parse_event(BODIES["MessageSent"])

    assert first.idempotency_key == retry.idempotency_key == first.uuid
    assert first.uuid == "0b6c8f7e-6f0a-4c7e-9a3e-2d6f3b1f9e55"


def test_unknown_event_keeps_its_raw_payload() -> None:
    body = (
        b'{"event":"MessageArchived","timestamp":1713450642.5,"uuid":"u-1",'
        b'"payload":{"message":{"id":1},"reason":"retention"}}'
    )

    event = parse_event(body)

    assert event == UnknownEvent(
        event="MessageArchived",
        uuid="u-1",
        timestamp=at(1713450642.5),
        payload={"message": {"id": 1}, "reason": "retention"},
    )


def test_unknown_fields_are_ignored() -> None:
    body = _body(
        "MessageSent",
        webhook_id=7,
        payload__log_id="ABCD1234",
        payload__message__size="1024",
    )

    assert parse_event(body) == EVENTS["MessageSent"]


@pytest.mark.parametrize("timestamp", ["1713450642.09", 1713450642.09, "2024-04-18T14:30:42.090Z"])
def test_delivery_timestamp_may_be_a_float_a_decimal_string_or_iso(timestamp: object) -> None:
    # Rails writes MySQL decimal columns, such as the delivery's timestamp, as strings.
    event = parse_event(_body("MessageSent", payload__timestamp=timestamp))

    assert isinstance(event, MessageSent)
    assert event.payload.timestamp == at(1713450642.09)


@pytest.mark.parametrize(
    ("dns_checked_at", "expected"),
    [
        (1713450000.0, at(1713450000.0)),
        ("2024-04-18T14:20:00+00:00", at(1713450000.0)),
        ("2024-04-18T14:20:00", at(1713450000.0)),
        (None, None),
    ],
)
def test_dns_checked_at_may_be_a_float_iso_text_or_null(
    dns_checked_at: object, expected: object
) -> None:
    document = json.loads(BODIES["DomainDNSError"])
    document["payload"]["dns_checked_at"] = dns_checked_at

    event = parse_event(json.dumps(document))

    assert event.payload.dns_checked_at == expected  # type: ignore[union-attr]


def test_parse_accepts_text_as_well_as_bytes() -> None:
    assert parse_event(BODIES["MessageLoaded"].decode()) == EVENTS["MessageLoaded"]


def test_parse_refuses_what_is_not_a_body() -> None:
    with pytest.raises(InvalidArgumentTypeError, match="body"):
        parse_event({"event": "MessageSent"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"<html>502 Bad Gateway</html>", id="html"),
        pytest.param(BODIES["MessageSent"][:-1], id="truncated"),
        pytest.param(b'{"event":"MessageSent\xff"}', id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="too-deep"),
    ],
)
def test_body_that_is_not_json_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(WebhookParseError) as caught:
        parse_event(body)

    assert caught.value.reason == "not_json"
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param(b"[]", "not a JSON object", id="array"),
        pytest.param(b'"MessageSent"', "not a JSON object", id="string"),
        pytest.param(_body(event=None), "no event", id="no-event"),
        pytest.param(_body(uuid=None), "no uuid", id="no-uuid"),
        pytest.param(_body(payload=None), "no payload", id="no-payload"),
        pytest.param(_body(timestamp=None), "no timestamp", id="no-timestamp"),
        pytest.param(b"{}", "no event, timestamp, uuid, payload", id="empty-object"),
        pytest.param(_body(event=7), "event name is not a string", id="event-not-string"),
        pytest.param(_body(payload=[1]), "payload is not a JSON object", id="payload-list"),
        pytest.param(_body(payload="x"), "payload is not a JSON object", id="payload-string"),
    ],
)
def test_body_that_is_not_an_envelope_is_a_parse_error(body: bytes, says: str) -> None:
    with pytest.raises(WebhookParseError, match=says) as caught:
        parse_event(body)

    assert caught.value.reason == "not_an_envelope"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        pytest.param(
            {"payload__message__to": None}, r"missing @ \$.payload.message.to", id="missing"
        ),
        pytest.param({"payload__message__id": "abc"}, r"\$.payload.message.id", id="id-not-int"),
        pytest.param({"payload__status": 3}, r"\$.payload.status", id="status-not-str"),
        pytest.param({"timestamp": "yesterday"}, r"\$.timestamp", id="bad-timestamp"),
        pytest.param({"timestamp": 1e300}, r"\$.timestamp", id="timestamp-overflow"),
        pytest.param({"uuid": 42}, r"\$.uuid", id="uuid-not-str"),
        pytest.param({"payload__message": "12345"}, r"\$.payload.message", id="message-not-obj"),
    ],
)
def test_known_event_whose_fields_break_the_contract_is_a_parse_error(
    changes: dict[str, object], says: str
) -> None:
    with pytest.raises(WebhookParseError, match=says) as caught:
        parse_event(_body("MessageSent", **changes))

    assert caught.value.reason == "invalid_event"
    assert caught.value.__cause__ is not None


def test_null_in_a_text_field_is_refused_not_turned_into_none_text() -> None:
    document = json.loads(BODIES["MessageSent"])
    document["payload"]["message"]["to"] = None

    with pytest.raises(WebhookParseError, match=r"\$.payload.message.to"):
        parse_event(json.dumps(document))


def test_parse_errors_are_postal_errors() -> None:
    with pytest.raises(PostalError):
        parse_event(b"nope")
    assert issubclass(WebhookParseError, WebhookError)
