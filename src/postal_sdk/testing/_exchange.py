"""The plain values passed between the fake's core and its two front-ends.

The httpx transport and the ASGI app both turn what they receive into an `HTTPRequest`,
ask the core for an `Exchange`, and carry it out in their own terms.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class HTTPRequest:
    """A request as the fake sees it, whichever way it arrived."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The header's value, repeated headers joined with ", " as Rack does."""
        wanted = name.lower()
        values = [value for key, value in self.headers if key.lower() == wanted]
        return ", ".join(values) if values else None


@attrs.frozen
class HTTPResponse:
    """A complete response: status, headers and body."""

    status_code: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@attrs.frozen
class Exchange:
    """What the front-end must do with one request.

    Wait `delay` seconds, then send `response`, or close the connection without a
    response when it is `None`. With `cut_at`, only that many bytes of the body are sent
    before the connection is closed, although the headers announce the whole body.
    """

    response: HTTPResponse | None
    delay: float = 0.0
    cut_at: int | None = None
