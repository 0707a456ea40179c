"""The legal hand-off: the case packet, the case record, and the legal team's emails.

At the last rung the escalate function gathers the account's whole file (invoices, payments, every notice
exactly as SES received it, the contact log, the policy), writes the case packet to the legal bucket,
records the case, and emails the legal team a summary with a short-lived download link. A payment that
arrives later is still applied by the ingest; the case record follows the balance and the legal team is
told. Download links are never logged, and the archived copy of a legal email has its link withheld: whoever
holds a link can download the packet until it expires.

    CASE item   PK = CASES, SK = <case_id>   account_id, status, created_at, amount_due, currency,
                                              balance, packet_key, packet_sha256, packet_bytes, updated_at
"""

from __future__ import annotations

import hashlib
import html
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, BinaryIO, cast, overload
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from dunning import workflow
from dunning.account import AccountSnapshot, InvoiceState
from dunning.clock import rfc3339
from dunning.events import EventType
from dunning.ladder import LogEntry
from dunning.ledger import Ledger
from dunning.money import format_amount
from dunning.notices.mime import build_message
from dunning.notices.render import ChargeLine, RenderedNotice
from dunning.policy import Policy, policy_json
from dunning.sending import Archive, Documents, Mailer, business_of, eml_name
from dunning.storage import ObjectStore

logger = Logger(service="dunning", child=True)

CASES_PK = "CASES"
MAX_LINK_HOURS = 168  # SigV4 presigned URLs cannot outlive 7 days
WITHHELD = "[link withheld from this copy: it grants access to the case packet]"


@dataclass(frozen=True)
class PacketLink:
    """A download link and the instant it stops working. A secret link (a presigned URL) is a credential:
    it goes to the legal team only, never into a log or an archived copy."""

    url: str
    expires_at: datetime
    secret: bool = True


# (bucket, key, seconds wanted) -> the link; its stated expiry may be sooner than wanted, never later.
PacketLinkSigner = Callable[[str, str, int], PacketLink]


@dataclass(frozen=True)
class LegalDesk:
    """What the hand-off needs; the escalate handler wires the AWS-backed implementations."""

    ledger: Ledger
    store: ObjectStore
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

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Case:
        return cls(
            case_id=item["SK"],
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
        )


def packet_key(case_id: str) -> str:
    return f"cases/{case_id}.zip"


def get_case(ledger: Ledger, case_id: str) -> Case | None:
    item = ledger.get(CASES_PK, case_id)
    return Case.from_item(item) if item else None


def list_cases(ledger: Ledger) -> list[Case]:
    return [Case.from_item(item) for item in ledger.query_partition(CASES_PK)]


def open_case(
    desk: LegalDesk, snapshot: AccountSnapshot, case_id: str, charges: Sequence[ChargeLine], now: datetime
) -> Case:
    """Build and store the packet, record the case, and tell the legal team (idempotent per case id)."""
    from dunning.packets import CaseFile, write_packet  # fpdf2 is imported only where a packet is built

    existing = get_case(desk.ledger, case_id)
    if existing is not None:
        return existing
    invoices = tuple(snapshot.open_invoices())
    currency = invoices[0].currency if invoices else "EUR"
    owed = sum((i.outstanding for i in invoices if i.currency == currency), Decimal(0))
    events = tuple(desk.ledger.events(snapshot.account_id))
    sent = [event["eml"] for event in events if event["type"] == "notice_sent" and event.get("eml")]
    case_file = CaseFile(
        case_id=case_id,
        account_id=snapshot.account_id,
        created_at=now,
        currency=currency,
        amount_due=owed,
        charges=tuple(charges),
        customer=dict(snapshot.profile),
        business=business_of(desk.policy),
        invoices=invoices,
        events=events,
        notices=_ArchivedNotices(desk.store, desk.ingest_bucket, tuple(sent)),
        documents=_documents(desk.documents, invoices),
        policy_json=policy_json(desk.policy),
    )
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as buffer:
        write_packet(case_file, cast(BinaryIO, buffer))
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
        "PK": CASES_PK,
        "SK": case_id,
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
    }
    desk.ledger.put_new(item)
    case = Case.from_item(item)
    _notify(desk, case, snapshot, now, "opened")
    return case


def balance_changed(desk: LegalDesk, snapshot: AccountSnapshot, case: Case, now: datetime) -> None:
    """A payment reached an account that is with the legal team: update the case and tell them."""
    balance = sum(
        (i.outstanding for i in snapshot.open_invoices() if i.currency == case.currency), Decimal(0)
    )
    if balance == case.balance:
        return
    desk.ledger.update(
        (CASES_PK, case.case_id),
        UpdateExpression="SET balance = :balance, updated_at = :now, #status = :status",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":balance": balance,
            ":now": rfc3339(now),
            ":status": "open" if balance > 0 else "settled",
        },
    )
    updated = Case(**{**case.__dict__, "balance": balance, "updated_at": rfc3339(now)})
    _notify(desk, updated, snapshot, now, "balance_changed")


class _ArchivedNotices(Sequence[tuple[str, bytes]]):
    """The account's sent notices, read from the archive one at a time as the packet is written."""

    def __init__(self, store: ObjectStore, bucket: str, names: tuple[str, ...]) -> None:
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


def _documents(documents: Documents, invoices: Sequence[InvoiceState]) -> dict[str, tuple[str, bytes]]:
    found = {}
    for invoice in invoices:
        pdf = documents.invoice_pdf(invoice.document, invoice.invoice_id)
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
    hours = max(1, min(desk.link_hours, MAX_LINK_HOURS))
    link = desk.presign(desk.legal_bucket, case.packet_key, hours * 3600) if desk.presign else None
    name = eml_name(now, snapshot.account_id, f"legal-{what}")

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
    workflow.log(desk.ledger, snapshot.account_id, now, [entry], seq=100)
    logger.info("Legal team notified", extra={"case_id": case.case_id, "reason": what})  # never the link


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
    customer = str(snapshot.profile.get("customer_name", snapshot.account_id))
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
        snapshot = workflow.load(desk.ledger, account_id)
        if snapshot.state.status != "legal" or not snapshot.state.case_id:
            continue
        case = get_case(desk.ledger, snapshot.state.case_id)
        if case is not None:
            balance_changed(desk, snapshot, case, at)
