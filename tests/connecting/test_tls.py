"""Private CAs (`verify`) and client certificates (`cert`), on every transport, with and without
the environment (`SSL_CERT_FILE` with `trust_env`), against FakePostal over real TLS."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from postal_sdk import APIConnectionError
from tests.connecting.conftest import Files, trusting
from tests.connecting.support import FLAVOURS, httpx_get, send

pytestmark = pytest.mark.parametrize("flavour", FLAVOURS)


def test_a_private_ca_is_trusted_from_its_bundle_path(
    flavour: str, https_url: str, files: Files
) -> None:
    assert send(flavour, https_url, verify=str(files.ca)).messages


def test_a_private_ca_is_trusted_from_a_path_object(
    flavour: str, https_url: str, files: Files
) -> None:
    assert send(flavour, https_url, verify=files.ca).messages


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_private_ca_is_trusted_from_a_directory_of_hashed_certificates(
    flavour: str, https_url: str, files: Files, tmp_path: Path
) -> None:
    subject_hash = subprocess.run(  # noqa: S603 - a fixed command line
        ["openssl", "x509", "-hash", "-noout", "-in", str(files.ca)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shutil.copy(files.ca, tmp_path / f"{subject_hash}.0")
    assert send(flavour, https_url, verify=str(tmp_path)).messages


def test_a_private_ca_is_trusted_from_an_ssl_context(
    flavour: str, https_url: str, ca: trustme.CA
) -> None:
    assert send(flavour, https_url, verify=trusting(ca)).messages


def test_a_private_ca_is_trusted_from_ssl_cert_file_as_httpx_trusts_it(
    flavour: str, https_url: str, files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(files.ca))
    httpx_get(flavour, https_url)  # httpx trusts it: it would raise otherwise
    assert send(flavour, https_url).messages


def test_ssl_cert_file_is_ignored_without_trust_env(
    flavour: str, https_url: str, files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(files.ca))
    with pytest.raises(APIConnectionError, match="certificate verify failed"):
        send(flavour, https_url, trust_env=False)


def test_an_untrusted_certificate_is_a_connection_error_that_says_verification_failed(
    flavour: str, https_url: str
) -> None:
    with pytest.raises(APIConnectionError, match="certificate verify failed"):
        send(flavour, https_url)


def test_verify_false_skips_verification(flavour: str, https_url: str) -> None:
    assert send(flavour, https_url, verify=False).messages


def test_a_client_certificate_in_one_file_is_presented(
    flavour: str, mtls_url: str, files: Files
) -> None:
    assert send(flavour, mtls_url, verify=str(files.ca), cert=str(files.client_combined)).messages


def test_a_client_certificate_and_its_key_in_two_files_are_presented(
    flavour: str, mtls_url: str, files: Files
) -> None:
    cert = (str(files.client_cert), str(files.client_key))
    assert send(flavour, mtls_url, verify=str(files.ca), cert=cert).messages


def test_a_client_certificate_is_loaded_into_a_given_context(
    flavour: str, mtls_url: str, ca: trustme.CA, files: Files
) -> None:
    assert send(flavour, mtls_url, verify=trusting(ca), cert=str(files.client_combined)).messages


# Python 3.10's asyncio leaves the transport of a failed TLS handshake for the collector,
# which warns (its SSL protocol was rewritten in 3.11); aiohttp meets it when the server
# refuses the client. Only that warning, only there, is let through.
def _tolerate_py310_failed_handshake_leak(test: Callable[..., None]) -> Callable[..., None]:
    if sys.version_info >= (3, 11):
        return test
    return pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <function _SSLProtocolTransport.__del__"
        ":pytest.PytestUnraisableExceptionWarning"
    )(test)


@_tolerate_py310_failed_handshake_leak
def test_a_server_that_requires_a_client_certificate_refuses_a_client_without_one(
    flavour: str, mtls_url: str, files: Files
) -> None:
    with pytest.raises(APIConnectionError):
        send(flavour, mtls_url, verify=str(files.ca))


def test_a_context_without_verification_needs_no_ca(flavour: str, https_url: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    assert send(flavour, https_url, verify=context).messages
