"""Generate the sync code from the async code: `_async/` is the source, `_sync/` the output.

A plain table of whole-word substitutions applied line by line (httpcore's approach),
then `ruff` formats the result so the generated files pass the linters like any other.

    python scripts/unasync.py           # rewrite every generated file
    python scripts/unasync.py --check   # exit 1 if any generated file is stale, missing or extra
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DIRECTORIES = [
    (ROOT / "src/postal_sdk/_async", ROOT / "src/postal_sdk/_sync"),
    (ROOT / "tests/client/_async", ROOT / "tests/client/_sync"),
]

HAND_WRITTEN = {"fanout.py"}
"""Sync modules that cannot be generated (the thread-based fan-out), kept by hand."""

SUBS = [
    ("AsyncPostal", "Postal"),
    ("AsyncIterator", "Iterator"),
    ("AsyncIterable", "Iterable"),
    ("AsyncGenerator", "Generator"),
    ("StopAsyncIteration", "StopIteration"),
    ("Async([A-Z][A-Za-z0-9_]*)", r"\2"),
    ("async def", "def"),
    ("async with", "with"),
    ("async for", "for"),
    ("await ", ""),
    ("aclose", "close"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("__aiter__", "__iter__"),
    ("__anext__", "__next__"),
    ("_async", "_sync"),
    ("async_([a-z][a-z0-9_]*)", r"\2"),
    ("pytest.mark.anyio", "pytest.mark.sync"),
]

COMPILED = [
    # Whole words: no word character may stand right before or after a match.
    (re.compile(rf"(\b){pattern}" + ("" if pattern.endswith(" ") else r"(?!\w)")), rf"\1{repl}")
    for pattern, repl in SUBS
]


def _translate_line(line: str) -> str:
    for regex, repl in COMPILED:
        line = regex.sub(repl, line)
    return line


def _header(source: Path) -> str:
    relative = source.relative_to(ROOT).as_posix()
    return (
        f"# Generated from {relative} by scripts/unasync.py: do not edit by hand.\n"
        "# Edit the async source and run `nox -s unasync`.\n"
    )


def _ruff(args: list[str], code: str, filename: Path) -> str:
    result = subprocess.run(  # noqa: S603 - a fixed command line of our own
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(filename), "-"],
        input=code,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if result.returncode not in (0, 1) or not result.stdout:
        raise SystemExit(f"ruff failed on {filename}:\n{result.stderr}")
    return result.stdout


def generate(source: Path, target: Path) -> str:
    """The sync text of one async source file, formatted."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    code = _header(source) + "".join(_translate_line(line) for line in lines)
    # Renaming can unsort imports, leave one unused, or make nested `with`s mergeable.
    fixes = ["check", "--fix", "--quiet", "--select", "I,F401,SIM117", "--exit-zero"]
    code = _ruff(fixes, code, target)
    return _ruff(["format", "--quiet"], code, target)


def expected_files() -> dict[Path, str]:
    """Every generated file and the text it must have."""
    files: dict[Path, str] = {}
    for source_dir, target_dir in DIRECTORIES:
        for source in sorted(source_dir.glob("*.py")):
            if source.name in HAND_WRITTEN:
                continue
            target = target_dir / source.name
            files[target] = generate(source, target)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if anything is stale")
    args = parser.parse_args(argv)

    expected = expected_files()
    problems: list[str] = []
    for target, text in expected.items():
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        if args.check:
            problems.append(f"{'stale' if current is not None else 'missing'}: {target}")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")
    for _, target_dir in DIRECTORIES:
        for present in sorted(target_dir.glob("*.py")):
            if present not in expected and present.name not in HAND_WRITTEN:
                problems.append(f"extra (no async source): {present}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        hint = "run `nox -s unasync`" if args.check else "remove them by hand"
        print(f"{len(problems)} problem(s) in generated code: {hint}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
