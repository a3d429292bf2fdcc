"""Loading Postal's public key (PEM, DKIM record, JWKS), key ids, and the signing helpers."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from postal_sdk.webhooks import (
    WebhookKey,
    WebhookKeyError,
    WebhookKeySet,
    WebhookVerificationError,
    WebhookVerifier,
    compute_kid,
    dkim_record,
    jwks_document,
    sign_webhook_body,
)

from .conftest import postal_kid, postal_signature_headers
from .postal_bodies import BODIES, EVENTS


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _der_integer(value: int) -> bytes:
    encoded = value.to_bytes(value.bit_length() // 8 + 1, "big")  # a leading 0 keeps it positive
    return b"\x02" + _der_length(len(encoded)) + encoded


def _spki_pem(public_key: rsa.RSAPublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _spki_base64(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def _rejected_key(make: Any, *args: Any) -> WebhookKeyError:
    with pytest.raises(WebhookKeyError) as caught:
        make(*args)
    assert caught.value.reason == "invalid_key"
    return caught.value


def test_kid_is_sha256_hex_of_the_asn1_sequence_of_n_and_e(
    private_key: rsa.RSAPrivateKey,
) -> None:
    # The jwt gem digests DER SEQUENCE { INTEGER n, INTEGER e }, built here by hand.
    numbers = private_key.public_key().public_numbers()
    content = _der_integer(numbers.n) + _der_integer(numbers.e)
    sequence = b"\x30" + _der_length(len(content)) + content

    kid = compute_kid(private_key.public_key())

    assert kid == hashlib.sha256(sequence).hexdigest()
    assert re.fullmatch("[0-9a-f]{64}", kid)


def test_pem_in_spki_and_pkcs1_form_loads_the_same_key(private_key: rsa.RSAPrivateKey) -> None:
    public_key = private_key.public_key()
    pkcs1 = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)

    spki_key = WebhookKey.from_pem(_spki_pem(public_key))
    pkcs1_key = WebhookKey.from_pem(pkcs1.decode())

    assert spki_key == pkcs1_key
    assert pkcs1.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert spki_key.kid == postal_kid(public_key)


@pytest.mark.parametrize(
    "pem",
    [
        pytest.param(b"", id="empty"),
        pytest.param("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", id="garbage"),
        pytest.param("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQ", id="truncated"),
        pytest.param("clé publique", id="not-ascii"),
    ],
)
def test_bad_pem_is_a_key_error(pem: str | bytes) -> None:
    error = _rejected_key(WebhookKey.from_pem, pem)

    assert "PEM" in str(error)
    assert error.__cause__ is not None


def test_private_key_pem_is_not_taken_for_a_public_key(private_key: rsa.RSAPrivateKey) -> None:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )

    _rejected_key(WebhookKey.from_pem, pem)


def test_a_key_that_is_not_rsa_is_refused() -> None:
    ec_public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = ec_public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    assert "RSA" in str(_rejected_key(WebhookKey.from_pem, pem))
    _rejected_key(WebhookKey.from_public_key, ec_public_key)


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda p: f"v=DKIM1; t=s; h=sha256; p={p};", id="as-postal-prints-it"),
        pytest.param(lambda p: f"v=DKIM1; k=rsa; p={p}", id="k-rsa-no-final-semicolon"),
        pytest.param(lambda p: f"p={p}", id="p-tag-only"),
        pytest.param(lambda p: p, id="bare-p-value"),
        pytest.param(lambda p: f'"v=DKIM1; t=s; h=sha256; p={p[:200]}" "{p[200:]};"', id="split"),
        pytest.param(lambda p: f"v = DKIM1 ;\n\tp = {p[:100]}\n\t{p[100:]}", id="folded"),
    ],
)
def test_dkim_record_loads_the_key(private_key: rsa.RSAPrivateKey, shape: Any) -> None:
    public_key = private_key.public_key()

    key = WebhookKey.from_dkim_record(shape(_spki_base64(public_key)))

    assert key == WebhookKey.from_public_key(public_key)


def test_dkim_record_helper_prints_postals_record(private_key: rsa.RSAPrivateKey) -> None:
    record = dkim_record(private_key.public_key())

    assert record == f"v=DKIM1; t=s; h=sha256; p={_spki_base64(private_key.public_key())};"
    assert WebhookKey.from_dkim_record(record).kid == postal_kid(private_key.public_key())


@pytest.mark.parametrize(
    ("record", "says"),
    [
        pytest.param("v=DKIM1; t=s; h=sha256;", "no p= tag", id="no-p"),
        pytest.param("v=DKIM1; p=", "revoked", id="revoked"),
        pytest.param("", "revoked", id="empty"),
        pytest.param("v=DKIM1; k=ed25519; p=MCowBQYDK2VwAyEA", "not rsa", id="ed25519"),
        pytest.param("v=DKIM1; p=not*base64", "not a base64 public key", id="not-base64"),
        pytest.param("v=DKIM1; p=AAAA", "not a base64 public key", id="not-a-key"),
    ],
)
def test_bad_dkim_record_is_a_key_error(record: str, says: str) -> None:
    error = _rejected_key(WebhookKey.from_dkim_record, record)

    assert says in str(error)


def test_jwks_document_has_postals_shape(private_key: rsa.RSAPrivateKey) -> None:
    public_key = private_key.public_key()

    document = jwks_document(public_key)

    (jwk,) = document["keys"]
    assert set(jwk) == {"kty", "n", "e", "use", "alg", "kid"}
    assert (jwk["kty"], jwk["e"], jwk["use"], jwk["alg"]) == ("RSA", "AQAB", "sig", "RS256")
    assert jwk["kid"] == postal_kid(public_key)
    assert re.fullmatch("[A-Za-z0-9_-]+", jwk["n"])  # base64url without padding
    padded = jwk["n"] + "=" * (-len(jwk["n"]) % 4)
    assert int.from_bytes(base64.urlsafe_b64decode(padded), "big") == public_key.public_numbers().n


@pytest.mark.parametrize("encode", [lambda d: d, json.dumps, lambda d: json.dumps(d).encode()])
def test_jwks_loads_from_parsed_json_text_or_bytes(
    private_key: rsa.RSAPrivateKey, other_private_key: rsa.RSAPrivateKey, encode: Any
) -> None:
    public_keys = [private_key.public_key(), other_private_key.public_key()]

    key_set = WebhookKeySet.from_jwks(encode(jwks_document(*public_keys)))

    assert key_set.kids == tuple(postal_kid(k) for k in public_keys)
    assert list(key_set) == [WebhookKey.from_public_key(k) for k in public_keys]


def test_jwks_from_postal_verifies_its_webhooks(private_key: rsa.RSAPrivateKey) -> None:
    verifier = WebhookVerifier(WebhookKeySet.from_jwks(jwks_document(private_key.public_key())))
    body = BODIES["MessageBounced"]

    assert (
        verifier.verify(body, postal_signature_headers(body, private_key))
        == EVENTS["MessageBounced"]
    )


def test_jwk_without_kid_gets_the_computed_kid(private_key: rsa.RSAPrivateKey) -> None:
    (jwk,) = jwks_document(private_key.public_key())["keys"]
    del jwk["kid"]

    assert WebhookKey.from_jwk(jwk).kid == postal_kid(private_key.public_key())


def test_jwk_kid_is_taken_as_published(private_key: rsa.RSAPrivateKey) -> None:
    (jwk,) = jwks_document(private_key.public_key())["keys"]

    assert WebhookKey.from_jwk({**jwk, "kid": "2024-rotation"}).kid == "2024-rotation"


def test_jwk_with_base64_padding_is_accepted(private_key: rsa.RSAPrivateKey) -> None:
    (jwk,) = jwks_document(private_key.public_key())["keys"]
    padded = {**jwk, "e": "AQAB", "n": jwk["n"] + "=" * (-len(jwk["n"]) % 4)}

    assert WebhookKey.from_jwk(padded) == WebhookKey.from_jwk(jwk)


def test_jwks_skips_keys_that_are_not_rsa(private_key: rsa.RSAPrivateKey) -> None:
    document = jwks_document(private_key.public_key())
    document["keys"].insert(0, {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "ec"})

    assert WebhookKeySet.from_jwks(document).kids == (postal_kid(private_key.public_key()),)


def _jwk(**changes: Any) -> dict[str, Any]:
    jwk = {
        "kty": "RSA",
        "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1Wl",
        "e": "AQAB",
    }
    jwk.update(changes)
    return {key: value for key, value in jwk.items() if value is not None}


@pytest.mark.parametrize(
    ("document", "says"),
    [
        pytest.param("{not json", "not JSON", id="not-json"),
        pytest.param(b"[1, 2]", '"keys" list', id="not-an-object"),
        pytest.param({}, '"keys" list', id="no-keys"),
        pytest.param({"keys": {"kty": "RSA"}}, '"keys" list', id="keys-not-a-list"),
        pytest.param({"keys": []}, "no RSA key", id="empty"),
        pytest.param({"keys": [{"kty": "EC", "crv": "P-256"}]}, "no RSA key", id="only-ec"),
        pytest.param({"keys": ["RSA"]}, "JSON object", id="entry-not-object"),
        pytest.param({"keys": [_jwk(n=None)]}, "no 'n'", id="no-n"),
        pytest.param({"keys": [_jwk(e="")]}, "no 'e'", id="empty-e"),
        pytest.param({"keys": [_jwk(n=12345)]}, "no 'n'", id="n-not-string"),
        pytest.param({"keys": [_jwk(n="a+b/c*d")]}, "'n' is not base64url", id="n-not-b64url"),
        pytest.param({"keys": [_jwk(e="Ag")]}, "not a valid RSA key", id="even-exponent"),
        pytest.param({"keys": [_jwk(kid=7)]}, "kid", id="kid-not-string"),
        pytest.param({"keys": [_jwk(kid="")]}, "kid", id="kid-empty"),
    ],
)
def test_bad_jwks_is_a_key_error(document: Any, says: str) -> None:
    error = _rejected_key(WebhookKeySet.from_jwks, document)

    assert says in str(error)


def test_jwk_that_is_not_rsa_is_refused_when_loaded_alone() -> None:
    assert "'EC'" in str(_rejected_key(WebhookKey.from_jwk, {"kty": "EC"}))


def test_key_set_finds_keys_by_kid(
    private_key: rsa.RSAPrivateKey, other_private_key: rsa.RSAPrivateKey
) -> None:
    first = WebhookKey.from_public_key(private_key.public_key())
    second = WebhookKey.from_public_key(other_private_key.public_key())

    key_set = WebhookKeySet([first, second, first])

    assert len(key_set) == 2
    assert key_set.kids == (first.kid, second.kid)
    assert key_set.get(second.kid) == second
    assert key_set.get("0" * 64) is None
    assert first.kid in key_set
    assert "0" * 64 not in key_set


def test_key_set_refuses_two_keys_with_one_kid(
    private_key: rsa.RSAPrivateKey, other_private_key: rsa.RSAPrivateKey
) -> None:
    first = WebhookKey.from_public_key(private_key.public_key(), kid="main")
    impostor = WebhookKey.from_public_key(other_private_key.public_key(), kid="main")

    assert "'main'" in str(_rejected_key(WebhookKeySet, [first, impostor]))


def test_key_set_needs_a_key() -> None:
    _rejected_key(WebhookKeySet, [])


def test_key_errors_are_verification_errors_so_handlers_fail_closed() -> None:
    assert issubclass(WebhookKeyError, WebhookVerificationError)


def test_sign_webhook_body_signs_as_postal_does(private_key: rsa.RSAPrivateKey) -> None:
    body = BODIES["DomainDNSError"]

    headers = sign_webhook_body(body, private_key)

    # RSA PKCS#1 v1.5 signatures are deterministic: equal to the independent signer's.
    assert headers == postal_signature_headers(body, private_key)


def test_webhook_key_tells_whether_it_signed_a_body(private_key: rsa.RSAPrivateKey) -> None:
    key = WebhookKey.from_public_key(private_key.public_key())
    headers = sign_webhook_body(b"{}", private_key)
    sha256 = base64.b64decode(headers["X-Postal-Signature-256"])
    sha1 = base64.b64decode(headers["X-Postal-Signature"])

    assert key.verifies(sha256, b"{}")
    assert key.verifies(sha1, b"{}", "sha1")
    assert not key.verifies(sha1, b"{}")
    assert not key.verifies(sha256, b"{ }")


def test_keys_and_verifiers_are_hashable_values(private_key: rsa.RSAPrivateKey) -> None:
    pem = _spki_pem(private_key.public_key())
    key, same = WebhookKey.from_pem(pem), WebhookKey.from_pem(pem)

    assert {key, same} == {key}
    assert hash(WebhookVerifier(key)) == hash(WebhookVerifier(same))
