"""messages/message and messages/deliveries: a stored message, rendered as Postal does."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from postal_sdk.testing._records import FakeMessage
from postal_sdk.testing._responses import Reply, ServerCrash, error, parameter_error, success
from postal_sdk.testing._ruby import encode64, is_blank, rails_time
from postal_sdk.testing._state import FakeServer

if TYPE_CHECKING:
    from postal_sdk.testing._actions import Context


def message(context: Context, params: dict[str, Any]) -> Reply:
    """`messages/message`: a stored message, with the expansions asked for."""
    found = _find_message(context.server, params)
    if isinstance(found, Reply):
        return found
    expansions = params.get("_expansions")
    data: dict[str, Any] = {"id": found.id, "token": found.token}
    for name, render in _EXPANSIONS.items():
        if expansions is True or (isinstance(expansions, list) and name in expansions):
            data[name] = render(found)
    return success(data)


def deliveries(context: Context, params: dict[str, Any]) -> Reply:
    """`messages/deliveries`: a message's delivery rows, oldest first."""
    found = _find_message(context.server, params)
    if isinstance(found, Reply):
        return found
    rows = sorted(found.deliveries, key=lambda delivery: delivery.timestamp)
    return success(
        [
            {
                "id": delivery.id,
                "status": delivery.status,
                "details": delivery.details,
                "output": None if delivery.output is None else delivery.output.strip(),
                "sent_with_ssl": delivery.sent_with_ssl,
                "log_id": delivery.log_id,
                "time": delivery.time,
                "timestamp": delivery.timestamp,
            }
            for delivery in rows
        ]
    )


def _find_message(server: FakeServer, params: dict[str, Any]) -> FakeMessage | Reply:
    message_id = params.get("id")
    if is_blank(message_id):
        return parameter_error("`id` parameter is required but is missing")
    # Only an Integer becomes an id lookup; anything else reaches the SQL builder and raises.
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise ServerCrash("Message.find_one with a non-integer id")
    try:
        return server.message(message_id)
    except KeyError:
        not_found = {"message": "No message found matching provided ID", "id": message_id}
        return error("MessageNotFound", not_found)


def _status(message: FakeMessage) -> dict[str, Any]:
    return {
        "status": message.status,
        "last_delivery_attempt": message.last_delivery_attempt,
        "held": message.held,
        "hold_expiry": message.hold_expiry,
    }


def _details(message: FakeMessage) -> dict[str, Any]:
    return {
        "rcpt_to": message.rcpt_to,
        "mail_from": message.mail_from,
        "subject": message.subject,
        "message_id": message.message_id,
        "timestamp": message.timestamp,
        "direction": message.direction,
        "size": str(message.size),
        "bounce": message.bounce,
        "bounce_for_id": 0,
        "tag": message.tag,
        "received_with_ssl": message.received_with_ssl,
    }


def _inspection(_: FakeMessage) -> dict[str, Any]:
    return {
        "inspected": False,
        "spam": False,
        "spam_score": 0.0,
        "threat": False,
        "threat_details": None,
    }


def _activity_entries(message: FakeMessage) -> dict[str, Any]:
    loads = sorted(message.loads, key=lambda load: load.timestamp)
    clicks = sorted(message.clicks, key=lambda click: click.timestamp)
    return {
        "loads": [
            {
                "ip_address": load.ip_address,
                "user_agent": load.user_agent,
                "timestamp": rails_time(load.timestamp),
            }
            for load in loads
        ],
        "clicks": [
            {
                "url": click.url,
                "ip_address": click.ip_address,
                "user_agent": click.user_agent,
                "timestamp": rails_time(click.timestamp),
            }
            for click in clicks
        ],
    }


_EXPANSIONS: dict[str, Callable[[FakeMessage], Any]] = {
    "status": _status,
    "details": _details,
    "inspection": _inspection,
    "plain_body": lambda message: message.plain_body,
    "html_body": lambda message: message.html_body,
    "attachments": lambda message: [item.as_json() for item in message.attachments],
    "headers": lambda message: message.headers,
    "raw_message": lambda message: encode64(message.raw_message),
    "activity_entries": _activity_entries,
}
"""Each expansion's key and how it is rendered, in the order Postal adds them."""
