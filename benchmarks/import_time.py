"""How long `import postal_sdk` takes, now and at a baseline commit.

    python benchmarks/import_time.py [--baseline REF] [--runs N]
    (or: nox -s bench, which runs it with the default baseline)

Each figure is the best of N fresh interpreters (the minimum is the least disturbed by
other work on the machine; the median is shown beside it). Three programs are timed:

- `import postal_sdk`, as `python -X importtime` reports it (the cumulative time of the
  `postal_sdk` line);
- `import postal_sdk` and then every public name, timed in the process: what a program
  that uses everything pays, which is what every program paid before the lazy imports;
- the same two at `--baseline` (default: the commit before the lazy imports), from a
  `git archive` of its `src/` put first on `sys.path`.

Writes benchmarks/results/import_time.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_BASELINE = "dbc33a4"
"""The last commit whose `import postal_sdk` loaded the clients, httpx and the fan-out."""

_EVERY_NAME = (
    "import time; started = time.perf_counter(); import postal_sdk\n"
    "for name in postal_sdk.__all__: getattr(postal_sdk, name)\n"
    "print(time.perf_counter() - started)"
)


def _importtime_us(src: Path) -> int:
    """The cumulative microseconds of `import postal_sdk` in one fresh interpreter."""
    child = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import postal_sdk"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    for line in child.stderr.splitlines():
        fields = [field.strip() for field in line.removeprefix("import time:").split("|")]
        if len(fields) == 3 and fields[2] == "postal_sdk":
            return int(fields[1])
    raise RuntimeError(f"no postal_sdk line in -X importtime's output:\n{child.stderr}")


def _every_name_us(src: Path) -> int:
    """Microseconds to import postal_sdk and resolve every public name, in the process."""
    child = subprocess.run(
        [sys.executable, "-c", _EVERY_NAME],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    return round(float(child.stdout.strip()) * 1_000_000)


def _checkout_src(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="a git commit or branch")
    parser.add_argument("--runs", type=int, default=20, help="fresh interpreters per figure")
    args = parser.parse_args()

    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory() as scratch:
        baseline_src = _checkout_src(args.baseline, Path(scratch))
        cells = [
            (label, src, program, measure)
            for label, src in ((f"baseline `{args.baseline}`", baseline_src), ("now", ROOT / "src"))
            for program, measure in (
                ("`import postal_sdk` (-X importtime)", _importtime_us),
                ("import, then every public name", _every_name_us),
            )
        ]
        for _, src, _, measure in cells:
            measure(src)  # writes the bytecode caches: no run pays for compiling
        samples: list[list[float]] = [[] for _ in cells]
        # Round-robin, so that a burst of load on the machine hits every cell alike.
        for _ in range(args.runs):
            for cell, (_, src, _, measure) in zip(samples, cells, strict=True):
                cell.append(measure(src) / 1000)
        for (label, _, program, _), cell in zip(cells, samples, strict=True):
            best, median = min(cell), statistics.median(cell)
            rows.append((label, program, best, median))
            print(f"{label:<24} {program:<40} best {best:7.1f} ms  median {median:7.1f} ms")

    baseline_import, now_import = rows[0][2], rows[2][2]
    lines = [
        "# Import time",
        "",
        f"Best and median of {args.runs} fresh interpreters each, Python "
        f"{sys.version.split()[0]}, written by `benchmarks/import_time.py` "
        "(the machine was shared with other work: compare ratios, not milliseconds).",
        "",
        "| code | program | best (ms) | median (ms) |",
        "| --- | --- | ---: | ---: |",
        *(
            f"| {label} | {program} | {best:.1f} | {median:.1f} |"
            for label, program, best, median in rows
        ),
        "",
        f"`import postal_sdk` now takes **{now_import / baseline_import:.0%}** of the baseline's "
        "time (best against best). A program pays for the clients, httpx and the fan-out only "
        "when it first uses a name that needs them.",
        "",
    ]
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "import_time.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
