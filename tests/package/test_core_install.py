"""The SDK with none of its extras, nor any other optional package: both clients still send.

The test environment has every extra installed (and trio, uvloop), which would hide an
import or a constructor that needs one of them: each test runs a fresh interpreter in which
importing any of them fails, as it would after a plain `pip install postal-sdk`.
"""

from __future__ import annotations

import subprocess
import sys

from tests.transport.support import Script, ScriptedServer

OPTIONAL = (
    "trio",
    "uvloop",
    "aiohttp",
    "httpx_aiohttp",
    "socksio",
    "socks",
    "opentelemetry",
    "cryptography",
    "rich",
    "uvicorn",
    "redis",
    "django",
    "celery",
)
"""Packages that only extras, or test tools, bring."""

SENT = (
    b'{"status":"success","time":0.01,"flags":{},"data":{"message_id":"m1@example.com",'
    b'"messages":{"john@example.com":{"id":7,"token":"tok"}}}}'
)
SENT_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(SENT), SENT)

PROGRAM = """
import sys

for name in {optional!r}:
    sys.modules[name] = None  # `import name` now fails, as where it is not installed

import anyio

from postal_sdk import AsyncPostal, Message, Postal

URL = {url!r}
message = Message(from_="app@example.com", to=["john@example.com"], plain_body="Hi")


async def main() -> None:
    async with AsyncPostal(URL, "key") as postal:
        assert (await postal.send_message(message)).message_id == "m1@example.com"
        async with postal.send_many([message, message]) as outcomes:
            assert [outcome.ok async for outcome in outcomes] == [True, True]


anyio.run(main)
with Postal(URL, "key") as postal:
    assert postal.send_message(message).message_id == "m1@example.com"
    with postal.send_many([message, message]) as outcomes:
        assert [outcome.ok for outcome in outcomes] == [True, True]
print("sent")
"""


def test_both_clients_send_one_message_and_a_batch_with_no_optional_package() -> None:
    with ScriptedServer(Script(*[SENT_REPLY] * 6, close=False)) as server:
        program = PROGRAM.format(optional=OPTIONAL, url=server.url.rstrip("/"))
        result = subprocess.run(  # noqa: S603 - our own interpreter and program
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["sent"]


DJANGO_PROGRAM = """
import sys

for name in {optional!r}:
    sys.modules[name] = None

import django
from django.conf import settings

settings.configure(
    EMAIL_BACKEND="postal_sdk.django.EmailBackend",
    POSTAL={{"BASE_URL": {url!r}, "API_KEY": "key"}},
)
django.setup()

from django.core.mail import send_mail

from postal_sdk.django import EmailBackend, webhook_view

assert send_mail("Hi", "Hello", "app@example.com", ["john@example.com"]) == 1
print("sent")
"""


def test_the_django_backend_sends_with_the_django_extra_alone() -> None:
    # Without the webhooks extra (no cryptography): only webhook_view needs it, when used.
    optional = tuple(name for name in OPTIONAL if name != "django")
    with ScriptedServer(Script(SENT_REPLY, close=False)) as server:
        program = DJANGO_PROGRAM.format(optional=optional, url=server.url.rstrip("/"))
        result = subprocess.run(  # noqa: S603 - our own interpreter and program
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["sent"]
