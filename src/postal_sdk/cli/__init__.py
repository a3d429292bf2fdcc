"""The `postal` command: send mail and look messages up from a shell.

    postal send --from app@example.com --to john@example.com --subject Hi --text Hello
    postal send-many messages.jsonl --concurrency 50
    postal send-many messages.jsonl --rate 600/hour --journal sends.db --results results.jsonl
    postal message 123 --expand status,details
    postal deliveries 123
    postal fake-server --port 5000 --webhook http://127.0.0.1:8000/postal --deliver Sent
    postal demo

The server and key come from `--base-url`/`--api-key` or `POSTAL_BASE_URL`/`POSTAL_API_KEY`;
these global options go before or after the command. Add `--json` for output meant for
scripts. Every failure is one line on stderr (one JSON object with `--json`) and a
non-zero exit status, never a traceback; the status tells the kind of failure:

    0  success
    1  failure: Postal refused the request (a rejected message, an unknown message id),
       or a file could not be read or written
    2  usage: bad arguments, or a missing setting (the base URL, the API key)
    3  partial failure: send-many sent some messages, others failed, have no outcome,
       or are in doubt (a journal holds their intent but no result)
    4  authentication: the API key is unknown to Postal, or the server is suspended
    5  connection: Postal could not be reached, timed out, or answered with no envelope
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import anyio
import anyio.to_thread
import attrs
import httpx

from postal_sdk import __version__
from postal_sdk._async.client import AsyncPostal
from postal_sdk.cli._bulk import (
    BulkReport,
    FailureLog,
    ResultLog,
    count_lines,
    jsonl_messages,
    send_all,
)
from postal_sdk.cli._fake_server import DELIVERY_STATUSES, FakeAutomation, print_fake_server
from postal_sdk.cli._output import one_line, print_json, print_table, to_jsonable
from postal_sdk.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BatchAborted,
    InvalidArgumentError,
    ServerSuspended,
    UnexpectedResponseError,
)
from postal_sdk.journal import Journal, SQLiteJournal
from postal_sdk.models import EXPANSIONS, Attachment, Delivery, Message, MessageInfo
from postal_sdk.pacing import RateLimit

if TYPE_CHECKING:
    from postal_sdk.testing import DeliveryStatus, FakePostal

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_AUTH = 4
EXIT_CONNECTION = 5
EXIT_INTERRUPTED = 130

_KINDS = {
    EXIT_FAILED: "failed",
    EXIT_USAGE: "usage",
    EXIT_PARTIAL: "partial",
    EXIT_AUTH: "auth",
    EXIT_CONNECTION: "connection",
    EXIT_INTERRUPTED: "interrupted",
}
"""The `kind` a `--json` error names, by exit status."""

_CONNECTS = ("send", "send-many", "message", "deliveries")
"""The commands that talk to a Postal server, and so take the connection options."""


class CommandError(Exception):
    """A failure to report as one line on stderr."""


class UsageError(CommandError):
    """Bad input that argparse could not check: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors end in `main` as one line (or one JSON object) like any other."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `postal` command; returns the exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in arguments
    run = _Run()
    try:
        args = _parse(arguments)
        as_json = args.json
        if inspect.iscoroutinefunction(args.command):
            with _sigint_taken(run, for_good=argv is None):
                anyio.run(_until_interrupted, args.command, args, run)
        else:
            run.status = args.command(args)
    except KeyboardInterrupt:
        if run.status is not None and not run.interrupted:
            # Ctrl-C as the event loop was torn down, after the command had finished and
            # reported: the run's status stands.
            return run.status
        return _fail(EXIT_INTERRUPTED, "interrupted", None, as_json=as_json)
    except Exception as exc:  # noqa: BLE001 - every failure is one line, never a traceback
        if run.interrupted:
            message = f"interrupted; then, while stopping: {one_line(exc)}"
            return _fail(EXIT_INTERRUPTED, message, exc, as_json=as_json)
        return _fail(_exit_status(exc), one_line(exc), exc, as_json=as_json)
    if run.interrupted or run.status is None:
        return _fail(EXIT_INTERRUPTED, "interrupted", None, as_json=as_json)
    return run.status


@attrs.define
class _Run:
    """How an async command ended: its status, or that Ctrl-C stopped it."""

    status: int | None = None
    interrupted: bool = False
    sigint: bool = False
    """Whether this run owns SIGINT (it is the main thread's, and nobody else's)."""


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigint_taken(run: _Run, *, for_good: bool) -> Iterator[None]:
    """SIGINT is ours from before the event loop starts to after it is torn down.

    anyio's runner, like asyncio's on 3.11+, cancels the main task on SIGINT when the
    default handler is in place, and on Python 3.10 (no `Task.uncancel`) lets the bare
    `CancelledError` escape instead of `KeyboardInterrupt`: a traceback and exit status 1.
    A handler of our own keeps it out. It raises `KeyboardInterrupt` only outside the
    command (the loop starting or closing), where no send is under way;
    `_until_interrupted` turns SIGINT during the command into a cancellation, which
    winds the run down as designed: the report printed, the journal and results written.

    `for_good` (`main()` run as the program, from `sys.argv`): SIGINT stays ignored once
    the command has ended, so that one arriving as the process exits cannot turn the exit
    status of a run that finished into death by SIGINT.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        # Not ours to take: another thread's run, or SIGINT ignored (nohup) or handled
        # by the program that called main().
        yield
        return
    previous = signal.signal(signal.SIGINT, _raise_interrupt)
    run.sigint = True
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN if for_good else previous)


async def _until_interrupted(
    command: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace, run: _Run
) -> None:
    """Run the command; SIGINT cancels it (once: the wind-down itself is not interrupted)."""
    with anyio.CancelScope() as scope:

        def interrupt() -> None:
            if run.status is None:
                run.interrupted = True
                scope.cancel()

        loop = asyncio.get_running_loop()
        if run.sigint:
            # Delivered through the loop's wakeup fd as a callback, never as an exception
            # raised wherever the main thread happened to be (a send, a journal commit).
            loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            run.status = await command(args)
        finally:
            if run.sigint:
                loop.remove_signal_handler(signal.SIGINT)


def _exit_status(error: BaseException) -> int:
    if isinstance(error, BatchAborted):
        error = error.cause
    if isinstance(error, UsageError):
        return EXIT_USAGE
    if isinstance(error, (AuthenticationError, ServerSuspended)):
        return EXIT_AUTH
    if isinstance(error, (APIConnectionError, UnexpectedResponseError)):
        return EXIT_CONNECTION
    return EXIT_FAILED


def _fail(status: int, message: str, error: BaseException | None, *, as_json: bool) -> int:
    if as_json:
        report: dict[str, Any] = {
            "error": {
                "kind": _KINDS[status],
                "exit_status": status,
                "message": message,
                "type": None if error is None else type(error).__name__,
                "code": error.code if isinstance(error, APIError) else None,
            }
        }
        print(json.dumps(report, ensure_ascii=False), file=sys.stderr)
    elif status == EXIT_INTERRUPTED:
        print(f"postal: {message}", file=sys.stderr)
    else:
        print(f"postal: error: {message}", file=sys.stderr)
    return status


def _parse(arguments: list[str]) -> argparse.Namespace:
    args = _parser().parse_args(arguments)
    given = vars(args)
    if args.name not in _CONNECTS:
        # A global option given before a command that has no use for it.
        allowed = {"fake-server": {"api_key", "json"}, "demo": {"timeout", "json"}}[args.name]
        for option in ("base_url", "api_key", "timeout"):
            if option in given and option not in allowed:
                flag = "--" + option.replace("_", "-")
                raise UsageError(f"postal {args.name}: {flag} does not apply to this command")
    for option, default in (("json", False), ("base_url", None), ("api_key", None)):
        given.setdefault(option, default)
    given.setdefault("timeout", 30.0)
    return args


def _client(args: argparse.Namespace, journal: Journal | None = None) -> AsyncPostal:
    # Checked here to name the flag as well as the variable (the SDK names `api_key=`).
    for option, variable, what in (
        ("base_url", "POSTAL_BASE_URL", "no base URL"),
        ("api_key", "POSTAL_API_KEY", "no API key"),
    ):
        if getattr(args, option) is None and not os.environ.get(variable):
            flag = "--" + option.replace("_", "-")
            raise UsageError(f"{what}: pass {flag} or set {variable}")
    return AsyncPostal(
        base_url=args.base_url, api_key=args.api_key, timeout=args.timeout, journal=journal
    )


async def _send(args: argparse.Namespace) -> int:
    message = Message(
        from_=args.from_,
        to=args.to,
        cc=args.cc,
        bcc=args.bcc,
        subject=args.subject,
        plain_body=_text_or_file(args.text),
        html_body=_text_or_file(args.html),
        reply_to=args.reply_to,
        tag=args.tag,
        headers=dict(_header(value) for value in args.header),
        attachments=[Attachment.from_path(path) for path in args.attach],
    )
    async with _client(args) as postal:
        sent = await postal.send_message(message)
    if args.json:
        print_json(sent)
    else:
        rows = [(address, m.id, m.token) for address, m in sent.messages.items()]
        print_table(f"Sent {sent.message_id}", ("recipient", "id", "token"), rows)
    return EXIT_OK


def _text_or_file(value: str | None) -> str | None:
    """`@path` reads the body from a file, as curl does."""
    if value is not None and value.startswith("@"):
        return Path(value[1:]).read_text(encoding="utf-8")
    return value


def _header(value: str) -> tuple[str, str]:
    name, colon, header_value = value.partition(":")
    if not colon:
        raise CommandError(f"--header {value!r}: expected 'Name: value'")
    return name.strip(), header_value.strip()


async def _message(args: argparse.Namespace) -> int:
    expansions: list[str] | bool = (
        True if args.expand == "all" else [name for name in args.expand.split(",") if name]
    )
    async with _client(args) as postal:
        info = await postal.get_message(args.id, expansions=expansions)  # type: ignore[arg-type]
    if args.json:
        print_json(info)
    else:
        _print_message(info)
    return EXIT_OK


def _print_message(info: MessageInfo) -> None:
    data = to_jsonable(info)
    rows = [(key, _summary(value)) for key, value in data.items() if value is not None]
    print_table(f"Message {info.id}", ("field", "value"), rows)


def _summary(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}={_summary(inner)}" for key, inner in value.items())
    if isinstance(value, list):
        return f"[{len(value)} item(s)]" if value and isinstance(value[0], dict) else str(value)
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


async def _deliveries(args: argparse.Namespace) -> int:
    async with _client(args) as postal:
        deliveries = await postal.get_deliveries(args.id)
    if args.json:
        print_json(deliveries)
    else:
        _print_deliveries(args.id, deliveries)
    return EXIT_OK


def _print_deliveries(message_id: int, deliveries: Sequence[Delivery]) -> None:
    columns = ("id", "status", "timestamp", "details", "output")
    rows = [
        (d.id, d.status, d.timestamp.isoformat(timespec="seconds"), d.details, d.output)
        for d in deliveries
    ]
    print_table(f"Deliveries of message {message_id}", columns, rows)


async def _send_many(args: argparse.Namespace) -> int:
    source = Path(args.file)
    failures = FailureLog(
        Path(args.failures) if args.failures else source.with_suffix(".failed.jsonl")
    )
    results_path = Path(args.results) if args.results else None
    for path in (failures.path, results_path):
        # A file from an earlier run holds that run's lines: never replaced unasked.
        if path is not None and path.exists() and not args.overwrite:
            raise UsageError(f"{path} exists: pass --overwrite to replace it")
    total = await count_lines(source)
    if failures.path is not None and failures.path.exists():
        failures.path.unlink()  # --overwrite: the failures of this run only
    journal = _journal(args.journal) if args.journal else None
    report = BulkReport()
    results_file = None
    try:
        if results_path is not None:
            results_file = await anyio.open_file(results_path, "w", encoding="utf-8")
        async with _client(args, journal) as postal:
            try:
                await send_all(
                    postal,
                    jsonl_messages(source),
                    concurrency=args.concurrency,
                    total=total,
                    failures=failures,
                    report=report,
                    show_progress=_show_progress(args),
                    keyed=journal is not None,
                    rate_limit=args.rate,
                    results=None if results_file is None else ResultLog(results_file),
                )
            finally:
                # Printed when interrupted too: what was sent must not go unreported.
                _print_report(
                    f"send-many {source}", report, failures, results_path, as_json=args.json
                )
    finally:
        # Shielded: an interrupted run must still write out its results and the journal's.
        with anyio.CancelScope(shield=True):
            if results_file is not None:
                await results_file.aclose()
            if journal is not None:
                await journal.async_close()
    failed = report.failed or report.unknown or report.in_doubt
    return EXIT_PARTIAL if failed else EXIT_OK


def _journal(where: str) -> Journal:
    """A `redis://`/`rediss://` URL is a Redis journal (the redis extra); else a SQLite file."""
    if where.startswith(("redis://", "rediss://")):
        try:
            from postal_sdk.redis import RedisJournal
        except ImportError:
            raise CommandError(
                "--journal redis://... needs the 'redis' extra: pip install 'postal-sdk[redis]'"
            ) from None
        return RedisJournal(where)
    return SQLiteJournal(where)


def _print_report(
    title: str,
    report: BulkReport,
    failures: FailureLog,
    results: Path | None = None,
    *,
    as_json: bool,
) -> None:
    summary = report.as_dict()
    summary["failures_file"] = str(failures.path) if report.failed and failures.path else None
    summary["results_file"] = None if results is None else str(results)
    if report.in_doubt:
        # On stderr as well: these need a person to look them up in Postal.
        listed = ", ".join(f"line {line} (key {key})" for line, key in report.in_doubt)
        print(
            f"postal: {len(report.in_doubt)} line(s) in doubt, not resent (an earlier send "
            f"may have reached Postal; look them up, then resolve them in the journal): "
            f"{listed}",
            file=sys.stderr,
        )
    if report.resume_from is not None:
        print(
            f"postal: stopped before the end: {report.never_sent} line(s) never sent; "
            f"resume from line {report.resume_from} (or rerun the whole file with the same "
            "--journal: lines already sent are not sent again)",
            file=sys.stderr,
        )
    if as_json:
        print(json.dumps(summary))
        return
    errors = summary.pop("errors")
    in_doubt = summary.pop("in_doubt")
    rows = [(key.replace("_", " "), value) for key, value in summary.items() if value]
    rows += [("in doubt", len(in_doubt))] if in_doubt else []
    rows += [(f"  {error}", count) for error, count in errors.items()]
    print_table(title, (), rows)


def _fake_server(args: argparse.Namespace) -> int:
    fake = _new_fake(args.api_key, args.domain)
    for url in args.webhook:
        _add_webhook(fake, url)
    chosen: str = args.deliver or ("Sent" if args.webhook else "none")
    # argparse's choices leave only DELIVERY_STATUSES and "none".
    status = None if chosen == "none" else cast("DeliveryStatus", chosen)
    # Built before serving: it sees every send from the first.
    automation = FakeAutomation(fake, status)
    with contextlib.ExitStack() as stack:
        try:
            base_url = stack.enter_context(fake.serve(port=args.port))
        except ImportError as exc:  # uvicorn, from the `cli` or `testing` extra
            raise CommandError(str(exc)) from None
        with automation, contextlib.suppress(KeyboardInterrupt):
            # Printed once all is running, where Ctrl-C is a clean stop: scripts wait for it.
            print_fake_server(fake, base_url, status, as_json=args.json)
            stop = threading.Event()
            while not stop.wait(0.5):
                pass
    return EXIT_OK


def _add_webhook(fake: FakePostal, url: str) -> None:
    try:
        # Postal's own check first; then what it lets through but no request could reach.
        fake.add_webhook(url)
        if not httpx.URL(url).host:
            raise ValueError(f"{url!r} has no host")
    except ImportError:
        raise CommandError(
            "--webhook needs the 'webhooks' extra (the cryptography package): "
            "pip install 'postal-sdk[webhooks]'"
        ) from None
    except (ValueError, httpx.InvalidURL) as exc:
        raise UsageError(f"argument --webhook: {exc}") from None


def _new_fake(api_key: str | None, domains: Sequence[str]) -> FakePostal:
    from postal_sdk.testing import DEFAULT_API_KEY, FakePostal

    return FakePostal(api_key or DEFAULT_API_KEY, domains=domains or ("example.com",))


def _show_progress(args: argparse.Namespace) -> bool:
    """A progress bar only for a person watching: on stderr, when it is a terminal."""
    return not args.json and sys.stderr.isatty()


async def _demo(args: argparse.Namespace) -> int:
    if os.environ.get("POSTAL_BASE_URL"):
        raise CommandError(
            "the demo sends thousands of messages, so it runs only against the embedded fake "
            "Postal: unset POSTAL_BASE_URL to run it"
        )
    fake = _new_fake(None, ["example.com"])
    async with fake.serve_async() as base_url:
        if not args.json:
            print(f"Embedded fake Postal at {base_url} (no real mail is sent)")
        api_key = fake.server.api_keys[0]
        async with AsyncPostal(base_url, api_key, timeout=args.timeout) as postal:
            report, failures = BulkReport(), FailureLog(None)
            await send_all(
                postal,
                _demo_messages(args.count),
                concurrency=args.concurrency,
                total=args.count,
                failures=failures,
                report=report,
                show_progress=_show_progress(args),
            )
            _print_report(f"Sent {args.count} messages", report, failures, as_json=args.json)
            first = next(entry for entry in fake.outbox if entry.created)
            message_id = first.created[0].id
            fake.deliver(message_id, "SoftFail", details="Connection refused by mx.example.net")
            fake.deliver(message_id, "Sent", output="250 2.0.0 OK", sent_with_ssl=True)
            info = await postal.get_message(message_id, expansions=["status", "details"])
            deliveries = await postal.get_deliveries(message_id)
    if args.json:
        print(json.dumps({"message": to_jsonable(info), "deliveries": to_jsonable(deliveries)}))
    else:
        _print_message(info)
        _print_deliveries(message_id, deliveries)
    return EXIT_OK


def _demo_messages(count: int) -> Iterator[tuple[int, Message, None]]:
    for number in range(count):
        # Every 500th message is from a domain the server has not verified, to show that a
        # rejected message is one failed outcome, not the end of the batch.
        domain = "example.com" if number % 500 != 499 else "unverified.example.org"
        yield (
            number + 1,
            Message(
                from_=f"Demo <demo@{domain}>",
                to=[f"user{number}@example.net"],
                subject=f"Demo message {number + 1}",
                plain_body="Hello from postal-sdk's demo.",
                tag="demo",
            ),
            None,
        )


def _rate(value: str) -> RateLimit:
    try:
        return RateLimit.parse(value)
    except InvalidArgumentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _expand(value: str) -> str:
    if value == "all":
        return value
    unknown = [name for name in value.split(",") if name and name not in EXPANSIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown expansion(s) {', '.join(unknown)}; choose from all, {', '.join(EXPANSIONS)}"
        )
    return value


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _parser() -> argparse.ArgumentParser:
    # Each option is declared on the main parser (before the command) and on the commands
    # that take it (after it), with SUPPRESS as default so that one never hides the other.
    def connection_options(parser: argparse.ArgumentParser, *, api_key: str) -> None:
        parser.add_argument(
            "--base-url",
            default=argparse.SUPPRESS,
            metavar="URL",
            help="the Postal web host, like https://postal.example.com (default: $POSTAL_BASE_URL)",
        )
        parser.add_argument("--api-key", default=argparse.SUPPRESS, metavar="KEY", help=api_key)
        parser.add_argument(
            "--timeout",
            type=_positive_float,
            default=argparse.SUPPRESS,
            metavar="SECONDS",
            help="how long to wait for Postal's reply (default: 30)",
        )

    def json_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print JSON for scripts: results on stdout, an error as one JSON object on stderr",
        )

    server_key = "the Postal server's API key (default: $POSTAL_API_KEY)"
    parser = _Parser(
        prog="postal",
        description="Send mail through Postal and look messages up.",
        epilog="Exit status: 0 success, 1 failure, 2 usage, 3 partial failure (send-many), "
        "4 authentication, 5 connection, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"postal {__version__}")
    connection_options(parser, api_key=server_key)
    json_option(parser)
    commands = parser.add_subparsers(
        title="commands", required=True, metavar="COMMAND", dest="name", parser_class=_Parser
    )

    send = commands.add_parser("send", help="send one message")
    send.set_defaults(command=_send)
    connection_options(send, api_key=server_key)
    json_option(send)
    send.add_argument(
        "--from", dest="from_", required=True, metavar="ADDRESS", help="the sender (required)"
    )
    send.add_argument(
        "--to", action="append", default=[], metavar="ADDRESS", help="a recipient (repeatable)"
    )
    send.add_argument(
        "--cc", action="append", default=[], metavar="ADDRESS", help="a Cc recipient (repeatable)"
    )
    send.add_argument(
        "--bcc",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a Bcc recipient (repeatable)",
    )
    send.add_argument("--subject", help="the subject line")
    send.add_argument("--text", help="the plain body, or @FILE to read it from a file")
    send.add_argument("--html", help="the HTML body, or @FILE to read it from a file")
    send.add_argument("--reply-to", metavar="ADDRESS", help="the Reply-To address")
    send.add_argument("--tag", help="a tag to find the message by in Postal")
    send.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra header (repeatable)",
    )
    send.add_argument(
        "--attach", action="append", default=[], metavar="PATH", help="attach a file (repeatable)"
    )

    many = commands.add_parser("send-many", help="send every message of a JSONL file")
    many.set_defaults(command=_send_many)
    connection_options(many, api_key=server_key)
    json_option(many)
    many.add_argument(
        "file",
        metavar="FILE.jsonl",
        help="one message per line, as Postal's send/message (or send/raw) takes it",
    )
    many.add_argument(
        "--concurrency",
        type=_positive_int,
        default=20,
        metavar="N",
        help="messages in flight at once (default: 20)",
    )
    many.add_argument(
        "--failures", metavar="FILE", help="where failed lines go (default: FILE.failed.jsonl)"
    )
    many.add_argument(
        "--rate",
        type=_rate,
        metavar="COUNT/PERIOD",
        help="send at most this fast, evenly spaced: 600/hour, 10/minute, 5/second, 10/2.5 "
        "(seconds); keep it under the Postal server's send limit",
    )
    many.add_argument(
        "--journal",
        metavar="PATH|URL",
        help="record each line's send in a journal (a SQLite file, or redis://... with the "
        'redis extra), keyed by its line number or its "key": a rerun sends no line twice',
    )
    many.add_argument(
        "--results",
        metavar="FILE",
        help="write one JSON line per input line: line, key, message ids and tokens, or the error",
    )
    many.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing failures or results file (refused otherwise)",
    )

    message = commands.add_parser("message", help="look a message up")
    message.set_defaults(command=_message)
    connection_options(message, api_key=server_key)
    json_option(message)
    message.add_argument("id", type=_positive_int, help="the message id a send returned")
    message.add_argument(
        "--expand",
        type=_expand,
        default="status,details",
        metavar="NAMES",
        help=f"comma-separated parts to include, or all: {', '.join(EXPANSIONS)} "
        "(default: status,details)",
    )

    deliveries = commands.add_parser("deliveries", help="list a message's delivery attempts")
    deliveries.set_defaults(command=_deliveries)
    connection_options(deliveries, api_key=server_key)
    json_option(deliveries)
    deliveries.add_argument("id", type=_positive_int, help="the message id a send returned")

    fake = commands.add_parser("fake-server", help="serve a fake Postal on 127.0.0.1 for testing")
    fake.set_defaults(command=_fake_server)
    json_option(fake)
    fake.add_argument(
        "--api-key",
        default=argparse.SUPPRESS,
        metavar="KEY",
        help="the key the fake accepts (default: postal_sdk.testing.DEFAULT_API_KEY, "
        "shown in the banner)",
    )
    fake.add_argument(
        "--port", type=_port, default=5000, help="the port to listen on; 0 picks a free one"
    )
    fake.add_argument(
        "--domain",
        action="append",
        default=[],
        help="a verified sending domain (repeatable; default: example.com)",
    )
    fake.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="URL",
        help="POST every event of the server to URL, signed as Postal does (repeatable; "
        "needs the webhooks extra); keys at BASE_URL/.well-known/jwks.json",
    )
    fake.add_argument(
        "--deliver",
        choices=[*DELIVERY_STATUSES, "none"],
        metavar="STATUS",
        help="deliver every accepted message at once as STATUS: "
        f"{', '.join(DELIVERY_STATUSES)} or none (default: Sent with --webhook, else none)",
    )

    demo = commands.add_parser(
        "demo", help="bulk-send to an embedded fake Postal and show the results"
    )
    demo.set_defaults(command=_demo)
    json_option(demo)
    demo.add_argument(
        "--timeout",
        type=_positive_float,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help="how long to wait for the fake's reply (default: 30)",
    )
    demo.add_argument(
        "--count",
        type=_positive_int,
        default=3000,
        metavar="N",
        help="how many messages to send (default: 3000)",
    )
    demo.add_argument(
        "--concurrency",
        type=_positive_int,
        default=50,
        metavar="N",
        help="messages in flight at once (default: 50)",
    )
    return parser


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value}")
    return number


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number")
    return port
