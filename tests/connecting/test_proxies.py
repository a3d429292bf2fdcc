"""Proxies: wherever `httpx.AsyncClient()` / `httpx.Client()` goes through a proxy, so does the
SDK, on every transport; wherever httpx goes direct, so does the SDK.

Each case sets the environment (and options), sends through the SDK and GETs through plain
httpx to the same origin, and compares what the forwarding proxy saw. The expected answer is
written down too, so that a change in httpx is noticed rather than followed blindly.
"""

from __future__ import annotations

import base64
from typing import Any

import anyio
import httpx
import pytest

from postal_sdk import APIConnectionError, AsyncPostal, Postal
from postal_sdk.testing import DEFAULT_API_KEY
from tests.connecting.conftest import Files, ForwardProxy
from tests.connecting.support import FLAVOURS, MESSAGE, ca_context, httpx_get, send

PROXY = "{proxy}"

CASES = [
    # (environment, options, target, proxied)
    ({"HTTP_PROXY": PROXY}, {}, "http", True),
    ({"HTTP_PROXY": PROXY}, {}, "https", False),
    ({"http_proxy": PROXY}, {}, "http", True),
    ({"HTTPS_PROXY": PROXY}, {}, "https", True),
    ({"HTTPS_PROXY": PROXY}, {}, "http", False),
    ({"ALL_PROXY": PROXY}, {}, "http", True),
    ({"ALL_PROXY": PROXY}, {}, "https", True),
    ({"ALL_PROXY": PROXY, "NO_PROXY": "127.0.0.1"}, {}, "http", False),
    ({"ALL_PROXY": PROXY, "NO_PROXY": "127.0.0.1"}, {}, "http-localhost", True),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "example.com,localhost"}, {}, "https", False),
    ({"ALL_PROXY": PROXY, "NO_PROXY": "*"}, {}, "http", False),
    ({"ALL_PROXY": PROXY}, {"trust_env": False}, "http", False),
    ({"HTTPS_PROXY": PROXY}, {"trust_env": False}, "https", False),
    ({}, {"proxy": PROXY}, "http", True),
    ({}, {"proxy": PROXY}, "https", True),
    # proxy= replaces the environment, NO_PROXY included, as in httpx.
    ({"NO_PROXY": "127.0.0.1"}, {"proxy": PROXY}, "http", True),
    ({"HTTP_PROXY": "http://127.0.0.1:9"}, {"proxy": PROXY}, "http", True),
]


def _target(kind: str, http_url: str, https_url: str) -> str:
    if kind == "http-localhost":
        return http_url.replace("127.0.0.1", "localhost")
    return https_url if kind == "https" else http_url


def _fill(values: dict[str, Any], proxy: str) -> dict[str, Any]:
    return {name: proxy if value == PROXY else value for name, value in values.items()}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    ("environment", "options", "target", "proxied"),
    CASES,
    ids=[
        f"{'+'.join(env) or 'no-env'}-{'+'.join(opts) or 'defaults'}-{kind}"
        for env, opts, kind, _ in CASES
    ],
)
def test_the_sdk_goes_through_the_proxy_exactly_when_httpx_does(
    flavour: str,
    environment: dict[str, str],
    options: dict[str, Any],
    target: str,
    proxied: bool,
    forward_proxy: ForwardProxy,
    http_url: str,
    https_url: str,
    files: Files,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in _fill(environment, forward_proxy.url).items():
        monkeypatch.setenv(name, value)
    options = _fill(options, forward_proxy.url)
    url = _target(target, http_url, https_url)

    mark = forward_proxy.mark()
    httpx_get(flavour, url, verify=ca_context(str(files.ca)), **options)
    httpx_went = forward_proxy.went_through(url, mark)

    mark = forward_proxy.mark()
    result = send(flavour, url, verify=str(files.ca), **options)
    sdk_went = forward_proxy.went_through(url, mark)

    assert "john@example.com" in result.messages
    assert (sdk_went, httpx_went) == (proxied, proxied)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("target", ["http", "https"])
@pytest.mark.parametrize("given_as", ["url", "httpx.Proxy"])
def test_the_proxy_credentials_are_sent_to_the_proxy(
    flavour: str,
    target: str,
    given_as: str,
    forward_proxy: ForwardProxy,
    http_url: str,
    https_url: str,
    files: Files,
) -> None:
    url = _target(target, http_url, https_url)
    proxy: str | httpx.Proxy = forward_proxy.url.replace("://", "://user:s%3Acret@")
    if given_as == "httpx.Proxy":
        proxy = httpx.Proxy(forward_proxy.url, auth=("user", "s:cret"))
    mark = forward_proxy.mark()
    send(flavour, url, verify=str(files.ca), proxy=proxy)
    expected = "proxy-authorization=Basic " + base64.b64encode(b"user:s:cret").decode()
    assert [line.endswith(expected) for line in forward_proxy.requests_to(url, mark)] == [True]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("target", ["http", "https"])
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_a_socks_proxy_carries_the_requests(
    flavour: str,
    target: str,
    scheme: str,
    forward_proxy: ForwardProxy,
    http_url: str,
    https_url: str,
    files: Files,
) -> None:
    url = _target(target, http_url, https_url)
    proxy = forward_proxy.socks_url.replace("socks5:", f"{scheme}:")
    mark = forward_proxy.mark()
    httpx_get(flavour, url, verify=ca_context(str(files.ca)), proxy=proxy)
    assert forward_proxy.went_through(url, mark)
    mark = forward_proxy.mark()
    assert send(flavour, url, verify=str(files.ca), proxy=proxy).messages
    assert forward_proxy.went_through(url, mark)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_client_certificate_is_presented_through_a_proxy_tunnel(
    flavour: str,
    forward_proxy: ForwardProxy,
    mtls_url: str,
    files: Files,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", forward_proxy.url)
    mark = forward_proxy.mark()
    result = send(flavour, mtls_url, verify=str(files.ca), cert=str(files.client_combined))
    assert "john@example.com" in result.messages
    assert forward_proxy.went_through(mtls_url, mark)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_environment_is_read_when_the_client_is_built_as_httpx_reads_it(
    flavour: str, forward_proxy: ForwardProxy, http_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy set after the client was built is not used: httpx reads the environment once.
    if flavour == "sync":
        with Postal(http_url, DEFAULT_API_KEY) as postal:
            monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
            mark = forward_proxy.mark()
            postal.send_message(MESSAGE)
    else:

        async def sending() -> None:
            backend = "aiohttp" if flavour == "aiohttp" else "httpx"
            async with AsyncPostal(http_url, DEFAULT_API_KEY, http_backend=backend) as postal:
                monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
                await postal.send_message(MESSAGE)

        mark = forward_proxy.mark()
        anyio.run(sending, backend="trio" if flavour == "trio" else "asyncio")
    assert not forward_proxy.went_through(http_url, mark)


def test_the_proxy_answering_for_an_unreachable_origin_is_a_connection_error(
    forward_proxy: ForwardProxy, closed_port_url: str
) -> None:
    with pytest.raises(APIConnectionError):
        send("asyncio", closed_port_url.replace("http:", "https:"), proxy=forward_proxy.url)


def test_httpx_itself_reads_no_environment_proxy_once_given_a_transport(
    forward_proxy: ForwardProxy, http_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the SDK reads the environment itself: its client is built with a transport."""
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    mark = forward_proxy.mark()
    with httpx.Client(transport=httpx.HTTPTransport()) as client:
        client.get(http_url)
    assert not forward_proxy.went_through(http_url, mark)
