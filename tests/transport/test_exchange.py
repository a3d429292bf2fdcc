"""The SDK's own requests, handed straight to the asyncio pool (`AsyncPooledClient.exchange`).

Under asyncio the SDK's client skips httpx's client layers and models for its own pool. What
must not change with that: the bytes on the wire, the reply the client reads, and the way
httpx chooses a transport per URL, which proxy mounts and mocking libraries rely on.
"""

from __future__ import annotations

import httpx
import pytest
import respx

from postal_sdk import AsyncPostal, Backoff, Message
from postal_sdk._http.reply import Reply
from postal_sdk._http.transport import AsyncDefaultTransport, AsyncPooledClient
from postal_sdk.errors import UnexpectedResponseError
from tests.transport.support import Script, ScriptedServer

pytestmark = pytest.mark.anyio

SENT = (
    b'{"status":"success","time":0.01,"flags":{},"data":{"message_id":"m1@example.com",'
    b'"messages":{"john@example.com":{"id":7,"token":"tok"}}}}'
)
SENT_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(SENT), SENT)
MESSAGE = Message(to=["john@example.com"], from_="app@example.com", plain_body="Hi")


@pytest.fixture
def anyio_backend() -> str:
    """The straight path exists under asyncio only; trio goes through httpx as before."""
    return "asyncio"


@pytest.mark.parametrize(
    ("method", "body", "own"),
    [
        ("POST", b'{"id":1}', {}),
        ("POST", b"", {}),
        ("GET", None, {}),
        ("POST", b'{"id":1}', {"host": "postal.example.com"}),
        ("POST", b"", {"Host": "postal.example.com", "Content-Length": "0"}),
        ("POST", b"{}", {"Content-Length": "2"}),
    ],
)
async def test_a_request_goes_out_byte_for_byte_as_httpx_would_write_it(
    method: str, body: bytes | None, own: dict[str, str]
) -> None:
    empty = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    script = Script(empty, empty, close=False)
    headers = httpx.Headers({"X-Server-API-Key": "key", **own, "Accept": "application/json"})
    timeout = httpx.Timeout(5.0)
    with ScriptedServer(script) as server:
        url = httpx.URL(server.url + "api/v1/x?y=1")
        async with AsyncPooledClient(transport=AsyncDefaultTransport(4)) as http:
            reply = await http.exchange(method, url, body, headers, timeout, 10.0)
            request = httpx.Request(method, url, content=body, headers=headers)
            await http._transport.handle_async_request(request)
    assert reply.status_code == 200
    straight, through_httpx = script.requests[0], script.requests[1]
    assert straight == through_httpx
    assert straight[0].startswith(f"{method} /api/v1/x?y=1 HTTP/1.1\r\n".encode())
    assert straight[0].lower().count(b"\r\nhost: ") == 1


async def test_a_reply_keeps_its_headers_in_any_letter_case() -> None:
    reply_bytes = (
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nX-Twice: a\r\n"
        b"x-twice: b\r\nContent-Length: 4\r\n\r\nbusy"
    )
    with ScriptedServer(Script(reply_bytes)) as server:
        async with AsyncPooledClient(transport=AsyncDefaultTransport(4)) as http:
            reply = await http.exchange(
                "GET", httpx.URL(server.url), None, httpx.Headers(), httpx.Timeout(5.0), None
            )
    assert (reply.status_code, reply.content) == (503, b"busy")
    assert reply.headers["retry-after"] == "7"
    assert reply.headers.get_list("X-TWICE") == ["a", "b"]
    assert not reply.is_redirect


def test_a_reply_is_a_redirect_for_every_3xx_as_httpx_says() -> None:
    for status in (300, 301, 304, 308, 399, 200, 400):
        response = httpx.Response(status)
        assert Reply(status, b"", []).is_redirect == response.is_redirect
        assert Reply.of(response).is_redirect == response.is_redirect


async def test_a_retry_after_and_a_redirect_over_real_sockets_are_read_from_the_reply() -> None:
    script = Script(
        b"HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n",
        SENT_REPLY,
        b"HTTP/1.1 302 Found\r\nLocation: https://elsewhere.test/x\r\nContent-Length: 0\r\n\r\n",
    )
    with ScriptedServer(script) as server:
        async with AsyncPostal(server.url, "key", backoff=Backoff(0, 0, 0)) as postal:
            result = await postal.send_message(MESSAGE)
            with pytest.raises(UnexpectedResponseError, match=r"elsewhere\.test"):
                await postal.send_message(MESSAGE)
    assert result.messages["john@example.com"].id == 7
    assert len(script.requests) == 3


async def test_a_respx_mock_of_httpx_itself_still_sees_the_sdks_sends() -> None:
    # respx's "httpx" mocker patches how httpx picks a transport per URL, not httpcore.
    async with AsyncPostal("http://postal.test", "key") as postal:
        with respx.mock(using="httpx", assert_all_called=True) as mock:
            route = mock.post("http://postal.test/api/v1/send/message").respond(content=SENT)
            result = await postal.send_message(MESSAGE)
    assert route.call_count == 1
    assert result.message_id == "m1@example.com"


async def test_a_proxied_origin_never_takes_the_straight_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The proxy is a scripted server answering as a plain-HTTP proxy does (absolute-form).
    script = Script(SENT_REPLY)
    with ScriptedServer(script) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with AsyncPostal("http://postal.test", "key") as postal:
            result = await postal.send_message(MESSAGE)
    assert result.message_id == "m1@example.com"
    assert script.requests[0][0].startswith(b"POST http://postal.test/api/v1/send/message ")
