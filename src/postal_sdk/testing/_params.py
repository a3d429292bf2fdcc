"""`api_params`: how Postal reads a request's parameters (§1.4).

JSON mode when the raw Content-Type starts with `application/json` (case-sensitive);
otherwise the JSON text in a `params` field of the query string or form body; otherwise
nothing at all.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from typing import Any
from urllib.parse import parse_qsl

from postal_sdk.testing._exchange import HTTPRequest
from postal_sdk.testing._responses import ServerCrash
from postal_sdk.testing._ruby import is_blank, parse_json

_JSON_MODE = re.compile(r"application/json")


class InvalidJSONBody(Exception):
    """The JSON body does not parse: Rails answers 400 before Postal's code runs."""


def parse_params(request: HTTPRequest) -> dict[str, Any]:
    """The parameters Postal's actions see, or `InvalidJSONBody` / `ServerCrash`."""
    content_type = request.header("content-type")
    query = dict(parse_qsl(request.query, keep_blank_values=True))
    if content_type is not None and _JSON_MODE.match(content_type):
        return {**query, **_json_body(request.body)}
    fields = {**query, **_form_fields(request.method, content_type, request.body)}
    text = fields.get("params")
    if is_blank(text):
        return {}
    try:
        params = parse_json(str(text))
    except ValueError as exc:
        raise ServerCrash("JSON::ParserError in params") from exc
    if not isinstance(params, dict):
        raise ServerCrash("params is not a JSON object")
    return params


def _json_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        parsed = parse_json(body)
    except ValueError as exc:
        raise InvalidJSONBody from exc
    parsed = _without_nulls_in_arrays(parsed)
    return parsed if isinstance(parsed, dict) else {"_json": parsed}


def _without_nulls_in_arrays(value: Any) -> Any:
    """Rails' `deep_munge`: `null` elements are dropped from arrays, at any depth."""
    if isinstance(value, list):
        return [_without_nulls_in_arrays(item) for item in value if item is not None]
    if isinstance(value, dict):
        return {key: _without_nulls_in_arrays(item) for key, item in value.items()}
    return value


def _form_fields(method: str, content_type: str | None, body: bytes) -> dict[str, str]:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    # Rack reads a POST without a Content-Type as a urlencoded form.
    if media_type == "application/x-www-form-urlencoded" or (
        content_type is None and method == "POST"
    ):
        return dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
    if media_type == "multipart/form-data" and content_type is not None:
        return _multipart_fields(content_type, body)
    return {}


def _multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    for part in form.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = bytes(part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return fields
