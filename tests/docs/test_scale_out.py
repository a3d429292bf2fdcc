"""docs/scale-out.md's programs run as written, against a served fake and the test Redis.

Each program may assume what every docs program may (`POSTAL_BASE_URL` and
`POSTAL_API_KEY` naming a fake Postal, an empty working directory) and, for this page, a
Redis at `REDIS_URL`: the session's test server, emptied for each program.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from postal_sdk.testing import DEFAULT_API_KEY, FakePostal

PAGE = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"
BLOCKS = [
    (PAGE.read_text(encoding="utf-8").count("\n", 0, match.start()) + 1, match.group(1))
    for match in re.finditer(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)
]


@pytest.fixture
def environment(redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    fake = FakePostal()
    with fake.serve() as base_url:
        monkeypatch.setenv("POSTAL_BASE_URL", base_url)
        monkeypatch.setenv("POSTAL_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.chdir(tmp_path)
        yield


def test_the_page_has_programs() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize(("line", "source"), BLOCKS, ids=[f"line {line}" for line, _ in BLOCKS])
@pytest.mark.usefixtures("environment")
def test_program_runs_as_written(line: int, source: str) -> None:
    code = compile("\n" * line + source, "docs/scale-out.md", "exec", dont_inherit=True)
    exec(code, {"__name__": "__main__"})  # noqa: S102 - the page's own program
