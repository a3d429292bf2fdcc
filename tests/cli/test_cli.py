"""The `postal` command: each command's output, and one clear line for every failure."""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

import postal_sdk
from postal_sdk import Delivery
from postal_sdk.cli import _parser, main
from postal_sdk.cli._output import Progress, print_table, to_jsonable
from postal_sdk.testing import DEFAULT_API_KEY, FakePostal
from tests.cli.conftest import API_KEY


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_send_sends_one_message_and_prints_its_ids_as_json(
    postal_env: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    attachment = tmp_path / "report.csv"
    attachment.write_text("a,b\n")
    body = tmp_path / "body.txt"
    body.write_text("Hello from a file")
    before = len(postal_env.outbox)
    status, out, err = run(
        capsys,
        "send",
        "--from",
        "App <app@example.com>",
        "--to",
        "john@example.org",
        "--cc",
        "mary@example.org",
        "--subject",
        "Hi",
        "--text",
        f"@{body}",
        "--attach",
        str(attachment),
        "--tag",
        "cli",
        "--header",
        "X-Campaign: spring",
        "--json",
    )
    assert (status, err) == (0, "")
    sent = json.loads(out)
    assert set(sent["messages"]) == {"john@example.org", "mary@example.org"}
    entry = postal_env.outbox[before]
    assert entry.params["tag"] == "cli"
    assert entry.params["headers"] == {"X-Campaign": "spring"}
    assert base64.b64decode(entry.params["attachments"][0]["data"]) == b"a,b\n"
    stored = postal_env.message(sent["messages"]["john@example.org"]["id"])
    assert stored.plain_body is not None
    assert "Hello from a file" in stored.plain_body


def test_send_prints_a_table_for_people(
    postal_env: FakePostal, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        capsys, "send", "--from", "app@example.com", "--to", "john@example.org", "--text", "Hi"
    )
    assert status == 0
    assert "john@example.org" in out
    assert "token" in out


def test_message_and_deliveries_show_what_postal_knows(
    postal_env: FakePostal, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(
        capsys,
        "send",
        "--from",
        "app@example.com",
        "--to",
        "j@example.org",
        "--text",
        "Hi",
        "--json",
    )
    message_id = json.loads(out)["messages"]["j@example.org"]["id"]
    postal_env.deliver(message_id, "SoftFail", details="greylisted")
    postal_env.deliver(message_id, "Sent", output="250 OK")

    status, out, _ = run(capsys, "message", str(message_id), "--expand", "all", "--json")
    info = json.loads(out)
    assert status == 0
    assert info["status"]["status"] == "Sent"
    assert info["details"]["rcpt_to"] == "j@example.org"

    status, out, _ = run(capsys, "message", str(message_id))
    assert status == 0
    assert "status=Sent" in out

    status, out, _ = run(capsys, "deliveries", str(message_id), "--json")
    assert [d["status"] for d in json.loads(out)] == ["SoftFail", "Sent"]
    status, out, _ = run(capsys, "deliveries", str(message_id))
    assert "greylisted" in out


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_send_many_sends_good_lines_and_writes_every_failure_with_its_line(
    postal_env: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = {"from": "app@example.com", "to": ["a@example.org"], "plain_body": "Hi"}
    raw = {
        "mail_from": "app@example.com",
        "rcpt_to": ["b@example.org"],
        "data": base64.b64encode(b"From: app@example.com\r\n\r\nHi").decode(),
    }
    source = write_jsonl(
        tmp_path / "batch.jsonl",
        [
            json.dumps(good),
            "{not json",
            json.dumps({"from": "app@example.com", "plain_body": "no recipient"}),
            "",
            json.dumps({**good, "from": "x@unverified.example.net"}),
            json.dumps(raw),
            json.dumps({**good, "subjcet": "typo"}),
        ],
    )
    before = len(postal_env.outbox)
    status, out, _ = run(capsys, "send-many", str(source), "--concurrency", "3", "--json")
    summary = json.loads(out)
    assert status == 3
    assert (summary["sent"], summary["failed"]) == (2, 4)
    assert summary["outcome_unknown"] == []
    assert len(postal_env.outbox) == before + 2
    failures = [
        json.loads(line) for line in Path(summary["failures_file"]).read_text().splitlines()
    ]
    assert sorted(failure["line"] for failure in failures) == [2, 3, 5, 7]
    by_line = {failure["line"]: failure for failure in failures}
    assert by_line[5]["code"] == "UnauthenticatedFromAddress"
    assert "no recipient" in by_line[3]["error"]
    assert "subjcet" in by_line[7]["error"]
    assert by_line[2]["input"] == "{not json"


def test_send_many_of_a_clean_file_exits_zero_and_leaves_no_failures_file(
    postal_env: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    message = {"from": "app@example.com", "to": "a@example.org", "plain_body": "Hi"}
    source = write_jsonl(tmp_path / "ok.jsonl", [json.dumps(message)] * 25)
    status, out, _ = run(capsys, "send-many", str(source))
    assert status == 0
    assert "25" in out
    assert not (tmp_path / "ok.failed.jsonl").exists()


def test_demo_bulk_sends_to_an_embedded_fake_and_looks_one_up(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTAL_BASE_URL", raising=False)
    status, out, _ = run(capsys, "demo", "--count", "600", "--concurrency", "8", "--json")
    summary_line, lookup_line = out.strip().splitlines()[-2:]
    summary = json.loads(summary_line)
    assert status == 0
    assert (summary["sent"], summary["failed"]) == (599, 1)
    assert summary["errors"] == {"UnauthenticatedFromAddress": 1}
    lookup = json.loads(lookup_line)
    assert lookup["message"]["status"]["status"] == "Sent"
    assert [d["status"] for d in lookup["deliveries"]] == ["SoftFail", "Sent"]


def test_demo_refuses_to_run_against_a_real_postal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTAL_BASE_URL", "https://postal.example.com")
    status, _, err = run(capsys, "demo")
    assert status == 1  # the guard is a failure, not a usage error
    assert err.count("\n") == 1
    assert "POSTAL_BASE_URL" in err


def closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return int(listener.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "env", "expected", "exit_status"),
    [
        (
            ["deliveries", "1"],
            {"POSTAL_API_KEY": None},
            "no API key: pass --api-key or set POSTAL_API_KEY",
            2,
        ),
        (
            ["deliveries", "1"],
            {"POSTAL_BASE_URL": None},
            "no base URL: pass --base-url or set POSTAL_BASE_URL",
            2,
        ),
        (["deliveries", "1", "--api-key", "wrong"], {}, "InvalidServerAPIKey", 4),
        (["message", "999999"], {}, "MessageNotFound", 1),
        (["send-many", "/no/such/file.jsonl"], {}, "No such file", 1),
        (["send", "--from", "app@example.com", "--text", "Hi"], {}, "no recipient", 1),
        (
            [
                "send",
                "--from",
                "a@example.com",
                "--to",
                "b@example.org",
                "--text",
                "x",
                "--attach",
                "/no/such/attachment.pdf",
            ],
            {},
            "No such file",
            1,
        ),
        (
            [
                "send",
                "--from",
                "a@example.com",
                "--to",
                "b@example.org",
                "--text",
                "x",
                "--header",
                "no colon",
            ],
            {},
            "Name: value",
            1,
        ),
        (
            ["deliveries", "1"],
            {"POSTAL_BASE_URL": "http://127.0.0.1:{port}"},
            "ConnectError",
            5,
        ),
        (["message", "abc"], {}, "is not a whole number", 2),
        (["fake-server", "--base-url", "http://x"], {}, "unrecognized arguments", 2),
        (["--base-url", "http://x", "fake-server"], {}, "--base-url does not apply", 2),
        (["--api-key", "k", "demo"], {}, "--api-key does not apply", 2),
        (["nonsense"], {}, "invalid choice", 2),
    ],
)
def test_every_failure_is_one_line_on_stderr_with_the_exit_status_of_its_kind(
    postal_env: FakePostal,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str | None],
    expected: str,
    exit_status: int,
) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value.format(port=closed_port()))
    status, out, err = run(capsys, *argv)
    assert status == exit_status
    assert out == ""
    assert err.startswith("postal: error: ")
    assert err.count("\n") == 1
    assert expected in err
    assert "Traceback" not in err
    assert "wrong" not in err or "InvalidServerAPIKey" in err

    status, out, err = run(capsys, *argv, "--json")
    assert status == exit_status
    assert out == ""
    assert err.count("\n") == 1
    error = json.loads(err)["error"]
    assert error["exit_status"] == exit_status
    assert error["kind"] == {1: "failed", 2: "usage", 4: "auth", 5: "connection"}[exit_status]
    assert expected in error["message"]


@pytest.mark.parametrize(
    "argv",
    [
        ["message", "abc"],
        ["message", "0"],
        ["message", "1", "--expand", "status,bogus"],
        ["send-many", "f.jsonl", "--concurrency", "0"],
        ["fake-server", "--port", "70000"],
        ["fake-server", "--port", "http"],
        ["fake-server", "--deliver", "Delivered"],
        ["demo", "--timeout", "0"],
        ["nonsense"],
        [],
    ],
)
def test_bad_arguments_are_a_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith("postal: error: postal")
    assert err.count("\n") == 1


def test_global_options_go_before_or_after_the_command(
    postal_env: FakePostal, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url = os.environ["POSTAL_BASE_URL"]
    monkeypatch.delenv("POSTAL_BASE_URL")
    monkeypatch.delenv("POSTAL_API_KEY")
    send = ["send", "--from", "a@example.com", "--to", "b@example.org", "--text", "x"]
    settings = ["--base-url", base_url, "--api-key", API_KEY, "--json"]

    for argv in ([*settings, *send], [*send, *settings], [*settings[:2], *send, *settings[2:]]):
        status, out, err = run(capsys, *argv)
        assert (status, err) == (0, "")
        assert "b@example.org" in json.loads(out)["messages"]


def test_version_prints_the_packages_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"postal {postal_sdk.__version__}\n"


def test_every_option_has_help() -> None:
    parser = _parser()
    commands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    for name, command in [("postal", parser), *commands.choices.items()]:
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_fake_server_and_demo_take_only_the_options_they_use() -> None:
    commands = next(
        action for action in _parser()._actions if isinstance(action, argparse._SubParsersAction)
    )
    fake_options = {o for a in commands.choices["fake-server"]._actions for o in a.option_strings}
    demo_options = {o for a in commands.choices["demo"]._actions for o in a.option_strings}
    assert not fake_options & {"--base-url", "--timeout", "--concurrency"}
    assert not demo_options & {"--base-url", "--api-key", "--port"}


def test_a_partial_failure_has_its_own_exit_status(
    postal_env: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = {"from": "app@example.com", "to": ["a@example.org"], "plain_body": "Hi"}
    source = write_jsonl(tmp_path / "some.jsonl", [json.dumps(good), "{not json"])

    status, out, _ = run(capsys, "send-many", str(source), "--json")

    assert status == 3
    assert (json.loads(out)["sent"], json.loads(out)["failed"]) == (1, 1)


def test_the_fake_servers_key_is_the_testing_default(capsys: pytest.CaptureFixture[str]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "postal_sdk.cli", "fake-server", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        served = json.loads(process.stdout.readline())
        assert served["api_key"] == DEFAULT_API_KEY
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()


def test_no_progress_is_drawn_when_stderr_is_not_a_terminal(
    postal_env: FakePostal, tmp_path: Path
) -> None:
    good = {"from": "app@example.com", "to": ["a@example.org"], "plain_body": "Hi"}
    source = write_jsonl(tmp_path / "quiet.jsonl", [json.dumps(good)] * 5)

    finished = subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "postal_sdk.cli", "send-many", str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    assert "sending" not in finished.stdout


def test_fake_server_serves_until_interrupted(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "postal_sdk.cli", "fake-server", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        served = json.loads(process.stdout.readline())
        assert served["base_url"].startswith("http://127.0.0.1:")
        status = main(
            ["deliveries", "1", "--base-url", served["base_url"], "--api-key", served["api_key"]]
        )
        assert status == 1  # no message 1 yet: a MessageNotFound from the live fake
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()


def test_the_key_given_on_the_command_line_works(
    postal_env: FakePostal, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTAL_API_KEY")
    status, out, _ = run(
        capsys,
        "send",
        "--from",
        "a@example.com",
        "--to",
        "b@example.org",
        "--text",
        "x",
        "--api-key",
        API_KEY,
        "--json",
    )
    assert status == 0
    assert "b@example.org" in json.loads(out)["messages"]


def test_bad_lines_of_every_kind_are_reported_with_their_problem(
    postal_env: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = {"from": "app@example.com", "to": ["a@example.org"], "plain_body": "Hi"}
    source = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            "[1, 2]",
            json.dumps({"mail_from": "a@example.com", "rcpt_to": "b@example.org", "data": "eA=="}),
            json.dumps({**good, "attachments": [{"name": "a.txt"}]}),
            json.dumps({**good, "bounce": "no"}),
        ],
    )
    failures = tmp_path / "failed-here.jsonl"
    failures.write_text("left over from an earlier run\n")
    status, out, _ = run(
        capsys, "send-many", str(source), "--failures", str(failures), "--overwrite", "--json"
    )
    assert status == 3
    assert json.loads(out)["failed"] == 4
    problems = [json.loads(line)["error"] for line in failures.read_text().splitlines()]
    assert len(problems) == 4
    assert "expected a JSON object" in problems[0]
    assert "rcpt_to" in problems[1]
    assert "attachments[0].data: is required" in problems[2]
    assert "bounce" in problems[3]


def test_a_message_with_attachments_is_summarised_in_the_table(
    postal_env: FakePostal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    attachment = tmp_path / "a.txt"
    attachment.write_text("hello")
    _, out, _ = run(
        capsys,
        "send",
        "--from",
        "app@example.com",
        "--to",
        "j@example.org",
        "--text",
        "Hi",
        "--attach",
        str(attachment),
        "--json",
    )
    message_id = json.loads(out)["messages"]["j@example.org"]["id"]
    status, out, _ = run(capsys, "message", str(message_id), "--expand", "all")
    assert status == 0
    assert "[1 item(s)]" in out


def test_the_demo_prints_tables_for_people(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTAL_BASE_URL", raising=False)
    status, out, _ = run(capsys, "demo", "--count", "20", "--concurrency", "4")
    assert status == 0
    assert "Sent 20 messages" in out
    assert "Deliveries of message" in out
    assert "SoftFail" in out


def test_an_interrupted_command_exits_130_without_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("postal_sdk.cli.anyio.run", interrupted)
    status, _, err = run(capsys, "deliveries", "1", "--base-url", "http://127.0.0.1:1")
    assert status == 130
    assert err == "postal: interrupted\n"


def test_without_rich_tables_and_progress_are_plain_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in ("rich", "rich.console", "rich.table", "rich.progress"):
        monkeypatch.setitem(sys.modules, module, None)
    print_table("Title", ("id", "status"), [(1, "Sent"), (22, None)])
    print_table("Untitled columns", (), [("sent", 3)])
    with Progress(3, "sending") as progress:
        for failed in (False, True, False):
            progress.advance(failed=failed)
    with Progress(None, "quiet", enabled=False) as progress:
        progress.advance(failed=False)
    out, err = capsys.readouterr()
    assert out == "Title\nid  status\n1   Sent\n22\nUntitled columns\nsent  3\n"
    assert err.startswith("\rsending: 1/3 (failed: 0)")
    assert err.endswith("sending: 3/3 (failed: 1)\n")


def test_json_output_of_a_model_has_iso_datetimes() -> None:
    data = to_jsonable(
        Delivery(
            id=1,
            status="Sent",
            details=None,
            output=None,
            sent_with_ssl=True,
            log_id=None,
            time=None,
            timestamp=datetime(2024, 4, 18, 14, 30, tzinfo=timezone.utc),
        )
    )
    assert data["timestamp"] == "2024-04-18T14:30:00+00:00"
