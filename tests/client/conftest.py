"""Fixtures for the client tests: a client pointed at a respx-mocked Postal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from postal_sdk import AsyncPostal, Postal
from tests.client.support import API_KEY, BASE_URL, NO_WAIT


@pytest.fixture
async def async_postal() -> AsyncIterator[AsyncPostal]:
    async with AsyncPostal(BASE_URL, API_KEY, backoff=NO_WAIT) as client:
        yield client


@pytest.fixture
def postal() -> Iterator[Postal]:
    with Postal(BASE_URL, API_KEY, backoff=NO_WAIT) as client:
        yield client


@pytest.fixture(scope="session")
def signing_keys() -> list[rsa.RSAPrivateKey]:
    """Three RSA keys: Postal's current one, the one it rotates to, and a stranger's."""
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]
