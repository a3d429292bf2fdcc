"""The bulk path of the `postal` command: `send-many` over a JSONL file, and the `demo`.

Both drive `AsyncPostal.send_many` with a progress bar and account for every input: each
line ends up sent, failed (written with its error to the failures file), in doubt (a
journal holds its intent but no result: it is never resent), or, when the run is
interrupted, listed as "outcome unknown" or counted as never sent, so nothing already sent
goes unreported and the summary says where to resume.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import anyio
import attrs

from postal_sdk._async.client import AsyncPostal
from postal_sdk.cli._jsonl import BadLine, read_keyed_messages
from postal_sdk.cli._output import Progress
from postal_sdk.errors import APIError, BatchAborted, SendInDoubt
from postal_sdk.models import Message, RawMessage, SendResult
from postal_sdk.pacing import Pacer

__all__ = [
    "BulkReport",
    "FailureLog",
    "ResultLog",
    "count_lines",
    "jsonl_messages",
    "line_key",
    "send_all",
]

Item = tuple[int, "Message | RawMessage | BadLine", "str | None"]
"""An input: its line number, its message (or why it is not one), its `"key"` if given."""

_READ_CHUNK = 1 << 16


@attrs.define
class BulkReport:
    """What a bulk run did: counts, time taken, and the inputs whose fate is unknown."""

    sent: int = 0
    failed: int = 0
    seconds: float = 0.0
    unknown: list[int] = attrs.Factory(list)
    errors: Counter[str] = attrs.Factory(Counter)
    already_sent: int = 0
    """Lines an earlier run sent (replayed from the journal, not sent again)."""
    in_doubt: list[tuple[int, str]] = attrs.Factory(list)
    """Lines (number, key) whose earlier send may have reached Postal: never resent."""
    never_sent: int | None = None
    """Lines not sent at all, when the run stopped early (interrupted or aborted)."""
    resume_from: int | None = None
    """The first line a run that stopped early did not account for."""

    @property
    def messages_per_second(self) -> float:
        return round((self.sent + self.failed) / self.seconds, 1) if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "messages_per_second": self.messages_per_second,
            "outcome_unknown": self.unknown,
            "already_sent": self.already_sent,
            "in_doubt": [{"line": line, "key": key} for line, key in self.in_doubt],
            "never_sent": self.never_sent,
            "resume_from_line": self.resume_from,
            "errors": dict(self.errors.most_common()),
        }


class FailureLog:
    """Failed inputs, one JSON object per line: where it came from, the error, the input."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lines: list[str] = []

    def add(self, where: int, error: str, code: str | None, text: str | None) -> None:
        record = {"line": where, "error": error, "code": code, "input": text}
        self._lines.append(json.dumps(record) + "\n")

    async def flush(self) -> None:
        """Append what was logged so far to the file (created on the first failure)."""
        if self.path is None or not self._lines:
            return
        lines, self._lines = self._lines, []
        async with await anyio.open_file(self.path, "a", encoding="utf-8") as file:
            await file.write("".join(lines))


class ResultLog:
    """One JSON object per input line, written as outcomes arrive: `--results FILE`.

    Each has the `line`, its `key` (when journaled), and either the send's `message_id`
    and `messages` (recipient to `id` and `token`) with `replayed`, or the `error` (with
    its `code`, and `in_doubt` for a send that may have reached Postal).
    """

    def __init__(self, file: anyio.AsyncFile[str]) -> None:
        self._file = file

    async def add(
        self,
        where: int,
        key: str | None,
        result: SendResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        record: dict[str, Any] = {"line": where, "key": key}
        if result is not None:
            record["message_id"] = result.message_id
            record["messages"] = {
                address: {"id": sent.id, "token": sent.token}
                for address, sent in result.messages.items()
            }
            record["replayed"] = result.replayed
        else:
            record["error"] = _one_line(error) if error is not None else None
            record["code"] = error.code if isinstance(error, APIError) else None
            record["in_doubt"] = isinstance(error, SendInDoubt)
        await self._file.write(json.dumps(record, ensure_ascii=False) + "\n")


def line_key(where: int) -> str:
    """The idempotency key of a line with no `"key"`: its number, nothing that a rerun of
    the same file would change (no path, time or process)."""
    return f"line-{where}"


async def count_lines(path: Path) -> int:
    """The non-blank lines of a file, counted off the event loop."""

    def count() -> int:
        with path.open(encoding="utf-8") as file:
            return sum(1 for line in file if line.strip())

    return await anyio.to_thread.run_sync(count)


async def jsonl_messages(path: Path) -> AsyncIterator[Item]:
    """The messages of a JSONL file with their line numbers and keys, read in chunks off the
    loop."""
    async with await anyio.open_file(path, encoding="utf-8") as file:
        first_line = 1
        while True:
            lines: list[str] = await anyio.to_thread.run_sync(file.wrapped.readlines, _READ_CHUNK)
            if not lines:
                return
            for number, item, key in read_keyed_messages(lines):
                yield first_line + number - 1, item, key
            first_line += len(lines)


async def send_all(
    postal: AsyncPostal,
    items: AsyncIterator[Item] | Iterable[Item],
    *,
    concurrency: int,
    total: int | None,
    failures: FailureLog,
    report: BulkReport,
    show_progress: bool,
    keyed: bool = False,
    rate_limit: Pacer | None = None,
    results: ResultLog | None = None,
) -> None:
    """Send every message and log every failure, counting into `report` as outcomes come.

    With `keyed`, each send is journaled under its line's `"key"`, or `line_key(line)`:
    lines an earlier run sent are replayed, lines in doubt are listed and not resent.
    When the run is interrupted, `report` still holds everything reported so far,
    `report.unknown` the inputs that were taken but whose outcome never came back, and
    `report.never_sent`/`report.resume_from` what was not taken at all.
    """
    where_of: dict[int, int] = {}
    key_of: dict[int, str] = {}
    taken = 0
    last_line = 0
    started = time.perf_counter()

    async def messages(progress: Progress) -> AsyncIterator[Message | RawMessage]:
        nonlocal taken, last_line
        index = 0
        # Closed with this generator (send_many closes it when the batch ends early): the
        # input file is closed then, not left to the garbage collector.
        async with contextlib.aclosing(_aiter(items)) as inputs:
            async for where, item, key in inputs:
                taken += 1
                last_line = where
                if isinstance(item, BadLine):
                    report.failed += 1
                    report.errors["invalid line"] += 1
                    failures.add(where, item.problem, None, item.text)
                    if results is not None:
                        with anyio.CancelScope(shield=True):  # counted: written out whole
                            await results.add(where, None, error=ValueError(item.problem))
                    progress.advance(failed=True)
                    continue
                where_of[index] = where
                if keyed:
                    key_of[index] = key if key is not None else line_key(where)
                index += 1
                yield item

    def key_at(index: int, message: object) -> str:
        return key_of[index]

    aborted: BatchAborted | None = None
    with Progress(total, "sending", enabled=show_progress) as progress:
        try:
            batch = postal.send_many(
                messages(progress),
                concurrency=concurrency,
                rate_limit=rate_limit,
                key=key_at if keyed else None,
            )
            async with batch as outcomes:
                async for outcome in outcomes:
                    where = where_of.pop(outcome.index)
                    key = key_of.pop(outcome.index, None)
                    if outcome.error is None:
                        if outcome.replayed:
                            report.already_sent += 1
                        else:
                            report.sent += 1
                    elif isinstance(outcome.error, SendInDoubt):
                        report.in_doubt.append((where, outcome.error.key))
                    else:
                        report.failed += 1
                        code = outcome.error.code if isinstance(outcome.error, APIError) else None
                        report.errors[code or type(outcome.error).__name__] += 1
                        failures.add(where, _one_line(outcome.error), code, None)
                    progress.advance(failed=outcome.error is not None)
                    # Shielded: an outcome already counted is written out whole, even as
                    # Ctrl-C cancels the run (a send reported as made is in the results).
                    with anyio.CancelScope(shield=True):
                        if results is not None:
                            await results.add(where, key, outcome.result, outcome.error)
                        if report.failed and report.failed % 100 == 0:
                            await failures.flush()
        except BatchAborted as exc:
            aborted = exc
            raise
        finally:
            # Inputs taken but not reported may or may not have reached Postal, except
            # those a stopped batch says it never sent.
            unsent = [
                where
                for index, where in where_of.items()
                if aborted is not None and index >= aborted.submitted
            ]
            report.unknown = sorted(set(where_of.values()) - set(unsent))
            report.in_doubt.sort()
            untaken = total is not None and taken < total
            if untaken or unsent or report.unknown:
                report.never_sent = (total or taken) - taken + len(unsent)
                report.resume_from = min(
                    [*unsent, *report.unknown, *([last_line + 1] if untaken else [])]
                )
            report.seconds = time.perf_counter() - started
            with anyio.CancelScope(shield=True):
                await failures.flush()


async def _aiter(
    items: AsyncIterator[Item] | Iterable[Item],
) -> AsyncGenerator[Item, None]:
    if isinstance(items, AsyncGenerator):
        async with contextlib.aclosing(items):
            async for item in items:
                yield item
    elif isinstance(items, AsyncIterator):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def _one_line(error: BaseException) -> str:
    return " ".join((str(error) or type(error).__name__).split())
