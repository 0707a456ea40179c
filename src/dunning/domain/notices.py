"""A notice's reservation and how the contact log tells it.

Before SES gets a notice, the send reserves (account, currency, episode, stage): the reservation's status
says how far the attempt went. A `failed` notice is one SES refused (or could not have been given: an
address SES cannot take): nothing went out, so it is not a rung done, and its reservation may be taken
again by a later attempt. Every other status holds the reservation for good.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dunning.domain.events import EventType
from dunning.domain.ladder import LogEntry

FAILED = "failed"
UNCONFIRMED = "unconfirmed"
SENDING = "sending"
SENT = "sent"


@dataclass(frozen=True)
class NoticeId:
    """Which notice: an account's stage in one episode of one currency's ladder. Sent at most once."""

    account_id: str
    currency: str
    episode: int
    stage: str

    @property
    def identity(self) -> str:
        """What the contact log calls it (the identity of its notice_sent, notice_unconfirmed ...)."""
        return notice_identity(self.currency, self.episode, self.stage)


def notice_identity(currency: str, episode: int, stage: str) -> str:
    return f"{currency}#{episode}#{stage}"


def sent_entry(notice: NoticeId, what: Mapping[str, Any], message_id: str) -> LogEntry:
    """The notice_sent event of `notice`, which said `what`: one identity, whoever logs it (the send or
    its Send event), so that it is stored once."""
    return LogEntry(EventType.NOTICE_SENT, notice.identity, {**said(what), "message_id": message_id})


def said(what: Mapping[str, Any]) -> dict[str, Any]:
    """What a stored notice said, as the contact log tells it (its charge lines are the ladder's own)."""
    return {key: value for key, value in what.items() if key != "charge_lines"}
