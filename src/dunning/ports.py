"""The interfaces the services need from the outside world, and the values and errors that cross them.

Services take their collaborators as these Protocols; adapters (SES, S3, Step Functions) implement them, and
tests pass fakes. Nothing here talks to AWS.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# --- sending email -------------------------------------------------------------------------------------


class SendThrottled(Exception):
    """SES asked us to slow down (or failed transiently); nothing was sent. The state machine retries."""


class SendRejected(Exception):
    """SES refused this message for good (e.g. a malformed address); retrying would not help."""


class SendUnconfirmed(Exception):
    """The request reached SES but its answer was lost: SES may or may not have accepted the message."""


class Mailer(Protocol):
    def send(self, sender: str, to: Sequence[str], raw: bytes, account_id: str | None = None) -> str:
        """Hand the raw message to SES: SES's message id, or SendThrottled, SendRejected, SendUnconfirmed."""
        ...


class Archive(Protocol):
    def put(self, key: str, raw: bytes) -> None: ...


class Documents(Protocol):
    def invoice_pdf(self, account_id: str, document: str | None, invoice_id: str) -> tuple[str, bytes] | None:
        """(file name, bytes) of the invoice's uploaded PDF, if there is one bound to `account_id`'s invoice
        (invoice ids are unique only per account: never another account's document)."""
        ...


# --- the legal team's packet link --------------------------------------------------------------------


@dataclass(frozen=True)
class PacketLink:
    """A download link and the instant it stops working. A secret link (a presigned URL) is a credential:
    it goes to the legal team only, never into a log or an archived copy."""

    url: str
    expires_at: datetime
    secret: bool = True


# (bucket, key, seconds wanted) -> the link; its stated expiry may be sooner than wanted, never later.
PacketLinkSigner = Callable[[str, str, int], PacketLink]


# --- the account an SES message belongs to (its tag) -------------------------------------------------

ACCOUNT_TAG = "account_id"
# SES tag values allow only ASCII letters, digits, '_' and '-', at most 256 of them; account ids are free
# text, so the tag carries them base32-encoded (A-Z, 2-7) behind this marker.
_TAG_MARK = "b32-"


def account_tag(account_id: str) -> str | None:
    """The SES tag value naming `account_id`, or None when the id is too long to fit in a tag."""
    encoded = base64.b32encode(account_id.encode("utf-8")).decode("ascii").rstrip("=")
    value = _TAG_MARK + encoded
    return value if len(value) <= 256 else None


def account_from_tag(value: str) -> str:
    if not value.startswith(_TAG_MARK):
        return value  # a plain id (tags written by hand, or by an older version)
    encoded = value[len(_TAG_MARK) :]
    return base64.b32decode(encoded + "=" * (-len(encoded) % 8)).decode("utf-8")
