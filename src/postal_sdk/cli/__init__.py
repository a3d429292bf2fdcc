"""The `postal` command: send mail and look messages up from a shell.

    postal send --from app@example.com --to john@example.com --subject Hi --text Hello
    postal send-many messages.jsonl --concurrency 50
    postal message 123 --expand status,details
    postal deliveries 123
    postal fake-server --port 5000 --webhook http://127.0.0.1:8000/postal --deliver Sent
    postal demo

The server and key come from `--base-url`/`--api-key` or `POSTAL_BASE_URL`/`POSTAL_API_KEY`.
Add `--json` for output meant for scripts. Every failure is one line on stderr and a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread
import httpx

from postal_sdk._async.client import AsyncPostal
from postal_sdk.cli._bulk import BulkReport, FailureLog, count_lines, jsonl_messages, send_all
from postal_sdk.cli._fake_server import DELIVERY_STATUSES, FakeAutomation, print_fake_server
from postal_sdk.cli._output import one_line, print_json, print_table, to_jsonable
from postal_sdk.errors import PostalError
from postal_sdk.models import EXPANSIONS, Attachment, Delivery, Message, MessageInfo

if TYPE_CHECKING:
    from postal_sdk.testing import DeliveryStatus, FakePostal

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_FAKE_KEY = "fake-postal-api-key-0001"


class CommandError(Exception):
    """A failure to report as one line on stderr."""


class UsageError(CommandError):
    """Bad input that argparse could not check: one line on stderr, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `postal` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if inspect.iscoroutinefunction(args.command):
            status: int = anyio.run(args.command, args)
        else:
            status = args.command(args)
    except KeyboardInterrupt:
        print("postal: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        print(f"postal: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (CommandError, PostalError, OSError) as exc:
        print(f"postal: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    return status


def _client(args: argparse.Namespace) -> AsyncPostal:
    return AsyncPostal(base_url=args.base_url, api_key=args.api_key, timeout=args.timeout)


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
    if failures.path is not None and failures.path.exists():
        failures.path.unlink()  # a file from an earlier run would mix two runs' failures
    total = await count_lines(source)
    report = BulkReport()
    async with _client(args) as postal:
        try:
            await send_all(
                postal,
                jsonl_messages(source),
                concurrency=args.concurrency,
                total=total,
                failures=failures,
                report=report,
                show_progress=not args.json,
            )
        finally:
            # Printed when interrupted too: what was sent must not go unreported.
            _print_report(f"send-many {source}", report, failures, as_json=args.json)
    return EXIT_FAILED if report.failed or report.unknown else EXIT_OK


def _print_report(title: str, report: BulkReport, failures: FailureLog, *, as_json: bool) -> None:
    summary = report.as_dict()
    summary["failures_file"] = str(failures.path) if report.failed and failures.path else None
    if as_json:
        print(json.dumps(summary))
        return
    errors = summary.pop("errors")
    rows = [(key.replace("_", " "), value) for key, value in summary.items() if value]
    rows += [(f"  {error}", count) for error, count in errors.items()]
    print_table(title, (), rows)


def _fake_server(args: argparse.Namespace) -> int:
    fake = _new_fake(args.api_key or DEFAULT_FAKE_KEY, args.domain)
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


def _new_fake(api_key: str, domains: Sequence[str]) -> FakePostal:
    from postal_sdk.testing import FakePostal

    return FakePostal(api_key, domains=domains or ("example.com",))


async def _demo(args: argparse.Namespace) -> int:
    if args.base_url or os.environ.get("POSTAL_BASE_URL"):
        raise CommandError(
            "the demo sends thousands of messages, so it runs only against the embedded fake "
            "Postal: unset POSTAL_BASE_URL (and drop --base-url) to run it"
        )
    fake = _new_fake(DEFAULT_FAKE_KEY, ["example.com"])
    async with fake.serve_async() as base_url:
        print(f"Embedded fake Postal at {base_url} (no real mail is sent)")
        async with AsyncPostal(base_url, DEFAULT_FAKE_KEY, timeout=args.timeout) as postal:
            report, failures = BulkReport(), FailureLog(None)
            await send_all(
                postal,
                _demo_messages(args.count),
                concurrency=args.concurrency,
                total=args.count,
                failures=failures,
                report=report,
                show_progress=not args.json,
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


def _demo_messages(count: int) -> Iterator[tuple[int, Message]]:
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
        )


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
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-url", help="the Postal web host (default: $POSTAL_BASE_URL)")
    common.add_argument("--api-key", help="the server's API key (default: $POSTAL_API_KEY)")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds (default: 30)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    parser = argparse.ArgumentParser(
        prog="postal", description="Send mail through Postal and look messages up."
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    send = commands.add_parser("send", parents=[common], help="send one message")
    send.set_defaults(command=_send)
    send.add_argument("--from", dest="from_", required=True, metavar="ADDRESS")
    send.add_argument("--to", action="append", default=[], metavar="ADDRESS")
    send.add_argument("--cc", action="append", default=[], metavar="ADDRESS")
    send.add_argument("--bcc", action="append", default=[], metavar="ADDRESS")
    send.add_argument("--subject")
    send.add_argument("--text", help="the plain body, or @FILE to read it from a file")
    send.add_argument("--html", help="the HTML body, or @FILE to read it from a file")
    send.add_argument("--reply-to")
    send.add_argument("--tag")
    send.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'")
    send.add_argument("--attach", action="append", default=[], metavar="PATH")

    many = commands.add_parser(
        "send-many", parents=[common], help="send every message of a JSONL file"
    )
    many.set_defaults(command=_send_many)
    many.add_argument("file", metavar="FILE.jsonl", help="one send/message (or send/raw) per line")
    many.add_argument("--concurrency", type=_positive_int, default=20, metavar="N")
    many.add_argument(
        "--failures", metavar="FILE", help="where failed lines go (default: FILE.failed.jsonl)"
    )

    message = commands.add_parser("message", parents=[common], help="look a message up")
    message.set_defaults(command=_message)
    message.add_argument("id", type=_positive_int)
    message.add_argument("--expand", type=_expand, default="status,details", help="names, or all")

    deliveries = commands.add_parser(
        "deliveries", parents=[common], help="list a message's delivery attempts"
    )
    deliveries.set_defaults(command=_deliveries)
    deliveries.add_argument("id", type=_positive_int)

    fake = commands.add_parser(
        "fake-server", parents=[common], help="serve a fake Postal on 127.0.0.1 for testing"
    )
    fake.set_defaults(command=_fake_server)
    fake.add_argument("--port", type=_port, default=5000, help="0 picks a free port")
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
        "demo", parents=[common], help="bulk-send to an embedded fake Postal and show the results"
    )
    demo.set_defaults(command=_demo)
    demo.add_argument("--count", type=_positive_int, default=3000, metavar="N")
    demo.add_argument("--concurrency", type=_positive_int, default=50, metavar="N")
    return parser


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number")
    return port
