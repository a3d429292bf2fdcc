"""Every shell example of docs/cli.md runs as written, after the page's setup block."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import postal_sdk

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
SETUP, *EXAMPLES = re.findall(r"```bash\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)


def test_the_page_has_its_examples() -> None:
    assert len(EXAMPLES) == 8


@pytest.mark.skipif(shutil.which("bash") is None, reason="the examples are bash scripts")
@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_the_example_runs(number: int, tmp_path: Path) -> None:
    # `postal` and `python` as the reader has them: the interpreter running the tests.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "postal").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m postal_sdk.cli "$@"\n')
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(Path(postal_sdk.__file__).parents[1]),
    }
    env.pop("POSTAL_BASE_URL", None)
    env.pop("POSTAL_API_KEY", None)

    result = subprocess.run(  # noqa: S603 - our own page, run by bash
        ["bash", "-eu", "-c", SETUP + EXAMPLES[number]],  # noqa: S607 - bash from PATH
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
