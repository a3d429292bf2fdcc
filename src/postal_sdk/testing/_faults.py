"""Faults: what the network or a reverse proxy can do to a request on its way to Postal.

Each fault decides whether Postal's code runs (`respond()` is called) and what the client
gets back. `FaultRule` says which requests a fault applies to.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import attrs

from postal_sdk.testing._exchange import Exchange, HTTPResponse
from postal_sdk.testing._routes import fault_key

Respond = Callable[[], HTTPResponse]
"""Runs Postal's code for the request and returns its response."""


class Fault(abc.ABC):
    """Something that goes wrong with one request, between the client and Postal."""

    @abc.abstractmethod
    def apply(self, respond: Respond) -> Exchange:
        """How the fake carries the fault out; `respond` runs the request in Postal."""


@attrs.frozen
class Latency(Fault):
    """The request is processed, and the response comes `seconds` late.

    In-process, a client read timeout shorter than the delay raises `httpx.ReadTimeout`
    after the timeout, as a real network would; the request was processed all the same.
    """

    seconds: float

    def apply(self, respond: Respond) -> Exchange:
        """Process the request, then wait before answering."""
        return Exchange(respond(), delay=self.seconds)


@attrs.frozen
class DropBeforeProcessing(Fault):
    """The connection is closed before Postal reads the request: nothing is processed.

    The client sees a dropped connection (`httpx.RemoteProtocolError`, "Server
    disconnected without sending a response"), exactly as in `DropAfterProcessing`.
    """

    def apply(self, respond: Respond) -> Exchange:
        """Close the connection without running the request."""
        return Exchange(None)


@attrs.frozen
class DropAfterProcessing(Fault):
    """Postal processes the request (a send is queued), then the connection drops.

    The client cannot tell this from `DropBeforeProcessing`; the request log can.
    """

    def apply(self, respond: Respond) -> Exchange:
        """Run the request, then close the connection without answering."""
        respond()
        return Exchange(None)


_NGINX_PAGE = (
    "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
    "<center><h1>{status}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def _proxy_page(status: int, title: str, *extra: tuple[str, str]) -> HTTPResponse:
    body = _NGINX_PAGE.format(status=f"{status} {title}").encode("ascii")
    headers = (("content-type", "text/html"), ("content-length", str(len(body))), *extra)
    return HTTPResponse(status, headers, body)


@attrs.frozen
class BadGateway(Fault):
    """A reverse proxy in front of Postal answers 502 with its HTML page; nothing is processed."""

    def apply(self, respond: Respond) -> Exchange:
        """Answer with the proxy's 502 page."""
        return Exchange(_proxy_page(502, "Bad Gateway"))


@attrs.frozen
class ServiceUnavailable(Fault):
    """A reverse proxy answers 503 with a `Retry-After` header; nothing is processed.

    `retry_after` is the header's value: seconds, or an HTTP date as a string.
    """

    retry_after: int | str = 1

    def apply(self, respond: Respond) -> Exchange:
        """Answer with a 503 page that says when to retry."""
        retry_after = ("retry-after", str(self.retry_after))
        return Exchange(_proxy_page(503, "Service Temporarily Unavailable", retry_after))


@attrs.frozen
class NonJSONBody(Fault):
    """Something other than Postal answers 200 with a page that is not JSON.

    Nothing is processed. The default body is an HTML page, as from a captive portal or a
    misrouted virtual host.
    """

    body: str = "<!DOCTYPE html>\n<html><body><h1>Welcome to nginx!</h1></body></html>\n"
    content_type: str = "text/html; charset=utf-8"

    def apply(self, respond: Respond) -> Exchange:
        """Answer 200 with `body`."""
        data = self.body.encode("utf-8")
        headers = (("content-type", self.content_type), ("content-length", str(len(data))))
        return Exchange(HTTPResponse(200, headers, data))


@attrs.frozen
class TruncatedBody(Fault):
    """The request is processed; the response is cut to half its JSON body.

    The Content-Length matches what is sent, so the HTTP exchange completes cleanly and
    the client receives HTTP 200 with a body that is not valid JSON.
    """

    def apply(self, respond: Respond) -> Exchange:
        """Run the request and answer with the first half of its body."""
        response = respond()
        body = response.body[: len(response.body) // 2]
        headers = tuple(
            (name, str(len(body)) if name == "content-length" else value)
            for name, value in response.headers
        )
        return Exchange(attrs.evolve(response, headers=headers, body=body))


@attrs.frozen
class IncompleteBody(Fault):
    """The request is processed; the connection closes halfway through the response body.

    The headers announce the whole body, so the client sees an incomplete read
    (`httpx.RemoteProtocolError`, "peer closed connection without sending complete
    message body (received ... bytes, expected ...)").
    """

    def apply(self, respond: Respond) -> Exchange:
        """Run the request and send only the first half of the body."""
        response = respond()
        return Exchange(response, cut_at=len(response.body) // 2)


@attrs.define
class FaultRule:
    """A fault, the requests it applies to, and how often it has fired.

    `path` limits it to one action (`"send/message"`) or path; `None` means every path.
    `times` is how many requests it applies to; `None` means every one.
    """

    fault: Fault
    path: str | None = attrs.field(default=None, converter=attrs.converters.optional(fault_key))
    times: int | None = None
    used: int = 0

    @property
    def exhausted(self) -> bool:
        """Whether the rule has applied to its `times` requests already."""
        return self.times is not None and self.used >= self.times

    def matches(self, key: str) -> bool:
        """Whether the rule applies to the next request whose fault key is `key`."""
        return not self.exhausted and self.path in (None, key)
