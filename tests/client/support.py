"""Constants and reply builders shared by the client tests."""

from __future__ import annotations

from typing import Any

from postal_sdk import Backoff

BASE_URL = "https://postal.test"
API_KEY = "sEcReTkEy0123456789abcdE"
NO_WAIT = Backoff(initial=0, maximum=0, retry_after_cap=0)

SEND_MESSAGE_URL = f"{BASE_URL}/api/v1/send/message"
SEND_RAW_URL = f"{BASE_URL}/api/v1/send/raw"
MESSAGE_URL = f"{BASE_URL}/api/v1/messages/message"
DELIVERIES_URL = f"{BASE_URL}/api/v1/messages/deliveries"

SEND_DATA = {
    "message_id": "7f0e8b5c-2a8e-4c1e-9b52-3c2f9f1c0a11@rp.postal.example.com",
    "messages": {
        "john@example.com": {"id": 37171, "token": "Xk2J9qLm0PaZr7Tb"},
        "Mary@Example.com": {"id": 37172, "token": "b8NqWc3RtY6uVe1S"},
    },
}


def envelope(data: Any, status: str = "success") -> dict[str, Any]:
    """A Postal reply envelope, as the server writes it."""
    return {"status": status, "time": 0.012, "flags": {}, "data": data}
