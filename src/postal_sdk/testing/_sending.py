"""send/message and send/raw: checks in Postal's order, then one message per recipient."""

from __future__ import annotations

import copy
import email.utils
import json
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from postal_sdk.testing import _mime
from postal_sdk.testing._records import FakeMessage, OutboxEntry
from postal_sdk.testing._responses import Reply, ServerCrash, error, parameter_error, success
from postal_sdk.testing._ruby import (
    decode64,
    is_blank,
    is_truthy,
    split_addresses,
    strip_name_from_address,
    to_s,
)
from postal_sdk.testing._state import FakeServer

if TYPE_CHECKING:
    from postal_sdk.testing._actions import Context

MAX_ADDRESSES_PER_LIST = 50

SEND_ERROR_MESSAGES = {
    "NoRecipients": "There are no recipients defined to receive this message",
    "NoContent": "There is no content defined for this e-mail",
    "TooManyToAddresses": "The maximum number of To addresses has been reached (maximum 50)",
    "TooManyCCAddresses": "The maximum number of CC addresses has been reached (maximum 50)",
    "TooManyBCCAddresses": "The maximum number of BCC addresses has been reached (maximum 50)",
    "FromAddressMissing": "The From address is missing and is required",
    "UnauthenticatedFromAddress": (
        "The From address is not authorised to send mail from this server"
    ),
    "AttachmentMissingName": "An attachment is missing a name",
    "AttachmentMissingData": "An attachment is missing data",
}
"""`SendController::ERROR_MESSAGES`."""


def send_message(context: Context, params: dict[str, Any]) -> Reply:
    """`send/message`: validate, then build one message and queue it per recipient."""
    lists = [_address_list(params.get(field)) for field in ("to", "cc", "bcc")]
    attachments = [_attachment(entry) for entry in _attachment_entries(params.get("attachments"))]
    errors = _send_errors(context.server, params, lists, attachments)
    if errors:
        return error(errors[0], {"message": SEND_ERROR_MESSAGES[errors[0]]})
    to, cc, bcc = lists
    message_id = f"{uuid.uuid4()}@{context.return_path_domain}"
    raw = _mime.build_message(
        _mime.Composition(
            to=_ruby_join(to) if to else None,
            cc=_ruby_join(cc) if cc else None,
            from_=params.get("from"),
            sender=params.get("sender"),
            subject=params.get("subject"),
            reply_to=params.get("reply_to"),
            plain_body=_present_text(params.get("plain_body")),
            html_body=_present_text(params.get("html_body")),
            custom_headers=_custom_headers(params.get("headers")),
            attachments=attachments,
            received=_received_header(context.web_hostname),
            message_id=message_id,
        )
    )
    mail_from = strip_name_from_address(params["from"])
    tag = params.get("tag")
    created: list[FakeMessage] = []
    by_address: dict[str, FakeMessage] = {}
    for address in _flatten([*to, *cc, *bcc]):
        if address is None:
            continue
        if not isinstance(address, str):
            raise ServerCrash("strip_name_from_address called on a non-string")
        rcpt_to = strip_name_from_address(address)
        by_address[rcpt_to] = context.server.store_message(
            rcpt_to=rcpt_to,
            mail_from=mail_from,
            raw=raw,
            tag=None if tag is None else to_s(tag),
            bounce=is_truthy(params.get("bounce")),
        )
        created.append(by_address[rcpt_to])
    context.record_send(
        OutboxEntry(
            "send/message",
            context.server.name,
            copy.deepcopy(params),
            message_id,
            by_address,
            tuple(created),
            raw,
        )
    )
    return success({"message_id": message_id, "messages": _sent(by_address)})


def _send_errors(
    server: FakeServer,
    params: dict[str, Any],
    lists: list[list[Any]],
    attachments: list[_mime.FakeAttachment],
) -> list[str]:
    """`OutgoingMessagePrototype#validate`: every check runs, in this order."""
    to, cc, bcc = lists
    errors: list[str] = []
    if not (to or cc or bcc):
        errors.append("NoRecipients")
    for addresses, code in ((to, "To"), (cc, "CC"), (bcc, "BCC")):
        if len(addresses) > MAX_ADDRESSES_PER_LIST:
            errors.append(f"TooMany{code}Addresses")
    if is_blank(params.get("plain_body")) and is_blank(params.get("html_body")):
        errors.append("NoContent")
    if is_blank(params.get("from")):
        errors.append("FromAddressMissing")
    domain = server.authenticated_domain(params.get("from"))
    if domain is None and server.allow_sender:
        domain = server.authenticated_domain(params.get("sender"))
    if domain is None:
        errors.append("UnauthenticatedFromAddress")
    for attachment in attachments:
        if is_blank(attachment.filename):
            code = "AttachmentMissingName"
        elif not attachment.data.strip():
            code = "AttachmentMissingData"
        else:
            continue
        if code not in errors:
            errors.append(code)
    return errors


def _address_list(value: Any) -> list[Any]:
    """`@to.is_a?(String) ? @to.split(/,\\s*/) : @to.to_a`."""
    if isinstance(value, str):
        return list(split_addresses(value))
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [[key, item] for key, item in value.items()]
    raise ServerCrash(f"undefined method 'to_a' for {type(value).__name__}")


def _flatten(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value


def _ruby_join(values: list[Any]) -> str:
    """Ruby's `Array#join(", ")`: nested arrays flattened, `nil` as an empty string."""
    return ", ".join(to_s(value) for value in _flatten(values))


def _attachment_entries(value: Any) -> list[dict[str, Any]]:
    """`(api_params["attachments"] || []).each`, skipping entries that are not objects."""
    if not is_truthy(value):
        return []
    if isinstance(value, dict):
        return []  # A Hash yields [key, value] pairs, none of which is a Hash.
    if not isinstance(value, list):
        raise ServerCrash(f"undefined method 'each' for {type(value).__name__}")
    return [entry for entry in value if isinstance(entry, dict)]


def _attachment(entry: dict[str, Any]) -> _mime.FakeAttachment:
    data = entry.get("data")
    if data is not None and not isinstance(data, str):
        raise ServerCrash("Base64.decode64 called on a non-string")
    content_type = entry.get("content_type")
    return _mime.FakeAttachment(
        filename="" if entry.get("name") is None else to_s(entry.get("name")),
        content_type=to_s(content_type) if is_truthy(content_type) else "application/octet-stream",
        data=decode64(data or ""),
    )


def _present_text(value: Any) -> str | None:
    return None if is_blank(value) else to_s(value)


def _custom_headers(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _received_header(web_hostname: str) -> str:
    date = email.utils.formatdate(usegmt=True)
    return f"from api (localhost [127.0.0.1]) by {web_hostname} with HTTP; {date}"


def _sent(by_address: Mapping[str, FakeMessage]) -> dict[str, dict[str, Any]]:
    return {key: {"id": message.id, "token": message.token} for key, message in by_address.items()}


def send_raw(context: Context, params: dict[str, Any]) -> Reply:
    """`send/raw`: queue a complete message, as given, to each envelope recipient."""
    rcpt_to = params.get("rcpt_to")
    if not isinstance(rcpt_to, list):
        return parameter_error("`rcpt_to` parameter is required but is missing")
    if is_blank(params.get("mail_from")):
        return parameter_error("`mail_from` parameter is required but is missing")
    data = params.get("data")
    if is_blank(data):
        return parameter_error("`data` parameter is required but is missing")
    if not isinstance(data, str):
        raise ServerCrash("Base64.decode64 called on a non-string")
    raw = decode64(data)
    if context.server.domain_for_headers(raw) is None:
        return error("UnauthenticatedFromAddress")
    by_address: dict[str, FakeMessage] = {}
    for recipient in _unique(rcpt_to):
        address = None if recipient is None else to_s(recipient)
        by_address[address or ""] = context.server.store_message(
            rcpt_to=address,
            mail_from=to_s(params["mail_from"]),
            raw=raw,
            tag=None,
            bounce=is_truthy(params.get("bounce")),
        )
    created = tuple(by_address.values())
    message_id = created[0].message_id if created else None
    context.record_send(
        OutboxEntry(
            "send/raw",
            context.server.name,
            copy.deepcopy(params),
            message_id,
            by_address,
            created,
            raw,
        )
    )
    return success({"message_id": message_id, "messages": _sent(by_address)})


def _unique(values: list[Any]) -> list[Any]:
    """Ruby's `Array#uniq`: the first of each run of equal values, `1` unequal to `1.0`."""
    seen: set[str] = set()
    unique = []
    for value in values:
        identity = json.dumps([type(value).__name__, value], sort_keys=True)
        if identity not in seen:
            seen.add(identity)
            unique.append(value)
    return unique
