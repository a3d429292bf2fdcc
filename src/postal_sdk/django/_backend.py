"""`EmailBackend`: Django's `send_messages` through the SDK's fan-out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.utils import parseaddr
from types import TracebackType
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from postal_sdk._async.client import AsyncPostal
from postal_sdk._async.fanout import SendFailure, SendOutcome
from postal_sdk._sync.client import Postal
from postal_sdk.django._mapping import to_postal
from postal_sdk.django._settings import OPTION_NAMES, PostalSettings, client_error, read_settings
from postal_sdk.django._status import PostalStatus, SendMessagesError
from postal_sdk.errors import (
    BatchAborted,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    PostalError,
)
from postal_sdk.models import Message, RawMessage

__all__ = ["EmailBackend"]

logger = logging.getLogger("postal_sdk.django")

# What one message can fail with while it is turned into a request: the SDK's checks,
# and Django's own (BadHeaderError is a ValueError, a bad attachment a TypeError).
_MESSAGE_ERRORS = (PostalError, ValueError, TypeError)


class EmailBackend(BaseEmailBackend):
    """Django's email backend for Postal: `EMAIL_BACKEND = "postal_sdk.django.EmailBackend"`.

    Configured by `settings.POSTAL` (`BASE_URL`, `API_KEY` and the client's options; the
    `POSTAL_BASE_URL` and `POSTAL_API_KEY` environment variables as fallback); keyword
    options given to `get_connection` (`base_url=`, `api_key=`, `concurrency=`, ...), or
    an entry's `OPTIONS` in Django 6.1's `MAILERS`, override it. One `Postal` client per
    connection: `open()` makes it, `close()` closes it, and `send_messages` opens and
    closes one itself when the connection is not open (`with get_connection() as
    connection:` keeps it for several calls).

    `send_messages` sends the whole list through `Postal.send_many`, `CONCURRENCY`
    (50) at a time, and returns how many Postal took. Each message gets
    `message.postal_status` (a `PostalStatus`). Unless `fail_silently`, the failures
    are raised together, after every message was attempted, as one `SendMessagesError`.
    """

    def __init__(
        self, fail_silently: bool = False, *, alias: str | None = None, **options: Any
    ) -> None:
        # Django 6.1's MAILERS passes `alias` and the entry's OPTIONS (plus the names of
        # deprecated get_connection() arguments it forwards, to be dropped if unknown);
        # fail_silently is kept here, since Django 6.1 deprecates the base class's.
        forwarded = options.pop("_ignore_unknown_kwargs", None) or ()
        for name in forwarded:
            if name not in OPTION_NAMES:
                options.pop(name, None)
        super().__init__(alias=alias)
        self.fail_silently = fail_silently
        self._options = options
        self._client: Postal | None = None
        self._async_client: AsyncPostal | None = None
        self._settings: PostalSettings | None = None

    def _read_settings(self) -> PostalSettings:
        if self._settings is None:
            self._settings = read_settings(self._options)
        return self._settings

    def open(self) -> bool:
        """Make this connection's `Postal` client; whether a new one was made.

        Raises `ImproperlyConfigured` naming the setting that is missing or wrong.
        """
        if self._client is not None:
            return False
        postal_settings = self._read_settings()
        try:
            self._client = Postal(**postal_settings.sync_client_options())
        except (InvalidArgumentError, InvalidArgumentTypeError) as error:
            raise client_error(error) from error
        return True

    def close(self) -> None:
        """Close this connection's client (its pooled HTTP connections)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send the messages, `CONCURRENCY` at a time; the number Postal took."""
        messages = list(email_messages or ())
        if not messages:
            return 0
        try:
            created = self.open()
        except ImproperlyConfigured as error:
            return self._not_configured(messages, error)
        assert self._client is not None
        try:
            requests, failures = self._requests(messages)
            try:
                with self._client.send_many(
                    (request for _, request in requests),
                    concurrency=self._read_settings().concurrency,
                ) as outcomes:
                    for outcome in outcomes:
                        self._record(messages, requests, outcome, failures)
            except BatchAborted as stop:
                self._record_unsent(messages, requests, stop, failures)
        finally:
            if created:
                self.close()
        return self._finish(messages, failures)

    async def asend_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """`send_messages` for async code: sends with `AsyncPostal`, never blocking the loop.

        Uses the client made by `async with connection:` if there is one; otherwise makes
        one for the call and closes it after.
        """
        messages = list(email_messages or ())
        if not messages:
            return 0
        client = self._async_client
        try:
            if client is None:
                client = self._make_async_client()
        except ImproperlyConfigured as error:
            return self._not_configured(messages, error)
        try:
            requests, failures = self._requests(messages)
            try:
                async with client.send_many(
                    [request for _, request in requests],
                    concurrency=self._read_settings().concurrency,
                ) as outcomes:
                    async for outcome in outcomes:
                        self._record(messages, requests, outcome, failures)
            except BatchAborted as stop:
                self._record_unsent(messages, requests, stop, failures)
        finally:
            if client is not self._async_client:
                await client.aclose()
        return self._finish(messages, failures)

    async def __aenter__(self) -> EmailBackend:
        if self._async_client is None:
            self._async_client = self._make_async_client()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._async_client = self._async_client, None
        if client is not None:
            await client.aclose()

    def _make_async_client(self) -> AsyncPostal:
        postal_settings = self._read_settings()
        try:
            return AsyncPostal(**postal_settings.client_options)
        except (InvalidArgumentError, InvalidArgumentTypeError) as error:
            raise client_error(error) from error

    def _not_configured(self, messages: list[EmailMessage], error: ImproperlyConfigured) -> int:
        if not self.fail_silently:
            raise error
        for message in messages:
            message.postal_status = PostalStatus.failed(error)  # type: ignore[attr-defined]
        return 0

    def _requests(
        self, messages: list[EmailMessage]
    ) -> tuple[list[tuple[int, Message | RawMessage]], dict[int, BaseException]]:
        """Each message as a Postal request; the errors of those that cannot be one."""
        ignore = self._read_settings().ignore_unsupported_features
        requests: list[tuple[int, Message | RawMessage]] = []
        failures: dict[int, BaseException] = {}
        for index, message in enumerate(messages):
            try:
                requests.append((index, to_postal(message, ignore_unsupported=ignore)))
            except _MESSAGE_ERRORS as error:
                failures[index] = error
                message.postal_status = PostalStatus.failed(  # type: ignore[attr-defined]
                    error, _recipients(message)
                )
        return requests, failures

    def _record(
        self,
        messages: list[EmailMessage],
        requests: list[tuple[int, Message | RawMessage]],
        outcome: SendOutcome,
        failures: dict[int, BaseException],
    ) -> None:
        index, request = requests[outcome.index]
        message = messages[index]
        if outcome.result is not None:
            if isinstance(request, Message):
                status = PostalStatus.sent(outcome.result, "send/message")
            else:
                status = PostalStatus.sent(outcome.result, "send/raw")
        else:
            assert outcome.error is not None
            failures[index] = outcome.error
            logger.info("message %d was not sent: %s", index, outcome.error)
            status = PostalStatus.failed(outcome.error, _request_recipients(request))
        message.postal_status = status  # type: ignore[attr-defined]

    def _record_unsent(
        self,
        messages: list[EmailMessage],
        requests: list[tuple[int, Message | RawMessage]],
        stop: BatchAborted,
        failures: dict[int, BaseException],
    ) -> None:
        # The batch stopped because every later send would fail as `stop.cause` did (a
        # wrong key, a suspended server): those messages were not sent, for that reason.
        for position in range(stop.submitted, len(requests)):
            outcome = SendFailure(position, requests[position][1], stop.cause)
            self._record(messages, requests, outcome, failures)

    def _finish(self, messages: list[EmailMessage], failures: dict[int, BaseException]) -> int:
        sent = len(messages) - len(failures)
        if failures and not self.fail_silently:
            ordered = sorted(failures.items())
            error = SendMessagesError(
                [(index, messages[index], failure) for index, failure in ordered], sent
            )
            raise error from ordered[0][1]
        return sent


def _recipients(message: EmailMessage) -> list[str]:
    try:
        return [str(address) for address in message.recipients()]
    except Exception:  # noqa: BLE001 - a message too broken to list its recipients has none
        return []


def _request_recipients(request: Message | RawMessage) -> list[str]:
    if isinstance(request, Message):
        # Keyed as Postal keys its results: the address without the display name.
        return [parseaddr(address)[1] for address in (*request.to, *request.cc, *request.bcc)]
    return list(request.rcpt_to)
