"""Verifying Postal's signatures over the exact body bytes (`WebhookVerifier`)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers as StarletteHeaders

from postal_sdk.errors import InvalidArgumentError, InvalidArgumentTypeError, PostalError
from postal_sdk.webhooks import (
    MessageSent,
    UnknownKeyError,
    WebhookError,
    WebhookKey,
    WebhookKeySet,
    WebhookParseError,
    WebhookVerificationError,
    WebhookVerifier,
)

from .conftest import Signer, postal_kid, postal_signature_headers
from .postal_bodies import BODIES, EVENTS

BODY = BODIES["MessageSent"]


def _without(headers: dict[str, str], *names: str) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name not in names}


def _rejected(
    verifier: WebhookVerifier, body: bytes, headers: object, reason: str
) -> WebhookVerificationError:
    with pytest.raises(WebhookVerificationError) as caught:
        verifier.verify(body, headers)  # type: ignore[arg-type]
    assert caught.value.reason == reason
    return caught.value


@pytest.mark.parametrize("name", BODIES)
def test_each_signed_event_verifies_and_parses(
    verifier: WebhookVerifier, sign: Signer, name: str
) -> None:
    body = BODIES[name]

    assert verifier.verify(body, sign(body)) == EVENTS[name]


def test_verify_signature_alone_checks_without_parsing(
    verifier: WebhookVerifier, sign: Signer
) -> None:
    body = b"signed, but not an event"

    verifier.verify_signature(body, sign(body))  # raises if the signature does not hold


def test_rails_escaped_body_verifies_only_as_received(
    verifier: WebhookVerifier, sign: Signer
) -> None:
    assert rb"\u003c" in BODY
    reencoded = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    assert reencoded != BODY

    assert isinstance(verifier.verify(BODY, sign(BODY)), MessageSent)
    _rejected(verifier, reencoded, sign(BODY), "bad_signature")


def test_missing_signature_header_is_rejected(verifier: WebhookVerifier, sign: Signer) -> None:
    headers = _without(sign(BODY), "X-Postal-Signature-256", "X-Postal-Signature")

    error = _rejected(verifier, BODY, headers, "missing_signature")
    assert "X-Postal-Signature-256" in str(error)


def test_no_headers_at_all_is_a_missing_signature(verifier: WebhookVerifier) -> None:
    _rejected(verifier, BODY, {}, "missing_signature")


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("not base64!", id="bad-alphabet"),
        pytest.param("abc", id="bad-padding"),
        pytest.param("", id="empty"),
        pytest.param("QUJD\nREVG", id="line-break"),
        pytest.param("QUJDé", id="not-ascii"),
    ],
)
def test_signature_that_is_not_strict_base64_is_rejected(
    verifier: WebhookVerifier, sign: Signer, signature: str
) -> None:
    headers = {**sign(BODY), "X-Postal-Signature-256": signature}

    _rejected(verifier, BODY, headers, "malformed_signature")


def test_signature_of_the_wrong_length_is_a_bad_signature(
    verifier: WebhookVerifier, sign: Signer
) -> None:
    headers = {**sign(BODY), "X-Postal-Signature-256": base64.b64encode(b"short").decode()}

    _rejected(verifier, BODY, headers, "bad_signature")


def test_signature_by_another_key_is_rejected(
    verifier: WebhookVerifier,
    private_key: rsa.RSAPrivateKey,
    other_private_key: rsa.RSAPrivateKey,
) -> None:
    forged = postal_signature_headers(BODY, other_private_key)
    # Claim the trusted key's kid, so the forged signature is checked against that key.
    forged["X-Postal-Signature-KID"] = postal_kid(private_key.public_key())

    error = _rejected(verifier, BODY, forged, "bad_signature")
    assert "SHA256" in str(error)


def test_one_changed_body_byte_is_rejected(verifier: WebhookVerifier, sign: Signer) -> None:
    tampered = BODY.replace(b'"id":12345', b'"id":12346', 1)
    assert sum(a != b for a, b in zip(tampered, BODY, strict=True)) == 1

    _rejected(verifier, tampered, sign(BODY), "bad_signature")


@given(data=st.data())
def test_any_single_byte_change_is_rejected(
    verifier: WebhookVerifier, sign: Signer, data: st.DataObject
) -> None:
    headers = sign(BODY)
    position = data.draw(st.integers(0, len(BODY) - 1), label="position")
    replacement = data.draw(st.integers(0, 255).filter(lambda byte: byte != BODY[position]))
    tampered = bytearray(BODY)
    tampered[position] = replacement

    _rejected(verifier, bytes(tampered), headers, "bad_signature")


def test_added_or_removed_bytes_are_rejected(verifier: WebhookVerifier, sign: Signer) -> None:
    headers = sign(BODY)

    _rejected(verifier, BODY + b"\n", headers, "bad_signature")
    _rejected(verifier, BODY[:-1], headers, "bad_signature")


def test_unknown_kid_raises_unknown_key_error_carrying_the_kid(
    verifier: WebhookVerifier, other_private_key: rsa.RSAPrivateKey
) -> None:
    headers = postal_signature_headers(BODY, other_private_key)

    error = _rejected(verifier, BODY, headers, "unknown_key")

    assert isinstance(error, UnknownKeyError)
    assert error.kid == postal_kid(other_private_key.public_key())
    assert verifier.keys.kids[0] in str(error)


def test_after_a_key_rotation_the_caller_refetches_and_retries(
    verifier: WebhookVerifier, other_private_key: rsa.RSAPrivateKey
) -> None:
    headers = postal_signature_headers(BODY, other_private_key)
    rotated = WebhookKeySet([WebhookKey.from_public_key(other_private_key.public_key())])

    with pytest.raises(UnknownKeyError):
        verifier.verify(BODY, headers)
    refreshed = verifier.with_keys(rotated)

    assert refreshed.verify(BODY, headers) == EVENTS["MessageSent"]
    assert refreshed.allow_legacy_sha1 == verifier.allow_legacy_sha1


def test_kid_selects_the_signing_key_among_several(
    private_key: rsa.RSAPrivateKey, other_private_key: rsa.RSAPrivateKey
) -> None:
    verifier = WebhookVerifier(
        WebhookKey.from_public_key(key.public_key()) for key in (private_key, other_private_key)
    )

    for key in (private_key, other_private_key):
        assert verifier.verify(BODY, postal_signature_headers(BODY, key)) == EVENTS["MessageSent"]


def test_body_over_the_size_cap_is_rejected_before_anything_else(
    private_key: rsa.RSAPrivateKey,
) -> None:
    verifier = WebhookVerifier(
        WebhookKey.from_public_key(private_key.public_key()), max_body_size=len(BODY) - 1
    )

    error = _rejected(verifier, BODY, {}, "body_too_large")
    assert str(len(BODY)) in str(error)


def test_body_at_the_size_cap_is_accepted(private_key: rsa.RSAPrivateKey, sign: Signer) -> None:
    verifier = WebhookVerifier(
        WebhookKey.from_public_key(private_key.public_key()), max_body_size=len(BODY)
    )

    assert verifier.verify(BODY, sign(BODY)) == EVENTS["MessageSent"]


@pytest.mark.parametrize("size", [0, -1])
def test_size_cap_must_be_positive(private_key: rsa.RSAPrivateKey, size: int) -> None:
    with pytest.raises(InvalidArgumentError, match="max_body_size"):
        WebhookVerifier(WebhookKey.from_public_key(private_key.public_key()), max_body_size=size)


def test_signed_body_that_is_not_an_event_is_a_parse_error(
    verifier: WebhookVerifier, sign: Signer
) -> None:
    body = b'{"hello":"world"}'

    with pytest.raises(WebhookParseError) as caught:
        verifier.verify(body, sign(body))
    assert caught.value.reason == "not_an_envelope"


def test_unsigned_body_that_is_not_json_fails_verification_not_parsing(
    verifier: WebhookVerifier,
) -> None:
    _rejected(verifier, b"not json", {}, "missing_signature")


@pytest.mark.parametrize(
    "make_headers",
    [
        pytest.param(lambda headers: headers, id="dict-as-sent"),
        pytest.param(lambda headers: {k.lower(): v for k, v in headers.items()}, id="dict-lower"),
        pytest.param(lambda headers: {k.upper(): v for k, v in headers.items()}, id="dict-upper"),
        pytest.param(httpx.Headers, id="httpx"),
        pytest.param(
            lambda headers: StarletteHeaders(
                raw=[(k.lower().encode(), v.encode()) for k, v in headers.items()]
            ),
            id="starlette",
        ),
    ],
)
def test_header_names_are_case_insensitive(
    verifier: WebhookVerifier, sign: Signer, make_headers: object
) -> None:
    headers = make_headers(sign(BODY))  # type: ignore[operator]

    assert verifier.verify(BODY, headers) == EVENTS["MessageSent"]


def test_a_signature_header_given_twice_with_different_values_is_rejected(
    verifier: WebhookVerifier, sign: Signer, other_private_key: rsa.RSAPrivateKey
) -> None:
    good = sign(BODY)["X-Postal-Signature-256"]
    other = postal_signature_headers(BODY, other_private_key)["X-Postal-Signature-256"]
    headers = {**sign(BODY), "x-postal-signature-256": other}
    assert headers["X-Postal-Signature-256"] == good

    _rejected(verifier, BODY, headers, "malformed_signature")


def test_a_signature_header_repeated_with_the_same_value_is_accepted(
    verifier: WebhookVerifier, sign: Signer
) -> None:
    headers = sign(BODY)
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

    assert verifier.verify(BODY, StarletteHeaders(raw=raw + raw[1:2])) == EVENTS["MessageSent"]


def test_legacy_sha1_only_is_rejected_by_default(verifier: WebhookVerifier, sign: Signer) -> None:
    headers = _without(sign(BODY), "X-Postal-Signature-256")

    error = _rejected(verifier, BODY, headers, "legacy_signature_only")
    assert "allow_legacy_sha1=True" in str(error)


def test_legacy_sha1_only_is_accepted_when_allowed(verifier: WebhookVerifier, sign: Signer) -> None:
    legacy = WebhookVerifier(verifier.keys, allow_legacy_sha1=True)
    headers = _without(sign(BODY), "X-Postal-Signature-256")

    assert legacy.verify(BODY, headers) == EVENTS["MessageSent"]
    _rejected(legacy, BODY[:-1] + b" ", headers, "bad_signature")


def test_postal_before_3_2_without_kid_is_checked_against_every_key(
    private_key: rsa.RSAPrivateKey, other_private_key: rsa.RSAPrivateKey, sign: Signer
) -> None:
    keys = [WebhookKey.from_public_key(k.public_key()) for k in (other_private_key, private_key)]
    legacy = WebhookVerifier(keys, allow_legacy_sha1=True)
    headers = {"X-Postal-Signature": sign(BODY)["X-Postal-Signature"]}

    assert legacy.verify(BODY, headers) == EVENTS["MessageSent"]
    _rejected(legacy, b"{}", headers, "bad_signature")


def test_sha256_is_used_whenever_present_even_if_sha1_is_allowed(
    verifier: WebhookVerifier, sign: Signer
) -> None:
    legacy = WebhookVerifier(verifier.keys, allow_legacy_sha1=True)
    good = sign(BODY)
    bad_sha1 = {**good, "X-Postal-Signature": good["X-Postal-Signature-256"]}
    bad_sha256 = {**good, "X-Postal-Signature-256": good["X-Postal-Signature"]}

    assert legacy.verify(BODY, bad_sha1) == EVENTS["MessageSent"]
    # No falling back to the weaker SHA-1 signature when the SHA-256 one fails.
    _rejected(legacy, BODY, bad_sha256, "bad_signature")


def test_a_body_given_as_text_is_refused(verifier: WebhookVerifier, sign: Signer) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="raw request bytes"):
        verifier.verify(BODY.decode(), sign(BODY))  # type: ignore[arg-type]


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_bytearray_and_memoryview_bodies_are_accepted(
    verifier: WebhookVerifier, sign: Signer, wrap: type
) -> None:
    assert verifier.verify(wrap(BODY), sign(BODY)) == EVENTS["MessageSent"]


def test_verifier_takes_one_key_a_key_set_or_several_keys(
    private_key: rsa.RSAPrivateKey,
) -> None:
    key = WebhookKey.from_public_key(private_key.public_key())
    key_set = WebhookKeySet([key])

    assert WebhookVerifier(key).keys == key_set
    assert WebhookVerifier(key_set).keys is key_set
    assert WebhookVerifier([key, key]).keys == key_set


def test_verification_errors_are_webhook_and_postal_errors() -> None:
    assert issubclass(UnknownKeyError, WebhookVerificationError)
    assert issubclass(WebhookVerificationError, WebhookError)
    assert issubclass(WebhookError, PostalError)
