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
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

import cattrs
from cattrs.errors import AttributeValidationNote, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from postal_sdk.errors import InvalidArgumentError, InvalidArgumentTypeError
from postal_sdk.models import Attachment, Message, MessageDetails, RawMessage, SendResult

__all__ = ["converter", "structure_datetime", "structure_request", "unstructure_request"]

_Request = TypeVar("_Request", Message, RawMessage, Attachment)

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


_WIRE_NAMES = {"from_": "from"}
"""Model attribute names that Postal spells differently."""


def unstructure_request(model: Message | RawMessage | Attachment) -> dict[str, Any]:
    """A request model in Postal's API shape: JSON-ready, `from`, base64 data, no unset fields."""
    data: dict[str, Any] = converter.unstructure(model)
    return data


def structure_request(data: Mapping[str, Any], cls: type[_Request]) -> _Request:
    """A request model from Postal's API shape, with the model's own checks.

    Raises:
        InvalidArgumentError, InvalidArgumentTypeError: Named after the first bad field as
            the dict spells it (`from`, `attachments[0].data`); the text lists every problem.
    """
    if not isinstance(data, Mapping):
        raise InvalidArgumentTypeError(
            cls.__name__, f"expected a dict (a JSON object), got {type(data).__name__}"
        )
    problems: list[tuple[str, BaseException]]
    try:
        return converter.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        problems = list(_problems(exc, ""))
    except (InvalidArgumentError, InvalidArgumentTypeError) as exc:
        problems = [(_WIRE_NAMES.get(exc.argument, exc.argument), exc)]
    where, first = problems[0]
    text = "; ".join(
        [_describe(first), *(f"{path}: {_describe(error)}" for path, error in problems[1:])]
    )
    error_class = InvalidArgumentTypeError if isinstance(first, TypeError) else InvalidArgumentError
    raise error_class(where or cls.__name__, text) from None


def _problems(error: BaseException, path: str) -> Iterator[tuple[str, BaseException]]:
    """Every leaf error under a cattrs validation error, with the field path it concerns."""
    if isinstance(error, cattrs.ForbiddenExtraKeysError):
        for name in sorted(error.extra_fields):
            yield _join(path, name), error
    elif isinstance(error, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        noted, plain = error.group_exceptions()
        for inner, note in noted:
            if isinstance(note, AttributeValidationNote):
                where = _join(path, _WIRE_NAMES.get(note.name, note.name))
            elif isinstance(note, IterableValidationNote):
                where = f"{path}[{note.index}]"
            else:
                where = path
            yield from _problems(inner, where)
        for inner in plain:
            yield from _problems(inner, path)
    elif isinstance(error, (InvalidArgumentError, InvalidArgumentTypeError)):
        # A nested model's own check (an attachment's), which names the field itself.
        yield _join(path, _WIRE_NAMES.get(error.argument, error.argument)), error
    else:
        yield path, error


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _describe(error: BaseException) -> str:
    if isinstance(error, cattrs.ForbiddenExtraKeysError):
        return "unknown field"
    if isinstance(error, KeyError):
        return "is required"
    if isinstance(error, (InvalidArgumentError, InvalidArgumentTypeError)):
        return error.problem
    return str(error) or type(error).__name__
