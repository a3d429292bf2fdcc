"""Every feature anymail's Postal backend maps: ours sends the same request to Postal.

Each message is sent once through `anymail.backends.postal.EmailBackend` and once
through `postal_sdk.django.EmailBackend`, both to the same fake Postal served over
HTTP; the two send/message bodies the fake received are compared field by field.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from anymail.exceptions import AnymailUnsupportedFeature
from django.core import mail

from postal_sdk.testing import FakePostal
from tests.django.conftest import make_backend, png_part

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

MessageFactory = Callable[[], mail.EmailMessage]


def _plain() -> mail.EmailMessage:
    return mail.EmailMessage("Hello", "Plain body", "app@example.com", ["john@example.org"])


def _names_and_idna() -> mail.EmailMessage:
    return mail.EmailMessage(
        "Grüße",
        "Plain body",
        '"App, Inc." <app@example.com>',
        ["Jöhn Smith <john@bücher.example>", "mary@example.org"],
    )


def _cc_bcc() -> mail.EmailMessage:
    return mail.EmailMessage(
        "Hello",
        "Body",
        "app@example.com",
        ["john@example.org"],
        cc=["Carl <carl@example.org>"],
        bcc=["boss@example.org", "audit@example.org"],
    )


def _reply_to() -> mail.EmailMessage:
    return mail.EmailMessage(
        "Hello",
        "Body",
        "app@example.com",
        ["john@example.org"],
        reply_to=["Help <help@example.com>"],
    )


def _html_only() -> mail.EmailMessage:
    message = mail.EmailMessage("Hello", "<p>Hi</p>", "app@example.com", ["john@example.org"])
    message.content_subtype = "html"
    return message


def _text_and_html() -> mail.EmailMessage:
    message = mail.EmailMultiAlternatives("Hello", "Hi", "app@example.com", ["john@example.org"])
    message.attach_alternative("<p>Hi</p>", "text/html")
    return message


def _html_with_text_alternative() -> mail.EmailMessage:
    message = mail.EmailMultiAlternatives(
        "Hello", "<p>Hi</p>", "app@example.com", ["john@example.org"]
    )
    message.content_subtype = "html"
    message.attach_alternative("Hi", "text/plain")
    return message


def _attachments() -> mail.EmailMessage:
    message = mail.EmailMessage("Files", "See attached", "app@example.com", ["john@example.org"])
    message.attach("report.pdf", b"%PDF-1.4 data", "application/pdf")
    message.attach("notes.txt", "Some notes ✓", "text/plain")
    message.attach("data.csv", b"a,b\n1,2\n", None)
    message.attach("blob", b"\x00\x01\x02", None)
    message.attach(png_part(PNG, "logo.png"))
    return message


def _attached_file(tmp_path: Path) -> mail.EmailMessage:
    path = tmp_path / "invoice.json"
    path.write_bytes(b'{"total": 3}')
    message = mail.EmailMessage("File", "See attached", "app@example.com", ["john@example.org"])
    message.attach_file(str(path))
    return message


def _headers() -> mail.EmailMessage:
    return mail.EmailMessage(
        "Hello",
        "Body",
        "app@example.com",
        ["john@example.org"],
        reply_to=["ignored@example.com"],
        headers={
            "X-Campaign": "spring",
            "List-Unsubscribe": "<mailto:u@example.com>",
            "Reply-To": "Header <header@example.com>",
        },
    )


def _from_header() -> mail.EmailMessage:
    return mail.EmailMessage(
        "Hello",
        "Body",
        "bounces@example.com",
        ["john@example.org"],
        headers={"From": "Support <support@example.com>"},
    )


def _tag() -> mail.EmailMessage:
    message = _plain()
    message.tags = ["welcome"]  # type: ignore[attr-defined]
    return message


def _envelope_sender() -> mail.EmailMessage:
    message = _plain()
    message.envelope_sender = "bounces@example.com"  # type: ignore[attr-defined]
    return message


def _esp_extra() -> mail.EmailMessage:
    message = _plain()
    message.esp_extra = {"bounce": True, "tag": "from-extra"}  # type: ignore[attr-defined]
    return message


FACTORIES: dict[str, Callable[..., mail.EmailMessage]] = {
    "from, to, subject, text body": _plain,
    "display names and an IDNA domain": _names_and_idna,
    "cc and bcc": _cc_bcc,
    "reply-to": _reply_to,
    "an HTML body alone": _html_only,
    "text and HTML alternatives": _text_and_html,
    "an HTML body with a text alternative": _html_with_text_alternative,
    "attachments: bytes, text, guessed type, MIME part": _attachments,
    "an attached file": _attached_file,
    "custom headers and a Reply-To header": _headers,
    "a From header over from_email": _from_header,
    "a tag": _tag,
    "an envelope sender": _envelope_sender,
    "esp_extra": _esp_extra,
}


def _significant(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload without empty fields: absent, null and empty mean the same to Postal."""
    return {key: value for key, value in payload.items() if value not in (None, [], {})}


def _sent_payload(fake: FakePostal, backend: str, message: mail.EmailMessage) -> dict[str, Any]:
    before = len(fake.requests)
    connection = make_backend(backend)
    assert connection.send_messages([message]) == 1
    [request] = fake.requests[before:]
    assert request.path == "/api/v1/send/message"
    payload: dict[str, Any] = request.json()
    return _significant(payload)


@pytest.mark.usefixtures("postal_url")
@pytest.mark.parametrize("feature", list(FACTORIES))
def test_each_feature_anymail_maps_reaches_postal_the_same(
    fake: FakePostal, tmp_path: Path, feature: str
) -> None:
    factory = FACTORIES[feature]

    def build() -> mail.EmailMessage:
        return factory(tmp_path) if factory is _attached_file else factory()

    theirs = _sent_payload(fake, "anymail.backends.postal.EmailBackend", build())
    ours = _sent_payload(fake, "postal_sdk.django.EmailBackend", build())

    assert ours.keys() == theirs.keys()
    for field in theirs:
        assert ours[field] == theirs[field], field


@pytest.mark.usefixtures("postal_url")
def test_the_status_on_the_message_has_anymails_shape(fake: FakePostal) -> None:
    theirs, ours = _cc_bcc(), _cc_bcc()
    make_backend("anymail.backends.postal.EmailBackend").send_messages([theirs])
    make_backend().send_messages([ours])

    anymail_status = theirs.anymail_status  # type: ignore[attr-defined]
    status = ours.postal_status  # type: ignore[attr-defined]
    assert status.status == anymail_status.status == {"queued"}
    assert status.recipients.keys() == anymail_status.recipients.keys()
    for address, recipient in status.recipients.items():
        assert recipient.status == anymail_status.recipients[address].status
        assert recipient.message_id == fake.outbox[-1].messages[address].id
    assert isinstance(status.message_id, frozenset)
    assert len(status.message_id) == len(anymail_status.message_id) == 4
    assert status.message_id_header == fake.outbox[-1].message_id
    assert status.endpoint == "send/message"


@pytest.mark.usefixtures("postal_url")
def test_one_recipient_gives_a_single_message_id_as_anymail_does(fake: FakePostal) -> None:
    theirs, ours = _plain(), _plain()
    make_backend("anymail.backends.postal.EmailBackend").send_messages([theirs])
    make_backend().send_messages([ours])

    assert isinstance(theirs.anymail_status.message_id, int)  # type: ignore[attr-defined]
    assert ours.postal_status.message_id == fake.outbox[-1].created[0].id  # type: ignore[attr-defined]


@pytest.mark.usefixtures("postal_url")
@pytest.mark.parametrize(
    ("feature", "attribute", "value"),
    [
        ("multiple tags", "tags", ["one", "two"]),
        ("metadata", "metadata", {"user": "42"}),
        ("send_at", "send_at", 1_900_000_000),
        ("track_clicks", "track_clicks", True),
        ("track_opens", "track_opens", False),
        ("template_id", "template_id", "welcome"),
        ("merge_data", "merge_data", {"john@example.org": {"name": "John"}}),
        ("merge_global_data", "merge_global_data", {"site": "Example"}),
        ("merge_metadata", "merge_metadata", {"john@example.org": {"id": "1"}}),
    ],
)
def test_what_postal_cannot_express_is_refused_as_anymail_refuses_it(
    fake: FakePostal, feature: str, attribute: str, value: object
) -> None:
    from postal_sdk.django import SendMessagesError, UnsupportedFeatureError

    theirs, ours = _plain(), _plain()
    setattr(theirs, attribute, value)
    setattr(ours, attribute, value)

    with pytest.raises(AnymailUnsupportedFeature):
        make_backend("anymail.backends.postal.EmailBackend").send_messages([theirs])
    with pytest.raises(SendMessagesError) as raised:
        make_backend().send_messages([ours])

    [(_, _, error)] = raised.value.failures
    assert isinstance(error, UnsupportedFeatureError)
    assert error.argument == attribute
    assert "IGNORE_UNSUPPORTED_FEATURES" in str(error)
    assert fake.outbox == ()
