"""Every Python block of the docs pages below runs as a program, exactly as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import postal_sdk

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("webhooks.md", "tracing.md")
BLOCKS = [
    pytest.param(block, id=f"{page}-{number}")
    for page in PAGES
    for number, block in enumerate(
        re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.DOTALL)
    )
]


@pytest.mark.parametrize("page", PAGES)
def test_each_page_has_programs(page: str) -> None:
    assert "```python\n" in (DOCS / page).read_text(encoding="utf-8")


@pytest.mark.parametrize("block", BLOCKS)
def test_each_block_runs(block: str, tmp_path: Path) -> None:
    program = tmp_path / "example.py"
    program.write_text(block, encoding="utf-8")
    result = subprocess.run(  # noqa: S603 - our own interpreter on our own file
        [sys.executable, "-W", "error", str(program)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(postal_sdk.__file__).parents[1])},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
