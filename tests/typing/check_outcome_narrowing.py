"""How a `SendOutcome` narrows: the checks that both mypy and pyright understand.

Type-checked by `mypy --strict` in `nox -s typecheck`, and by mypy and pyright in
`tests/typing/test_outcome_narrowing.py`. A bare `if outcome.ok:` narrows under mypy
(`check_public_api.py` pins it) but not under pyright, which narrows a union on a literal
member only by comparison (`is`, `==`), never by its truth (microsoft/pyright#1841); so the
docs show these forms to pyright users, and this file keeps them working under both.
"""

from __future__ import annotations

import sys

from postal_sdk import SendFailure, SendOutcome, SendResult, SendSuccess

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type


def ok_is_true(outcome: SendOutcome) -> None:
    if outcome.ok is True:
        assert_type(outcome, SendSuccess)
        assert_type(outcome.result, SendResult)
    else:
        assert_type(outcome, SendFailure)
        assert_type(outcome.error, Exception)


def ok_is_false(outcome: SendOutcome) -> None:
    if outcome.ok is False:
        assert_type(outcome.error, Exception)
    else:
        assert_type(outcome.result, SendResult)


def error_is_none(outcome: SendOutcome) -> None:
    if outcome.error is None:
        assert_type(outcome.result, SendResult)
    else:
        assert_type(outcome.error, Exception)
        assert_type(outcome.result, None)


def result_is_not_none(outcome: SendOutcome) -> None:
    if outcome.result is not None:
        assert_type(outcome, SendSuccess)


def by_isinstance(outcome: SendOutcome) -> None:
    if isinstance(outcome, SendSuccess):
        assert_type(outcome.result, SendResult)
    else:
        assert_type(outcome.error, Exception)


def by_match(outcome: SendOutcome) -> None:
    match outcome:
        case SendSuccess(result=result):
            assert_type(result, SendResult)
        case SendFailure(error=error):
            assert_type(error, Exception)
