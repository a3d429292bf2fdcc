"""Every code block in the README and the docs runs in CI, as a reader would run it.

The rules a block follows (docs/CONTRIBUTING-docs.md says them for writers):

- A fenced block names its language. ```` ```python ```` blocks run; blocks in another
  language (`console`, `toml`, `json`, ... in `NOT_PYTHON`) are shown only. A block with no
  language, or `py`, fails, so that Python cannot slip past the runner under another name.
- A Python block is a complete program: its own imports, and an event loop where it awaits
  (`anyio.run(main)` or `asyncio.run(main())`). It runs as `__main__` in a fresh namespace,
  in an empty temporary directory, with `POSTAL_BASE_URL` and `POSTAL_API_KEY` naming a
  `FakePostal` served on 127.0.0.1 for that block alone (its defaults: key
  `DEFAULT_API_KEY`, sending domain example.com). It talks to nothing else.
- A Python block with a top-level `def test_...` (or `async def test_...`) is a test module
  instead: it runs under pytest (all such blocks in one subprocess, with no `POSTAL_*`
  variables in its environment: a test makes its own `FakePostal`) and must pass, with no
  test skipped.
- A Python block that cannot run as written (a fragment of a settings file, say) is marked
  `<!-- not run: why -->` on a line of its own before it; the test skips, saying why.
- Warnings are errors, as in the rest of the suite.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import attrs
import pytest
from sybil import Document
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

import postal_sdk
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").rglob("*.md")]
)

NOT_PYTHON = frozenset(
    {"console", "shell", "bash", "sh", "text", "toml", "ini", "cfg", "json", "yaml", "html"}
)
"""Languages shown and never run. Add one here only if it cannot be Python."""

NOT_RUN = re.compile(r"(?:\A|\n)<!--\s*not run:(?P<reason>[^>]*)-->\s*\Z")
FENCE_INFO = re.compile(r"(?P<info>[^\n]*)\n")


@attrs.frozen
class CodeBlock:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int
    language: str
    source: str
    not_run_reason: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def module_name(self) -> str:
        return "test_" + re.sub(r"\W", "_", self.id)

    @property
    def is_test_module(self) -> bool:
        return any(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
            for node in ast.parse(self.source).body
        )


def code_blocks(path: Path) -> Iterator[CodeBlock]:
    """The fenced blocks of a Markdown file, found by Sybil's CommonMark fence lexer."""
    document = Document(path.read_text(encoding="utf-8"), str(path))
    lexer = RawFencedCodeBlockLexer(info_pattern=FENCE_INFO)
    for region in lexer(document):
        info = region.lexemes["info"].strip()
        before = document.text[: region.start].rstrip(" ")
        marker = NOT_RUN.search(before)
        yield CodeBlock(
            path=path,
            line=document.text.count("\n", 0, region.start) + 1,
            language=info.split(maxsplit=1)[0] if info else "",
            source=str(region.lexemes["source"]),
            not_run_reason=marker.group("reason").strip() if marker else None,
        )


BLOCKS = [block for path in DOCUMENTS for block in code_blocks(path)]
PYTHON_BLOCKS = [block for block in BLOCKS if block.language == "python"]
TEST_MODULES = [
    block for block in PYTHON_BLOCKS if block.is_test_module and block.not_run_reason is None
]


def params(blocks: list[CodeBlock]) -> list[object]:
    """The blocks as test parameters; those marked `not run` are skipped, saying why."""
    return [
        pytest.param(
            block,
            id=block.id,
            marks=[pytest.mark.skip(reason=f"not run: {block.not_run_reason}")]
            if block.not_run_reason is not None
            else [],
        )
        for block in blocks
    ]


@pytest.fixture
def served_fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakePostal]:
    """What a program may assume: a Postal in the environment, and an empty directory."""
    fake = FakePostal()
    with fake.serve() as base_url:
        monkeypatch.setenv("POSTAL_BASE_URL", base_url)
        monkeypatch.setenv("POSTAL_API_KEY", DEFAULT_API_KEY)
        monkeypatch.chdir(tmp_path)
        yield fake


@pytest.mark.parametrize(
    "block", params([block for block in PYTHON_BLOCKS if not block.is_test_module])
)
def test_program_runs_as_written(block: CodeBlock, served_fake: FakePostal) -> None:
    # Padded so that a traceback names the block's own line in the Markdown file.
    filename = block.path.relative_to(ROOT).as_posix()
    code = compile("\n" * block.line + block.source, filename, "exec", dont_inherit=True)
    exec(code, {"__name__": "__main__", "__file__": str(Path.cwd() / "example.py")})  # noqa: S102


@attrs.frozen
class ModuleReport:
    """What pytest made of one test-module block."""

    passed: int = 0
    problems: tuple[str, ...] = ()


@pytest.fixture(scope="module")
def test_module_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModuleReport]:
    """Runs every test-module block in one pytest subprocess (each start costs seconds)."""
    folder = tmp_path_factory.mktemp("docs_test_modules")
    for block in TEST_MODULES:
        padded = "\n" * block.line + block.source  # failures name the Markdown file's lines
        (folder / f"{block.module_name}.py").write_text(padded, encoding="utf-8")
    environment = {name: value for name, value in os.environ.items() if "POSTAL" not in name}
    environment["PYTHONPATH"] = str(Path(postal_sdk.__file__).parents[1])
    files = [f"{block.module_name}.py" for block in TEST_MODULES]
    options = ["-q", "-W", "error", "-p", "no:cacheprovider", "--junitxml", "report.xml"]
    options.append("--continue-on-collection-errors")  # one broken block must not hide others
    result = subprocess.run(  # noqa: S603 - our own interpreter on our own files
        [sys.executable, "-m", "pytest", *options, *files],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if not (folder / "report.xml").exists():
        pytest.fail(f"pytest wrote no report:\n{result.stdout}{result.stderr}")
    reports: dict[str, ModuleReport] = {}
    tree = ElementTree.parse(folder / "report.xml")  # noqa: S314 - pytest's, written just now
    for case in tree.iter("testcase"):
        # A collection error is reported with the module as the test's name.
        module = case.get("classname", "").split(".")[0] or case.get("name", "")
        report = reports.get(module, ModuleReport())
        problems = [
            f"{child.tag} in {case.get('name')}: {child.get('message')}\n{child.text or ''}"
            for child in case
            if child.tag in ("failure", "error", "skipped")
        ]
        reports[module] = ModuleReport(
            passed=report.passed + (not problems), problems=(*report.problems, *problems)
        )
    return reports


@pytest.mark.parametrize(
    "block", params([block for block in PYTHON_BLOCKS if block.is_test_module])
)
def test_test_module_passes(block: CodeBlock, test_module_reports: dict[str, ModuleReport]) -> None:
    report = test_module_reports.get(block.module_name, ModuleReport())
    assert not report.problems, f"{block.id} under pytest:\n" + "\n".join(report.problems)
    assert report.passed, f"{block.id}: pytest ran no test of it"


def test_every_block_names_its_language() -> None:
    unnamed = [
        f"{block.id}: {block.language or 'no language'}"
        for block in BLOCKS
        if block.language != "python" and block.language not in NOT_PYTHON
    ]
    assert not unnamed, (
        "write ```python for Python (it is run), or a language from NOT_PYTHON: "
        + ", ".join(unnamed)
    )


def test_every_not_run_marker_is_followed_by_a_python_block_and_says_why() -> None:
    markers = {
        (path, path.read_text(encoding="utf-8").count("\n", 0, match.start()) + 1)
        for path in DOCUMENTS
        for match in re.finditer(r"^<!--\s*not run:", path.read_text(encoding="utf-8"), re.M)
    }
    used = [block for block in PYTHON_BLOCKS if block.not_run_reason is not None]
    assert len(used) == len(markers), "a `not run` marker must be just before a ```python block"
    assert all(block.not_run_reason for block in used), "a `not run` marker gives its reason"


def test_the_runner_finds_the_documents_and_their_blocks() -> None:
    # Guards the runner itself: a lexer or path change that found nothing would pass silently.
    assert ROOT / "README.md" in DOCUMENTS
    assert {block.path.name for block in PYTHON_BLOCKS} >= {"README.md", "getting-started.md"}
