"""The one cattrs converter between the models and Postal's JSON.

Everything about the wire format lives here: `from_` is `from`, `None` and empty fields
are left out of requests, bytes travel as standard base64, and the quirks of Postal's
replies are absorbed (sizes as strings, MIME-wrapped base64, float and ISO timestamps,
`bounce_for_id` 0 for none). Unknown fields in replies are ignored, so a newer Postal does
not break an older SDK.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from datetime import datetime, timezone
from typing import Any

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from postal_sdk.models import Attachment, Message, MessageDetails, RawMessage, SendResult

__all__ = ["converter", "structure_datetime"]

converter = cattrs.Converter()


def structure_datetime(value: Any, _: Any = None) -> datetime:
    """An aware UTC datetime from float Unix seconds or an ISO-8601 string."""
    if isinstance(value, bool):
        raise TypeError(f"not a timestamp: {value!r}")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            # Rails may write a decimal column's Unix seconds as a string.
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        # Python 3.10's fromisoformat does not accept a trailing Z.
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise TypeError(f"not a timestamp: {value!r}")


def _structure_bytes(value: Any, _: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"expected base64 text, got {type(value).__name__}")
    try:
        # Lenient like Ruby's decode64: Postal wraps its base64 every 60 characters.
        return base64.b64decode(value, validate=False)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64: {exc}") from exc


def _structure_size(value: Any, _: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def _structure_bounce_for_id(value: Any, _: Any) -> int | None:
    return int(value) or None if value is not None else None


def _structure_bool(value: Any, _: Any) -> bool:
    # cattrs' default is bool(value), which makes "false" true: Postal's own trap.
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _structure_str(value: Any, _: Any) -> str:
    # cattrs' default is str(value), which makes a JSON null the text "None".
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(datetime, structure_datetime)
converter.register_structure_hook(bytes, _structure_bytes)
converter.register_unstructure_hook(bytes, lambda data: base64.b64encode(data).decode("ascii"))
converter.register_structure_hook(
    MessageDetails,
    make_dict_structure_fn(
        MessageDetails,
        converter,
        size=override(struct_hook=_structure_size),
        bounce_for_id=override(struct_hook=_structure_bounce_for_id),
    ),
)
# `replayed` is the SDK's own mark (a result read from a journal), never Postal's.
converter.register_structure_hook(
    SendResult, make_dict_structure_fn(SendResult, converter, replayed=override(omit=True))
)
converter.register_unstructure_hook(
    SendResult, make_dict_unstructure_fn(SendResult, converter, replayed=override(omit=True))
)
converter.register_unstructure_hook(
    Message,
    make_dict_unstructure_fn(
        Message,
        converter,
        _cattrs_omit_if_default=True,
        from_=override(rename="from"),
        headers=override(unstruct_hook=dict),
    ),
)
for _request_model in (RawMessage, Attachment):
    converter.register_unstructure_hook(
        _request_model,
        make_dict_unstructure_fn(_request_model, converter, _cattrs_omit_if_default=True),
    )


def _as_given(value: Any, _: Any) -> Any:
    # The model's own attrs converter reads address lists (a list, or one comma string).
    return value


converter.register_structure_hook(
    Message,
    make_dict_structure_fn(
        Message,
        converter,
        _cattrs_forbid_extra_keys=True,
        from_=override(rename="from"),
        to=override(struct_hook=_as_given),
        cc=override(struct_hook=_as_given),
        bcc=override(struct_hook=_as_given),
    ),
)
converter.register_structure_hook(
    RawMessage,
    make_dict_structure_fn(
        RawMessage,
        converter,
        _cattrs_forbid_extra_keys=True,
        rcpt_to=override(struct_hook=_as_given),
    ),
)
