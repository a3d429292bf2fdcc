"""A FastAPI service that sends mail through Postal and records Postal's webhooks.

- One `AsyncPostal` per event loop: made in the lifespan, kept on `app.state`, closed on
  shutdown, so its connection pool (and its cache of Postal's signing keys) is shared by
  every request.
- `POST /messages` answers 202 at once; a background task sends the message, and
  `GET /messages/{request_id}` tells how it went.
- `POST /webhooks/postal` verifies the signature over the raw body with the keys from
  Postal's `/.well-known/jwks.json`, then records the event once per uuid (Postal sends
  the same uuid again when it retries); `GET /events` lists what was recorded.

Run it with `POSTAL_BASE_URL` and `POSTAL_API_KEY` set:
`uvicorn --factory examples.fastapi_app.app:create_app`.
"""

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from postal_sdk import AsyncPostal, Message, PostalError
from postal_sdk.webhooks import (
    DeliveryEvent,
    MessageBounced,
    MessageLinkClicked,
    MessageLoaded,
    WebhookError,
    WebhookEvent,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """How the app reaches Postal.

    `base_url` and `api_key` default to `POSTAL_BASE_URL` and `POSTAL_API_KEY`. Give
    `http_client_factory` to make the `httpx.AsyncClient` yourself (proxies, or a fake
    Postal's transport in tests); it is called in the lifespan, and the app closes it.
    """

    base_url: str | None = None
    api_key: str | None = None
    sender: str = "App <app@example.com>"
    http_client_factory: Callable[[], httpx.AsyncClient] | None = None
    max_webhook_body: int = 1_000_000


class SendRequest(BaseModel):
    """A message to send: who to, and what."""

    to: list[str] = Field(min_length=1, max_length=50)
    subject: str
    text: str
    html: str | None = None
    tag: str | None = None


class SendStatus(BaseModel):
    """Where a queued send stands; `messages` maps each recipient to Postal's message id."""

    request_id: str
    state: Literal["queued", "sent", "failed"]
    message_id: str | None = None
    messages: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


class RecordedEvent(BaseModel):
    """A webhook event as the app keeps it; `message` is the id of the message it is about."""

    uuid: str
    event: str
    timestamp: datetime
    message: int | None


class WebhookReceipt(BaseModel):
    """The answer to Postal: any 2xx tells it to stop retrying."""

    uuid: str
    duplicate: bool


class Store:
    """The app's state, in memory for the example.

    A real app keeps both in its database, with a unique index on the event uuid so that
    two workers receiving the same retry cannot both record it.
    """

    def __init__(self) -> None:
        self.sends: dict[str, SendStatus] = {}
        self.events: dict[str, RecordedEvent] = {}

    def record_event(self, event: WebhookEvent) -> bool:
        """Record `event` unless its uuid was seen before; whether it was new."""
        if event.idempotency_key in self.events:
            return False
        self.events[event.idempotency_key] = RecordedEvent(
            uuid=event.uuid, event=event.event, timestamp=event.timestamp, message=_about(event)
        )
        return True


def _about(event: WebhookEvent) -> int | None:
    match event:
        case DeliveryEvent() | MessageLoaded() | MessageLinkClicked():
            return event.payload.message.id
        case MessageBounced():
            return event.payload.original_message.id
        case _:
            return None


def get_postal(request: Request) -> AsyncPostal:
    """The app's `AsyncPostal`, made in the lifespan."""
    postal: AsyncPostal = request.app.state.postal
    return postal


def get_store(request: Request) -> Store:
    """The app's `Store`."""
    store: Store = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    """The app's `Settings`."""
    settings: Settings = request.app.state.settings
    return settings


PostalDep = Annotated[AsyncPostal, Depends(get_postal)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

router = APIRouter()


@router.post("/messages", status_code=202)
async def queue_message(
    body: SendRequest,
    background: BackgroundTasks,
    postal: PostalDep,
    store: StoreDep,
    settings: SettingsDep,
) -> SendStatus:
    """Queue a message; it is sent after this answer has gone out."""
    try:
        message = Message(
            from_=settings.sender,
            to=body.to,
            subject=body.subject,
            plain_body=body.text,
            html_body=body.html,
            tag=body.tag,
        )
    except PostalError as error:  # the SDK checks what Postal would refuse
        raise HTTPException(status_code=422, detail=str(error)) from error
    status = SendStatus(request_id=uuid.uuid4().hex, state="queued")
    store.sends[status.request_id] = status
    background.add_task(send_message, postal, store, status.request_id, message)
    return status


async def send_message(
    postal: AsyncPostal, store: Store, request_id: str, message: Message
) -> None:
    """Send a queued message and record the outcome (the SDK never sends it twice)."""
    try:
        result = await postal.send_message(message)
    except PostalError as error:
        logger.warning("send %s failed: %s", request_id, error)
        store.sends[request_id] = SendStatus(
            request_id=request_id, state="failed", error=f"{type(error).__name__}: {error}"
        )
        return
    store.sends[request_id] = SendStatus(
        request_id=request_id,
        state="sent",
        message_id=result.message_id,
        messages={address: sent.id for address, sent in result.messages.items()},
    )


@router.get("/messages/{request_id}")
async def send_status(request_id: str, store: StoreDep) -> SendStatus:
    """How a queued send went."""
    if request_id not in store.sends:
        raise HTTPException(status_code=404, detail="no such request")
    return store.sends[request_id]


@router.post("/webhooks/postal", response_model=WebhookReceipt)
async def postal_webhook(
    request: Request, postal: PostalDep, store: StoreDep, settings: SettingsDep
) -> WebhookReceipt | JSONResponse:
    """Verify a webhook from Postal and record its event once."""
    # The signature covers the exact bytes: never verify re-encoded JSON.
    body = await request.body()
    try:
        event = await postal.verify_webhook(
            body, request.headers, max_body_size=settings.max_webhook_body
        )
    except WebhookError as error:  # not signed by Postal, or not an event
        return JSONResponse({"error": error.reason, "detail": str(error)}, status_code=400)
    except PostalError as error:  # Postal's keys could not be fetched: let Postal retry
        logger.warning("cannot verify webhooks: %s", error)
        return JSONResponse({"error": "keys_unavailable", "detail": str(error)}, status_code=503)
    is_new = store.record_event(event)
    return WebhookReceipt(uuid=event.uuid, duplicate=not is_new)


@router.get("/events")
async def list_events(store: StoreDep) -> list[RecordedEvent]:
    """Every recorded webhook event, in the order received."""
    return list(store.events.values())


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Make the app's `AsyncPostal` on startup, and close it on shutdown."""
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        http_client = None
        if settings.http_client_factory is not None:
            http_client = await stack.enter_async_context(settings.http_client_factory())
        app.state.postal = await stack.enter_async_context(
            AsyncPostal(settings.base_url, settings.api_key, http_client=http_client)
        )
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app, configured by `settings` (from the environment when not given)."""
    app = FastAPI(title="postal-sdk FastAPI example", lifespan=lifespan)
    app.state.settings = settings or Settings()
    app.state.store = Store()
    app.include_router(router)
    return app
