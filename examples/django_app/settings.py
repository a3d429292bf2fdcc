"""Settings of the example: mail through Postal, no database.

Postal's URL and API key come from the environment (`POSTAL_BASE_URL`,
`POSTAL_API_KEY`), so nothing secret is written here.
"""

import django

SECRET_KEY = "example-only-not-secret"  # noqa: S105 - a demo project, never deployed
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["examples.django_app.apps.MailAppConfig"]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "examples.django_app.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

if django.VERSION >= (6, 1):  # Django 6.1 replaces EMAIL_BACKEND with MAILERS
    MAILERS = {"default": {"BACKEND": "postal_sdk.django.EmailBackend"}}
else:
    EMAIL_BACKEND = "postal_sdk.django.EmailBackend"
DEFAULT_FROM_EMAIL = "Example <app@example.com>"
POSTAL = {
    # BASE_URL and API_KEY: from POSTAL_BASE_URL and POSTAL_API_KEY.
    "CONCURRENCY": 50,
    # Postal retries a webhook with the same uuid: handle each event once.
    "WEBHOOK_DEDUPLICATE_CACHE": "default",
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
