"""Deliverability: the addresses SES told us to stop mailing, and what SES reported about each notice.

    SUPPRESSED item  PK = SUPPRESSED#<address>     SK = SUPPRESSED
                     reason (bounce|complaint), detail, at, message_id, account_id, lifted_at (once lifted)
    DELIVERY item    PK = DELIVERY#<SES message id> SK = <reason>#<address>
                     reason (bounce|complaint|transient), detail, at (of the first report), account_id

Addresses are kept lower-case, so `Jane@Example.com` and `jane@example.com` are one mailbox to us (strictly
only the domain is case-insensitive, but no mail system in use tells local parts apart by case, and a
notice that misses a suppression costs more than one that is wrongly held back).

SES publishes bounces, complaints and delivery delays of the notices' configuration set to EventBridge
(`detail` is the SES event record; the message carries our `account_id` tag). A permanent bounce or a
complaint suppresses each recipient; every report, transient ones too, gives the account one
`delivery_failed` event so a person can fix the address. EventBridge delivers at least once and SES may
report one failure more than once (a transient problem is reported again on each retry), so the first
report of (message, reason, address) is kept as a DELIVERY item and every later one re-uses its time: the
event, whose key starts with that time, is then written again onto itself instead of a second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dunning.domain.clock import current_clock
from dunning.domain.events import Event, EventType
from dunning.domain.ladder import LogEntry
from dunning.domain.models import normalize_address
from dunning.domain.notices import SENDING, SENT, UNCONFIRMED, NoticeId, sent_entry
from dunning.ports import ACCOUNT_TAG, Books, Record, Suppressions, account_from_tag

BOUNCE = "bounce"
COMPLAINT = "complaint"
TRANSIENT = "transient"
# Only these stop further mail: a transient failure may clear up by the next notice.
SUPPRESSING = frozenset({BOUNCE, COMPLAINT})

# The SES events this module acts on, by the record's eventType: the EventBridge detail-type SES publishes
# each under, and the name an AWS::SES::ConfigurationSetEventDestination subscribes to it by.
# infra/template.yaml subscribes to exactly these; tests/infra holds the two together.
# `Send` is SES saying it accepted a message: it confirms a notice whose API answer was lost.
DETAIL_TYPES = {
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
    "DeliveryDelay": "Email Delivery Delayed",
    "Send": "Email Sent",
}
DESTINATION_EVENT_TYPES = {
    "Bounce": "bounce",
    "Complaint": "complaint",
    "DeliveryDelay": "deliveryDelay",
    "Send": "send",
}
# The header every notice carries (`<episode>/<stage>`): how a Send event finds the notice it confirms.
NOTICE_HEADER = "X-Dunning-Notice"


def _stamp(at: datetime) -> str:
    # Fixed width (always microseconds), still RFC 3339: the suppression condition compares these as
    # strings, which plain rfc3339() output (microseconds only when present) would order wrongly.
    if at.tzinfo is None:
        raise ValueError("timestamps must be time-zone aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the suppression list --------------------------------------------------------------------------------


def suppress(
    suppressions: Suppressions,
    address: str,
    reason: str,
    detail: str,
    at: datetime,
    message_id: str,
    account_id: str | None,
) -> bool:
    """Put `address` on the suppression list; False when it already was (nothing is written then).

    A suppression that was lifted is only renewed by a report newer than the lift: EventBridge may deliver
    an old bounce again (a retry, a redriven dead letter) after a person declared the address fixed."""
    if reason not in SUPPRESSING:
        raise ValueError(f"only {sorted(SUPPRESSING)} suppress an address, not {reason!r}")
    fields: dict[str, Any] = {
        "kind": "suppression",
        "address": normalize_address(address),
        "reason": reason,
        "detail": detail,
        "at": _stamp(at),
        "message_id": message_id,
    }
    if account_id:
        fields["account_id"] = account_id
    return suppressions.suppress(address, fields, fields["at"])


def suppressed(suppressions: Suppressions, addresses: Iterable[str]) -> set[str]:
    """Which of `addresses` (returned as given, whatever their case) must not be mailed."""
    return suppressions.suppressed(addresses)


def lift(suppressions: Suppressions, address: str, *, at: datetime | None = None) -> bool:
    """Mail `address` again (a person fixed the mailbox); False when it was not suppressed.

    The record stays, marked lifted, so that a stale re-delivery of the report cannot suppress it again."""
    return suppressions.lift(address, _stamp(at or current_clock().now()))


# --- SES event records (as EventBridge delivers them) -------------------------------------------------------


class _SesModel(BaseModel):
    # SES adds fields over time (and most of each record is of no interest here).
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class Recipient(_SesModel):
    email_address: str = Field(alias="emailAddress", min_length=1)


class Bounce(_SesModel):
    bounce_type: str = Field(alias="bounceType")
    bounce_sub_type: str = Field(default="", alias="bounceSubType")
    bounced_recipients: list[Recipient] = Field(alias="bouncedRecipients")
    timestamp: AwareDatetime


class Complaint(_SesModel):
    complained_recipients: list[Recipient] = Field(alias="complainedRecipients")
    complaint_feedback_type: str | None = Field(default=None, alias="complaintFeedbackType")
    complaint_sub_type: str | None = Field(default=None, alias="complaintSubType")
    timestamp: AwareDatetime


class DeliveryDelay(_SesModel):
    delay_type: str = Field(default="", alias="delayType")
    delayed_recipients: list[Recipient] = Field(alias="delayedRecipients")
    timestamp: AwareDatetime


class Header(_SesModel):
    name: str
    value: str


class Mail(_SesModel):
    message_id: str = Field(alias="messageId", min_length=1)
    timestamp: AwareDatetime
    destination: list[str] = Field(default_factory=list)
    tags: dict[str, list[str]] = Field(default_factory=dict)
    headers: list[Header] = Field(default_factory=list)

    @property
    def notice(self) -> tuple[str, int, str] | None:
        """(currency, episode, stage) of the notice this message is, from its X-Dunning-Notice header
        (`<currency>/<episode>/<stage>`)."""
        for header in self.headers:
            if header.name.lower() == NOTICE_HEADER.lower():
                currency, episode, stage = [*header.value.strip().split("/"), "", ""][:3]
                if len(currency) == 3 and currency.isalpha() and episode.isdigit() and stage:
                    return currency.upper(), int(episode), stage
        return None

    @property
    def account_id(self) -> str | None:
        values = [account_from_tag(value) for value in self.tags.get(ACCOUNT_TAG, []) if value]
        return values[0] if values else None


class SesEventRecord(_SesModel):
    event_type: str = Field(alias="eventType")
    mail: Mail
    bounce: Bounce | None = None
    complaint: Complaint | None = None
    delivery_delay: DeliveryDelay | None = Field(default=None, alias="deliveryDelay")


class SesNotification(_SesModel):
    """The EventBridge envelope SES events arrive in."""

    id: str
    source: str
    detail_type: str = Field(alias="detail-type")
    detail: SesEventRecord


# --- reports -> ledger -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryReport:
    """One recipient's delivery problem with one message."""

    message_id: str
    address: str
    reason: str
    detail: str
    at: datetime
    account_id: str | None

    @property
    def suppresses(self) -> bool:
        return self.reason in SUPPRESSING

    def event(self) -> Event:
        assert self.account_id is not None
        return Event(
            self.at,
            EventType.DELIVERY_FAILED,
            self.account_id,
            {
                "address": self.address,
                "reason": self.reason,
                "detail": self.detail,
                "message_id": self.message_id,
            },
            identity=f"{self.message_id}#{self.reason}#{self.address}",
        )


def _problem(record: SesEventRecord) -> tuple[str, str, datetime, list[Recipient]] | None:
    """(reason, detail, time, recipients) of a record this module acts on; None for any other."""
    if record.event_type == "Bounce" and record.bounce is not None:
        bounce = record.bounce
        # Undetermined bounces are not known to be permanent: reported, not suppressed.
        reason = BOUNCE if bounce.bounce_type == "Permanent" else TRANSIENT
        detail = bounce.bounce_sub_type or bounce.bounce_type
        return reason, detail, bounce.timestamp, bounce.bounced_recipients
    if record.event_type == "Complaint" and record.complaint is not None:
        complaint = record.complaint
        detail = complaint.complaint_feedback_type or complaint.complaint_sub_type or ""
        return COMPLAINT, detail, complaint.timestamp, complaint.complained_recipients
    if record.event_type == "DeliveryDelay" and record.delivery_delay is not None:
        delay = record.delivery_delay
        # SES is still retrying: the same kind of news as a transient bounce, reported once with it.
        return TRANSIENT, delay.delay_type, delay.timestamp, delay.delayed_recipients
    return None


def reports(record: SesEventRecord) -> list[DeliveryReport]:
    """The delivery problems an SES event record reports, one per recipient (none for other events)."""
    problem = _problem(record)
    if problem is None:
        return []
    reason, detail, at, recipients = problem
    addresses = dict.fromkeys(normalize_address(r.email_address) for r in recipients)
    return [
        DeliveryReport(record.mail.message_id, address, reason, detail, at, record.mail.account_id)
        for address in addresses
        if address
    ]


def _delivery_record(report: DeliveryReport) -> Record:
    item: Record = {
        "kind": "delivery",
        "message_id": report.message_id,
        "address": report.address,
        "reason": report.reason,
        "detail": report.detail,
        "at": _stamp(report.at),
    }
    if report.account_id:
        item["account_id"] = report.account_id
    return item


def _first_report(suppressions: Suppressions, report: DeliveryReport) -> tuple[DeliveryReport, bool]:
    """The first report of this (message, reason, address), and whether `report` is it."""
    if suppressions.add_report(_delivery_record(report)):
        return report, True
    stored = suppressions.report(report.message_id, report.reason, report.address)
    if stored is None:  # removed since; nothing older to agree with
        return report, False
    first = DeliveryReport(
        report.message_id,
        report.address,
        report.reason,
        str(stored.get("detail", report.detail)),
        datetime.fromisoformat(str(stored["at"])),
        report.account_id or stored.get("account_id"),
    )
    return first, False


@dataclass
class Outcome:
    """What one SES event record changed (counts only: the addresses stay out of logs and metrics)."""

    event_type: str
    message_id: str
    account_id: str | None
    reports: int = 0
    new_reports: int = 0
    suppressed: int = 0
    logged: int = 0
    # A Send event that settled a notice whose SES answer had been lost.
    confirmed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "confirmed": self.confirmed,
            "event_type": self.event_type,
            "message_id": self.message_id,
            "account_id": self.account_id,
            "reports": self.reports,
            "new_reports": self.new_reports,
            "suppressed": self.suppressed,
            "logged": self.logged,
        }


def record_ses_event(books: Books, record: SesEventRecord) -> Outcome:
    """Suppress and log what an SES event record reports; safe to run again on the same record.

    Order matters for a retry after a crash: the DELIVERY item (which fixes the event's time) goes first,
    the suppression next, and the events last, so a re-run finds whatever was done and completes the rest."""
    outcome = Outcome(record.event_type, record.mail.message_id, record.mail.account_id)
    if record.event_type == "Send":
        notice, account_id = record.mail.notice, record.mail.account_id
        if notice is not None and account_id is not None:
            at = current_clock().now()
            currency, episode, stage = notice
            which = NoticeId(account_id, currency, episode, stage)
            outcome.confirmed = confirm_sent(books, which, record.mail.message_id, at)
        return outcome
    events: list[Event] = []
    for report in reports(record):
        first, is_new = _first_report(books.suppressions, report)
        outcome.reports += 1
        outcome.new_reports += is_new
        if first.suppresses and suppress(
            books.suppressions,
            first.address,
            first.reason,
            first.detail,
            first.at,
            first.message_id,
            first.account_id,
        ):
            outcome.suppressed += 1
        if first.account_id:
            events.append(first.event())
    if events:
        books.log.log(record.mail.account_id or "", current_clock().now(), events)
        outcome.logged = len(events)
    return outcome


def confirm_sent(books: Books, notice: NoticeId, message_id: str, at: datetime) -> bool:
    """SES reports it accepted this notice (its Send event). An attempt whose answer was lost (`sending` or
    `unconfirmed`) becomes what a successful one makes: notice_sent logged at the attempt's own time, then
    the reservation `sent`; `notice_confirmed` says that it was settled this way. False if nothing was
    waiting for this confirmation."""
    item = books.ladders.notice_status(notice)
    if item is None or item.get("status") not in (SENDING, UNCONFIRMED) or not item.get("notice"):
        return False
    was, what = item["status"], item["notice"]
    started = datetime.fromisoformat(str(item["started_at"]))
    books.log.log(notice.account_id, started, [sent_entry(notice, what, message_id)])
    recipients = len(what.get("to", []))
    waiting = (SENDING, UNCONFIRMED)
    if not books.ladders.finish_send(
        notice, SENT, only_if=waiting, message_id=message_id, recipients=recipients
    ):
        return False
    if was == UNCONFIRMED:
        data = {"stage": notice.stage, "message_id": message_id, "eml": what.get("eml", "")}
        books.log.log(notice.account_id, at, [LogEntry(EventType.NOTICE_CONFIRMED, notice.identity, data)])
    return True
