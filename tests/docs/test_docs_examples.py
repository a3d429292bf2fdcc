"""Every code block in the README and the docs runs in CI, as a reader would run it.

The rules a block follows (docs/CONTRIBUTING-docs.md says them for writers):

- A fenced block names its language. ```` ```python ```` blocks run; blocks in another
  language (`console`, `toml`, `json`, ... in `NOT_PYTHON`) are shown only. A block with no
  language, or `py`, fails, so that Python cannot slip past the runner under another name.
- A Python block is a complete program: its own imports, and an event loop where it awaits
  (`anyio.run(main)` or `asyncio.run(main())`). It runs as `python FILE` would, in a
  process of its own, in an empty temporary directory, with `POSTAL_BASE_URL` and
  `POSTAL_API_KEY` naming a `FakePostal` served on 127.0.0.1 for that block alone (its
  defaults: key `DEFAULT_API_KEY`, sending domain example.com), and no proxy variables. A
  block that names `REDIS_URL` gets an empty Redis there. It talks to nothing else.
- A Python block with a top-level `def test_...` (or `async def test_...`) is a test module
  instead: pytest runs it (with the anyio plugin and no other), in a process of its own
  with no `POSTAL_*` variables in its environment (a test makes its own `FakePostal`),
  and it must pass with no test skipped.
- A Python block that is a file of a project rather than a program (a Django settings.py
  or urls.py) is marked `<!-- file: settings.py -->` on a line of its own before it, and
  followed by an invisible block, `<!-- invisible-code-block: python ... -->` (Sybil's
  convention), the program that uses it: the block is written under its file name and the
  program beside it, which runs as a block's program runs (its own process, FakePostal).
- Warnings are errors, as in the rest of the suite, and mypy (not strict, but checking
  unannotated functions and possibly unbound names) accepts every block.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from sybil import Document
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, RawFencedCodeBlockLexer

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

FILE_MARKER = re.compile(r"(?:\A|\n)<!--\s*file:\s*(?P<name>[\w.]+\.py)\s*-->\s*\Z")
FENCE_INFO = re.compile(r"(?P<info>[^\n]*)\n")


@attrs.frozen
class Program:
    """The invisible block that follows a file block: the program run with the file."""

    line: int
    source: str


@attrs.frozen
class CodeBlock:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int
    language: str
    source: str
    file_name: str | None
    """The file of a project the block is (`settings.py`), when it is one, not a program."""
    program: Program | None
    """The invisible program that follows the block, which runs with it as `file_name`."""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def is_test_module(self) -> bool:
        return any(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
            for node in ast.parse(self.source).body
        )


def line_of(document: Document, offset: int) -> int:
    return document.text.count("\n", 0, offset) + 1


def invisible_programs(path: Path) -> list[tuple[int, Program]]:
    """The invisible Python blocks of a Markdown file, with where each starts.

    Found by Sybil's lexer for `<!-- invisible-code-block: python ... -->` comments.
    """
    document = Document(path.read_text(encoding="utf-8"), str(path))
    lexer = DirectiveInHTMLCommentLexer(directive="invisible-code-block", arguments="python")
    return [
        (region.start, Program(line_of(document, region.start), str(region.lexemes["source"])))
        for region in lexer(document)
    ]


def code_blocks(path: Path) -> Iterator[CodeBlock]:
    """The fenced blocks of a Markdown file, found by Sybil's CommonMark fence lexer."""
    document = Document(path.read_text(encoding="utf-8"), str(path))
    lexer = RawFencedCodeBlockLexer(info_pattern=FENCE_INFO)
    programs = invisible_programs(path)
    for region in lexer(document):
        info = region.lexemes["info"].strip()
        marker = FILE_MARKER.search(document.text[: region.start].rstrip(" "))
        # A file block's program is the invisible block just after it, with only blank
        # lines between them.
        program = next(
            (
                program
                for start, program in programs
                if start >= region.end and not document.text[region.end : start].strip()
            ),
            None,
        )
        yield CodeBlock(
            path=path,
            line=line_of(document, region.start),
            language=info.split(maxsplit=1)[0] if info else "",
            source=str(region.lexemes["source"]),
            file_name=marker.group("name") if marker else None,
            program=program,
        )


BLOCKS = [block for path in DOCUMENTS for block in code_blocks(path)]
PYTHON_BLOCKS = [block for block in BLOCKS if block.language == "python"]


@pytest.mark.parametrize("block", [pytest.param(block, id=block.id) for block in PYTHON_BLOCKS])
def test_python_block_runs_as_written(block: CodeBlock, tmp_path: Path) -> None:
    # Each block has a process of its own, as when a reader runs it: blocks that set
    # process-wide state (Django's settings, say) cannot disturb each other or the suite.
    kind = "test" if block.is_test_module else "example"
    source = tmp_path / (kind + "_" + re.sub(r"\W", "_", block.id) + ".py")
    # Padded so that a traceback names the block's own line in the Markdown file.
    source.write_text("\n" * block.line + block.source, encoding="utf-8")
    if block.file_name is not None:
        # A project's file: its program, beside it, imports it (as `settings`, say).
        assert block.program is not None, f"{block.id}: a file block needs its program"
        source.rename(tmp_path / block.file_name)
        source.write_text("\n" * block.program.line + block.program.source, encoding="utf-8")
    # Neither the machine's proxies nor a Postal of its own decide whether a block works.
    environment = {
        name: value
        for name, value in os.environ.items()
        if "POSTAL" not in name and not name.lower().endswith("_proxy")
    }
    environment["PYTHONPATH"] = str(Path(postal_sdk.__file__).parents[1])
    if block.is_test_module:
        # anyio's is the one plugin a block may use; loading every installed one (hypothesis,
        # pytest-cov, ...) took most of each run.
        environment["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        options = ["-q", "-rs", "-W", "error", "-p", "no:cacheprovider", "-p", "anyio"]
        command = [sys.executable, "-m", "pytest", source.name, *options]
        output = run(block, command, environment, tmp_path)
        assert " passed" in output, output
        assert "skipped" not in output, f"{block.id} skips a test:\n{output}"
        return
    with contextlib.ExitStack() as services:
        base_url = services.enter_context(FakePostal().serve())
        environment.update(POSTAL_BASE_URL=base_url, POSTAL_API_KEY=DEFAULT_API_KEY)
        if "REDIS_URL" in block.source:
            # The scale-out page's programs get an empty Redis of their own, started as the
            # Redis tests start theirs (tests/redis_server.py comes with postal_sdk.redis).
            from tests.redis_server import running_redis

            environment["REDIS_URL"] = services.enter_context(running_redis())
        run(block, [sys.executable, "-W", "error", source.name], environment, tmp_path)


def run(block: CodeBlock, command: list[str], environment: dict[str, str], folder: Path) -> str:
    """Run a command in `folder`; its output, after checking that it succeeded."""
    result = subprocess.run(  # noqa: S603 - our own interpreter on our own file
        command,
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{block.id} fails:\n{output}"
    return output


def test_python_blocks_pass_mypy(tmp_path: Path) -> None:
    # A reader's type checker sees what mypy sees: a name that may be unbound, an optional
    # expansion read without a check. One run for every block: each start costs seconds.
    # A file block is checked as a module; the invisible program that runs it is the
    # runner's, not the reader's, and imports it under a name that only its run gives it.
    for block in PYTHON_BLOCKS:
        name = re.sub(r"\W", "_", block.id)
        (tmp_path / f"{name}.py").write_text("\n" * block.line + block.source, "utf-8")
    checks = ["--check-untyped-defs", "--enable-error-code", "possibly-undefined"]
    # Not every library a page uses ships types; their absence is not the page's fault. And
    # a page prints values to show them: an f-string of what may be bytes is meant.
    ignored = ["--disable-error-code", "import-untyped", "--disable-error-code", "str-bytes-safe"]
    options = ["--no-incremental", "--explicit-package-bases", "--python-version", "3.10"]
    command = [sys.executable, "-m", "mypy", *options, *checks, *ignored, "."]
    result = subprocess.run(  # noqa: S603 - our own interpreter
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


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


def test_every_file_block_has_its_program_and_every_program_its_file_block() -> None:
    markers = sum(
        len(re.findall(r"^<!--\s*file:", path.read_text(encoding="utf-8"), re.M))
        for path in DOCUMENTS
    )
    files = [block for block in PYTHON_BLOCKS if block.file_name is not None]
    assert len(files) == markers, "a `file:` marker names a .py file, just before a ```python block"
    assert all(block.program is not None for block in files), (
        "a file block is followed by the invisible block that runs it: "
        + ", ".join(block.id for block in files if block.program is None)
    )
    # An invisible program elsewhere would hide code from the reader, or never run.
    programs = sum(len(invisible_programs(path)) for path in DOCUMENTS)
    assert programs == len(files), "an invisible block follows a file block, and only one"


def test_the_runner_finds_the_documents_and_their_blocks() -> None:
    # Guards the runner itself: a lexer or path change that found nothing would pass silently.
    assert ROOT / "README.md" in DOCUMENTS
    assert {block.path.name for block in PYTHON_BLOCKS} >= {"README.md", "getting-started.md"}
