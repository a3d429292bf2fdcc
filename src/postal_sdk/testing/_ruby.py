"""The Ruby and Rails semantics Postal's behaviour depends on, reproduced for the fake.

Postal is a Rails app, so "blank", "truthy", string splitting, lenient base64 and its
JSON encoding follow Ruby's rules rather than Python's. Each helper names the Ruby
expression it stands for.
"""

from __future__ import annotations

import base64
import json
import re
import string
from datetime import datetime, timezone
from typing import Any

_BASE64_ALPHABET = frozenset(string.ascii_letters + string.digits + "+/")
_RUBY_STRIP = " \t\n\v\f\r\0"


def is_blank(value: object) -> bool:
    """Ruby's `value.blank?`: nil, false, whitespace-only strings and empty collections."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, dict)):
        return not value
    return False


def is_truthy(value: object) -> bool:
    """Ruby's truthiness: only nil and false are false (`0`, `""` and `"false"` are true)."""
    return value is not None and value is not False


def to_s(value: object) -> str:
    """Ruby's `value.to_s` for a JSON value, close enough for header values and keys."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def split_addresses(value: str) -> list[str]:
    """Ruby's `value.split(/,\\s*/)`, which drops trailing empty fields."""
    parts = re.split(r",\s*", value)
    while parts and not parts[-1]:
        parts.pop()
    return parts


def strip_name_from_address(address: str) -> str:
    """`Postal::Helpers.strip_name_from_address`: `"Name <a@b> (c)"` becomes `"a@b"`."""
    address = re.sub(r".*<", "", address)
    address = re.sub(r">.*", "", address)
    address = re.sub(r"\(.+?\)", "", address)
    return address.strip(_RUBY_STRIP)


def decode64(text: str) -> bytes:
    """Ruby's lenient `Base64.decode64`: skips other characters, stops at padding."""
    kept: list[str] = []
    for char in text:
        if char in _BASE64_ALPHABET:
            kept.append(char)
        elif char == "=" and len(kept) % 4 >= 2:
            break
    if len(kept) % 4 == 1:
        kept.pop()
    return base64.b64decode("".join(kept) + "=" * (-len(kept) % 4))


def encode64(data: bytes) -> str:
    """Ruby's `Base64.encode64`: a newline after every 60 characters and at the end."""
    encoded = base64.b64encode(data).decode("ascii")
    return "".join(encoded[start : start + 60] + "\n" for start in range(0, len(encoded), 60))


_RAILS_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def rails_time(timestamp: float) -> str:
    """A time as Rails renders one in JSON: ISO 8601 in UTC, with milliseconds."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parameterize(text: str) -> str:
    """ActiveSupport's `String#parameterize` of an ASCII text: lower case, with each run of
    other characters (and of "-") as one "-", none at either end."""
    return re.sub(r"(?:[^a-z0-9\-_]|-)+", "-", text.lower()).strip("-")


def rails_json(value: Any) -> bytes:
    """JSON as Rails renders it: compact, UTF-8, with `<`, `>`, `&`, U+2028/9 escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escape in _RAILS_JSON_ESCAPES.items():
        text = text.replace(char, escape)
    return text.encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str | bytes) -> Any:
    """Ruby's `JSON.parse`: like `json.loads` but `NaN` and `Infinity` are errors."""
    return json.loads(text, parse_constant=_reject_constant)
