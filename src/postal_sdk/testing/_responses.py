"""What Postal sends back: the API envelope (§1.5) and Rails' own error responses."""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Literal

import attrs

from postal_sdk.testing._exchange import HTTPRequest, HTTPResponse
from postal_sdk.testing._ruby import rails_json

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"

# Rails' `public/404.html` and `public/500.html`, abridged; `public/400.html` does not exist.
_PUBLIC_PAGES = {
    404: "The page you were looking for doesn't exist.",
    500: "We're sorry, but something went wrong.",
}
_PAGE = (
    "<!DOCTYPE html>\n<html>\n<head>\n  <title>{title}</title>\n</head>\n"
    '<body>\n  <div class="dialog">\n    <h1>{title}</h1>\n  </div>\n</body>\n</html>\n'
)
# Rails treats an Accept header listing */* among other types as a browser's.
_BROWSER_LIKE_ACCEPT = re.compile(r",\s*\*/\*|\*/\*\s*,")


@attrs.frozen
class Reply:
    """An action's outcome, before it is wrapped in the envelope."""

    status: Literal["success", "error", "parameter-error"]
    data: Any


def success(data: Any) -> Reply:
    """`render_success`: `data` is the endpoint result (an object, or a list)."""
    return Reply("success", data)


def error(code: str, data: Mapping[str, Any] | None = None) -> Reply:
    """`render_error`: `code` is merged in last, so it is the last key of `data`."""
    return Reply("error", {**(data or {}), "code": code})


def parameter_error(message: str) -> Reply:
    """`render_parameter_error`: only a `message`, no `code`."""
    return Reply("parameter-error", {"message": message})


def envelope(reply: Reply, elapsed: float) -> HTTPResponse:
    """The envelope every handled request gets, with HTTP 200."""
    body = {"status": reply.status, "time": round(elapsed, 3), "flags": {}, "data": reply.data}
    return _response(200, JSON_CONTENT_TYPE, rails_json(body))


def rails_error(status: int, *, as_json: bool) -> HTTPResponse:
    """Rails' answer to an unrouted path (404), bad JSON (400) or an exception (500)."""
    if as_json:
        body = {"status": status, "error": HTTPStatus(status).phrase}
        return _response(status, JSON_CONTENT_TYPE, rails_json(body))
    page = _PUBLIC_PAGES.get(status)
    html = _PAGE.format(title=page) if page else ""
    return _response(status, HTML_CONTENT_TYPE, html.encode("utf-8"))


def blocked_host() -> HTTPResponse:
    """`ActionDispatch::HostAuthorization` refusing a `Host` that is not Postal's."""
    return _response(403, HTML_CONTENT_TYPE, b"")


def wants_json(request: HTTPRequest, path_format: str | None) -> bool:
    """Whether Rails would render its error responses as JSON for this request."""
    if path_format is not None:
        return path_format == "json"
    accept = request.header("accept")
    if not accept or _BROWSER_LIKE_ACCEPT.search(accept):
        return False
    ranges = [_media_range(part) for part in accept.split(",") if part.strip()]
    ranges.sort(key=lambda item: -item[1])
    return ranges[0][0] == "application/json"


def _media_range(part: str) -> tuple[str, float]:
    media_type, *parameters = (piece.strip() for piece in part.split(";"))
    quality = 1.0
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
    return media_type.lower(), quality


def without_body(response: HTTPResponse) -> HTTPResponse:
    """The answer to a HEAD request: the same headers, no body."""
    return attrs.evolve(response, body=b"")


def _response(status: int, content_type: str, body: bytes) -> HTTPResponse:
    headers = (("content-type", content_type), ("content-length", str(len(body))))
    return HTTPResponse(status, headers, body)


class ServerCrash(Exception):
    """Postal's code would raise here; Rails answers with its 500 page."""
