"""Reading messages from a JSONL file, one Postal send request per line.

A line holds the JSON object Postal's API takes: send/message's parameters (`from`, `to`,
`subject`, `plain_body`, `attachments` with base64 `data`, ...) or send/raw's (`mail_from`,
`rcpt_to`, base64 `data`). A line may also hold a `"key"`: the idempotency key its send
is journaled under (it is not part of the message). A line that is not a valid message is
reported with its number, and reading goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from postal_sdk.errors import PostalError
from postal_sdk.models import Message, RawMessage

__all__ = ["BadLine", "message_from_json", "read_keyed_messages", "read_messages"]


@attrs.frozen
class BadLine:
    """A line of the file that is not a valid message: its number, text and problem."""

    line: int
    text: str
    problem: str


def message_from_json(document: Any) -> Message | RawMessage:
    """A `Message` (or a `RawMessage`, when `mail_from` is given) from a decoded JSON object.

    The shape is that of `Message.to_dict()` and `RawMessage.to_dict()`.

    Raises:
        ValueError: The object is not a valid message; the text says which field.
    """
    if not isinstance(document, dict):
        raise ValueError(f"expected a JSON object, got {type(document).__name__}")
    model: type[Message | RawMessage] = RawMessage if "mail_from" in document else Message
    try:
        return model.from_dict(document)
    except PostalError as exc:
        raise ValueError(str(exc)) from None


def read_messages(lines: Iterable[str]) -> Iterator[tuple[int, Message | RawMessage | BadLine]]:
    """Each non-blank line's number (from 1) with its message, or a `BadLine` saying why not."""
    for number, item, _ in read_keyed_messages(lines):
        yield number, item


def read_keyed_messages(
    lines: Iterable[str],
) -> Iterator[tuple[int, Message | RawMessage | BadLine, str | None]]:
    """Like `read_messages`, with each line's `"key"` (taken out of the message), if any."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            document = json.loads(text)
        except ValueError as exc:
            yield number, BadLine(number, text.rstrip("\n"), f"not valid JSON: {exc}"), None
            continue
        key = document.pop("key", None) if isinstance(document, dict) else None
        if key is not None and (not isinstance(key, str) or not key):
            problem = f"key: expected a non-empty string, got {json.dumps(key)}"
            yield number, BadLine(number, text.rstrip("\n"), problem), None
            continue
        try:
            yield number, message_from_json(document), key
        except ValueError as exc:
            yield number, BadLine(number, text.rstrip("\n"), str(exc)), None
