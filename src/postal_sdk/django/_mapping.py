"""Django's `EmailMessage` as Postal's `Message` (send/message), or `RawMessage` (send/raw).

The mapping follows django-anymail's Postal backend wherever anymail maps a feature, so
that a project switching backends sends the same request: addresses formatted with the
domain IDNA-encoded, the first text/plain and text/html parts as the bodies, a `From`
header in `extra_headers` overriding `from_email` (which becomes the `sender`), a
`Reply-To` header overriding `reply_to`, `tags` as Postal's one `tag`,
`envelope_sender` as `sender` and `esp_extra` merged over the parameters.

Where send/message cannot say what the message says (inline images with a Content-ID,
a `To` header that is not the recipients, parts beyond one plain and one HTML body,
several From addresses, attachments without a filename), the message goes through
send/raw as the MIME that Django builds, to the envelope recipients Django would use.
"""

from __future__ import annotations

import base64
import email.message
import email.policy
import mimetypes
import re
from collections.abc import Iterable, Mapping
from email.headerregistry import Address
from email.mime.base import MIMEBase
from email.utils import getaddresses
from typing import Any

import idna
from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.encoding import force_str

from postal_sdk.errors import InvalidArgumentError, InvalidArgumentTypeError
from postal_sdk.models import Attachment, Message, RawMessage

__all__ = ["UNSUPPORTED_ATTRIBUTES", "UnsupportedFeatureError", "to_postal"]

_UNSUPPORTED = {
    "metadata": "Postal keeps no metadata with a message",
    "send_at": "Postal cannot schedule a send",
    "track_clicks": "Postal sets click tracking per server, not per message",
    "track_opens": "Postal sets open tracking per server, not per message",
    "template_id": "Postal has no templates",
    "merge_data": "Postal has no templates to merge data into",
    "merge_global_data": "Postal has no templates to merge data into",
    "merge_headers": "Postal has no per-recipient headers",
    "merge_metadata": "Postal keeps no metadata with a message",
}
UNSUPPORTED_ATTRIBUTES = tuple(_UNSUPPORTED)
"""anymail's message attributes that Postal's API has no way to express."""

_SEND_MESSAGE_PARAMETERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "plain_body",
        "html_body",
        "sender",
        "reply_to",
        "tag",
        "bounce",
        "headers",
        "attachments",
    }
)
_RAW_EXTRA = frozenset({"bounce", "tag", "sender"})
"""What `esp_extra` can still set on a message sent as Django's MIME through send/raw."""


class UnsupportedFeatureError(InvalidArgumentError):
    """The message uses a feature Postal cannot express (`argument` names the attribute).

    With `POSTAL["IGNORE_UNSUPPORTED_FEATURES"] = True` the feature is dropped instead
    (for `tags`, the first tag is sent), as anymail's `IGNORE_UNSUPPORTED_FEATURES` does.
    """


def to_postal(message: EmailMessage, *, ignore_unsupported: bool = False) -> Message | RawMessage:
    """The Postal request for a Django message.

    Raises `InvalidArgumentError` (or `InvalidArgumentTypeError`) naming the attribute
    that Postal cannot take: no recipient, an address that is not one, an empty
    attachment, a feature Postal lacks.
    """
    return _Mapping(message, ignore_unsupported).build()


class _Mapping:
    def __init__(self, message: EmailMessage, ignore_unsupported: bool) -> None:
        self.message = message
        self.ignore_unsupported = ignore_unsupported
        self.raw_reasons: list[str] = []

    def unsupported(self, attribute: str, problem: str) -> None:
        if not self.ignore_unsupported:
            raise UnsupportedFeatureError(
                attribute,
                f"{problem}; set POSTAL['IGNORE_UNSUPPORTED_FEATURES'] = True to drop it",
            )

    def build(self) -> Message | RawMessage:
        message = self.message
        headers = {force_str(k): force_str(v) for k, v in (message.extra_headers or {}).items()}
        from_header = _pop(headers, "From")
        reply_to_header = _pop(headers, "Reply-To")
        sender_header = _pop(headers, "Sender")
        if _pop(headers, "To") is not None:
            self.raw_reasons.append("a To header other than the recipients")

        from_field = "extra_headers['From']" if from_header is not None else "from_email"
        from_list = _addresses([from_header or message.from_email], from_field)
        if not from_list:
            raise InvalidArgumentError("from_email", "no From address")
        if len(from_list) > 1:
            self.raw_reasons.append("more than one From address")
        sender = None
        if from_header is not None:
            # As Django's SMTP backend and anymail do: from_email is then the envelope sender.
            sender = _single(message.from_email, "from_email")
        elif sender_header is not None:
            sender = _single(sender_header, "extra_headers['Sender']")
        envelope_sender = getattr(message, "envelope_sender", None)
        if envelope_sender:
            sender = _single(envelope_sender, "envelope_sender")

        recipients = {
            field: _addresses(_address_list(message, field), field) for field in ("to", "cc", "bcc")
        }
        if not any(recipients.values()):
            raise InvalidArgumentError("to", "no recipient: give at least one of to, cc or bcc")
        reply_to = (
            _addresses([reply_to_header], "extra_headers['Reply-To']")
            if reply_to_header is not None
            else _addresses(_address_list(message, "reply_to"), "reply_to")
        )
        plain_body, html_body = self.bodies()
        attachments = self.attachments()
        tag = self.tag()
        for attribute, problem in _UNSUPPORTED.items():
            value = getattr(message, attribute, None)
            if value is not None and value != {} and value != []:
                self.unsupported(attribute, problem)

        parameters: dict[str, Any] = {
            "from": from_list[0],
            "to": recipients["to"],
            "cc": recipients["cc"],
            "bcc": recipients["bcc"],
            "subject": force_str(message.subject) if message.subject is not None else None,
            "plain_body": plain_body,
            "html_body": html_body,
            "sender": sender,
            "reply_to": ", ".join(reply_to) or None,
            "tag": tag,
            "headers": headers,
            "attachments": attachments,
        }
        extra = getattr(message, "esp_extra", None) or {}
        if not isinstance(extra, Mapping):
            raise InvalidArgumentTypeError(
                "esp_extra", f"must be a dict, not {type(extra).__name__}"
            )
        unknown = sorted(set(extra) - _SEND_MESSAGE_PARAMETERS)
        if unknown:
            raise InvalidArgumentError(
                "esp_extra",
                f"unknown send/message parameter(s) {', '.join(map(repr, unknown))}; Postal "
                f"takes {', '.join(sorted(_SEND_MESSAGE_PARAMETERS))}",
            )
        parameters.update(extra)
        if self.raw_reasons:
            ignored = sorted(set(extra) - _RAW_EXTRA)
            if ignored:
                raise InvalidArgumentError(
                    "esp_extra",
                    f"{', '.join(map(repr, ignored))} cannot apply: the message goes through "
                    f"send/raw ({self.raw_reasons[0]}), which takes only "
                    f"{', '.join(sorted(_RAW_EXTRA))}",
                )
            return self.raw(parameters, recipients, from_list)
        return Message(
            from_=parameters["from"],
            to=parameters["to"],
            cc=parameters["cc"],
            bcc=parameters["bcc"],
            subject=parameters["subject"],
            plain_body=parameters["plain_body"],
            html_body=parameters["html_body"],
            sender=parameters["sender"],
            reply_to=parameters["reply_to"],
            tag=parameters["tag"],
            bounce=parameters.get("bounce"),
            headers=parameters["headers"],
            attachments=[
                part if isinstance(part, Attachment) else _wire_attachment(part)
                for part in parameters["attachments"]
            ],
        )

    def bodies(self) -> tuple[str | None, str | None]:
        """The first text/plain and text/html parts, chosen as anymail chooses them."""
        message = self.message
        plain: str | None = None
        html: str | None = None
        body = force_str(message.body) if message.body is not None else None
        subtype = message.content_subtype
        if subtype == "plain":
            plain = body
        elif subtype == "html":
            html = body
        else:
            self.raw_reasons.append(f"a text/{subtype} body")
        has_plain = subtype == "plain" and bool(body)
        has_html = subtype == "html" and bool(body)
        for content, mimetype in getattr(message, "alternatives", None) or ():
            if mimetype == "text/plain" and not has_plain:
                plain, has_plain = force_str(content), True
            elif mimetype == "text/html" and not has_html:
                html, has_html = force_str(content), True
            else:
                self.raw_reasons.append(f"an alternative part of type {mimetype}")
        return plain, html

    def attachments(self) -> list[Attachment]:
        found = []
        for position, item in enumerate(self.message.attachments or ()):
            where = f"attachments[{position}]"
            name, content, content_type, inline = _attachment_parts(item, where)
            if not content.strip():
                raise InvalidArgumentError(
                    where,
                    f"{name or 'the attachment'!r} is empty; Postal refuses an attachment "
                    "without data",
                )
            if inline:
                self.raw_reasons.append("an inline attachment")
                continue
            if not name:
                self.raw_reasons.append("an attachment without a filename")
                continue
            found.append(Attachment(name=name, data=content, content_type=content_type))
        return found

    def tag(self) -> str | None:
        tags = getattr(self.message, "tags", None)
        if not tags:
            return None
        if isinstance(tags, str):
            tags = [tags]
        names = [force_str(tag) for tag in tags]
        if len(names) > 1:
            self.unsupported(
                "tags", f"Postal stores one tag per message, and this one has {len(names)}"
            )
        return names[0]

    def raw(
        self,
        parameters: Mapping[str, Any],
        recipients: Mapping[str, list[str]],
        from_list: list[str],
    ) -> RawMessage:
        built = self.message.message()
        tag, sender = parameters["tag"], parameters["sender"]
        if tag is not None:
            # send/raw has no tag parameter: Postal reads this header instead.
            del built["X-Postal-Tag"]
            built["X-Postal-Tag"] = tag
        if sender is not None:
            del built["Sender"]
            built["Sender"] = sender
        envelope = [
            _addr_spec(address) for field in ("to", "cc", "bcc") for address in recipients[field]
        ]
        mail_from = _addr_spec(sender if sender is not None else from_list[0])
        if isinstance(built, email.message.EmailMessage):
            data: bytes | email.message.EmailMessage = built
        else:
            data = built.as_bytes(linesep="\r\n")
        return RawMessage(
            mail_from=mail_from,
            rcpt_to=list(dict.fromkeys(envelope)),
            data=data,
            bounce=parameters.get("bounce"),
        )


def _pop(headers: dict[str, str], name: str) -> str | None:
    """Remove a header whatever its letter case; the last value given wins."""
    found = None
    for key in [key for key in headers if key.lower() == name.lower()]:
        found = headers.pop(key)
    return found


def _address_list(message: EmailMessage, field: str) -> list[str]:
    value = getattr(message, field, None) or []
    if isinstance(value, str):
        raise InvalidArgumentTypeError(field, "must be a list of addresses, not a str")
    return [force_str(address) for address in value]


def _addresses(values: Iterable[str | None], field: str) -> list[str]:
    """Each address formatted as anymail formats it: the domain IDNA-encoded."""
    strings = [force_str(value) for value in values if value]
    if all(_PLAIN_ADDRESS.fullmatch(string) for string in strings):
        # Most addresses are bare ASCII ones that formatting leaves unchanged: skipping
        # the email package's parser halves the CPU a message costs to map.
        return strings
    formatted = []
    for position, (name, addr_spec) in enumerate(getaddresses(strings)):
        formatted.append(_format(name, addr_spec, f"{field}[{position}]", strings))
    return formatted


_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
)
"""A bare ASCII addr-spec (dot-atoms on both sides), which formats as itself."""


def _single(value: str, field: str) -> str:
    found = _addresses([value], field)
    if len(found) != 1:
        raise InvalidArgumentError(field, f"must be one address, not {len(found)} in {value!r}")
    return found[0]


def _format(name: str, addr_spec: str, where: str, source: list[str]) -> str:
    local, at, domain = addr_spec.rpartition("@")
    if not at or not local or not domain:
        raise InvalidArgumentError(where, f"{addr_spec or ', '.join(source)!r} is not an address")
    if not local.isascii():
        raise InvalidArgumentError(
            where,
            f"{addr_spec!r} has a non-ASCII local part, which needs SMTPUTF8; "
            "the SDK refuses it rather than let it be mangled",
        )
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as error:
            raise InvalidArgumentError(
                where, f"the domain of {addr_spec!r} cannot be IDNA-encoded ({error})"
            ) from None
    try:
        return str(Address(display_name=name, username=local, domain=domain))
    except (ValueError, IndexError) as error:
        raise InvalidArgumentError(where, f"{addr_spec!r} is not an address ({error})") from None


def _addr_spec(address: str) -> str:
    [(_, addr_spec)] = getaddresses([address])
    return addr_spec


def _attachment_parts(item: object, where: str) -> tuple[str | None, bytes, str, bool]:
    """(filename, content, content type, inline) as anymail normalises an attachment."""
    charset: str | None = None
    if isinstance(item, (MIMEBase, email.message.MIMEPart)):
        filename = item.get_filename()
        content_type = item["Content-Type"]
        mimetype = item.get_content_type()
        charset = item.get_content_charset()
        payload = (
            item.get_payload(decode=True) if isinstance(item, MIMEBase) else item.get_content()
        )
        content: object = payload if payload is not None else item.as_bytes()
        disposition = item.get_content_disposition()
        inline = disposition == "inline" or (disposition is None and "Content-ID" in item)
    elif isinstance(item, tuple) and len(item) == 3:
        filename, content, mimetype = item
        filename = force_str(filename) if filename is not None else None
        inline = False
        if isinstance(content, EmailMessage):
            built = content.message()
            if isinstance(built, email.message.EmailMessage):
                content = built.as_bytes(policy=email.policy.SMTP)
            else:  # Django before 6 builds SafeMIME objects, with their own as_bytes
                content = built.as_bytes(linesep="\r\n")
            mimetype = mimetype or "message/rfc822"
        elif isinstance(content, email.message.Message):
            content = content.as_bytes(policy=email.policy.SMTP)
            mimetype = mimetype or "message/rfc822"
        content_type = mimetype
    else:
        raise InvalidArgumentTypeError(
            where, f"must be a (filename, content, mimetype) tuple or a MIME part, not {item!r}"
        )
    if mimetype is None and filename:
        mimetype = mimetypes.guess_type(filename)[0]
        content_type = None
    if mimetype is None:
        mimetype = content_type = "application/octet-stream"
    if mimetype.split("/", 1)[0] == "text" or isinstance(content, str):
        charset = charset or settings.DEFAULT_CHARSET
        if content_type is None or charset not in content_type:
            part = email.message.MIMEPart()
            part.add_header("Content-Type", mimetype, charset=charset)
            content_type = part["Content-Type"]
    if isinstance(content, str):
        content = content.encode(charset or settings.DEFAULT_CHARSET)
    if not isinstance(content, (bytes, bytearray)):
        raise InvalidArgumentTypeError(
            where, f"content must be bytes or str, not {type(content).__name__}"
        )
    return filename, bytes(content), content_type or mimetype, inline


def _wire_attachment(part: object) -> Attachment:
    """An attachment given in `esp_extra` as Postal's wire object (`data` in base64)."""
    if not isinstance(part, Mapping):
        raise InvalidArgumentTypeError(
            "esp_extra['attachments']", f"items must be dicts, not {type(part).__name__}"
        )
    try:
        data = base64.b64decode(part["data"], validate=True)
        return Attachment(
            name=part["name"],
            data=data,
            content_type=part.get("content_type") or "application/octet-stream",
        )
    except (KeyError, ValueError) as error:
        raise InvalidArgumentError(
            "esp_extra['attachments']", f"needs name and base64 data ({error})"
        ) from None
