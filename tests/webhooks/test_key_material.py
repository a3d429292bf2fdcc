"""`WebhookVerifier` takes the key material users hold, or says which loader to use."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from postal_sdk import InvalidArgumentTypeError
from postal_sdk.webhooks import (
    WebhookKey,
    WebhookKeyError,
    WebhookKeySet,
    WebhookVerificationError,
    WebhookVerifier,
    dkim_record,
    jwks_document,
)

from .conftest import Signer

BODY = (
    b'{"event":"MessageSent","timestamp":1700000000.5,"uuid":"u-1","payload":{"message":'
    b'{"id":1,"token":"t","direction":"outgoing","message_id":"m@example.com",'
    b'"to":"john@example.com","from":"app@example.com","subject":"Hi",'
    b'"timestamp":1700000000.1,"spam_status":"NotChecked","tag":null},"status":"Sent",'
    b'"details":"ok","output":"250 OK","sent_with_ssl":true,"timestamp":1700000000.4,'
    b'"time":0.2}}'
)


def _pem(private_key: rsa.RSAPrivateKey, form: serialization.PublicFormat) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.PEM, form)


def _forms(private_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    public_key = private_key.public_key()
    spki = _pem(private_key, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwks = jwks_document(public_key)
    record = dkim_record(public_key)
    return {
        "PEM text": spki.decode(),
        "PEM bytes": spki,
        "PKCS#1 PEM text": _pem(private_key, serialization.PublicFormat.PKCS1).decode(),
        "PEM with surrounding whitespace": f"\n  {spki.decode()}\n",
        "JWKS text": json.dumps(jwks),
        "JWKS bytes": json.dumps(jwks).encode(),
        "JWKS dict": jwks,
        "one JWK dict": jwks["keys"][0],
        "DKIM record": record,
        "DKIM record as bytes": record.encode(),
        "DKIM p= value": record.split("p=")[1].rstrip(";"),
        "DKIM record quoted by dig": '"' + record[:40] + '" "' + record[40:] + '"',
        "cryptography public key": public_key,
        "list of PEMs": [spki.decode()],
        "list of JWK dicts": jwks["keys"],
    }


FORMS = (
    "PEM text",
    "PEM bytes",
    "PKCS#1 PEM text",
    "PEM with surrounding whitespace",
    "JWKS text",
    "JWKS bytes",
    "JWKS dict",
    "one JWK dict",
    "DKIM record",
    "DKIM record as bytes",
    "DKIM p= value",
    "DKIM record quoted by dig",
    "cryptography public key",
    "list of PEMs",
    "list of JWK dicts",
)


@pytest.mark.parametrize("form", FORMS)
def test_each_form_of_key_material_verifies_postals_signature(
    form: str, private_key: rsa.RSAPrivateKey, sign: Signer
) -> None:
    verifier = WebhookVerifier(_forms(private_key)[form])

    assert verifier.verify(BODY, sign(BODY)).uuid == "u-1"


@pytest.mark.parametrize("form", FORMS)
def test_each_form_trusts_only_that_key(
    form: str, other_private_key: rsa.RSAPrivateKey, sign: Signer
) -> None:
    verifier = WebhookVerifier(_forms(other_private_key)[form])

    with pytest.raises(WebhookVerificationError) as caught:
        verifier.verify(BODY, sign(BODY))
    assert caught.value.reason in {"unknown_key", "bad_signature"}


def test_with_keys_takes_the_same_forms(
    private_key: rsa.RSAPrivateKey, other_private_key: rsa.RSAPrivateKey, sign: Signer
) -> None:
    old = WebhookVerifier(dkim_record(other_private_key.public_key()))

    renewed = old.with_keys(jwks_document(private_key.public_key()))

    assert renewed.verify(BODY, sign(BODY)).uuid == "u-1"


def test_a_key_set_and_a_key_are_taken_as_they_are(private_key: rsa.RSAPrivateKey) -> None:
    key = WebhookKey.from_public_key(private_key.public_key())
    keys = WebhookKeySet([key])

    assert WebhookVerifier(keys).keys is keys
    assert WebhookVerifier(key).keys == keys


@pytest.mark.parametrize("wrong", [42, None, 3.5, object()])
def test_something_that_is_no_key_material_is_a_type_error_naming_the_loaders(
    wrong: object,
) -> None:
    with pytest.raises(InvalidArgumentTypeError) as caught:
        WebhookVerifier(wrong)  # type: ignore[arg-type]
    assert isinstance(caught.value, TypeError)
    assert caught.value.argument == "keys"
    for loader in (
        "WebhookKey.from_pem(pem)",
        "WebhookKeySet.from_jwks(document)",
        "WebhookKey.from_dkim_record(record)",
    ):
        assert loader in str(caught.value)


def test_a_wrong_type_in_a_list_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"cannot trust a int: load keys with WebhookKey\.from_pem"):
        WebhookVerifier([42])  # type: ignore[list-item]


def test_a_path_instead_of_the_key_asks_for_the_contents() -> None:
    with pytest.raises(WebhookKeyError, match="pass its contents, not its path"):
        WebhookVerifier("/etc/postal/signing.pub")


def test_binary_bytes_are_refused_with_the_der_loader_named() -> None:
    with pytest.raises(WebhookKeyError, match="load_der_public_key"):
        WebhookVerifier(b"\x30\x82\x01\x22\xff")


def test_a_pem_of_another_key_type_is_refused() -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(WebhookKeyError, match="Postal signs with RSA"):
        WebhookVerifier(pem.decode())
