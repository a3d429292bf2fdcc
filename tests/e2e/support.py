"""Constants and checks shared by the end-to-end tests."""

from __future__ import annotations

import base64
import email
from collections import Counter

from postal_sdk import Backoff, Message, RawMessage
from postal_sdk.testing import FakePostal, Fault, LoggedRequest

NO_WAIT = Backoff(initial=0, maximum=0, retry_after_cap=0)
"""Retries at once, `Retry-After` included: the retry rules, without the waiting."""

SENDS = ("send/message", "send/raw")
READS = ("messages/message", "messages/deliveries")


def message(subject: str = "Hi", **changes: object) -> Message:
    """A message the fake accepts; give each a distinct subject to tell them apart."""
    fields: dict[str, object] = {
        "from_": "App <app@example.com>",
        "to": ["john@example.org"],
        "subject": subject,
        "plain_body": "Hello",
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


def raw_message(subject: str = "Hi raw") -> RawMessage:
    """A raw message the fake accepts, to john@example.org."""
    data = (
        "From: App <app@example.com>\r\nTo: john@example.org\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '-')}@example.com>\r\n"
        "\r\nHello, raw\r\n"
    ).encode()
    return RawMessage(mail_from="app@example.com", rcpt_to=["john@example.org"], data=data)


def on(fake: FakePostal, endpoint: str) -> list[LoggedRequest]:
    """The requests the fake received for one action, oldest first."""
    return [request for request in fake.requests if request.endpoint == endpoint]


def subjects_sent(fake: FakePostal) -> list[str | None]:
    """The subject of every send the fake accepted, in the order it accepted them."""
    return [entry.created[0].subject for entry in fake.outbox]


def assert_no_send_processed_twice(fake: FakePostal) -> None:
    """The rule that matters most: a send that reached Postal is never received again.

    Every send body that Postal's code ran for appears once in the request log, and every
    accepted message (told apart by subject) is in the outbox once.
    """
    processed = Counter(
        request.body for request in fake.requests if request.endpoint in SENDS and request.processed
    )
    assert [body for body, count in processed.items() if count > 1] == []
    assert [s for s, count in Counter(subjects_sent(fake)).items() if count > 1] == []


def subject_of(request: LoggedRequest) -> str | None:
    """The subject of the message a logged send request carried."""
    params = request.json()
    if request.endpoint == "send/message":
        return params.get("subject")
    parsed = email.message_from_bytes(base64.b64decode(params["data"]))
    return parsed["Subject"]


def faulted_subjects(fake: FakePostal, fault: type[Fault]) -> set[str | None]:
    """The subjects of the sends the fake applied a fault of this type to."""
    return {subject_of(r) for r in fake.requests if isinstance(r.fault, fault)}
