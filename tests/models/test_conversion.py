"""The converter absorbs the quirks of Postal's replies into proper Python types."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import cattrs
import pytest

from postal_sdk import Message, MessageDetails, MessageInfo, SendResult
from postal_sdk._serde import converter, structure_datetime

DETAILS: dict[str, Any] = {
    "rcpt_to": "john@example.com",
    "mail_from": "app@example.org",
    "subject": None,
    "message_id": None,
    "timestamp": 1713450640.101,
    "direction": "outgoing",
    "size": "1432",
    "bounce": False,
    "bounce_for_id": 0,
    "tag": None,
    "received_with_ssl": None,
}


@pytest.mark.parametrize(("size", "expected"), [("1432", 1432), (None, None), ("", None), (7, 7)])
def test_details_size_becomes_an_int_or_none(size: object, expected: int | None) -> None:
    assert converter.structure({**DETAILS, "size": size}, MessageDetails).size == expected


def test_bounce_for_id_zero_means_no_bounce() -> None:
    assert (
        converter.structure({**DETAILS, "bounce_for_id": 0}, MessageDetails).bounce_for_id is None
    )
    assert converter.structure({**DETAILS, "bounce_for_id": 9}, MessageDetails).bounce_for_id == 9


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1713450640.5, datetime(2024, 4, 18, 14, 30, 40, 500000, tzinfo=timezone.utc)),
        (1713450640, datetime(2024, 4, 18, 14, 30, 40, tzinfo=timezone.utc)),
        (
            "2024-04-18T14:30:42.123Z",
            datetime(2024, 4, 18, 14, 30, 42, 123000, tzinfo=timezone.utc),
        ),
        ("2024-04-18T14:30:42", datetime(2024, 4, 18, 14, 30, 42, tzinfo=timezone.utc)),
        (
            "2024-04-18T16:30:42+02:00",
            datetime(2024, 4, 18, 16, 30, 42, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_timestamps_become_aware_datetimes(value: object, expected: datetime) -> None:
    parsed = structure_datetime(value)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("value", [True, None, [1]])
def test_a_value_that_is_no_timestamp_is_refused(value: object) -> None:
    with pytest.raises(TypeError):
        structure_datetime(value)


def test_mime_wrapped_base64_is_decoded_leniently() -> None:
    info = converter.structure(
        {"id": 1, "token": "t", "raw_message": "SGVs\nbG8s\r\nIHdv\ncmxk\n"}, MessageInfo
    )
    assert info.raw_message == b"Hello, world"


@pytest.mark.parametrize("raw", ["abc", 5])
def test_bad_base64_and_non_text_data_are_refused(raw: object) -> None:
    with pytest.raises(cattrs.ClassValidationError) as caught:
        converter.structure({"id": 1, "token": "t", "raw_message": raw}, MessageInfo)
    (described,) = cattrs.transform_error(caught.value)
    assert "raw_message" in described


def test_unknown_fields_in_replies_are_ignored() -> None:
    result = converter.structure(
        {"message_id": "x", "messages": {}, "added_in_postal_4": [1, 2]}, SendResult
    )
    assert result == SendResult(message_id="x", messages={})


def test_none_and_empty_fields_are_left_out_of_requests() -> None:
    message = Message(from_="a@example.com", bcc=["b@example.com"], html_body="<p>x</p>")
    assert converter.unstructure(message) == {
        "from": "a@example.com",
        "bcc": ["b@example.com"],
        "html_body": "<p>x</p>",
    }


def test_a_unix_time_written_as_a_string_is_read() -> None:
    assert structure_datetime("1713450640.5") == datetime(
        2024, 4, 18, 14, 30, 40, 500000, tzinfo=timezone.utc
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("rcpt_to", None), ("rcpt_to", 5), ("bounce", "false"), ("bounce", 0), ("bounce", None)],
)
def test_wrong_json_types_are_refused_not_coerced(field: str, value: object) -> None:
    # cattrs would otherwise turn null into "None" and "false" into True.
    with pytest.raises(cattrs.ClassValidationError):
        converter.structure({**DETAILS, field: value}, MessageDetails)
