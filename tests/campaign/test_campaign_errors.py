"""`SendInDoubt`, `BatchAborted` and `JournalError`: what they carry, and that they pickle."""

from __future__ import annotations

import pickle

from postal_sdk import APIConnectionError, BatchAborted, JournalError, PostalError, SendInDoubt


def round_trip(error: Exception) -> Exception:
    return pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object, just pickled


def test_send_in_doubt_names_its_key_and_travels_through_pickle() -> None:
    error = SendInDoubt("newsletter-7:42")
    again = round_trip(error)
    assert isinstance(again, SendInDoubt)
    assert again.key == "newsletter-7:42"
    assert "newsletter-7:42" in str(again)


def test_batch_aborted_carries_its_cause_and_where_to_resume() -> None:
    error = BatchAborted(APIConnectionError("connection refused"), 17)
    again = round_trip(error)
    assert isinstance(again, BatchAborted)
    assert again.submitted == 17
    assert isinstance(again.cause, APIConnectionError)
    assert "17" in str(again)


def test_journal_error_is_a_postal_error() -> None:
    assert isinstance(round_trip(JournalError("down")), PostalError)
