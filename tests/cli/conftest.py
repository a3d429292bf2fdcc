"""A fake Postal on loopback for the command line to talk to, and the settings it needs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postal_sdk.testing import FakePostal

API_KEY = "cli-test-key-000000000001"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakePostal, str]]:
    fake = FakePostal(API_KEY)
    with fake.serve() as base_url:
        yield fake, base_url


@pytest.fixture
def postal_env(served: tuple[FakePostal, str], monkeypatch: pytest.MonkeyPatch) -> FakePostal:
    """POSTAL_BASE_URL and POSTAL_API_KEY pointing at the served fake."""
    fake, base_url = served
    monkeypatch.setenv("POSTAL_BASE_URL", base_url)
    monkeypatch.setenv("POSTAL_API_KEY", API_KEY)
    return fake
