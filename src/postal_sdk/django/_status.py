"""What became of each Django message: `message.postal_status`, like anymail's status."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from postal_sdk.errors import PostalError
from postal_sdk.models import SendResult

__all__ = ["PostalRecipientStatus", "PostalStatus", "SendMessagesError"]

RecipientState = Literal["queued", "failed"]


@attrs.frozen
class PostalRecipientStatus:
    """One recipient's outcome: Postal's message `id` and `token` for it, or `failed`."""

    message_id: int | None
    status: RecipientState
    token: str | None = None


@attrs.frozen
class PostalStatus:
    """The outcome of sending one Django message, left on it as `message.postal_status`.

    Shaped like anymail's `message.anymail_status`:

    - `status`: the set of the recipients' states, `{"queued"}` when Postal took the
      message, `{"failed"}` when it did not;
    - `message_id`: Postal's message id (an int) when there is one recipient, the set of
      ids when there are several (Postal makes one message per recipient), `None` on failure;
    - `recipients`: each recipient's `PostalRecipientStatus`, keyed by the address as
      Postal returns it;

    and beyond anymail's: `message_id_header`, the `Message-ID` Postal gave the message
    (without angle brackets); `endpoint`, which of send/message or send/raw was used;
    `result`, the `SendResult`; and `error`, the exception when it failed.
    """

    status: frozenset[RecipientState]
    message_id: int | frozenset[int] | None
    recipients: Mapping[str, PostalRecipientStatus]
    message_id_header: str | None = None
    endpoint: Literal["send/message", "send/raw"] | None = None
    result: SendResult | None = None
    error: BaseException | None = None

    @classmethod
    def sent(
        cls, result: SendResult, endpoint: Literal["send/message", "send/raw"]
    ) -> PostalStatus:
        """The status of a message Postal queued."""
        recipients = {
            address: PostalRecipientStatus(sent.id, "queued", sent.token)
            for address, sent in result.messages.items()
        }
        ids = frozenset(sent.id for sent in result.messages.values())
        message_id: int | frozenset[int] | None = next(iter(ids)) if len(ids) == 1 else ids
        return cls(
            status=frozenset({"queued"}),
            message_id=message_id,
            recipients=recipients,
            message_id_header=result.message_id,
            endpoint=endpoint,
            result=result,
        )

    @classmethod
    def failed(cls, error: BaseException, recipients: Iterable[str] = ()) -> PostalStatus:
        """The status of a message that was not sent."""
        return cls(
            status=frozenset({"failed"}),
            message_id=None,
            recipients={address: PostalRecipientStatus(None, "failed") for address in recipients},
            error=error,
        )


class SendMessagesError(PostalError):
    """Some messages of a `send_messages` call were not sent (raised after the whole list).

    `failures` holds `(index, message, error)` for each, in list order; `sent` counts
    the messages Postal took. The first failure's error is chained as `__cause__`, and
    every message carries its own outcome in `message.postal_status`.
    """

    def __init__(self, failures: Sequence[tuple[int, Any, BaseException]], sent: int) -> None:
        self.failures = tuple(failures)
        self.sent = sent
        total = sent + len(self.failures)
        details = "; ".join(
            f"[{index}] {type(error).__name__}: {error}" for index, _, error in self.failures
        )
        super().__init__(f"{len(self.failures)} of {total} messages were not sent: {details}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.failures, self.sent))
