"""`max_age`: a validly signed event older than the window is refused as a replay."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from postal_sdk import InvalidArgumentError, InvalidArgumentTypeError, WebhookTooOldError
from postal_sdk.webhooks import (
    MessageSent,
    WebhookKey,
    WebhookVerificationError,
    WebhookVerifier,
    sign_webhook_body,
)

HOUR = 3600.0


def event_body(timestamp: float) -> bytes:
    return json.dumps(
        {
            "event": "SendLimitApproaching",
            "timestamp": timestamp,
            "uuid": "a1b2",
            "payload": {
                "server": {"uuid": "s", "name": "Main", "permalink": "main", "organization": "o"},
                "volume": 90,
                "limit": 100,
            },
        }
    ).encode()


@pytest.fixture
def key(private_key: rsa.RSAPrivateKey) -> WebhookKey:
    return WebhookKey.from_public_key(private_key.public_key())


def signed(body: bytes, private_key: rsa.RSAPrivateKey) -> tuple[bytes, dict[str, str]]:
    return body, sign_webhook_body(body, private_key)


def test_an_event_older_than_max_age_is_refused_with_its_own_reason(
    key: WebhookKey, private_key: rsa.RSAPrivateKey
) -> None:
    stamped = time.time() - 2 * HOUR
    body, headers = signed(event_body(stamped), private_key)

    with pytest.raises(WebhookTooOldError) as caught:
        WebhookVerifier(key, max_age=HOUR).verify(body, headers)

    error = caught.value
    assert isinstance(error, WebhookVerificationError)
    assert error.reason == "too_old"
    assert error.timestamp.timestamp() == pytest.approx(stamped)
    assert error.age >= 2 * HOUR
    assert error.max_age == HOUR
    assert "over max_age 3600 s" in str(error)


def test_postals_retries_over_36_minutes_pass_a_one_hour_window(
    key: WebhookKey, private_key: rsa.RSAPrivateKey
) -> None:
    verifier = WebhookVerifier(key, max_age=timedelta(hours=1))
    # Retries resend the first attempt's timestamp: 2, 5, 11, 21 and 36 minutes later.
    for minutes in (0, 2, 5, 11, 21, 36):
        body, headers = signed(event_body(time.time() - minutes * 60), private_key)
        assert verifier.verify(body, headers).uuid == "a1b2"


def test_without_max_age_an_old_event_still_verifies(
    key: WebhookKey, private_key: rsa.RSAPrivateKey
) -> None:
    body, headers = signed(event_body(1_500_000_000.0), private_key)

    assert WebhookVerifier(key).verify(body, headers).uuid == "a1b2"


def test_an_event_from_a_clock_ahead_of_ours_is_accepted(
    key: WebhookKey, private_key: rsa.RSAPrivateKey
) -> None:
    body, headers = signed(event_body(time.time() + 120), private_key)

    assert WebhookVerifier(key, max_age=60).verify(body, headers).uuid == "a1b2"


def test_the_signature_is_checked_before_the_age(
    key: WebhookKey, other_private_key: rsa.RSAPrivateKey
) -> None:
    # An old body signed by somebody else is a bad signature: its timestamp is not trusted.
    body, headers = signed(event_body(1_500_000_000.0), other_private_key)
    headers.pop("X-Postal-Signature-KID")

    with pytest.raises(WebhookVerificationError) as caught:
        WebhookVerifier(key, max_age=HOUR).verify(body, headers)
    assert caught.value.reason == "bad_signature"


def test_verify_signature_alone_does_not_look_at_the_age(
    key: WebhookKey, private_key: rsa.RSAPrivateKey
) -> None:
    body, headers = signed(event_body(1_500_000_000.0), private_key)

    WebhookVerifier(key, max_age=HOUR).verify_signature(body, headers)


def test_max_age_takes_seconds_or_a_timedelta(key: WebhookKey) -> None:
    assert WebhookVerifier(key, max_age=90).max_age == 90.0
    assert WebhookVerifier(key, max_age=timedelta(minutes=90)).max_age == 5400.0
    assert WebhookVerifier(key).max_age is None


@pytest.mark.parametrize("bad", [0, -1, timedelta(0), float("nan")])
def test_max_age_must_be_positive(key: WebhookKey, bad: float | timedelta) -> None:
    with pytest.raises(InvalidArgumentError, match="max_age"):
        WebhookVerifier(key, max_age=bad)


@pytest.mark.parametrize("bad", ["3600", True])
def test_max_age_of_another_type_is_a_type_error(key: WebhookKey, bad: object) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="max_age"):
        WebhookVerifier(key, max_age=bad)  # type: ignore[arg-type]


def test_with_keys_keeps_the_window(key: WebhookKey) -> None:
    assert WebhookVerifier(key, max_age=HOUR).with_keys(key).max_age == HOUR


def test_a_recent_event_is_returned_as_it_was_parsed(
    key: WebhookKey, private_key: rsa.RSAPrivateKey
) -> None:
    body, headers = signed(event_body(time.time()), private_key)
    event = WebhookVerifier(key, max_age=HOUR).verify(body, headers)
    assert not isinstance(event, MessageSent)
    assert event.event == "SendLimitApproaching"
