"""Type-checked by `mypy --strict` in `nox -s typecheck`: the public API as a user writes it.

A change to a public signature that breaks this file breaks users' type checks too.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider

from postal_sdk import (
    AccessDenied,
    AsyncPostal,
    Attachment,
    Backoff,
    Delivery,
    InvalidServerAPIKey,
    Message,
    MessageInfo,
    MessageNotFound,
    NoRecipients,
    Postal,
    PostalError,
    RawMessage,
    SendFailure,
    SendOutcome,
    SendProgress,
    SendResult,
    SendSuccess,
    WebhookVerificationError,
)
from postal_sdk.webhooks import (
    MessageSent,
    WebhookError,
    WebhookEvent,
    WebhookTooOldError,
    WebhookVerificationFailure,
    WebhookVerifier,
)

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type


async def send_welcome(postal: AsyncPostal) -> int:
    sent: SendResult = await postal.send_message(
        Message(
            from_="App <app@example.com>",
            to=["john@example.com"],
            subject="Hi",
            plain_body="Hello",
            html_body="<p>Hello</p>",
            attachments=[Attachment(name="a.txt", data=b"x")],
            tag="welcome",
        )
    )
    message_id: int = sent.messages["john@example.com"].id
    raw = await postal.send_raw(
        RawMessage(mail_from="app@example.com", rcpt_to=["john@example.com"], data=b"...")
    )
    token: str = raw.for_recipient("john@example.com").token
    info: MessageInfo = await postal.get_message(message_id, expansions=["status", "details"])
    everything: MessageInfo = await postal.get_message(message_id, expansions=True)
    deliveries: list[Delivery] = await postal.get_deliveries(info.id)
    print(token, everything, deliveries)
    return message_id


def sync_lookup(base_url: str) -> str | None:
    client = Postal(
        base_url,
        "key",
        timeout=httpx.Timeout(10.0, read=30.0),
        max_retries=0,
        backoff=Backoff(initial=0.1),
        http_client=httpx.Client(),
    )
    with client as postal:
        try:
            status = postal.with_options(max_retries=3).get_message(1, expansions=["status"]).status
        except MessageNotFound as error:
            assert_type(error.id, int | None)
            print(error.id, error.code, error.message)
            return None
        except PostalError:
            raise
        return status.status if status else None


async def send_bulk(postal: AsyncPostal, messages: list[Message]) -> list[int]:
    failed: list[int] = []

    def show(progress: SendProgress) -> None:
        print(progress.completed, progress.failed)

    async with postal.send_many(messages, concurrency=16, on_progress=show) as outcomes:
        async for outcome in outcomes:
            if outcome.ok:
                assert_type(outcome, SendSuccess)
                assert_type(outcome.result, SendResult)
                assert_type(outcome.message, Message | RawMessage)
                print(outcome.result.message_id)
            else:
                assert_type(outcome, SendFailure)
                assert_type(outcome.error, Exception)
                failed.append(outcome.index)
            if outcome.error is None:
                assert_type(outcome.result, SendResult)
    for index, message in outcomes.interrupted:
        assert_type(index, int)
        assert_type(message, Message | RawMessage)
    return failed


def send_bulk_sync(postal: Postal, messages: list[Message | RawMessage]) -> int:
    sent = 0
    with postal.send_many(messages, ordered=True) as outcomes:
        for outcome in outcomes:
            checked: SendOutcome = outcome
            sent += checked.ok
            if not checked.ok:
                assert_type(checked.error, Exception)
    assert_type(outcomes.interrupted, tuple[tuple[int, Message | RawMessage], ...])
    return sent


async def handle_webhook(postal: AsyncPostal, body: bytes, headers: dict[str, str]) -> str:
    try:
        event: WebhookEvent = await postal.verify_webhook(body, headers)
    except WebhookError as error:
        return error.reason
    if isinstance(event, MessageSent):
        return event.payload.message.to
    return event.idempotency_key


async def send_a_campaign(postal: AsyncPostal, messages: list[Message]) -> int:
    from postal_sdk import BatchAborted, RateLimit, SendInDoubt
    from postal_sdk.journal import Journal, SQLiteJournal

    journal: Journal = SQLiteJournal("sends.db")
    paced = AsyncPostal(rate_limit=RateLimit(600, per="hour"), journal=journal)
    sent: SendResult = await paced.send_message(messages[0], idempotency_key="welcome:42")
    replayed: bool = sent.replayed
    count = 0
    try:
        async with paced.send_many(
            messages,
            concurrency=50,
            rate_limit=RateLimit(50, per="second"),
            key=lambda index, message: f"newsletter-7:{index}",
        ) as outcomes:
            async for outcome in outcomes:
                if outcome.replayed or isinstance(outcome.error, SendInDoubt):
                    count += 1
    except BatchAborted as stop:
        count += stop.submitted
    for entry in await journal.async_in_doubt():
        await journal.async_resolve(entry.key, sent=False)
    return count + replayed


def attachments(data: bytes, view: memoryview) -> list[Attachment]:
    made = [
        Attachment(name="a.bin", data=data),
        Attachment(name="b.bin", data=bytearray(data)),
        Attachment(name="c.bin", data=view),
    ]
    assert_type(made[0].data, bytes)
    Attachment(name="d.txt", data="text")  # type: ignore[arg-type]
    return made


def verifiers(pem: str, jwks: dict[str, Any], jwks_text: bytes, dkim: str) -> list[WebhookVerifier]:
    return [
        WebhookVerifier(pem, max_age=3600),
        WebhookVerifier(jwks, max_age=timedelta(hours=1)),
        WebhookVerifier(jwks_text),
        WebhookVerifier([dkim, pem]),
        WebhookVerifier(dkim).with_keys(jwks),
    ]


async def handle_recent_webhook(postal: AsyncPostal, body: bytes, headers: dict[str, str]) -> str:
    try:
        event = await postal.verify_webhook(body, headers, max_age=timedelta(hours=1))
    except WebhookTooOldError as error:
        assert_type(error.age, float)
        return error.reason
    return event.uuid


def handle_recent_webhook_sync(postal: Postal, body: bytes, headers: dict[str, str]) -> str:
    return postal.verify_webhook(body, headers, max_age=3600.0).uuid


async def traced(base_url: str, provider: TracerProvider) -> None:
    async with AsyncPostal(base_url, "key", tracing=provider) as postal:
        await postal.get_deliveries(1)
    with Postal(base_url, "key", tracing=True) as sync_postal:
        sync_postal.get_deliveries(1)


async def catch_by_code(postal: AsyncPostal, message: Message) -> str:
    try:
        await postal.send_message(message)
    except (InvalidServerAPIKey, AccessDenied) as error:
        return f"key: {error.code}"
    except NoRecipients as error:
        assert_type(error.data, Mapping[str, Any])
        return "no recipients"
    except WebhookVerificationError as error:
        assert_type(error.reason, WebhookVerificationFailure)
        return error.reason
    return "sent"
