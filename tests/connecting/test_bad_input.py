"""A bad `verify`, `cert`, `proxy` or `trust_env`, or a bad proxy in the environment, stops the
client being built, with an error naming the option: not a failure at the first send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from postal_sdk import AsyncPostal, ConfigurationError, InvalidArgumentTypeError, Postal
from postal_sdk.testing import DEFAULT_API_KEY
from tests.connecting.conftest import Files

URL = "https://postal.example.com"

pytestmark = pytest.mark.parametrize("client", [AsyncPostal, Postal])


def build(client: type[AsyncPostal | Postal], **options: Any) -> None:
    client(URL, DEFAULT_API_KEY, **options)


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"verify": "/nonexistent/ca.pem"}, "verify"),
        ({"cert": "/nonexistent/client.pem"}, "cert"),
        ({"proxy": "proxy.example.com:3128"}, "proxy"),
        ({"proxy": "127.0.0.1:3128"}, "proxy"),
        ({"proxy": "ftp://proxy.example.com"}, "proxy"),
        ({"proxy": "http://"}, "proxy"),
        ({"proxy": "http://[::1"}, "proxy"),
    ],
)
def test_a_bad_option_is_a_configuration_error_naming_it(
    client: type[AsyncPostal | Postal], options: dict[str, Any], argument: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        build(client, **options)
    assert raised.value.argument == argument


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"verify": 1}, "verify"),
        ({"cert": 42}, "cert"),
        ({"cert": ("a.pem", 2)}, "cert"),
        ({"proxy": 3128}, "proxy"),
        ({"trust_env": "yes"}, "trust_env"),
    ],
)
def test_an_option_of_the_wrong_type_is_refused_naming_it(
    client: type[AsyncPostal | Postal], options: dict[str, Any], argument: str
) -> None:
    with pytest.raises(InvalidArgumentTypeError) as raised:
        build(client, **options)
    assert raised.value.argument == argument


def test_a_file_without_ca_certificates_is_refused_as_verify(
    client: type[AsyncPostal | Postal], tmp_path: Path
) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    with pytest.raises(ConfigurationError) as raised:
        build(client, verify=str(not_pem))
    assert raised.value.argument == "verify"


def test_a_certificate_without_its_key_is_refused_as_cert(
    client: type[AsyncPostal | Postal], files: Files
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        build(client, cert=str(files.client_cert))
    assert raised.value.argument == "cert"


def test_a_socks_proxy_without_socksio_says_which_extra_to_install(
    client: type[AsyncPostal | Postal], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigurationError, match=r"postal-sdk\[socks\]") as raised:
        build(client, proxy="socks5://127.0.0.1:1080")
    assert raised.value.argument == "proxy"


def test_a_bad_proxy_in_the_environment_is_refused_as_httpx_refuses_it(
    client: type[AsyncPostal | Postal], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "ftp://proxy.example.com")
    with pytest.raises(ValueError, match="Unknown scheme"):
        httpx.Client()
    with pytest.raises(ConfigurationError, match="HTTPS_PROXY") as raised:
        build(client)
    assert raised.value.argument == "trust_env"
    build(client, trust_env=False)  # the environment is not read at all


def test_a_proxy_in_the_environment_without_a_scheme_is_taken_as_http_as_httpx_takes_it(
    client: type[AsyncPostal | Postal], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "proxy.example.com:3128")
    httpx.Client().close()
    build(client)


def test_a_missing_ssl_cert_file_is_refused_as_verify_unless_trust_env_is_off(
    client: type[AsyncPostal | Postal], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    with pytest.raises(ConfigurationError, match="SSL_CERT_FILE") as raised:
        build(client)
    assert raised.value.argument == "verify"
    build(client, trust_env=False)


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"verify": False}, "verify"),
        ({"cert": "client.pem"}, "cert"),
        ({"proxy": "http://proxy.example.com:3128"}, "proxy"),
        ({"trust_env": False}, "trust_env"),
    ],
)
def test_with_your_own_http_client_the_options_are_a_configuration_error(
    client: type[AsyncPostal | Postal], options: dict[str, Any], argument: str
) -> None:
    http_client = httpx.AsyncClient() if client is AsyncPostal else httpx.Client()
    with pytest.raises(ConfigurationError, match="http_client") as raised:
        client(URL, DEFAULT_API_KEY, http_client=http_client, **options)  # type: ignore[arg-type]
    assert raised.value.argument == argument
