"""Where and how the SDK's own transports connect: `verify`, `cert`, `proxy`, `trust_env`.

The options mean what they mean to `httpx.AsyncClient()`, and the environment is read by
httpx's own code, when the client is built, as httpx reads it:

- the TLS context comes from `httpx.create_ssl_context` (certifi's CA bundle, or
  `SSL_CERT_FILE`/`SSL_CERT_DIR` with `trust_env`). A CA path and a client certificate are
  applied here, as httpx applies them: httpx 0.28's own code for them warns that it
  prefers a context, and a warning at every client built would only be noise;
- the proxies come from `httpx._utils.get_environment_proxies`, the map of URL patterns
  (`http://`, `all://*example.com`, ...) that httpx mounts proxy transports on, NO_PROXY
  included; the SDK mounts its own transports on the same patterns (see
  `postal_sdk._http.transport`). httpx itself reads no environment proxy once a client is
  given a `transport=`, which is why the SDK reads it here.

Everything is checked when the client is built: a bad option is a `ConfigurationError`
naming it, not a failure at the first send.
"""

from __future__ import annotations

import importlib.util
import os
import ssl
from collections.abc import Mapping
from typing import TypeAlias

import attrs
import httpx
from httpx._utils import get_environment_proxies

from postal_sdk.errors import ConfigurationError, InvalidArgumentTypeError

__all__ = ["CertTypes", "Connecting", "ProxyTypes", "VerifyTypes", "check_connecting"]

VerifyTypes: TypeAlias = bool | str | os.PathLike[str] | ssl.SSLContext
"""`verify`: True (certifi, or SSL_CERT_FILE/DIR), False, a CA bundle path, or a context."""

CertTypes: TypeAlias = (
    str | os.PathLike[str] | tuple[str, str] | tuple[str, str, str] | tuple[str, str, None]
)
"""`cert`, as httpx's: a PEM file with key and certificate, (cert, key) or (cert, key, password)."""

ProxyTypes: TypeAlias = str | httpx.URL | httpx.Proxy
"""`proxy`: a URL (http://, https://, socks5://, socks5h://) or an `httpx.Proxy`."""

_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


@attrs.frozen
class Connecting:
    """How the SDK's own transports connect, checked and resolved.

    `proxies` maps httpx URL patterns to the proxy for the URLs they match, or None for
    direct; it is empty when no request goes through a proxy.
    """

    tls: ssl.SSLContext
    proxies: Mapping[str, httpx.Proxy | None]


def check_connecting(
    *,
    verify: VerifyTypes,
    cert: CertTypes | None,
    proxy: ProxyTypes | None,
    trust_env: bool,
    own_client: bool,
) -> Connecting | None:
    """The options checked and resolved; None with the user's own client, which takes none."""
    if not isinstance(trust_env, bool):
        raise InvalidArgumentTypeError(
            "trust_env", f"must be True or False, not {type(trust_env).__name__}"
        )
    if not own_client:
        given = {
            "verify": verify is not True,
            "cert": cert is not None,
            "proxy": proxy is not None,
            "trust_env": trust_env is not True,
        }
        for name, is_given in given.items():
            if is_given:
                raise ConfigurationError(
                    name,
                    "configures the SDK's own client: with http_client=, "
                    "set it on your httpx.AsyncClient/httpx.Client instead",
                )
        return None
    return Connecting(
        tls=tls_context(verify, cert, trust_env=trust_env),
        proxies=proxy_map(proxy, trust_env=trust_env),
    )


def tls_context(verify: VerifyTypes, cert: CertTypes | None, *, trust_env: bool) -> ssl.SSLContext:
    """The TLS context for `verify` and `cert`, as `httpx.AsyncClient(verify, cert)` builds it.

    A context given as `verify` is used as it is, and a `cert` is loaded into it (as httpx
    does).
    """
    if isinstance(verify, (bool, ssl.SSLContext)):
        try:
            context = httpx.create_ssl_context(verify=verify, trust_env=trust_env)
        except OSError as error:  # ssl.SSLError is one too
            # Only the environment's CA locations can fail here.
            raise ConfigurationError(
                "verify",
                f"the CA certificates named by SSL_CERT_FILE/SSL_CERT_DIR cannot be loaded "
                f"({error}); fix them, or pass trust_env=False",
            ) from None
    elif isinstance(verify, (str, os.PathLike)):
        context = _ca_path_context(os.fspath(verify))
    else:
        raise InvalidArgumentTypeError(
            "verify",
            f"must be True, False, a CA bundle path or an ssl.SSLContext, "
            f"not {type(verify).__name__}",
        )
    if cert is not None:
        _load_cert(context, cert)
    return context


def _ca_path_context(path: str) -> ssl.SSLContext:
    if not os.path.exists(path):
        raise ConfigurationError("verify", f"no CA bundle (file or directory) at {path!r}")
    # As httpx reads a path: a directory of hashed certificates, or a PEM bundle file.
    try:
        if os.path.isdir(path):
            return ssl.create_default_context(capath=path)
        return ssl.create_default_context(cafile=path)
    except OSError as error:
        raise ConfigurationError(
            "verify", f"{path!r} holds no CA certificate that can be loaded ({error})"
        ) from None


def _load_cert(context: ssl.SSLContext, cert: CertTypes) -> None:
    parts: tuple[str | os.PathLike[str] | None, ...]
    if isinstance(cert, (str, os.PathLike)):
        parts = (cert,)
    elif isinstance(cert, tuple) and len(cert) in (2, 3):
        parts = cert
    else:
        raise InvalidArgumentTypeError(
            "cert",
            f"must be a PEM file path, (cert, key) or (cert, key, password), "
            f"not {type(cert).__name__}",
        )
    if not all(isinstance(part, (str, os.PathLike)) for part in parts[:2]) or not (
        len(parts) < 3 or parts[2] is None or isinstance(parts[2], str)
    ):
        raise InvalidArgumentTypeError(
            "cert", "the certificate and key must be paths, and the password a str"
        )
    certfile, keyfile, password = (*parts, None, None)[:3]
    assert certfile is not None
    try:
        context.load_cert_chain(certfile, keyfile, password)
    except OSError as error:  # ssl.SSLError is one too: a bad PEM, a key that does not match
        raise ConfigurationError(
            "cert", f"the client certificate cannot be loaded ({error})"
        ) from None


def proxy_map(proxy: ProxyTypes | None, *, trust_env: bool) -> dict[str, httpx.Proxy | None]:
    """URL patterns and their proxy (None: direct), as httpx's client maps them.

    `proxy` applies to every request, and the environment is then not read, as in httpx.
    Empty when no request goes through a proxy (NO_PROXY alone, or nothing set).
    """
    if proxy is not None:
        return {"all://": _check_proxy(proxy, "proxy")}
    if not trust_env:
        return {}
    proxies = {
        pattern: None if url is None else _check_proxy(url, "trust_env")
        for pattern, url in get_environment_proxies().items()
    }
    if all(value is None for value in proxies.values()):
        return {}
    return proxies


def _check_proxy(proxy: ProxyTypes, argument: str) -> httpx.Proxy:
    source = (
        ""
        if argument == "proxy"
        else " (from HTTP_PROXY/HTTPS_PROXY/ALL_PROXY; or trust_env=False)"
    )
    if isinstance(proxy, httpx.Proxy):
        checked = proxy
    elif isinstance(proxy, (str, httpx.URL)):
        try:
            url = httpx.URL(proxy)
        except httpx.InvalidURL as error:
            raise ConfigurationError(
                argument, f"{proxy!r} is not a URL ({error}){source}"
            ) from None
        if url.scheme not in _PROXY_SCHEMES:
            raise ConfigurationError(
                argument,
                f"a proxy URL needs a scheme of {', '.join(_PROXY_SCHEMES)}, "
                f"like http://proxy.example.com:3128, not {str(proxy)!r}{source}",
            )
        checked = httpx.Proxy(url)
    else:
        raise InvalidArgumentTypeError(
            argument, f"must be a URL or an httpx.Proxy, not {type(proxy).__name__}"
        )
    if not checked.url.host:
        raise ConfigurationError(
            argument, f"the proxy URL {str(checked.url)!r} has no host{source}"
        )
    if checked.url.scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
        raise ConfigurationError(
            argument, f"a SOCKS proxy needs the extra: pip install 'postal-sdk[socks]'{source}"
        )
    return checked
