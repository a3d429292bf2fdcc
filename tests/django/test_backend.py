"""The backend past anymail (send/raw for what send/message cannot say), bad input,
failures with and without fail_silently, settings, and Django's open()/close()."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from postal_sdk.django import (
    EmailBackend,
    PostalStatus,
    SendMessagesError,
    UnsupportedFeatureError,
)
from postal_sdk.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    UnauthenticatedFromAddress,
)
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal
from tests.django.conftest import MAILERS, make_backend, png_part

pytestmark = pytest.mark.usefixtures("postal_url")

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _message(to: list[str] | None = None, **kwargs: object) -> mail.EmailMessage:
    return mail.EmailMessage(
        "Hello", "Body", "app@example.com", ["john@example.org"] if to is None else to, **kwargs
    )


def _status(message: mail.EmailMessage) -> PostalStatus:
    status: PostalStatus = message.postal_status  # type: ignore[attr-defined]
    return status


def _raw(fake: FakePostal) -> email.message.EmailMessage:
    entry = fake.outbox[-1]
    assert entry.endpoint == "send/raw"
    parsed = email.message_from_bytes(entry.raw_message, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_several_reply_to_addresses_go_in_one_reply_to(fake: FakePostal) -> None:
    message = _message(reply_to=["a@example.com", "B <b@example.com>"])

    assert make_backend().send_messages([message]) == 1

    assert fake.outbox[-1].params["reply_to"] == "a@example.com, B <b@example.com>"


def test_an_inline_image_goes_through_send_raw_with_its_content_id(fake: FakePostal) -> None:
    message = mail.EmailMultiAlternatives(
        "Logo", "See logo", "app@example.com", ["john@example.org"], bcc=["audit@example.org"]
    )
    message.attach_alternative('<img src="cid:logo">', "text/html")
    message.attach(png_part(PNG, "logo.png", content_id="<logo>"))
    message.tags = ["welcome"]  # type: ignore[attr-defined]

    assert make_backend().send_messages([message]) == 1

    raw = _raw(fake)
    assert fake.outbox[-1].params["rcpt_to"] == ["john@example.org", "audit@example.org"]
    assert fake.outbox[-1].params["mail_from"] == "app@example.com"
    assert "Bcc" not in raw
    assert raw["X-Postal-Tag"] == "welcome"
    [inline] = [part for part in raw.walk() if part["Content-ID"] == "<logo>"]
    assert inline.get_content() == PNG
    assert _status(message).endpoint == "send/raw"
    assert _status(message).recipients.keys() == {"john@example.org", "audit@example.org"}


@pytest.mark.parametrize(
    "case", ["a To header", "a calendar alternative", "an attachment without a name"]
)
def test_what_send_message_cannot_say_goes_through_send_raw(fake: FakePostal, case: str) -> None:
    message = mail.EmailMultiAlternatives("Hello", "Body", "app@example.com", ["john@example.org"])
    if case == "a To header":
        message.extra_headers["To"] = "Everyone <list@example.org>"
    elif case == "a calendar alternative":
        message.attach_alternative("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "text/calendar")
    else:
        message.attach(None, b"data", "application/octet-stream")

    assert make_backend().send_messages([message]) == 1

    raw = _raw(fake)
    assert fake.outbox[-1].params["rcpt_to"] == ["john@example.org"]
    assert raw["Subject"] == "Hello"
    if case == "a To header":
        assert raw["To"] == "Everyone <list@example.org>"
    elif case == "a calendar alternative":
        assert any(part.get_content_type() == "text/calendar" for part in raw.walk())


def test_a_sender_header_becomes_postals_sender_parameter(fake: FakePostal) -> None:
    # Postal overwrites a custom Sender header with its `sender` parameter (null: removed).
    message = _message(headers={"Sender": "Mailer <mailer@example.com>"})

    make_backend().send_messages([message])

    assert fake.outbox[-1].params["sender"] == "Mailer <mailer@example.com>"
    assert "headers" not in fake.outbox[-1].params


def test_unsupported_features_are_dropped_when_the_setting_says_so(fake: FakePostal) -> None:
    message = _message()
    message.tags = ["first", "second"]  # type: ignore[attr-defined]
    message.metadata = {"user": "42"}  # type: ignore[attr-defined]

    with override_settings(
        POSTAL={
            "BASE_URL": fake_url(fake),
            "API_KEY": DEFAULT_API_KEY,
            "IGNORE_UNSUPPORTED_FEATURES": True,
        }
    ):
        assert make_backend().send_messages([message]) == 1

    assert fake.outbox[-1].params["tag"] == "first"


def fake_url(fake: FakePostal) -> str:
    from django.conf import settings

    url: str = settings.POSTAL["BASE_URL"]
    return url


def test_the_whole_list_is_sent_and_then_every_failure_raised_together(
    fake: FakePostal,
) -> None:
    messages = [
        _message(),
        _message(to=[]),
        mail.EmailMessage("Hi", "Body", "app@elsewhere.org", ["john@example.org"]),
        _message(to=["mary@example.org"]),
    ]

    with pytest.raises(SendMessagesError) as raised:
        make_backend().send_messages(messages)

    error = raised.value
    assert error.sent == 2
    assert [index for index, _, _ in error.failures] == [1, 2]
    assert isinstance(error.failures[0][2], InvalidArgumentError)
    assert error.failures[0][2].argument == "to"
    assert isinstance(error.failures[1][2], UnauthenticatedFromAddress)
    assert error.__cause__ is error.failures[0][2]
    assert "2 of 4 messages were not sent" in str(error)
    # Sent concurrently: Postal may take them in either order.
    assert sorted(entry.params["to"][0] for entry in fake.outbox) == [
        "john@example.org",
        "mary@example.org",
    ]
    assert [_status(m).status for m in messages] == [{"queued"}, {"failed"}, {"failed"}, {"queued"}]
    assert _status(messages[2]).recipients["john@example.org"].status == "failed"
    assert _status(messages[2]).error is error.failures[1][2]


def test_fail_silently_counts_what_was_sent_and_leaves_each_error_on_its_message(
    fake: FakePostal,
) -> None:
    messages = [_message(), _message(to=[]), _message(to=["mary@example.org"])]

    assert make_backend(fail_silently=True).send_messages(messages) == 2

    assert len(fake.outbox) == 2
    assert isinstance(_status(messages[1]).error, InvalidArgumentError)
    assert _status(messages[1]).message_id is None


def test_send_mail_goes_through_the_backend(fake: FakePostal) -> None:
    assert mail.send_mail("Hi", "Body", "app@example.com", ["john@example.org"]) == 1

    assert fake.outbox[-1].params["subject"] == "Hi"


def test_an_empty_list_sends_nothing(fake: FakePostal) -> None:
    assert make_backend().send_messages([]) == 0
    assert fake.requests == ()


@pytest.mark.parametrize(
    ("build", "argument", "words"),
    [
        (lambda: _message(to=[]), "to", "no recipient"),
        (lambda: _message(to=["jöhn@example.org"]), "to[0]", "non-ASCII local part"),
        (lambda: _message(to=["not an address"]), "to[0]", "is not an address"),
        (lambda: _message(cc=["ok@example.org", "@example.org"]), "cc[1]", "is not an address"),
        (lambda: _message(to=["john@☃.example"]), "to[0]", "cannot be IDNA-encoded"),
        (
            lambda: _with_attachment(("empty.txt", b"", "text/plain")),
            "attachments[0]",
            "'empty.txt' is empty",
        ),
        (
            lambda: _with_attachment(("n.bin", 12345, "application/octet-stream")),
            "attachments[0]",
            "must be bytes or str",
        ),
        (lambda: _message_with_subject("Hi\nBcc: x@y.z"), "subject", "CR or LF"),
        (lambda: _message_with_body(""), "plain_body", "no content"),
        (lambda: _esp(["nope"]), "esp_extra", "unknown send/message parameter"),
    ],
)
def test_bad_input_is_a_clear_error_naming_what_is_wrong_and_the_rest_is_sent(
    fake: FakePostal, build: object, argument: str, words: str
) -> None:
    assert callable(build)
    bad = build()
    good = _message()

    with pytest.raises(SendMessagesError) as raised:
        make_backend().send_messages([bad, good])

    [(index, message, error)] = raised.value.failures
    assert (index, message) == (0, bad)
    assert isinstance(error, (InvalidArgumentError, InvalidArgumentTypeError, ValueError))
    assert words in str(error)
    if isinstance(error, (InvalidArgumentError, InvalidArgumentTypeError)):
        assert error.argument == argument
    assert len(fake.outbox) == 1
    assert _status(bad).error is error


def _message_with_subject(subject: str) -> mail.EmailMessage:
    return mail.EmailMessage(subject, "Body", "app@example.com", ["john@example.org"])


def _with_attachment(attachment: tuple[object, object, object]) -> mail.EmailMessage:
    message = _message()
    message.attachments.append(attachment)
    return message


def _esp(keys: list[str]) -> mail.EmailMessage:
    message = _message()
    message.esp_extra = dict.fromkeys(keys, 1)  # type: ignore[attr-defined]
    return message


def test_several_tags_are_refused_naming_the_attribute(fake: FakePostal) -> None:
    message = _message()
    message.tags = ["a", "b"]  # type: ignore[attr-defined]

    assert make_backend(fail_silently=True).send_messages([message]) == 0

    error = _status(message).error
    assert isinstance(error, UnsupportedFeatureError)
    assert "one tag per message" in str(error)


def test_an_idna_domain_is_encoded_and_keys_the_status(fake: FakePostal) -> None:
    message = _message(to=["Jöhn <john@bücher.example>"])

    make_backend().send_messages([message])

    assert fake.outbox[-1].params["to"] == ["Jöhn <john@xn--bcher-kva.example>"]
    assert list(_status(message).recipients) == ["john@xn--bcher-kva.example"]


@pytest.mark.parametrize(
    ("postal", "environment", "named"),
    [
        ({}, {}, "POSTAL['BASE_URL'] is not set, nor the POSTAL_BASE_URL"),
        ({"BASE_URL": "http://postal.test"}, {}, "POSTAL['API_KEY'] is not set"),
        ({"BASE_URL": "postal.test", "API_KEY": "k"}, {}, "POSTAL['BASE_URL']: needs http://"),
        ({"BASE_URL": "http://p.test", "API_KEY": "k", "TIMEOUT": -1}, {}, "POSTAL['TIMEOUT']"),
        ({"BASE_URL": "http://p.test", "API_KEY": "k", "API_URL": "x"}, {}, "'API_URL'"),
        (
            {"BASE_URL": "http://p.test", "API_KEY": "k", "CONCURRENCY": 0},
            {},
            "POSTAL['CONCURRENCY'] must be",
        ),
        (None, {}, "POSTAL['BASE_URL'] is not set"),
    ],
)
def test_a_missing_or_wrong_setting_is_named(
    monkeypatch: pytest.MonkeyPatch,
    postal: dict[str, object] | None,
    environment: dict[str, str],
    named: str,
) -> None:
    monkeypatch.delenv("POSTAL_BASE_URL", raising=False)
    monkeypatch.delenv("POSTAL_API_KEY", raising=False)
    message = _message()

    with override_settings(POSTAL=postal):
        with pytest.raises(ImproperlyConfigured) as raised:
            make_backend().send_messages([message])
        assert named in str(raised.value)

        assert make_backend(fail_silently=True).send_messages([message]) == 0
        assert named in str(_status(message).error)


def test_the_environment_is_the_fallback_for_url_and_key(
    fake: FakePostal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTAL_BASE_URL", fake_url(fake))
    monkeypatch.setenv("POSTAL_API_KEY", DEFAULT_API_KEY)

    with override_settings(POSTAL=None):
        assert make_backend().send_messages([_message()]) == 1


def test_get_connection_options_override_the_setting(fake: FakePostal) -> None:
    connection = make_backend(api_key="wrong-key", fail_silently=True)
    message = _message()

    assert connection.send_messages([message]) == 0
    assert type(_status(message).error).__name__ == "InvalidServerAPIKey"


def test_an_unknown_connection_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unknown option 'api_url'"):
        make_backend(api_url="http://x").send_messages([_message()])


def test_an_open_connection_keeps_one_client_for_several_calls(fake: FakePostal) -> None:
    connection = make_backend()
    assert isinstance(connection, EmailBackend)

    with connection:
        client = connection._client
        connection.send_messages([_message()])
        connection.send_messages([_message()])
        assert connection._client is client
        assert client is not None
        assert not client.is_closed

    assert client.is_closed
    assert connection._client is None
    assert len(fake.outbox) == 2


def test_send_messages_closes_the_client_it_opened(fake: FakePostal) -> None:
    connection = make_backend()
    assert isinstance(connection, EmailBackend)

    connection.send_messages([_message()])

    assert connection._client is None


def test_more_messages_than_the_concurrency_are_all_sent(fake: FakePostal) -> None:
    connection = make_backend(concurrency=3)
    messages = [_message(to=[f"user{i}@example.org"]) for i in range(25)]

    assert connection.send_messages(messages) == 25

    assert sorted(entry.params["to"][0] for entry in fake.outbox) == sorted(
        f"user{i}@example.org" for i in range(25)
    )
    assert all(_status(m).status == {"queued"} for m in messages)


def _message_with_body(body: str) -> mail.EmailMessage:
    return mail.EmailMessage("Hello", body, "app@example.com", ["john@example.org"])


def test_several_from_addresses_go_through_send_raw(fake: FakePostal) -> None:
    message = _message(headers={"From": "a@example.com, b@example.com"})

    make_backend().send_messages([message])

    raw = _raw(fake)
    assert raw["From"] == "a@example.com, b@example.com"
    # from_email is the envelope sender, as in Django's SMTP backend.
    assert fake.outbox[-1].params["mail_from"] == "app@example.com"
    assert raw["Sender"] == "app@example.com"


def test_a_body_neither_plain_nor_html_goes_through_send_raw(fake: FakePostal) -> None:
    message = _message()
    message.content_subtype = "calendar"

    make_backend().send_messages([message])

    assert _raw(fake).get_content_type() == "text/calendar"


def test_an_envelope_sender_on_send_raw_is_the_mail_from_and_the_sender_header(
    fake: FakePostal,
) -> None:
    message = _message(headers={"To": "list@example.org", "Sender": "old@example.com"})
    message.envelope_sender = "Bounces <bounces@example.com>"  # type: ignore[attr-defined]
    message.esp_extra = {"bounce": True}  # type: ignore[attr-defined]

    make_backend().send_messages([message])

    raw = _raw(fake)
    assert raw.get_all("Sender") == ["Bounces <bounces@example.com>"]
    assert fake.outbox[-1].params["mail_from"] == "bounces@example.com"
    assert fake.outbox[-1].params["bounce"] is True


def test_a_tag_given_as_one_string_is_the_tag(fake: FakePostal) -> None:
    message = _message()
    message.tags = "welcome"  # type: ignore[attr-defined]

    make_backend().send_messages([message])

    assert fake.outbox[-1].params["tag"] == "welcome"


def test_an_attached_message_is_sent_as_message_rfc822(fake: FakePostal) -> None:
    message = _message()
    message.attach("forwarded.eml", _message(to=["mary@example.org"]), None)

    make_backend().send_messages([message])

    [attachment] = fake.outbox[-1].params["attachments"]
    assert attachment["name"] == "forwarded.eml"
    assert attachment["content_type"] == "message/rfc822"


@pytest.mark.parametrize(
    ("attachment", "content_type"),
    [(("notes.csv", b"a,b", None), "text/csv"), (("blob", b"\x00\x01", None), None)],
)
def test_an_attachment_without_a_type_gets_one_from_its_name(
    fake: FakePostal, attachment: tuple[str, bytes, None], content_type: str | None
) -> None:
    message = _with_attachment(attachment)

    make_backend().send_messages([message])

    [sent] = fake.outbox[-1].params["attachments"]
    if content_type is None:
        assert sent["content_type"] == "application/octet-stream"
    else:
        assert sent["content_type"].startswith(content_type)


def test_esp_extra_attachments_in_postals_wire_form_are_sent(fake: FakePostal) -> None:
    message = _message()
    wire = {"name": "a.txt", "data": "aGVsbG8=", "content_type": "text/plain"}
    message.esp_extra = {"attachments": [wire]}  # type: ignore[attr-defined]

    make_backend().send_messages([message])

    assert fake.outbox[-1].params["attachments"] == [wire]


@pytest.mark.parametrize(
    ("setup", "argument", "words"),
    [
        (lambda m: setattr(m, "esp_extra", ["bounce"]), "esp_extra", "must be a dict"),
        (
            lambda m: setattr(m, "esp_extra", {"attachments": ["x"]}),
            "esp_extra['attachments']",
            "items must be dicts",
        ),
        (
            lambda m: setattr(m, "esp_extra", {"attachments": [{"name": "a"}]}),
            "esp_extra['attachments']",
            "needs name and base64 data",
        ),
        (
            lambda m: (
                m.extra_headers.update(To="x@example.org"),
                setattr(m, "esp_extra", {"headers": {}}),
            ),
            "esp_extra",
            "send/raw (a To header other than the recipients)",
        ),
        (lambda m: setattr(m, "reply_to", "a@example.com"), "reply_to", "not a str"),
        (
            lambda m: setattr(m, "envelope_sender", "a@example.com, b@example.com"),
            "envelope_sender",
            "must be one address",
        ),
        (lambda m: m.attachments.append("file.txt"), "attachments[0]", "tuple or a MIME part"),
        (lambda m: setattr(m, "from_email", ""), "from_email", "no From address"),
    ],
)
def test_more_bad_input_is_named(
    fake: FakePostal, setup: object, argument: str, words: str
) -> None:
    message = _message()
    assert callable(setup)
    setup(message)

    assert make_backend(fail_silently=True).send_messages([message]) == 0

    error = _status(message).error
    assert isinstance(error, (InvalidArgumentError, InvalidArgumentTypeError))
    assert error.argument == argument
    assert words in str(error)
    assert fake.outbox == ()


def test_a_failed_raw_send_marks_its_envelope_recipients_failed(fake: FakePostal) -> None:
    message = mail.EmailMessage("Hi", "Body", "app@elsewhere.org", ["john@example.org"])
    message.content_subtype = "calendar"

    assert make_backend(fail_silently=True).send_messages([message]) == 0

    assert _status(message).recipients["john@example.org"].status == "failed"
    assert type(_status(message).error).__name__ == "UnauthenticatedFromAddress"


def test_a_postal_setting_that_is_not_a_dict_is_named() -> None:
    with (
        override_settings(POSTAL="https://postal.example.com"),
        pytest.raises(ImproperlyConfigured, match=r"settings\.POSTAL must be a dict"),
    ):
        make_backend().send_messages([_message()])


@pytest.mark.skipif(not MAILERS, reason="MAILERS is Django 6.1's")
def test_a_mailers_entry_passes_its_options_and_alias(fake: FakePostal, postal_url: str) -> None:
    from django.core.mail import mailers  # type: ignore[attr-defined]

    entries = {
        "default": {"BACKEND": "postal_sdk.django.EmailBackend"},
        "other": {
            "BACKEND": "postal_sdk.django.EmailBackend",
            "OPTIONS": {"api_key": "wrong-key", "concurrency": 2},
        },
    }
    with override_settings(MAILERS=entries):
        other = mailers["other"]
        message = _message()
        with pytest.raises(SendMessagesError):
            message.send(using="other")
        assert _message().send() == 1

    assert other.alias == "other"
    assert type(_status(message).error).__name__ == "InvalidServerAPIKey"
    assert len(fake.outbox) == 1


def test_a_wrong_key_stops_the_list_and_marks_every_message_unsent(fake: FakePostal) -> None:
    connection = make_backend(api_key="wrong-key", fail_silently=True)
    messages = [_message() for _ in range(150)]  # three times the default concurrency

    assert connection.send_messages(messages) == 0

    assert {type(_status(m).error).__name__ for m in messages} == {"InvalidServerAPIKey"}
    # The batch stops at the first refusal instead of sending every message to be refused.
    assert len(fake.requests) < len(messages)
