"""Postal's webhook signing keys: loading, key ids, and signing for tests.

Postal signs with one RSA key per installation and publishes its public half two ways
(contract §5.4): as a JWK Set at `/.well-known/jwks.json` and as the DKIM TXT record of
the return-path domain. The `kid` Postal sends is the SHA-256 hex of the PKCS#1
`RSAPublicKey` DER (the jwt gem's default), which `compute_kid` reproduces.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import attrs

from postal_sdk.errors import (
    InvalidArgumentTypeError,
    UnknownKeyError,
    WebhookKeyError,
    WebhookVerificationError,
    WebhookVerificationFailure,
)

try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
except ImportError as exc:
    raise ImportError(
        "postal_sdk.webhooks needs the 'cryptography' package; "
        "install it with: pip install 'postal-sdk[webhooks]'"
    ) from exc

__all__ = [
    "SignatureAlgorithm",
    "UnknownKeyError",
    "WebhookKey",
    "WebhookKeyError",
    "WebhookKeySet",
    "WebhookKeySource",
    "WebhookVerificationError",
    "WebhookVerificationFailure",
    "compute_kid",
    "dkim_record",
    "jwks_document",
    "key_set",
    "sign_webhook_body",
]

SignatureAlgorithm = Literal["sha256", "sha1"]
"""The digest of an RSA PKCS#1 v1.5 signature: `sha256`, or `sha1` for the legacy header."""

_HASHES: Mapping[SignatureAlgorithm, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha1": hashes.SHA1,
}


def compute_kid(public_key: rsa.RSAPublicKey) -> str:
    """The key id Postal sends for `public_key`: SHA-256 hex of its PKCS#1 DER."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return hashlib.sha256(der).hexdigest()


# DKIM tag names are single letters, which no base64 DER value can start with (`MII...`).
_DKIM_TAG_LIST = re.compile(r"\s*[A-Za-z]\s*=")
_WHITESPACE = re.compile(r"\s+")


def _b64url_int(jwk: Mapping[str, Any], member: str) -> int:
    value = jwk.get(member)
    if not isinstance(value, str) or not value:
        raise WebhookKeyError(f"the JWK has no {member!r} string")
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except ValueError as exc:
        raise WebhookKeyError(f"the JWK {member!r} is not base64url") from exc
    return int.from_bytes(raw, "big")


@attrs.frozen
class WebhookKey:
    """One public key Postal signs webhooks with, and its `kid`."""

    kid: str
    # cryptography's keys are not hashable; the kid stands for the key in the hash.
    public_key: rsa.RSAPublicKey = attrs.field(hash=False)

    @classmethod
    def from_public_key(cls, public_key: PublicKeyTypes, *, kid: str | None = None) -> WebhookKey:
        """Wrap a `cryptography` RSA public key; the `kid` is computed when not given."""
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise WebhookKeyError(f"Postal signs with RSA, not {type(public_key).__name__}")
        return cls(kid=compute_kid(public_key) if kid is None else kid, public_key=public_key)

    @classmethod
    def from_pem(cls, pem: str | bytes) -> WebhookKey:
        """Load a PEM public key: SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`)."""
        data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
        try:
            public_key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise WebhookKeyError(f"not a PEM public key: {exc}") from exc
        return cls.from_public_key(public_key)

    @classmethod
    def from_dkim_record(cls, record: str) -> WebhookKey:
        """Load the key from Postal's DKIM TXT record, or from just its `p=` value.

        Takes `v=DKIM1; t=s; h=sha256; p=<base64 DER>;` as `postal default-dkim-record`
        prints it; quotes and whitespace from DNS tools (a record split in strings) are
        removed.
        """
        text = record.replace('"', "")
        value = text
        if ";" in text or _DKIM_TAG_LIST.match(text):
            tags: dict[str, str] = {}
            for part in text.split(";"):
                name, _, tag_value = part.partition("=")
                tags[name.strip()] = tag_value
            if tags.get("k", "rsa").strip() != "rsa":
                raise WebhookKeyError(f"the DKIM key type is {tags['k'].strip()!r}, not rsa")
            if "p" not in tags:
                raise WebhookKeyError("the DKIM record has no p= tag")
            value = tags["p"]
        value = _WHITESPACE.sub("", value)
        if not value:
            raise WebhookKeyError("the DKIM record has an empty p= tag (a revoked key)")
        try:
            public_key = serialization.load_der_public_key(base64.b64decode(value, validate=True))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise WebhookKeyError(f"the DKIM p= value is not a base64 public key: {exc}") from exc
        return cls.from_public_key(public_key)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> WebhookKey:
        """Load one RSA JWK (`kty`, `n`, `e`, optional `kid`) as in Postal's JWKS."""
        if not isinstance(jwk, Mapping):
            raise WebhookKeyError(f"a JWK is a JSON object, not {type(jwk).__name__}")
        if jwk.get("kty") != "RSA":
            raise WebhookKeyError(f"the JWK kty is {jwk.get('kty')!r}, not 'RSA'")
        kid = jwk.get("kid")
        if kid is not None and (not isinstance(kid, str) or not kid):
            raise WebhookKeyError(f"the JWK kid is not a non-empty string: {kid!r}")
        numbers = rsa.RSAPublicNumbers(e=_b64url_int(jwk, "e"), n=_b64url_int(jwk, "n"))
        try:
            public_key = numbers.public_key()
        except ValueError as exc:
            raise WebhookKeyError(f"the JWK is not a valid RSA key: {exc}") from exc
        return cls.from_public_key(public_key, kid=kid)

    def verifies(
        self, signature: bytes, body: bytes, algorithm: SignatureAlgorithm = "sha256"
    ) -> bool:
        """Whether `signature` is this key's RSA PKCS#1 v1.5 signature of `body`."""
        try:
            self.public_key.verify(signature, body, padding.PKCS1v15(), _HASHES[algorithm]())
        except InvalidSignature:
            return False
        return True


@attrs.frozen(init=False)
class WebhookKeySet:
    """The keys a verifier trusts, by `kid`: one key, or several while Postal rotates."""

    _by_kid: Mapping[str, WebhookKey] = attrs.field(hash=False)

    def __init__(self, keys: Iterable[WebhookKey]) -> None:
        """Collect `keys`; at least one, and no two different keys with the same kid."""
        by_kid: dict[str, WebhookKey] = {}
        for key in keys:
            if by_kid.setdefault(key.kid, key) != key:
                raise WebhookKeyError(f"two different keys have kid {key.kid!r}")
        if not by_kid:
            raise WebhookKeyError("no RSA key to verify with")
        self.__attrs_init__(MappingProxyType(by_kid))

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any] | str | bytes) -> WebhookKeySet:
        """Load a JWK Set (`{"keys": [...]}`), as parsed JSON or as its text.

        Keys that are not RSA are skipped; a set with no RSA key is an error.
        """
        if isinstance(document, (str, bytes)):
            try:
                document = json.loads(document)
            except (ValueError, RecursionError) as exc:
                raise WebhookKeyError(f"the JWKS is not JSON: {exc}") from exc
        keys = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(keys, list):
            raise WebhookKeyError('a JWKS is a JSON object with a "keys" list')
        # Other key types are skipped (a JWKS may list EC keys beside Postal's RSA key);
        # an entry that is not an object reaches from_jwk, which refuses it.
        return cls(
            WebhookKey.from_jwk(jwk)
            for jwk in keys
            if not isinstance(jwk, Mapping) or jwk.get("kty") == "RSA"
        )

    @property
    def kids(self) -> tuple[str, ...]:
        """The key ids in the set."""
        return tuple(self._by_kid)

    def get(self, kid: str) -> WebhookKey | None:
        """The key with this `kid`, or `None`."""
        return self._by_kid.get(kid)

    def __contains__(self, kid: object) -> bool:
        return kid in self._by_kid

    def __iter__(self) -> Iterator[WebhookKey]:
        return iter(self._by_kid.values())

    def __len__(self) -> int:
        return len(self._by_kid)


# The bare `p=` value of a DKIM record: base64 of a DER key, possibly split by whitespace.
_DKIM_VALUE = re.compile(r"[A-Za-z0-9+/=\s]+")


WebhookKeySource: TypeAlias = (
    WebhookKeySet
    | WebhookKey
    | Iterable[WebhookKey | str | bytes | Mapping[str, Any]]
    | str
    | bytes
    | Mapping[str, Any]
    | rsa.RSAPublicKey
)
"""What `WebhookVerifier` trusts: a key set or key, or the key material as users hold it.

A PEM public key (`str` or `bytes`), a JWKS document (its JSON text, or parsed), one JWK
(parsed), Postal's DKIM TXT record (or its `p=` value), a `cryptography` RSA public key,
or a list of any of these.
"""

_KEY_CONSTRUCTORS = (
    "WebhookKey.from_pem(pem), WebhookKeySet.from_jwks(document), "
    "WebhookKey.from_dkim_record(record) or WebhookKey.from_public_key(key)"
)


def _keys_from_text(text: str) -> WebhookKeySet | WebhookKey:
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        return WebhookKey.from_pem(stripped)
    if stripped.startswith("{"):
        return WebhookKeySet.from_jwks(stripped)
    if "p=" in stripped or _DKIM_VALUE.fullmatch(stripped.replace('"', "")):
        return WebhookKey.from_dkim_record(stripped)
    raise WebhookKeyError(
        "the text is not a PEM public key, a JWKS document or a DKIM record "
        "(to read a key file, pass its contents, not its path)"
    )


def _keys_from(keys: object) -> WebhookKeySet | WebhookKey:
    if isinstance(keys, (WebhookKeySet, WebhookKey)):
        return keys
    if isinstance(keys, rsa.RSAPublicKey):
        return WebhookKey.from_public_key(keys)
    if isinstance(keys, (bytes, bytearray, memoryview)):
        try:
            return _keys_from_text(bytes(keys).decode("ascii"))
        except UnicodeDecodeError:
            raise WebhookKeyError(
                "the bytes are not text: a DER key is loaded with "
                "WebhookKey.from_public_key(serialization.load_der_public_key(der))"
            ) from None
    if isinstance(keys, str):
        return _keys_from_text(keys)
    if isinstance(keys, Mapping):
        # A JWKS has "keys"; a lone JWK has "kty".
        return WebhookKey.from_jwk(keys) if "kty" in keys else WebhookKeySet.from_jwks(keys)
    raise InvalidArgumentTypeError(
        "keys", f"cannot trust a {type(keys).__name__}: load keys with {_KEY_CONSTRUCTORS}"
    )


def key_set(keys: WebhookKeySource) -> WebhookKeySet:
    """The trusted keys, from whatever form of key material `keys` is in."""
    if isinstance(
        keys, (WebhookKeySet, WebhookKey, str, bytes, bytearray, memoryview, Mapping)
    ) or not isinstance(keys, Iterable):
        found = _keys_from(keys)
        return found if isinstance(found, WebhookKeySet) else WebhookKeySet([found])
    collected: list[WebhookKey] = []
    for item in keys:
        found = _keys_from(item)
        collected.extend(found if isinstance(found, WebhookKeySet) else [found])
    return WebhookKeySet(collected)


def sign_webhook_body(body: bytes, private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    """Sign `body` as Postal does: the three `X-Postal-Signature*` headers.

    For tests and the fake server; production webhooks are signed by Postal itself.
    """

    def signature(algorithm: SignatureAlgorithm) -> str:
        signed = private_key.sign(body, padding.PKCS1v15(), _HASHES[algorithm]())
        return base64.b64encode(signed).decode("ascii")

    return {
        # Postal still sends SHA-1 "for legacy use"; its fake must too.
        "X-Postal-Signature": signature("sha1"),
        "X-Postal-Signature-256": signature("sha256"),
        "X-Postal-Signature-KID": compute_kid(private_key.public_key()),
    }


def _b64url(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def jwks_document(public_key: rsa.RSAPublicKey, *more: rsa.RSAPublicKey) -> dict[str, Any]:
    """The JWK Set Postal serves at `/.well-known/jwks.json` for these keys.

    For tests and the fake server.
    """
    keys = []
    for key in (public_key, *more):
        numbers = key.public_numbers()
        keys.append(
            {
                "kty": "RSA",
                "n": _b64url(numbers.n),
                "e": _b64url(numbers.e),
                "use": "sig",
                "alg": "RS256",
                "kid": compute_kid(key),
            }
        )
    return {"keys": keys}


def dkim_record(public_key: rsa.RSAPublicKey) -> str:
    """The DKIM TXT record value Postal prints for its key (`postal default-dkim-record`).

    For tests and the fake server.
    """
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; t=s; h=sha256; p={base64.b64encode(der).decode('ascii')};"
