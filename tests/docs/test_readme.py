"""The README is the front page on PyPI too: what it must keep.

Its code blocks run in test_docs_examples.py, like every page's.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
TEXT = README.read_text(encoding="utf-8")


def test_the_readme_keeps_the_two_setup_commands_that_ci_and_the_house_rules_use() -> None:
    assert "python -m pip install nox && python -m nox -s demo" in TEXT
    assert re.search(r"^python -m pip install nox && python -m nox +#", TEXT, re.MULTILINE)


def test_the_readme_has_no_relative_links_since_pypi_cannot_follow_them() -> None:
    targets = re.findall(r"\]\(([^)]+)\)", TEXT)
    relative = [target for target in targets if not re.match(r"https?://", target)]
    assert not relative, f"write 'docs/<page>.md in the repository' instead: {relative}"


def test_the_readme_starts_with_install_and_a_first_send() -> None:
    headings = re.findall(r"^## (.+)$", TEXT, re.MULTILINE)
    assert headings[:2] == ["Install", "A first send"]
    assert "pip install postal-sdk\n" in TEXT
