"""Every error of the contract's catalogue (postal-api.md §3), raised as its class end to end.

Postal answers errors with HTTP 200 and an envelope; the SDK maps each code to a class.
Codes the SDK's own validation pre-empts (a `Message` that Postal would reject cannot be
built) are shown in three steps: the local refusal; the fake's reply to the equivalent
raw JSON, posted with plain httpx and fed through `postal_sdk._envelope.unwrap` (the
SDK's one envelope mapper); and that same reply, replayed verbatim to the public
`send_message` by a `NonJSONBody` fault carrying it as its body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from postal_sdk import (
    APIError,
    AsyncPostal,
    Attachment,
    AuthenticationError,
    InvalidArgumentError,
    MessageRejectedError,
    ParameterError,
    RawMessage,
    ServerSuspended,
    UnexpectedResponseError,
)
from postal_sdk._envelope import unwrap
from postal_sdk.errors import (
    AccessDenied,
    AttachmentMissingData,
    AttachmentMissingName,
    FromAddressMissing,
    InvalidServerAPIKey,
    NoContent,
    NoRecipients,
    TooManyBCCAddresses,
    TooManyCCAddresses,
    TooManyToAddresses,
    UnauthenticatedFromAddress,
)
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal, NonJSONBody
from tests.e2e.conftest import ServedFake
from tests.e2e.support import NO_WAIT, message, raw_message

pytestmark = pytest.mark.anyio

ENDPOINTS = ["send/message", "send/raw", "messages/message", "messages/deliveries"]
WRONG_KEY = "wRoNgKeY0123456789abcdEF"
JSON = "application/json; charset=utf-8"
FIFTY_ONE = [f"r{n}@example.org" for n in range(51)]


async def call(postal: AsyncPostal, endpoint: str) -> object:
    """One valid request to `endpoint` through the public API."""
    if endpoint == "send/message":
        return await postal.send_message(message())
    if endpoint == "send/raw":
        return await postal.send_raw(raw_message())
    if endpoint == "messages/message":
        return await postal.get_message(1, expansions=True)
    return await postal.get_deliveries(1)


async def post_raw_json(base_url: str, endpoint: str, params: dict[str, Any]) -> httpx.Response:
    """What the fake answers to `params`, posted as JSON without the SDK."""
    headers = {"X-Server-API-Key": DEFAULT_API_KEY}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
        return await http.post(f"/api/v1/{endpoint}", json=params)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_request_without_the_key_header_raises_access_denied(
    base_url: str, fake: FakePostal, endpoint: str
) -> None:
    """The SDK always sends its key (and refuses a blank one), so an event hook of the
    caller's own httpx client removes the header on its way out, as a misconfigured
    proxy would."""

    async def drop_key(request: httpx.Request) -> None:
        del request.headers["X-Server-API-Key"]

    async with httpx.AsyncClient(event_hooks={"request": [drop_key]}) as http:
        postal = AsyncPostal(base_url, DEFAULT_API_KEY, http_client=http, backoff=NO_WAIT)
        with pytest.raises(AccessDenied) as raised:
            await call(postal, endpoint)

    assert isinstance(raised.value, AuthenticationError)
    assert raised.value.code == "AccessDenied"
    assert raised.value.message == "Must be authenticated as a server."
    [request] = fake.requests
    assert "x-server-api-key" not in request.headers
    assert fake.outbox == ()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_an_unknown_key_raises_invalid_server_api_key_without_revealing_it(
    base_url: str, fake: FakePostal, endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="postal_sdk")

    postal = AsyncPostal(base_url, WRONG_KEY, backoff=NO_WAIT)
    async with postal:
        with pytest.raises(InvalidServerAPIKey) as raised:
            await call(postal, endpoint)

    error = raised.value
    assert isinstance(error, AuthenticationError)
    assert error.code == "InvalidServerAPIKey"
    assert error.message == "The API token provided in X-Server-API-Key was not valid."
    assert dict(error.data) == {"message": error.message, "token": "[REDACTED]", "code": error.code}
    [request] = fake.requests
    # The fake did get (and echo) the key: keeping it out of sight is the SDK's doing.
    assert request.headers["x-server-api-key"] == WRONG_KEY
    for text in (str(error), repr(error), repr(error.args), repr(dict(error.data)), repr(postal)):
        assert WRONG_KEY not in text
    assert all(WRONG_KEY not in record.getMessage() for record in caplog.records)


async def test_a_reply_that_echoes_the_key_shows_it_redacted(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    page = f"<html><body>Bad request: X-Server-API-Key {DEFAULT_API_KEY} refused</body></html>"
    fake.add_fault(NonJSONBody(body=page))

    with pytest.raises(UnexpectedResponseError) as raised:
        await async_postal.send_message(message())

    assert raised.value.body_excerpt == page.replace(DEFAULT_API_KEY, "[REDACTED]")
    assert DEFAULT_API_KEY not in str(raised.value)


async def test_the_key_given_again_in_headers_is_sent_once(base_url: str, fake: FakePostal) -> None:
    postal = AsyncPostal(
        base_url, DEFAULT_API_KEY, backoff=NO_WAIT, headers={"x-server-api-key": DEFAULT_API_KEY}
    )

    async with postal:
        await postal.send_message(message())

    # Twice, Postal would see the two joined with ", ": an unknown key.
    [request] = fake.requests
    assert request.headers.get_list("x-server-api-key") == [DEFAULT_API_KEY]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_suspended_server_raises_server_suspended_with_no_message(
    async_postal: AsyncPostal, fake: FakePostal, endpoint: str
) -> None:
    fake.server.suspended = True

    with pytest.raises(ServerSuspended) as raised:
        await call(async_postal, endpoint)

    assert raised.value.code == "ServerSuspended"
    assert raised.value.message is None
    assert dict(raised.value.data) == {"code": "ServerSuspended"}
    assert str(raised.value) == "ServerSuspended"
    assert len(fake.requests) == 1
    assert fake.outbox == ()


async def test_an_unverified_from_domain_raises_unauthenticated_from_address(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    with pytest.raises(UnauthenticatedFromAddress) as raised:
        await async_postal.send_message(message(from_="App <app@not-verified.example>"))

    assert isinstance(raised.value, MessageRejectedError)
    assert raised.value.code == "UnauthenticatedFromAddress"
    assert raised.value.message == (
        "The From address is not authorised to send mail from this server"
    )
    assert fake.outbox == ()


async def test_send_raw_from_an_unverified_domain_raises_unauthenticated_without_message(
    async_postal: AsyncPostal, fake: FakePostal
) -> None:
    data = b"From: app@not-verified.example\r\nTo: john@example.org\r\n\r\nHi\r\n"
    # The envelope sender is not checked, only the From header.
    raw = RawMessage(mail_from="app@example.com", rcpt_to=["john@example.org"], data=data)

    with pytest.raises(UnauthenticatedFromAddress) as raised:
        await async_postal.send_raw(raw)

    assert raised.value.message is None
    assert dict(raised.value.data) == {"code": "UnauthenticatedFromAddress"}
    assert fake.outbox == ()


def _attachment_without_name() -> Attachment:
    return Attachment(name=" ", data=b"data")


def _attachment_without_data() -> Attachment:
    return Attachment(name="empty.txt", data=b" \r\n")


VALID = {"from": "app@example.com", "to": ["john@example.org"], "plain_body": "Hi"}

# code: (the Message the SDK refuses to build, the field it names, equivalent raw JSON)
PRE_EMPTED: dict[type[APIError], tuple[Callable[[], object], str, dict[str, Any]]] = {
    NoRecipients: (
        lambda: message(to=[]),
        "to",
        {**VALID, "to": []},
    ),
    TooManyToAddresses: (
        lambda: message(to=FIFTY_ONE),
        "to",
        {**VALID, "to": FIFTY_ONE},
    ),
    TooManyCCAddresses: (
        lambda: message(cc=FIFTY_ONE),
        "cc",
        {**VALID, "cc": FIFTY_ONE},
    ),
    TooManyBCCAddresses: (
        lambda: message(bcc=FIFTY_ONE),
        "bcc",
        {**VALID, "bcc": FIFTY_ONE},
    ),
    NoContent: (
        lambda: message(plain_body=" \n\t"),
        "plain_body",
        {**VALID, "plain_body": " \n\t"},
    ),
    FromAddressMissing: (
        lambda: message(from_=" "),
        "from_",
        {**VALID, "from": " "},
    ),
    AttachmentMissingName: (
        lambda: message(attachments=[_attachment_without_name()]),
        "name",
        {**VALID, "attachments": [{"name": " ", "data": "ZGF0YQ=="}]},
    ),
    AttachmentMissingData: (
        lambda: message(attachments=[_attachment_without_data()]),
        "data",
        {**VALID, "attachments": [{"name": "empty.txt", "data": "IA0K"}]},  # " \r\n"
    ),
}


@pytest.mark.parametrize("code", PRE_EMPTED, ids=lambda cls: cls.__name__)
async def test_send_validation_codes_are_refused_locally_and_map_to_their_class(
    async_postal: AsyncPostal, base_url: str, fake: FakePostal, code: type[APIError]
) -> None:
    build, field, params = PRE_EMPTED[code]

    with pytest.raises(InvalidArgumentError) as refused:
        build()
    assert refused.value.argument == field

    reply = await post_raw_json(base_url, "send/message", params)
    with pytest.raises(code) as mapped:
        unwrap(reply.status_code, reply.content, DEFAULT_API_KEY)
    assert mapped.value.code == code.__name__
    assert isinstance(mapped.value, MessageRejectedError)
    assert mapped.value.message == reply.json()["data"]["message"]

    fake.add_fault(NonJSONBody(body=reply.text, content_type=JSON), path="send/message")
    with pytest.raises(code) as replayed:
        await async_postal.send_message(message())
    assert dict(replayed.value.data) == reply.json()["data"]
    assert fake.outbox == ()


PARAMETER_ERRORS = [
    ("send/raw", {"mail_from": "a@example.com", "rcpt_to": "john@example.org", "data": "SGk="}),
    ("send/raw", {"rcpt_to": ["john@example.org"], "data": "SGk="}),
    ("send/raw", {"mail_from": "a@example.com", "rcpt_to": ["john@example.org"]}),
    ("messages/message", {}),
    ("messages/deliveries", {"id": None}),
]


@pytest.mark.parametrize(("endpoint", "params"), PARAMETER_ERRORS)
async def test_a_parameter_error_maps_to_parameter_error_with_postals_message(
    async_postal: AsyncPostal,
    base_url: str,
    fake: FakePostal,
    endpoint: str,
    params: dict[str, Any],
) -> None:
    """The SDK always sends every required parameter, so only raw JSON gets this reply."""
    reply = await post_raw_json(base_url, endpoint, params)
    with pytest.raises(ParameterError) as mapped:
        unwrap(reply.status_code, reply.content, DEFAULT_API_KEY)
    assert mapped.value.code is None
    assert mapped.value.message is not None
    assert mapped.value.message.endswith("parameter is required but is missing")
    assert mapped.value.message == reply.json()["data"]["message"]

    fake.add_fault(NonJSONBody(body=reply.text, content_type=JSON), path=endpoint)
    with pytest.raises(ParameterError) as replayed:
        await call(async_postal, endpoint)
    assert replayed.value.message == mapped.value.message


async def test_a_host_other_than_postals_hostname_gets_403_and_a_hint(
    async_postal: AsyncPostal, server: ServedFake
) -> None:
    server.swap(FakePostal(hostname="postal.example.com"))

    with pytest.raises(UnexpectedResponseError) as raised:
        await async_postal.send_message(message())
    fixed = async_postal.with_options(headers={"Host": "postal.example.com"})
    sent = await fixed.send_message(message())

    assert raised.value.status_code == 403
    assert raised.value.body_excerpt == ""
    assert "hostname" in raised.value.reason
    assert list(sent.messages) == ["john@example.org"]


async def test_a_base_url_with_a_wrong_path_gets_404_and_a_hint(
    base_url: str, fake: FakePostal
) -> None:
    postal = AsyncPostal(f"{base_url}/postal", DEFAULT_API_KEY, backoff=NO_WAIT)
    async with postal:
        with pytest.raises(UnexpectedResponseError) as raised:
            await postal.get_message(1)

    assert raised.value.status_code == 404
    assert "base_url" in raised.value.reason
    # The SDK asks for JSON, so Rails answers with its JSON error rather than the HTML page.
    assert raised.value.body_excerpt == '{"status":404,"error":"Not Found"}'
    [request] = fake.requests
    assert request.path == "/postal/api/v1/messages/message"


async def test_the_client_takes_url_and_key_from_the_environment(
    base_url: str, fake: FakePostal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTAL_BASE_URL", base_url)
    monkeypatch.setenv("POSTAL_API_KEY", DEFAULT_API_KEY)

    async with AsyncPostal(backoff=NO_WAIT) as postal:
        await postal.send_message(message())

    assert len(fake.outbox) == 1
