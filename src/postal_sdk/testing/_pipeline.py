"""How Postal answers one request: host check, routing, authentication, parameters, action."""

from __future__ import annotations

import re
from collections.abc import Callable
from time import perf_counter

import attrs

from postal_sdk.testing._actions import ACTIONS, Context
from postal_sdk.testing._exchange import HTTPRequest, HTTPResponse
from postal_sdk.testing._params import InvalidJSONBody, parse_params
from postal_sdk.testing._records import OutboxEntry
from postal_sdk.testing._responses import (
    Reply,
    ServerCrash,
    blocked_host,
    envelope,
    error,
    rails_error,
    wants_json,
    without_body,
)
from postal_sdk.testing._routes import JWKS_METHODS, ROUTED_METHODS, Endpoint, is_jwks, route
from postal_sdk.testing._ruby import is_blank
from postal_sdk.testing._state import Directory, FakeServer
from postal_sdk.testing._webhooks import SigningKey

DEFAULT_WEB_HOSTNAME = "postal.example.com"


@attrs.frozen
class Installation:
    """A Postal installation: its settings and servers, answering HTTP requests.

    `hostname` is the configured web hostname; when it is `None` any Host is served.
    Accepted sends are handed to `record_send`. `signing_key` signs webhooks and is
    served, without authentication, at `/.well-known/jwks.json`.
    """

    directory: Directory
    hostname: str | None
    return_path_domain: str
    record_send: Callable[[OutboxEntry], None]
    signing_key: SigningKey

    def respond(self, request: HTTPRequest) -> HTTPResponse:
        """What Postal (Rails, then the API controller) answers to `request`."""
        if self.hostname is not None and not _host_matches(request, self.hostname):
            return blocked_host()
        found = route(request.path)
        if is_jwks(request.path) and request.method in JWKS_METHODS:
            response = self.signing_key.jwks_response()
        elif found is None or request.method not in ROUTED_METHODS:
            response = rails_error(404, as_json=wants_json(request, None))
        else:
            response = self._run_action(found.endpoint, request, wants_json(request, found.format))
        return without_body(response) if request.method == "HEAD" else response

    def _run_action(self, endpoint: Endpoint, request: HTTPRequest, as_json: bool) -> HTTPResponse:
        started = perf_counter()
        server = self._authenticate(request.header("x-server-api-key"))
        if isinstance(server, Reply):
            return envelope(server, perf_counter() - started)
        context = Context(
            server=server,
            record_send=self.record_send,
            web_hostname=self.hostname or DEFAULT_WEB_HOSTNAME,
            return_path_domain=self.return_path_domain,
        )
        try:
            reply = ACTIONS[endpoint](context, parse_params(request))
        except InvalidJSONBody:
            return rails_error(400, as_json=as_json)
        except ServerCrash:
            return rails_error(500, as_json=as_json)
        return envelope(reply, perf_counter() - started)

    def _authenticate(self, key: str | None) -> FakeServer | Reply:
        """`authenticate_as_server`: the server the key opens, or the error reply."""
        if key is None or is_blank(key):
            return error("AccessDenied", {"message": "Must be authenticated as a server."})
        server = self.directory.server_for_key(key)
        if server is None:
            message = "The API token provided in X-Server-API-Key was not valid."
            return error("InvalidServerAPIKey", {"message": message, "token": key})
        if server.suspended:
            return error("ServerSuspended")
        return server


def _host_matches(request: HTTPRequest, hostname: str) -> bool:
    host = re.sub(r":\d+\Z", "", request.header("host") or "")
    return host.lower() == hostname.lower()
