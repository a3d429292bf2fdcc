"""docs/connecting.md's code blocks are complete programs that run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import postal_sdk

PAGE = Path(__file__).resolve().parents[2] / "docs" / "connecting.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)
PROXY_VARIABLES = {
    f"{name}{suffix}" for name in ("http", "https", "all", "no") for suffix in ("_proxy", "_PROXY")
}


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_example_runs(index: int, tmp_path: Path) -> None:
    program = tmp_path / "example.py"
    program.write_text(BLOCKS[index], encoding="utf-8")
    # The machine's own proxies must not decide whether an example works.
    environment = {name: value for name, value in os.environ.items() if name not in PROXY_VARIABLES}
    environment["PYTHONPATH"] = str(Path(postal_sdk.__file__).parents[1])
    result = subprocess.run(  # noqa: S603 - our own interpreter on our own file
        [sys.executable, str(program)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
