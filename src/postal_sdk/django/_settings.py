"""The `POSTAL` setting: read once per use, checked, every problem named by its key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from postal_sdk.errors import InvalidArgumentError, InvalidArgumentTypeError

__all__ = [
    "DEFAULT_CONCURRENCY",
    "OPTION_NAMES",
    "PostalSettings",
    "client_error",
    "read_settings",
]

DEFAULT_CONCURRENCY = 50
"""Sends in flight at once for one `send_messages` call (one thread each).

At Postal's tens of milliseconds per send, a list of 300 takes 6 round trips instead
of the 15 that 20 would take: wall time, not CPU, is what a bigger number saves.
"""

_CLIENT_KEYS = {
    "BASE_URL": "base_url",
    "API_KEY": "api_key",
    "TIMEOUT": "timeout",
    "MAX_RETRIES": "max_retries",
    "MAX_CONCURRENCY": "max_concurrency",
    "HEADERS": "headers",
    "BACKOFF": "backoff",
    "HTTP_BACKEND": "http_backend",
}
_OTHER_KEYS = {
    "CONCURRENCY": "concurrency",
    "IGNORE_UNSUPPORTED_FEATURES": "ignore_unsupported_features",
    "WEBHOOK_ALLOW_LEGACY_SHA1": "webhook_allow_legacy_sha1",
    "WEBHOOK_MAX_BODY_SIZE": "webhook_max_body_size",
    "WEBHOOK_DEDUPLICATE_CACHE": "webhook_deduplicate_cache",
    "WEBHOOK_DEDUPLICATE_TIMEOUT": "webhook_deduplicate_timeout",
}
_KEYS = {**_CLIENT_KEYS, **_OTHER_KEYS}
_SMTP_CREDENTIALS = frozenset({"username", "password"})
_SETTING_OF = {option: key for key, option in _KEYS.items()}
OPTION_NAMES = frozenset(_SETTING_OF)
"""The backend's keyword options (`get_connection(...)`, MAILERS' OPTIONS): keys in lower case."""


@attrs.frozen
class PostalSettings:
    """The `POSTAL` setting merged with a backend's keyword options, checked."""

    client_options: Mapping[str, Any]
    concurrency: int = DEFAULT_CONCURRENCY
    ignore_unsupported_features: bool = False
    webhook_allow_legacy_sha1: bool = False
    webhook_max_body_size: int = 1_000_000
    webhook_deduplicate_cache: str | None = None
    webhook_deduplicate_timeout: float = 2 * 3600.0

    def sync_client_options(self) -> dict[str, Any]:
        """The options for the sync `Postal` (HTTP_BACKEND applies to `AsyncPostal` only)."""
        return {k: v for k, v in self.client_options.items() if k != "http_backend"}


def _setting_name(option: str) -> str:
    key = _SETTING_OF.get(option)
    return f"POSTAL[{key!r}]" if key else option


def read_settings(overrides: Mapping[str, Any] | None = None) -> PostalSettings:
    """`settings.POSTAL` with `overrides` (a backend's lower-case keyword options) on top.

    Raises `ImproperlyConfigured` naming the key that is missing, unknown or wrong.
    """
    configured = getattr(settings, "POSTAL", None)
    if configured is None:
        configured = {}
    if not isinstance(configured, Mapping):
        raise ImproperlyConfigured(
            f"settings.POSTAL must be a dict like {{'BASE_URL': ..., 'API_KEY': ...}}, "
            f"not {type(configured).__name__}"
        )
    unknown = sorted(str(key) for key in configured if key not in _KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"settings.POSTAL has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known keys: {', '.join(_KEYS)}"
        )
    options = {_KEYS[key]: value for key, value in configured.items()}
    for option, value in (overrides or {}).items():
        if option in _SMTP_CREDENTIALS and value is None:
            continue  # send_mail() passes username=None, password=None to every backend
        if option not in _SETTING_OF:
            raise TypeError(
                f"postal_sdk.django.EmailBackend got an unknown option {option!r}; "
                f"known: {', '.join(sorted(_SETTING_OF))}"
            )
        options[option] = value
    for option, variable in (("base_url", "POSTAL_BASE_URL"), ("api_key", "POSTAL_API_KEY")):
        if options.get(option) is None and not os.environ.get(variable):
            raise ImproperlyConfigured(
                f"{_setting_name(option)} is not set, nor the {variable} environment "
                f"variable: postal_sdk.django needs {_describe(option)}"
            )
    client_options = {
        option: value
        for option, value in options.items()
        if _SETTING_OF[option] in _CLIENT_KEYS and value is not None
    }
    others = {
        option: value for option, value in options.items() if _SETTING_OF[option] in _OTHER_KEYS
    }
    _check_others(others)
    return PostalSettings(client_options=client_options, **others)


def _describe(option: str) -> str:
    if option == "base_url":
        return "your Postal's web host, like 'https://postal.example.com'"
    return "an API credential of your Postal server"


def _check_others(others: Mapping[str, Any]) -> None:
    checks: dict[str, tuple[type | tuple[type, ...], str]] = {
        "concurrency": (int, "a whole number, 1 or more"),
        "ignore_unsupported_features": (bool, "True or False"),
        "webhook_allow_legacy_sha1": (bool, "True or False"),
        "webhook_max_body_size": (int, "a number of bytes, 1 or more"),
        "webhook_deduplicate_cache": (str, "the alias of a cache in settings.CACHES, or None"),
        "webhook_deduplicate_timeout": ((int, float), "seconds, more than 0"),
    }
    for option, value in others.items():
        kind, wanted = checks[option]
        if option == "webhook_deduplicate_cache" and value is None:
            continue
        bad_type = not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
        if bad_type or (kind is not bool and not isinstance(value, str) and value <= 0):
            raise ImproperlyConfigured(f"{_setting_name(option)} must be {wanted}, not {value!r}")


def client_error(error: InvalidArgumentError | InvalidArgumentTypeError) -> ImproperlyConfigured:
    """A client option the SDK refused, as `ImproperlyConfigured` naming the setting."""
    return ImproperlyConfigured(f"{_setting_name(error.argument)}: {error.problem}")
