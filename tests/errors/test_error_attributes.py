"""Typed attributes of the errors, whatever Postal put in its reply."""

from __future__ import annotations

from typing import Any

import pytest

from postal_sdk import MessageNotFound


@pytest.mark.parametrize(
    ("data", "expected"),
    [({"id": 42}, 42), ({"id": "42"}, None), ({"id": True}, None), ({}, None)],
)
def test_message_not_found_id_is_the_integer_postal_echoed_or_none(
    data: dict[str, Any], expected: int | None
) -> None:
    assert MessageNotFound("MessageNotFound", "No message found", data).id == expected
