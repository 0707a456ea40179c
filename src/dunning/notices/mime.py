"""The raw RFC 5322 message for a rendered notice, as SES SendRawEmail takes it.

Every field that reaches a header may come from a customer's data, so line breaks are refused outright
and addresses go through the email package's structured headers (which RFC 2047-encode display names).
The output is 7-bit ASCII: the text parts are quoted-printable, attachments base64.
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage

from dunning.notices.render import RenderedNotice

DEFAULT_FILENAME = "attachment.pdf"
# Printable ASCII without the colon (RFC 5322 field name).
_FIELD_NAME = re.compile(r"^[!-9;-~]+$")
# Headers build_message writes itself; an extra header with one of these names would duplicate or
# contradict them.
_OWN_HEADERS = frozenset({"from", "to", "reply-to", "subject", "date", "message-id", "mime-version"})


class UnsendableAddress(ValueError):
    """An address SES cannot send to or from, whatever the encoding: its local part is not ASCII (SES has
    no SMTPUTF8), or its domain has no ASCII (IDNA) form."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/pdf"


def build_message(
    *,
    rendered: RenderedNotice,
    sender: str,
    to: Sequence[str],
    reply_to: str | None,
    sent_at: datetime,
    message_id: str,
    attachments: Sequence[Attachment] = (),
    headers: Mapping[str, str] | None = None,
) -> bytes:
    if sent_at.utcoffset() is None:
        raise ValueError("sent_at must be time-zone aware")
    if not to:
        raise ValueError("a notice needs at least one recipient")
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = _address(sender)
    message["To"] = [_address(recipient) for recipient in to]
    if reply_to:
        message["Reply-To"] = _address(reply_to)
    message["Subject"] = _header_value(rendered.subject)
    message["Date"] = email.utils.format_datetime(sent_at)
    message["Message-ID"] = _message_id(message_id)
    message["MIME-Version"] = "1.0"
    for name, value in (headers or {}).items():
        message[_extra_header_name(name)] = _header_value(value)

    # Explicit quoted-printable: left to choose, the email package would send non-ASCII text as 8bit.
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # The first attachment turns the message into multipart/mixed around the alternative part.
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not maintype or not subtype:
            raise ValueError(f"not a MIME type: {attachment.content_type!r}")
        message.add_attachment(
            attachment.content,
            maintype=_header_value(maintype),
            subtype=_header_value(subtype),
            filename=safe_filename(attachment.filename),
        )
    _fix_boundaries(message, message_id)
    return message.as_bytes()


def _fix_boundaries(message: EmailMessage, message_id: str) -> None:
    """Boundaries derived from the message id instead of random ones: the same notice always renders to
    the same bytes (reproducible simulations, verifiable archives)."""
    seed = hashlib.sha256(message_id.encode()).hexdigest()[:24]
    for depth, part in enumerate(part for part in message.walk() if part.is_multipart()):
        part.set_boundary(f"=_dunning_{seed}_{depth}")


def _header_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"header values cannot contain line breaks: {value!r}")
    return value


def _extra_header_name(name: str) -> str:
    if not _FIELD_NAME.match(name):
        raise ValueError(f"not a valid header name: {name!r}")
    if name.lower() in _OWN_HEADERS or name.lower().startswith("content-"):
        raise ValueError(f"{name} is set by build_message and cannot be given as an extra header")
    return name


def _address(text: str) -> Address:
    """One mailbox, "addr@example.com" or "Name <addr@example.com>"."""
    display_name, addr_spec = email.utils.parseaddr(_header_value(text))
    local, at, domain = addr_spec.rpartition("@")
    if not local or not at or not domain:
        raise ValueError(f"not an email address: {text!r}")
    if not local.isascii():
        raise UnsendableAddress(f"SES cannot send to or from a non-ASCII address (local part): {addr_spec}")
    try:
        # An IDN domain has to travel as its ASCII (punycode) form; headers cannot carry it raw.
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnsendableAddress(f"not a valid domain name (no IDNA form): {addr_spec}") from exc
    return Address(display_name=display_name, username=local, domain=ascii_domain)


def ses_address(text: str) -> str:
    """A mailbox the way SES's API takes it (FromEmailAddress, Destination): 7-bit ASCII, the domain in
    punycode, a non-ASCII display name as an RFC 2047 encoded word. UnsendableAddress when SES cannot take
    it at all."""
    address = _address(text)
    return email.utils.formataddr((address.display_name, address.addr_spec), charset="utf-8")


def _message_id(message_id: str) -> str:
    value = _header_value(message_id).strip()
    return value if value.startswith("<") and value.endswith(">") else f"<{value}>"


def safe_filename(name: str) -> str:
    """The base name without control/format characters, quotes or separators; never empty."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Category C* also drops bidi overrides that can disguise an extension ("invoice\u202efdp.exe").
    kept = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C" and ch not in "\"'`")
    # Leading dots would make a hidden file, and ".." must not survive as a name.
    return kept.strip(" .") or DEFAULT_FILENAME
