"""What the `postal` command prints: tables for people, JSON for scripts, a progress bar.

rich (the `cli` extra) draws the tables and the bar when it is installed; without it the
output is plain aligned text, so the command works on a bare install too.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import IO, Any

import attrs

from postal_sdk._serde import converter

__all__ = ["Progress", "one_line", "print_json", "print_table", "to_jsonable"]


def one_line(error: BaseException) -> str:
    """An error as one line for stderr (an OS error names its file)."""
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None:
        text = f"{error.strerror or text}: {error.filename}"
    return " ".join(text.split())


def to_jsonable(value: Any) -> Any:
    """A model (or anything the converter knows) as plain JSON data, datetimes as ISO text."""
    data = converter.unstructure(value)
    return json.loads(json.dumps(data, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if attrs.has(type(value)):
        return converter.unstructure(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def print_json(value: Any, file: IO[str] | None = None) -> None:
    """One JSON document on one line."""
    print(json.dumps(to_jsonable(value), ensure_ascii=False), file=file or sys.stdout)


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], file: IO[str] | None = None
) -> None:
    """A table with a title, drawn by rich when it is installed; no `columns`, no header."""
    out = file or sys.stdout
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    width = len(columns) or max((len(row) for row in cells), default=0)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        everything = [list(columns), *cells] if columns else cells
        widths = [max(len(row[i]) for row in everything) for i in range(width)]
        print(title, file=out)
        for row in everything:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            print(line.rstrip(), file=out)
        return
    table = Table(title=title, title_justify="left", show_header=bool(columns))
    for column in columns or [""] * width:
        table.add_column(column)
    for row in cells:
        table.add_row(*row)
    Console(file=out, soft_wrap=True).print(table)


class Progress:
    """A progress bar on stderr (rich's when installed, else a line redrawn in place).

    The command enables it only when stderr is a terminal: nothing is drawn into a file.
    """

    def __init__(self, total: int | None, description: str, *, enabled: bool = True) -> None:
        self._total = total
        self._description = description
        self._enabled = enabled
        self._done = 0
        self._failed = 0
        self._last_draw = 0.0
        self._rich: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if not self._enabled:
            return self
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress
        except ImportError:
            return self
        self._rich = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed: {task.fields[failed]}"),
            TimeElapsedColumn(),
            # rich draws on stdout by default: the bar would mix with the results there.
            console=Console(stderr=True),
            transient=False,
        )
        self._rich.__enter__()
        self._task = self._rich.add_task(self._description, total=self._total, failed=0)
        return self

    def advance(self, *, failed: bool) -> None:
        """Count one finished item."""
        self._done += 1
        self._failed += failed
        if not self._enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, advance=1, failed=self._failed)
            return
        now = time.monotonic()
        if now - self._last_draw >= 0.2 or self._done == self._total:
            self._last_draw = now
            of_total = f"/{self._total}" if self._total is not None else ""
            sys.stderr.write(
                f"\r{self._description}: {self._done}{of_total} (failed: {self._failed})"
            )
            sys.stderr.flush()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._rich is not None:
            self._rich.__exit__(exc_type, exc, tb)
        elif self._enabled and self._done:
            sys.stderr.write("\n")
