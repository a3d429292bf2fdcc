"""The example's app: connects the webhook receiver when Django starts."""

from django.apps import AppConfig


class MailAppConfig(AppConfig):
    """Mail sending and Postal's webhooks."""

    name = "examples.django_app"
    label = "mail_example"

    def ready(self) -> None:
        """Connect `record_event` to `postal_sdk.django.webhook_received`."""
        from examples.django_app import receivers  # noqa: F401 - connects on import
