"""The README's runnable examples work exactly as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import postal_sdk

README = Path(__file__).resolve().parents[2] / "README.md"


def python_block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_testing_example_passes_as_a_pytest_file(tmp_path: Path) -> None:
    test_file = tmp_path / "test_readme_example.py"
    test_file.write_text(python_block_after("## Testing your own code"))
    result = subprocess.run(  # noqa: S603 - our own interpreter on our own file
        [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(postal_sdk.__file__).parents[1])},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
