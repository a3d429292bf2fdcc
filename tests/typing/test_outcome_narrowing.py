"""A `SendOutcome` narrows under mypy and pyright with the checks the docs show."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import postal_sdk

CHECKED = Path(__file__).with_name("check_outcome_narrowing.py")

CHECKERS = {
    "mypy": ["-m", "mypy", "--strict", "--no-incremental", "--python-version", "3.10"],
    # pyright reports a failed `assert_type` as an error in its default (basic) mode.
    "pyright": ["-m", "pyright", "--pythonpath", sys.executable],
}


@pytest.mark.parametrize(
    "checker",
    [
        pytest.param(
            name,
            marks=pytest.mark.skipif(
                importlib.util.find_spec(name) is None, reason=f"{name} is not installed"
            ),
        )
        for name in CHECKERS
    ],
)
def test_documented_checks_narrow_an_outcome_under(checker: str, tmp_path: Path) -> None:
    environment = dict(os.environ, PYTHONPATH=str(Path(postal_sdk.__file__).parents[1]))
    result = subprocess.run(  # noqa: S603 - our own interpreter on our own file
        [sys.executable, *CHECKERS[checker], str(CHECKED)],
        cwd=tmp_path,  # away from pyproject.toml, whose mypy `files` would be checked too
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
