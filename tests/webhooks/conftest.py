"""Keys and a signer that does what Postal does, written straight from contract §5.4."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from postal_sdk.webhooks import WebhookKey, WebhookVerifier

Signer = Callable[[bytes], dict[str, str]]


def postal_kid(public_key: rsa.RSAPublicKey) -> str:
    """SHA-256 hex of the PKCS#1 RSAPublicKey DER, as the jwt gem computes it."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return hashlib.sha256(der).hexdigest()


def postal_signature_headers(body: bytes, private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The three headers `Postal::HTTP.post` adds when it signs `body`."""

    def strict_base64(algorithm: hashes.HashAlgorithm) -> str:
        signature = private_key.sign(body, padding.PKCS1v15(), algorithm)
        return base64.b64encode(signature).decode("ascii")

    return {
        "X-Postal-Signature": strict_base64(hashes.SHA1()),  # noqa: S303 (Postal sends it)
        "X-Postal-Signature-256": strict_base64(hashes.SHA256()),
        "X-Postal-Signature-KID": postal_kid(private_key.public_key()),
    }


def _rsa_2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def private_key() -> rsa.RSAPrivateKey:
    """The Postal installation's signing key."""
    return _rsa_2048()


@pytest.fixture(scope="session")
def other_private_key() -> rsa.RSAPrivateKey:
    """Somebody else's key (or Postal's next one, after a rotation)."""
    return _rsa_2048()


@pytest.fixture(scope="session")
def sign(private_key: rsa.RSAPrivateKey) -> Signer:
    """Sign a body with the installation's key, as Postal does."""
    return lambda body: postal_signature_headers(body, private_key)


@pytest.fixture(scope="session")
def verifier(private_key: rsa.RSAPrivateKey) -> WebhookVerifier:
    """A verifier that trusts the installation's key."""
    return WebhookVerifier(WebhookKey.from_public_key(private_key.public_key()))
