"""The Ruby behaviours Postal's answers depend on, checked directly."""

from __future__ import annotations

from typing import Any

import pytest

from postal_sdk.testing._ruby import (
    decode64,
    encode64,
    is_blank,
    is_truthy,
    split_addresses,
    strip_name_from_address,
    to_s,
)


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("aGVsbG8=", b"hello"),
        ("aGVs\nbG8", b"hello"),
        ("aGVsbG8", b"hello"),
        ("aGVsb", b"hel"),
        ("=aGVs", b"hel"),
        ("aGV=zbG8", b"he"),
        ("a-_b", b"i"),
        ("", b""),
    ],
)
def test_decode64_is_lenient_like_ruby(text: str, decoded: bytes) -> None:
    assert decode64(text) == decoded


def test_encode64_wraps_every_sixty_characters_with_a_final_newline() -> None:
    encoded = encode64(b"x" * 100)

    assert [len(line) for line in encoded.split("\n")] == [60, 60, 16, 0]
    assert encode64(b"") == ""


@pytest.mark.parametrize(
    ("value", "blank"),
    [(None, True), (False, True), ("", True), (" \n\t", True), ([], True), ({}, True),
     (0, False), (True, False), ("x", False), ([None], False)],
)  # fmt: skip
def test_blank_follows_rails(value: Any, blank: bool) -> None:
    assert is_blank(value) is blank


@pytest.mark.parametrize(
    ("value", "truthy"), [(None, False), (False, False), (0, True), ("", True)]
)
def test_truthiness_follows_ruby(value: Any, truthy: bool) -> None:
    assert is_truthy(value) is truthy


@pytest.mark.parametrize(
    ("value", "text"),
    [("a", "a"), (None, ""), (True, "true"), (False, "false"), (5, "5"), (1.5, "1.5"),
     ({"a": 1}, '{"a": 1}')],
)  # fmt: skip
def test_to_s_approximates_ruby(value: Any, text: str) -> None:
    assert to_s(value) == text


@pytest.mark.parametrize(
    ("text", "parts"),
    [("a,b", ["a", "b"]), ("a, b,  ", ["a", "b"]), (",a", ["", "a"]), ("", [])],
)
def test_split_drops_trailing_empty_fields_like_ruby(text: str, parts: list[str]) -> None:
    assert split_addresses(text) == parts


@pytest.mark.parametrize(
    ("address", "stripped"),
    [
        ("John <John@Example.org>", "John@Example.org"),
        ("a@example.org (Comment)", "a@example.org"),
        ("<a@example.org> trailing", "a@example.org"),
        ("  a@example.org\t", "a@example.org"),
    ],
)
def test_strip_name_from_address_keeps_the_address_and_its_case(
    address: str, stripped: str
) -> None:
    assert strip_name_from_address(address) == stripped
