"""scripts/unasync.py: the substitution table, and a check that sees every stale file."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "unasync.py"


def load_unasync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync_under_test", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


unasync = load_unasync()


@pytest.mark.parametrize(
    ("async_line", "sync_line"),
    [
        ("class AsyncPostal:", "class Postal:"),
        ("    http: httpx.AsyncClient", "    http: httpx.Client"),
        (
            "from postal_sdk._synchronization import AsyncLimiter, async_sleep",
            "from postal_sdk._synchronization import Limiter, sleep",
        ),
        (
            "from postal_sdk._async.client import AsyncPostal",
            "from postal_sdk._sync.client import Postal",
        ),
        ("    async def send(self) -> None:", "    def send(self) -> None:"),
        ("        async with self._limiter:", "        with self._limiter:"),
        ("        async for outcome in outcomes:", "        for outcome in outcomes:"),
        ("        data = await self._post(path)", "        data = self._post(path)"),
        ("        await self._connection.http.aclose()", "        self._connection.http.close()"),
        ("    async def __aenter__(self):", "    def __enter__(self):"),
        ("def __aiter__(self) -> AsyncIterator[int]:", "def __iter__(self) -> Iterator[int]:"),
        ("raise StopAsyncIteration", "raise StopIteration"),
        ("pytestmark = pytest.mark.anyio", "pytestmark = pytest.mark.sync"),
        ("    client = async_pooled_client(10)", "    client = pooled_client(10)"),
    ],
)
def test_each_async_construct_becomes_its_sync_twin(async_line: str, sync_line: str) -> None:
    assert unasync._translate_line(async_line) == sync_line


@pytest.mark.parametrize(
    "line",
    ["awaiting = 1", "asyncio.run(main())", "MyAsyncThing = 1", "aclosed = True", "x_async_y = 2"],
)
def test_only_whole_words_are_replaced(line: str) -> None:
    assert unasync._translate_line(line) == line


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    source = tmp_path / "_async"
    target = tmp_path / "_sync"
    source.mkdir()
    target.mkdir()
    (source / "thing.py").write_text(
        "async def fetch(client: AsyncClient) -> None:\n    await client.aclose()\n"
    )
    monkeypatch.setattr(unasync, "ROOT", tmp_path)
    monkeypatch.setattr(unasync, "DIRECTORIES", [(source, target)])
    return source, target


def test_generation_writes_formatted_sync_code_and_the_check_passes(
    project: tuple[Path, Path],
) -> None:
    _, target = project
    assert unasync.main([]) == 0
    generated = (target / "thing.py").read_text()
    assert "def fetch(client: Client) -> None:\n    client.close()\n" in generated
    assert generated.startswith("# Generated from _async/thing.py")
    assert unasync.main(["--check"]) == 0


def test_the_check_reports_stale_missing_and_extra_files(
    project: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = project
    assert unasync.main(["--check"]) == 1
    assert "missing" in capsys.readouterr().err
    unasync.main([])
    with (target / "thing.py").open("a") as generated:
        generated.write("# a line added by hand at the end\n")
    shutil.copy(source / "thing.py", target / "orphan.py")
    assert unasync.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "stale" in err
    assert "extra" in err
