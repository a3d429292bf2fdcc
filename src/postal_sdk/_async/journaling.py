"""A send under an idempotency key: claimed in the journal, sent once, its result recorded."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from postal_sdk._async.pace import async_pace
from postal_sdk._retry import should_retry_error
from postal_sdk.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ClientClosedError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    JournalError,
    SendInDoubt,
    ServerSuspended,
    UnexpectedResponseError,
)
from postal_sdk.journal import Claim, ClaimStatus, EntryState, Journal, JournalEntry
from postal_sdk.models import SendResult
from postal_sdk.pacing import Pacer

if TYPE_CHECKING:
    from postal_sdk._async.client import AsyncPostal

__all__ = ["async_send_keyed", "should_end_batch", "surely_unsent"]

logger = logging.getLogger("postal_sdk")

_WAIT_STEP = 5.0
"""Seconds per look at a key another sender holds (the wait goes on until it finishes)."""


def surely_unsent(error: BaseException) -> bool:
    """Whether a failed send provably queued nothing at Postal (its key may be sent again).

    True for a message the SDK refused, a reply from Postal that is an error envelope
    (Postal queues nothing then), a 4xx from Postal or a proxy in front of it (the request
    was not processed), and a connection that could never be made. False for whatever
    leaves the question open: a read timeout, a dropped connection, a 5xx, a reply that
    does not parse, a cancellation.
    """
    if isinstance(error, (APIError, InvalidArgumentError, InvalidArgumentTypeError)):
        return True
    if isinstance(error, ClientClosedError):
        # Raised before a first request, or between retries of requests that never left.
        return True
    if isinstance(error, UnexpectedResponseError):
        return 400 <= error.status_code < 500
    if isinstance(error, APIConnectionError):
        cause = error.__cause__
        return isinstance(cause, httpx.HTTPError) and should_retry_error(cause, idempotent=False)
    return False


def should_end_batch(error: BaseException) -> bool:
    """Whether every later send of a batch would fail the same way as this one.

    A key that Postal does not know, a suspended server, a server that could not be
    reached at all after the retries (not a timeout while it answered, nor a full pool),
    or a journal or pace whose store failed (every later keyed or paced send needs it).
    """
    if isinstance(error, (AuthenticationError, ServerSuspended, JournalError)):
        return True
    if isinstance(error, APIConnectionError):
        cause = error.__cause__
        return isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout))
    return False


async def async_send_keyed(
    client: AsyncPostal,
    journal: Journal,
    key: str,
    mark: str,
    path: str,
    payload: Mapping[str, Any],
    pacers: Sequence[Pacer],
) -> SendResult:
    """Send `payload` to `path` at most once for `key`, or answer from the journal."""
    # With a pace, look before waiting for a slot: a key already sent is answered at once
    # (a resumed campaign replays its sent part at full speed), and a key is claimed only
    # once its slot came, so a crash during a long pace leaves no key in doubt.
    paced = not pacers
    while True:
        entry: JournalEntry | None
        if paced:
            claim = await journal.async_claim(key, mark)
            if claim.status is ClaimStatus.CLAIMED:
                return await _send_claimed(client, journal, claim, path, payload)
            entry = claim.entry
        else:
            entry = await journal.async_get(key)
            if entry is None:
                await async_pace(pacers)
                paced = True
                continue
        while entry is not None and entry.state is EntryState.PENDING:
            _check_fingerprint(key, mark, entry)
            entry = await journal.async_wait(key, _WAIT_STEP)
        if entry is not None:
            return _answer(key, mark, entry)
        # Its sender released it (nothing was sent): the key is free, claim it again.


def _check_fingerprint(key: str, mark: str, entry: JournalEntry) -> None:
    if entry.fingerprint is not None and entry.fingerprint != mark:
        raise InvalidArgumentError(
            "idempotency_key",
            f"{key!r} was used for a different message (other sender, recipients or "
            "subject): a key names one message",
        )


def _answer(key: str, mark: str, entry: JournalEntry) -> SendResult:
    _check_fingerprint(key, mark, entry)
    if entry.state is EntryState.IN_DOUBT:
        raise SendInDoubt(key)
    if entry.result is None:
        # Resolved as sent by hand, without the result: sent, details unknown.
        return SendResult(message_id=None, messages={}, replayed=True)
    return entry.result


async def _send_claimed(
    client: AsyncPostal,
    journal: Journal,
    claim: Claim,
    path: str,
    payload: Mapping[str, Any],
) -> SendResult:
    try:
        result = await client._deliver(path, payload)
    except BaseException as error:
        # No cancel scope around these (it would cost more than the write): the journal
        # finishes them whatever becomes of this task (see `Journal`).
        try:
            if surely_unsent(error):
                await journal.async_release(claim)
            else:
                await journal.async_mark_in_doubt(claim)
        except JournalError as journal_error:
            # The claim stays as it is: in doubt once its lease ends, never resent.
            logger.warning("journal: could not settle %r: %s", claim.key, journal_error)
        raise
    try:
        await journal.async_record(claim, result)
    except JournalError as journal_error:
        # Postal queued it: the caller gets the result; the key will read as in doubt.
        logger.warning("journal: could not record %r: %s", claim.key, journal_error)
    return result
