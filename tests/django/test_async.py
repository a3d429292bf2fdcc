"""Sending from async code: `asend_messages` through AsyncPostal, on asyncio and trio."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from postal_sdk.django import EmailBackend, PostalStatus, SendMessagesError, asend_messages
from postal_sdk.testing import FakePostal
from tests.django.conftest import make_backend

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("postal_url")]


def _message(to: list[str]) -> mail.EmailMessage:
    return mail.EmailMessage("Hello", "Body", "app@example.com", to)


def _status(message: mail.EmailMessage) -> PostalStatus:
    status: PostalStatus = message.postal_status  # type: ignore[attr-defined]
    return status


async def test_asend_messages_sends_through_async_postal(fake: FakePostal) -> None:
    messages = [_message([f"user{i}@example.org"]) for i in range(10)]

    assert await asend_messages(messages) == 10

    assert len(fake.outbox) == 10
    assert all(_status(m).status == {"queued"} for m in messages)
    assert {_status(m).message_id for m in messages} == {
        entry.created[0].id for entry in fake.outbox
    }


async def test_asend_messages_raises_every_failure_after_sending_the_rest(
    fake: FakePostal,
) -> None:
    messages = [_message(["john@example.org"]), _message([]), _message(["mary@example.org"])]

    with pytest.raises(SendMessagesError) as raised:
        await asend_messages(messages)

    assert [index for index, _, _ in raised.value.failures] == [1]
    assert len(fake.outbox) == 2
    assert await asend_messages([_message([])], fail_silently=True) == 0


async def test_an_async_with_connection_keeps_one_client(fake: FakePostal) -> None:
    connection = make_backend()
    assert isinstance(connection, EmailBackend)

    async with connection:
        client = connection._async_client
        await connection.asend_messages([_message(["john@example.org"])])
        await connection.asend_messages([_message(["mary@example.org"])])
        assert connection._async_client is client

    assert client is not None
    assert client.is_closed
    assert len(fake.outbox) == 2


async def test_a_missing_setting_is_named_in_async_code_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POSTAL_BASE_URL", raising=False)
    message = _message(["john@example.org"])

    with override_settings(POSTAL={"API_KEY": "k"}):
        with pytest.raises(ImproperlyConfigured, match=r"POSTAL\['BASE_URL'\]"):
            await asend_messages([message])
        assert await asend_messages([message], fail_silently=True) == 0

    assert isinstance(_status(message).error, ImproperlyConfigured)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_another_backend_runs_in_a_thread(fake: FakePostal) -> None:
    # Django's test runner swaps EMAIL_BACKEND for locmem: asend_messages still works.
    connection = make_backend("django.core.mail.backends.locmem.EmailBackend")
    mail.outbox = []

    assert await asend_messages([_message(["john@example.org"])], connection=connection) == 1

    assert len(mail.outbox) == 1
    assert fake.outbox == ()
