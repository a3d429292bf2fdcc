"""What `import postal_sdk` offers: every exception a user catches, and nothing private."""

from __future__ import annotations

import inspect
import subprocess
import sys

import postal_sdk
import postal_sdk.errors
import postal_sdk.webhooks


def test_every_exception_of_the_errors_module_is_importable_from_the_package() -> None:
    exceptions = {
        name
        for name in postal_sdk.errors.__all__
        if inspect.isclass(getattr(postal_sdk.errors, name))
        and issubclass(getattr(postal_sdk.errors, name), Exception)
    }
    assert {"InvalidServerAPIKey", "NoRecipients", "AccessDenied", "WebhookError"} <= exceptions
    for name in exceptions:
        assert name in postal_sdk.__all__
        assert getattr(postal_sdk, name) is getattr(postal_sdk.errors, name)


def test_the_webhook_errors_are_the_same_classes_from_either_module() -> None:
    for name in (
        "WebhookError",
        "WebhookParseError",
        "WebhookVerificationError",
        "UnknownKeyError",
        "WebhookKeyError",
    ):
        assert getattr(postal_sdk.webhooks, name) is getattr(postal_sdk, name)


def test_webhook_errors_can_be_caught_without_cryptography_installed() -> None:
    # A fresh interpreter where `import cryptography` fails, as without the extra.
    program = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from postal_sdk import WebhookError, WebhookVerificationError, UnknownKeyError\n"
        "assert issubclass(UnknownKeyError, WebhookVerificationError)\n"
        "assert issubclass(WebhookVerificationError, WebhookError)\n"
        "assert 'postal_sdk.webhooks' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True)  # noqa: S603 - our own program


def test_every_public_name_resolves_and_has_a_docstring() -> None:
    for name in postal_sdk.__all__:
        value = getattr(postal_sdk, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name
