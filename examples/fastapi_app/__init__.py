"""A FastAPI app using postal-sdk: background sends and verified, idempotent webhooks."""

from examples.fastapi_app.app import Settings, create_app

__all__ = ["Settings", "create_app"]
