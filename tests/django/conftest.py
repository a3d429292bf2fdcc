"""Real Django for these tests: settings configured once, for this package only.

`settings.configure` is process-wide, so only this package calls it (at collection),
and the rest of the suite never imports Django. The example project's end-to-end test
runs Django in a subprocess with its own settings module instead.
"""

from __future__ import annotations

import email.message
from collections.abc import Iterator
from email.mime.image import MIMEImage
from typing import Any

import django
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.utils.module_loading import import_string

from postal_sdk.testing import DEFAULT_API_KEY, FakePostal

# Django 5.1's LoginRequiredMiddleware, where there is one: the webhook view must pass it.
LOGIN_REQUIRED = django.VERSION >= (5, 1)
MAILERS = django.VERSION >= (6, 1)


def png_part(data: bytes, filename: str, *, content_id: str | None = None) -> Any:
    """An image attachment as this Django wants it: MIMEPart from 6.0 (MIMEBase before)."""
    disposition = "inline" if content_id else "attachment"
    if django.VERSION >= (6, 0):
        part = email.message.MIMEPart()
        part.set_content(
            data, "image", "png", disposition=disposition, filename=filename, cid=content_id
        )
        return part
    image = MIMEImage(data, "png")
    if content_id:
        image.add_header("Content-ID", content_id)
    image.add_header("Content-Disposition", disposition, filename=filename)
    return image


def make_backend(backend: str = "postal_sdk.django.EmailBackend", **options: Any) -> Any:
    """A backend made as get_connection(backend, **options) makes it (deprecated in 6.1)."""
    return import_string(backend)(**options)


if not settings.configured:
    settings.configure(
        SECRET_KEY="postal-sdk-tests",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "anymail"],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            *(["django.contrib.auth.middleware.LoginRequiredMiddleware"] if LOGIN_REQUIRED else []),
        ],
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        ROOT_URLCONF="tests.django.urls",
        # Django 6.1 deprecates EMAIL_BACKEND for MAILERS.
        **(
            {"MAILERS": {"default": {"BACKEND": "postal_sdk.django.EmailBackend"}}}
            if MAILERS
            else {"EMAIL_BACKEND": "postal_sdk.django.EmailBackend"}
        ),
        DATABASES={},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        USE_TZ=True,
    )
    django.setup()


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake(signing_key: rsa.RSAPrivateKey) -> FakePostal:
    return FakePostal(signing_key=signing_key, domains=["example.com", "bücher.example"])


@pytest.fixture
def postal_url(fake: FakePostal) -> Iterator[str]:
    """The fake served over HTTP, and settings.POSTAL pointing at it."""
    from django.test import override_settings

    with (
        fake.serve() as url,
        override_settings(
            POSTAL={"BASE_URL": url, "API_KEY": DEFAULT_API_KEY},
            ANYMAIL={"POSTAL_API_URL": url, "POSTAL_API_KEY": DEFAULT_API_KEY},
        ),
    ):
        yield url
