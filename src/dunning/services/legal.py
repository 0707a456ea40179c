"""The legal hand-off: the case packet, the case record, and the legal team's emails.

At the last rung the escalate function gathers the account's whole file (invoices, payments, every notice
exactly as SES received it, the contact log, the policy), writes the case packet to the legal bucket and
records the case (`open_case`); a separate step of the state machine then emails the legal team a summary
with a short-lived download link (`notify_opened`), so that SES throttling is retried on its own without
building the packet again. A payment that arrives later is still applied by the ingest; the case record
follows the balance and the legal team is told. Download links are never logged, and the archived copy of
a legal email has its link withheld: whoever holds a link can download the packet until it expires.

    case record (ports.CaseRecords)   case_id, account_id, status, created_at, amount_due, currency,
                                              balance, packet_key, packet_sha256, packet_bytes, updated_at,
                                              charges, total_claimed;
                                              the opening email: notify_status (sending|sent|unconfirmed|
                                              failed), notified_at, notify_eml, notify_to, notify_balance,
                                              message_id, notify_error

The opening email is sent at most once, like a notice: reserved on the case record (`sending`) before SES
is called, and read for what SES's answer proves (dunning.adapters.mailer). Throttled (nothing accepted): the
reservation is dropped and SendThrottled raised for the state machine to retry. Refused: `failed`
(notice_failed; the next day's scan tries again). Accepted: legal_notified is logged, then the reservation
becomes `sent`. No proof either way (an answer lost after the request went out), or a retry that finds the
reservation still `sending` without legal_notified: `unconfirmed`, never sent again, notice_unconfirmed
logged and the NoticeUnconfirmed alarm raised for a person to check.
"""

from __future__ import annotations

import hashlib
import html
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, BinaryIO, cast, overload
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from dunning.domain.account import AccountSnapshot, InvoiceState
from dunning.domain.clock import rfc3339
from dunning.domain.events import EventType
from dunning.domain.ladder import LogEntry
from dunning.domain.models import strip_bidi_controls
from dunning.domain.money import format_amount
from dunning.domain.naming import eml_name
from dunning.domain.owed import Owed
from dunning.domain.policy import Policy, policy_json
from dunning.notices.context import business_of
from dunning.notices.mime import build_message
from dunning.notices.render import RenderedNotice
from dunning.ports import (
    NOTICE_FAILED,
    NOTICE_UNCONFIRMED,
    Archive,
    Books,
    CaseRecords,
    Documents,
    Mailer,
    Objects,
    PacketLink,
    PacketLinkSigner,
    SendRejected,
    SendThrottled,
    SendUnconfirmed,
)

logger = Logger(service="dunning", child=True)

MAX_LINK_HOURS = 168  # SigV4 presigned URLs cannot outlive 7 days
WITHHELD = "[link withheld from this copy: it grants access to the case packet]"


@dataclass(frozen=True)
class LegalDesk:
    """What the hand-off needs; the escalate handler wires the AWS-backed implementations."""

    books: Books
    store: Objects
    ingest_bucket: str
    legal_bucket: str
    archive: Archive
    documents: Documents
    mailer: Mailer
    policy: Policy
    presign: PacketLinkSigner | None  # None: the email gives the `dunning cases download` command only
    legal_email: str | None
    link_hours: int = 72


@dataclass(frozen=True)
class Case:
    case_id: str
    account_id: str
    status: str
    created_at: str
    amount_due: Decimal
    currency: str
    balance: Decimal
    packet_key: str
    packet_sha256: str
    packet_bytes: int
    updated_at: str
    charges: Decimal = Decimal(0)  # fees and interest claimed (cases recorded before this field: none)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Case:
        return cls(
            case_id=item["case_id"],
            account_id=item["account_id"],
            status=item["status"],
            created_at=item["created_at"],
            amount_due=Decimal(item["amount_due"]),
            currency=item["currency"],
            balance=Decimal(item["balance"]),
            packet_key=item["packet_key"],
            packet_sha256=item["packet_sha256"],
            packet_bytes=int(item["packet_bytes"]),
            updated_at=item["updated_at"],
            charges=Decimal(item.get("charges", 0)),
        )


def packet_key(case_id: str) -> str:
    return f"cases/{case_id}.zip"


def get_case(cases: CaseRecords, case_id: str) -> Case | None:
    item = cases.case(case_id)
    return Case.from_item(item) if item else None


def list_cases(cases: CaseRecords) -> list[Case]:
    return [Case.from_item(item) for item in cases.cases()]


def open_case(desk: LegalDesk, snapshot: AccountSnapshot, case_id: str, claim: Owed, now: datetime) -> Case:
    """Build and store the packet, then record the case (idempotent per case id). `now` is the hand-off
    instant, the same on every retry, so a retry with unchanged inputs builds the very same bytes.

    The record is written only after the packet is stored: a crash before it leaves no record, and the
    retry builds and stores the packet again (overwriting the key), so the record always describes the
    packet under its key."""
    # fpdf2 is imported only where a packet is built
    from dunning.packets.archive import write_packet
    from dunning.packets.case import CaseFile

    existing = get_case(desk.books.cases, case_id)
    if existing is not None:
        return existing
    claimed = set(claim.invoice_ids)
    invoices = tuple(invoice for invoice in snapshot.open_invoices() if invoice.invoice_id in claimed)
    currency, owed = claim.currency, claim.amount_due
    events = tuple(desk.books.log.events(snapshot.account_id))
    # Every notice of this debt SES may have received: an unconfirmed one too (its timeline row says so).
    handed = (EventType.NOTICE_SENT, EventType.NOTICE_UNCONFIRMED)
    emls = (
        event["eml"]
        for event in events
        if event["type"] in handed and event.get("eml") and event.get("currency", currency) == currency
    )
    sent = list(dict.fromkeys(emls))
    case_file = CaseFile(
        case_id=case_id,
        account_id=snapshot.account_id,
        created_at=now,
        currency=currency,
        amount_due=owed,
        charges=claim.charges,
        daily_interest=claim.daily_interest,
        claimed_on=claim.on,
        customer=dict(snapshot.profile),
        business=business_of(desk.policy),
        invoices=invoices,
        events=events,
        notices=_ArchivedNotices(desk.store, desk.ingest_bucket, tuple(sent)),
        documents=_documents(desk.documents, snapshot.account_id, invoices),
        policy_json=policy_json(desk.policy),
    )
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as buffer:
        manifest = write_packet(case_file, cast(BinaryIO, buffer))
        size = buffer.tell()
        buffer.seek(0)
        digest = hashlib.sha256()
        while chunk := buffer.read(1024 * 1024):
            digest.update(chunk)
        buffer.seek(0)
        # upload_fileobj switches to a multipart upload for large packets; memory stays flat.
        desk.store.put(desk.legal_bucket, packet_key(case_id), buffer, "application/zip")
    stamp = rfc3339(now)
    item = {
        "case_id": case_id,
        "kind": "case",
        "account_id": snapshot.account_id,
        "status": "open",
        "created_at": stamp,
        "amount_due": owed,
        "currency": currency,
        "balance": owed,
        "packet_key": packet_key(case_id),
        "packet_sha256": digest.hexdigest(),
        "packet_bytes": size,
        "updated_at": stamp,
        "charges": Decimal(manifest["charges"]),
        "total_claimed": Decimal(manifest["total_claimed"]),
    }
    if not desk.books.cases.add_case(item):
        # Another attempt recorded it meanwhile: its record describes the packet as it stands.
        return get_case(desk.books.cases, case_id) or Case.from_item(item)
    return Case.from_item(item)


def balance_changed(desk: LegalDesk, snapshot: AccountSnapshot, case: Case, now: datetime) -> None:
    """A payment reached an account that is with the legal team: update the case and tell them."""
    balance = sum(
        (i.outstanding for i in snapshot.open_invoices() if i.currency == case.currency), Decimal(0)
    )
    if balance == case.balance:
        return
    desk.books.cases.update_case(
        case.case_id,
        {"balance": balance, "updated_at": rfc3339(now), "status": "open" if balance > 0 else "settled"},
    )
    updated = Case(**{**case.__dict__, "balance": balance, "updated_at": rfc3339(now)})
    _notify(desk, updated, snapshot, now, "balance_changed")


class _ArchivedNotices(Sequence[tuple[str, bytes]]):
    """The account's sent notices, read from the archive one at a time as the packet is written."""

    def __init__(self, store: Objects, bucket: str, names: tuple[str, ...]) -> None:
        self._store = store
        self._bucket = bucket
        self._names = names

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int) -> tuple[str, bytes]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[str, bytes]]: ...
    def __getitem__(self, index: int | slice) -> tuple[str, bytes] | Sequence[tuple[str, bytes]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        name = self._names[index]
        return name, self._store.read(self._bucket, f"notices/{name}")


def _documents(
    documents: Documents, account_id: str, invoices: Sequence[InvoiceState]
) -> dict[str, tuple[str, bytes]]:
    found = {}
    for invoice in invoices:
        pdf = documents.invoice_pdf(account_id, invoice.document, invoice.invoice_id)
        if pdf is not None:
            found[invoice.invoice_id] = pdf
    return found


def _notify(desk: LegalDesk, case: Case, snapshot: AccountSnapshot, now: datetime, what: str) -> None:
    if not desk.legal_email:
        logger.warning(
            "No legal team email configured; case recorded without notification",
            extra={"case_id": case.case_id},
        )
        return
    name, raw = _legal_message(desk, case, snapshot, now, what)
    message_id = desk.mailer.send(desk.policy.sender, [desk.legal_email], raw, None)
    entry = LogEntry(
        EventType.LEGAL_NOTIFIED,
        f"{case.case_id}#{what}#{case.balance}",
        {
            "case_id": case.case_id,
            "to": desk.legal_email,
            "eml": name,
            "message_id": message_id,
            "reason": what,
            "balance": format_amount(case.balance, case.currency),
        },
    )
    # After case_opened (or payment_applied) logged at the same instant.
    desk.books.log.log(snapshot.account_id, now, [entry], seq=100)
    logger.info("Legal team notified", extra={"case_id": case.case_id, "reason": what})  # never the link


def _legal_message(
    desk: LegalDesk, case: Case, snapshot: AccountSnapshot, now: datetime, what: str
) -> tuple[str, bytes]:
    """The legal team's email (file name, raw bytes), its copy already archived."""
    hours = max(1, min(desk.link_hours, MAX_LINK_HOURS))
    link = desk.presign(desk.legal_bucket, case.packet_key, hours * 3600) if desk.presign else None
    name = eml_name(now, snapshot.account_id, case.currency, f"legal-{what}")

    def message(shown: PacketLink | None) -> bytes:
        return build_message(
            rendered=_legal_email(desk.policy, case, snapshot, shown, what),
            sender=desk.policy.sender,
            to=[desk.legal_email or ""],
            reply_to=None,
            sent_at=now,
            message_id=f"<{name.removesuffix('.eml')}@dunning>",
            headers={"X-Dunning-Case": case.case_id},
        )

    raw = message(link)
    # The archive keeps what was sent, less the link itself (a presigned URL is a bearer credential).
    withheld = PacketLink(WITHHELD, link.expires_at, secret=False) if link and link.secret else link
    desk.archive.put(f"notices/{name}", raw if withheld is link else message(withheld))
    return name, raw


# --- the opening email: at most once -------------------------------------------------------------------

NOTIFY_SENDING = "sending"
NOTIFY_SENT = "sent"
NOTIFY_UNCONFIRMED = "unconfirmed"
NOTIFY_FAILED = "failed"
LEGAL_STAGE = "legal_handoff"  # the stage named by notice_unconfirmed / notice_failed about the opening email
# legal_notified comes after case_opened when both are logged at the same instant.
_NOTIFIED_SEQ = 100


class CaseNotRecorded(RuntimeError):
    """The legal team cannot be told about a case whose packet and record are not stored yet."""


def notify_opened(desk: LegalDesk, snapshot: AccountSnapshot, case_id: str, now: datetime) -> dict[str, Any]:
    """Email the legal team about a new case, at most once (see the module docstring).

    Returns {"notified": bool, "reason": ..., "settled": bool}; settled is False only when SES refused the
    email (the next day's scan tries again). Raises SendThrottled when SES accepted nothing and a retry may
    send, CaseNotRecorded when the hand-off has not stored the case yet."""
    item = desk.books.cases.case(case_id)
    if item is None:
        raise CaseNotRecorded(case_id)
    status = item.get("notify_status")
    if status == NOTIFY_SENT:
        return {"notified": True, "reason": "already_sent", "settled": True}
    if status == NOTIFY_UNCONFIRMED:
        return {"notified": False, "reason": "unconfirmed", "settled": True}
    if status == NOTIFY_SENDING:
        # An earlier attempt reserved the email and did not finish. legal_notified logged means SES accepted
        # it and only the acknowledgement was lost; otherwise nobody knows.
        if _notified_event(desk, snapshot.account_id, item) is not None:
            desk.books.cases.update_case(case_id, {"notify_status": NOTIFY_SENT})
            return {"notified": True, "reason": "already_sent", "settled": True}
        return _unconfirmed(desk, snapshot.account_id, item, "an earlier attempt stopped after reserving it")
    if not desk.legal_email:
        logger.warning(
            "No legal team email configured; case recorded without notification", extra={"case_id": case_id}
        )
        return {"notified": False, "reason": "no_legal_email", "settled": True}
    case = Case.from_item(item)
    name, raw = _legal_message(desk, case, snapshot, now, "opened")
    reserved = {
        "notify_status": NOTIFY_SENDING,
        "notified_at": rfc3339(now),
        "notify_eml": name,
        "notify_to": desk.legal_email,
        "notify_balance": format_amount(case.balance, case.currency),
    }
    if not desk.books.cases.update_case(case_id, reserved, when=(None, NOTIFY_FAILED)):
        return {"notified": False, "reason": "already_attempted", "settled": True}
    item = {**item, **reserved}
    try:
        message_id = desk.mailer.send(desk.policy.sender, [desk.legal_email], raw, None)
    except SendThrottled:
        # SES accepted nothing: free the reservation so that the state machine's retry may send.
        desk.books.cases.update_case(case_id, {"notify_status": None}, when=(NOTIFY_SENDING,))
        raise
    except SendUnconfirmed as exc:
        return _unconfirmed(desk, snapshot.account_id, item, str(exc))
    except SendRejected as exc:
        return _refused(desk, snapshot.account_id, item, now, str(exc))
    # SES has the message. Logged first, acknowledged after: a retry that finds the reservation still
    # `sending` and the event logged knows that it went out.
    desk.books.log.log(snapshot.account_id, now, [_notified_entry(item, message_id)], _NOTIFIED_SEQ)
    desk.books.cases.update_case(case_id, {"notify_status": NOTIFY_SENT, "message_id": message_id})
    logger.info("Legal team notified", extra={"case_id": case_id, "reason": "opened"})  # never the link
    return {"notified": True, "reason": "sent", "settled": True}


def _notified_entry(item: Mapping[str, Any], message_id: str) -> LogEntry:
    return LogEntry(
        EventType.LEGAL_NOTIFIED,
        f"{item['case_id']}#opened",
        {
            "case_id": item["case_id"],
            "to": item["notify_to"],
            "eml": item["notify_eml"],
            "message_id": message_id,
            "reason": "opened",
            "balance": item["notify_balance"],
        },
    )


def _notified_event(desk: LegalDesk, account_id: str, item: Mapping[str, Any]) -> dict[str, Any] | None:
    at = datetime.fromisoformat(item["notified_at"])
    return desk.books.log.logged_event(account_id, at, _notified_entry(item, ""), _NOTIFIED_SEQ)


def _unconfirmed(desk: LegalDesk, account_id: str, item: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """SES may have the email: never send it again; say so loudly, for a person to check (the archived
    copy is `eml`)."""
    case_id = item["case_id"]
    entry = LogEntry(
        EventType.NOTICE_UNCONFIRMED,
        f"{case_id}#opened",
        {
            "stage": LEGAL_STAGE,
            "case_id": case_id,
            "to": [item["notify_to"]],
            "eml": item["notify_eml"],
            "reason": reason[:1000],
        },
    )
    desk.books.log.log(account_id, datetime.fromisoformat(item["notified_at"]), [entry], _NOTIFIED_SEQ)
    desk.books.cases.update_case(
        case_id,
        {"notify_status": NOTIFY_UNCONFIRMED, "notify_error": reason[:1000]},
        when=(NOTIFY_SENDING,),
    )
    desk.books.counter.count(NOTICE_UNCONFIRMED)
    logger.warning(
        "SES may or may not have accepted the legal team's email; it is not sent again",
        extra={"case_id": case_id, "eml": item["notify_eml"], "reason": reason[:1000]},
    )
    return {"notified": False, "reason": "unconfirmed", "settled": True}


def _refused(
    desk: LegalDesk, account_id: str, item: Mapping[str, Any], now: datetime, reason: str
) -> dict[str, Any]:
    """SES refused the email: nothing went out, and the reservation may be taken again (next day's scan)."""
    case_id = item["case_id"]
    desk.books.cases.update_case(case_id, {"notify_status": NOTIFY_FAILED, "notify_error": reason[:1000]})
    entry = LogEntry(
        EventType.NOTICE_FAILED,
        f"{case_id}#opened#{rfc3339(now)}",
        {"stage": LEGAL_STAGE, "case_id": case_id, "reason": reason[:1000]},
    )
    desk.books.log.log(account_id, now, [entry], _NOTIFIED_SEQ)
    desk.books.counter.count(NOTICE_FAILED)
    logger.warning(
        "SES refused the legal team's email; the next daily scan tries again",
        extra={"case_id": case_id, "reason": reason[:1000]},
    )
    return {"notified": False, "failed": True, "reason": reason[:1000], "settled": False}


def link_expiry_text(expires_at: datetime, business_timezone: str) -> str:
    """'2027-05-10 14:00 UTC (17:00 Europe/Bucharest)': when a link stops working, for the legal team."""
    utc = expires_at.astimezone(ZoneInfo("UTC"))
    text = f"{utc:%Y-%m-%d %H:%M} UTC"
    if business_timezone != "UTC":
        local = expires_at.astimezone(ZoneInfo(business_timezone))
        day = "" if local.date() == utc.date() else f"{local:%Y-%m-%d} "
        text += f" ({day}{local:%H:%M} {business_timezone})"
    return text


def _legal_email(
    policy: Policy, case: Case, snapshot: AccountSnapshot, link: PacketLink | None, what: str
) -> RenderedNotice:
    # Stripped again here: profiles imported before ingest stripped bidi controls still hold them.
    customer = strip_bidi_controls(str(snapshot.profile.get("customer_name", snapshot.account_id)))
    amount = f"{format_amount(case.amount_due, case.currency)} {case.currency}"
    balance = f"{format_amount(case.balance, case.currency)} {case.currency}"
    if what == "opened":
        subject = f"New collections case {case.case_id}: {customer}, {amount}"
        opening = (
            f"The collections ladder for {customer} (account {snapshot.account_id}) is exhausted and the "
            f"debt is handed to you as case {case.case_id}."
        )
    else:
        subject = f"Case {case.case_id}: balance changed to {balance}"
        opening = f"A payment was received on case {case.case_id} ({customer}); the balance is now {balance}."
    lines = [
        opening,
        "",
        f"Amount handed over: {amount}",
        f"Balance now: {balance}",
        f"Packet SHA-256: {case.packet_sha256} ({case.packet_bytes} bytes)",
        "",
        *(
            [
                "Download the case packet (this link works until "
                f"{link_expiry_text(link.expires_at, policy.business_timezone)}):",
                link.url,
                "",
                "After that, or if the link does not work: dunning cases download " + case.case_id,
            ]
            if link
            else ["Download the case packet with the dunning CLI: dunning cases download " + case.case_id]
        ),
        "",
        f"-- {policy.business.name}",
    ]
    text = "\n".join(lines) + "\n"
    url = link.url if link else None
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in lines if line and line != url)
    anchor = ""
    if link and link.url == WITHHELD:
        anchor = f"<p>{html.escape(WITHHELD)}</p>"
    elif link:
        anchor = f'<p><a href="{html.escape(link.url, quote=True)}">Download the case packet</a></p>'
    body = (
        f'<!DOCTYPE html><html lang="en" dir="ltr"><body style="font-family:Arial,sans-serif">{paragraphs}'
        f"{anchor}</body></html>"
    )
    return RenderedNotice(subject=" ".join(subject.split()), text=text, html=body, lang="en", direction="ltr")


def payments_received(desk: LegalDesk, accounts: set[str], at: datetime) -> None:
    """After an upload of payments: every account among them that is with the legal team gets its case
    balance updated, and the legal team an email."""
    for account_id in sorted(accounts):
        states = desk.books.ladders.load(account_id).states
        for currency, state in sorted(states.items(), key=lambda pair: pair[0] or ""):
            if state.status != "legal" or not state.case_id:
                continue
            case = get_case(desk.books.cases, state.case_id)
            if case is not None:
                view = desk.books.ladders.load(account_id, currency or case.currency)
                balance_changed(desk, view, case, at)
