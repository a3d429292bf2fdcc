"""The bulk path of the `postal` command: `send-many` over a JSONL file, and the `demo`.

Both drive `AsyncPostal.send_many` with a progress bar and account for every input: each
line ends up sent, failed (written with its error to the failures file), or, when the run is
interrupted, listed as "outcome unknown" so nothing already sent goes unreported.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import anyio
import attrs

from postal_sdk._async.client import AsyncPostal
from postal_sdk.cli._jsonl import BadLine, read_messages
from postal_sdk.cli._output import Progress
from postal_sdk.errors import APIError
from postal_sdk.models import Message, RawMessage

__all__ = ["BulkReport", "FailureLog", "count_lines", "jsonl_messages", "send_all"]

_READ_CHUNK = 1 << 16


@attrs.define
class BulkReport:
    """What a bulk run did: counts, time taken, and the inputs whose fate is unknown."""

    sent: int = 0
    failed: int = 0
    seconds: float = 0.0
    unknown: list[int] = attrs.Factory(list)
    errors: Counter[str] = attrs.Factory(Counter)

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


async def count_lines(path: Path) -> int:
    """The non-blank lines of a file, counted off the event loop."""

    def count() -> int:
        with path.open(encoding="utf-8") as file:
            return sum(1 for line in file if line.strip())

    return await anyio.to_thread.run_sync(count)


async def jsonl_messages(path: Path) -> AsyncIterator[tuple[int, Message | RawMessage | BadLine]]:
    """The messages of a JSONL file with their line numbers, read in chunks off the loop."""
    async with await anyio.open_file(path, encoding="utf-8") as file:
        first_line = 1
        while True:
            lines: list[str] = await anyio.to_thread.run_sync(file.wrapped.readlines, _READ_CHUNK)
            if not lines:
                return
            for number, item in read_messages(lines):
                yield first_line + number - 1, item
            first_line += len(lines)


async def send_all(
    postal: AsyncPostal,
    items: AsyncIterator[tuple[int, Message | RawMessage | BadLine]] | Iterable[tuple[int, Any]],
    *,
    concurrency: int,
    total: int | None,
    failures: FailureLog,
    report: BulkReport,
    show_progress: bool,
) -> None:
    """Send every message and log every failure, counting into `report` as outcomes come.

    When the run is interrupted, `report` still holds everything reported so far, and
    `report.unknown` the inputs that were taken but whose outcome never came back.
    """
    where_of: dict[int, int] = {}
    started = time.perf_counter()

    async def messages(progress: Progress) -> AsyncIterator[Message | RawMessage]:
        index = 0
        async for where, item in _aiter(items):
            if isinstance(item, BadLine):
                report.failed += 1
                report.errors["invalid line"] += 1
                failures.add(where, item.problem, None, item.text)
                progress.advance(failed=True)
                continue
            where_of[index] = where
            index += 1
            yield item

    with Progress(total, "sending", enabled=show_progress) as progress:
        try:
            async with postal.send_many(messages(progress), concurrency=concurrency) as outcomes:
                async for outcome in outcomes:
                    where = where_of.pop(outcome.index)
                    if outcome.error is None:
                        report.sent += 1
                    else:
                        report.failed += 1
                        code = outcome.error.code if isinstance(outcome.error, APIError) else None
                        report.errors[code or type(outcome.error).__name__] += 1
                        failures.add(where, _one_line(outcome.error), code, None)
                    progress.advance(failed=outcome.error is not None)
                    if report.failed and report.failed % 100 == 0:
                        await failures.flush()
        finally:
            # Inputs taken but not reported may or may not have reached Postal.
            report.unknown = sorted(where_of.values())
            report.seconds = time.perf_counter() - started
            with anyio.CancelScope(shield=True):
                await failures.flush()


async def _aiter(
    items: AsyncIterator[tuple[int, Any]] | Iterable[tuple[int, Any]],
) -> AsyncIterator[tuple[int, Any]]:
    if isinstance(items, AsyncIterator):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def _one_line(error: BaseException) -> str:
    return " ".join((str(error) or type(error).__name__).split())
