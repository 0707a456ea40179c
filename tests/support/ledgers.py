"""Random account ledgers walked to the legal hand-off, for the agreement of what is owed (issue 10, item 1).

An account has 1-4 invoices in one or two currencies (EUR, GBP, RON, USD, JPY with no decimals, BHD with
three), due in 2025-2026, each with what the accounting export reported paid, dated feed payments (some
partial, some paying more than the invoice: the excess is a credit on the account), and maybe a dispute
(maybe resolved later). The policy has random late fees (flat per currency, or a percentage) on some of the
stages firm_notice .. legal_handoff, statutory interest on or off, charges waived when paid or not; the
customer is a business or a consumer in one of a few time zones.

`walk` plays each currency's ladder the way the product does, with the product's own code:
- each notice (maybe a firm notice and a demand letter, then the final notice) is computed as
  sending._send computes it (owed on the customer's local send date, the invoices the ladder puts in it,
  charges when the stage is in charges.show_on) and stored as begin_send + finish_send store it (the
  NOTICE item with the notice dict and its charge_lines), with its notice_sent event;
- at the hand-off, escalation's own hand-off step (_open_case) computes the claim, opens the case
  (legal.open_case builds the packet with packets.write_packet and records the case) and logs
  case_opened, against an in-memory ledger and object store.
The ledger holds, at each instant, only what had been uploaded by then: an invoice from its import, a
payment from when the feed recorded it (a few days after it was paid), an action from its date.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from dunning.adapters.keys import account_pk, action_sk, invoice_sk, notice_key, payment_sk
from dunning.adapters.ledger import event_item
from dunning.domain.account import AccountSnapshot, InvoiceState
from dunning.domain.calendar import local_date
from dunning.domain.clock import rfc3339
from dunning.domain.currencies import minor_units
from dunning.domain.events import Event
from dunning.domain.money import format_amount
from dunning.domain.naming import case_id_for
from dunning.domain.notices import SENT, NoticeId, sent_entry
from dunning.domain.owed import Owed, charge_to_json, owed
from dunning.domain.policy import Policy
from dunning.packets.archive import verify_packet
from dunning.packets.case import MANIFEST, STATEMENT
from dunning.ports import Handoff as Progress
from dunning.services import escalation
from dunning.services.legal import Case, LegalDesk, packet_key
from tests.support.fakes import FakeArchive, FakeDocuments, FakeMailer, FakeObjects, fake_books

ACCOUNT = "ACC-1"
EPISODE = 0
EXECUTION = "exec-agreement"
INGEST_BUCKET = "ingest"
LEGAL_BUCKET = "legal"
CURRENCIES = ("EUR", "GBP", "RON", "USD", "JPY", "BHD")
# West of UTC, on it and east of it (Auckland: a hand-off in the afternoon UTC is the next day there).
ZONES = ("Europe/London", "Europe/Bucharest", "America/New_York", "Asia/Tokyo", "Pacific/Auckland")
LOCALES = ("en", "ro", "hu", "ru", "fa", "ar")
COUNTRIES = ("GB", "RO", "US", "JP", "DE")
FEE_STAGES = ("firm_notice", "demand_letter", "final_notice", "legal_handoff")
FINAL = "final_notice"
# The notices before the final one that a walk may send, and how many days before it.
EARLIER = (("firm_notice", 31), ("demand_letter", 15))


# --- what a ledger is made of ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceSpec:
    invoice_id: str
    currency: str
    amount: Decimal
    issued_on: date
    due_on: date
    reported_paid: Decimal  # the export's paid-or-credited figure, imported with the invoice

    @property
    def imported_at(self) -> datetime:
        return datetime.combine(self.issued_on, time(6), tzinfo=UTC)


@dataclass(frozen=True)
class PaymentSpec:
    payment_id: str
    invoice_id: str
    amount: Decimal
    paid_on: date
    recorded_at: datetime  # when the feed upload put it in the ledger


@dataclass(frozen=True)
class DisputeSpec:
    invoice_id: str
    on: date
    resolved_on: date | None

    def active(self, day: date) -> bool:
        return self.on <= day and (self.resolved_on is None or day < self.resolved_on)


@dataclass(frozen=True)
class AccountSpec:
    customer_type: str
    timezone: str
    locale: str
    country: str
    invoices: tuple[InvoiceSpec, ...]
    payments: tuple[PaymentSpec, ...]
    disputes: tuple[DisputeSpec, ...]
    charges: Mapping[str, Any]  # the policy's `charges` section
    final_after: int  # days from the currency's earliest due date to the final notice
    handoff_after: int  # days from the final notice to the hand-off
    handoff_hour: int  # UTC hour of the hand-off instant
    earlier: tuple[str, ...]  # the stages of EARLIER sent before the final notice

    @property
    def policy(self) -> Policy:
        return Policy.model_validate({"charges": dict(self.charges)})

    @property
    def currencies(self) -> list[str]:
        return list(dict.fromkeys(invoice.currency for invoice in self.invoices))

    def currency_of(self, invoice_id: str) -> str:
        return next(invoice.currency for invoice in self.invoices if invoice.invoice_id == invoice_id)

    def disputed_on(self, day: date) -> set[str]:
        return {dispute.invoice_id for dispute in self.disputes if dispute.active(day)}


# --- the generators ----------------------------------------------------------------------------------------


def money(units: int, currency: str) -> Decimal:
    """`units` minor units of `currency` as an amount with exactly its decimals."""
    return Decimal(units).scaleb(-minor_units(currency))


def _units(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(minor_units(currency)))


@st.composite
def _invoice(draw: st.DrawFn, number: int, currency: str) -> InvoiceSpec:
    # Whole amounts up to 50,000 (JPY up to 5,000,000) with any minor units, small ones included.
    top = 5_000_000 if currency == "JPY" else 50_000 * 10 ** minor_units(currency)
    units = draw(st.integers(1, top) | st.integers(1, 10 ** (minor_units(currency) + 2)))
    due_on = draw(st.dates(date(2025, 1, 1), date(2026, 12, 31)))
    issued_on = due_on - timedelta(days=draw(st.integers(0, 60)))
    reported = draw(st.just(0) | st.integers(0, units))
    return InvoiceSpec(
        f"INV-{number}", currency, money(units, currency), issued_on, due_on, money(reported, currency)
    )


@st.composite
def _payments(draw: st.DrawFn, invoice: InvoiceSpec) -> list[PaymentSpec]:
    units = _units(invoice.amount, invoice.currency)
    found = []
    for index in range(draw(st.integers(0, 3))):
        paid = draw(
            st.sampled_from([units - _units(invoice.reported_paid, invoice.currency)])  # the rest, exactly
            | st.integers(1, max(1, units - 1))  # partly
            | st.integers(units + 1, 2 * units + 1)  # more than the invoice
        )
        paid_on = max(invoice.issued_on, invoice.due_on + timedelta(days=draw(st.integers(-20, 260))))
        recorded = datetime.combine(paid_on + timedelta(days=draw(st.integers(0, 12))), time(13), tzinfo=UTC)
        if paid > 0:
            found.append(
                PaymentSpec(
                    f"P{index}",
                    invoice.invoice_id,
                    money(paid, invoice.currency),
                    paid_on,
                    recorded,
                )
            )
    return found


@st.composite
def _dispute(draw: st.DrawFn, invoice: InvoiceSpec) -> list[DisputeSpec]:
    if draw(st.integers(0, 3)) != 0:
        return []
    on = invoice.due_on + timedelta(days=draw(st.integers(-10, 150)))
    resolved = draw(st.none() | st.integers(1, 60))
    return [DisputeSpec(invoice.invoice_id, on, None if resolved is None else on + timedelta(days=resolved))]


@st.composite
def _flat(draw: st.DrawFn, currencies: Sequence[str]) -> dict[str, str]:
    """A flat fee per currency: those of the account and maybe others; sometimes with more decimals than
    the currency has (charged rounded)."""
    chosen = draw(st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        chosen = list(dict.fromkeys([*currencies[:1], *chosen]))
    fees = {}
    for currency in chosen:
        places = minor_units(currency) + draw(st.sampled_from([0, 0, 0, 1]))
        units = draw(st.integers(1, 100 * 10**places))
        fees[currency] = format(Decimal(units).scaleb(-places), "f")
    return fees


@st.composite
def _charges(draw: st.DrawFn, currencies: Sequence[str]) -> dict[str, Any]:
    fees = []
    for stage in FEE_STAGES:
        kind = draw(st.sampled_from(["none", "none", "flat", "percent"]))
        if kind == "flat":
            fees.append({"stage": stage, "flat": draw(_flat(currencies))})
        elif kind == "percent":
            fees.append(
                {"stage": stage, "percent": format(Decimal(draw(st.integers(1, 1500))).scaleb(-2), "f")}
            )
    charges: dict[str, Any] = {
        "late_fees": fees,
        "statutory_interest": draw(st.sampled_from(["on", "none"])),
        "waive_when_paid": draw(st.booleans()),
    }
    if draw(st.integers(0, 9)) == 0:
        charges["show_on"] = ["firm_notice", "demand_letter"]  # the final notice shows no charges
    return charges


@st.composite
def accounts(draw: st.DrawFn) -> AccountSpec:
    currencies = draw(st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=2, unique=True))
    count = draw(st.integers(max(1, len(currencies)), 4))
    # Every currency drawn has at least one invoice.
    chosen = [*currencies, *(draw(st.sampled_from(currencies)) for _ in range(count - len(currencies)))]
    invoices = [draw(_invoice(number, currency)) for number, currency in enumerate(chosen, start=1)]
    payments = [payment for invoice in invoices for payment in draw(_payments(invoice))]
    disputes = [dispute for invoice in invoices for dispute in draw(_dispute(invoice))]
    return AccountSpec(
        customer_type=draw(st.sampled_from(["business", "business", "consumer"])),
        timezone=draw(st.sampled_from(ZONES)),
        locale=draw(st.sampled_from(LOCALES)),
        country=draw(st.sampled_from(COUNTRIES)),
        invoices=tuple(invoices),
        payments=tuple(payments),
        disputes=tuple(disputes),
        charges=draw(_charges(currencies)),
        final_after=draw(st.integers(45, 150)),
        handoff_after=draw(st.integers(14, 90)),
        handoff_hour=draw(st.integers(9, 16)),
        earlier=tuple(stage for stage, _ in EARLIER if draw(st.booleans())),
    )


# --- the ledger items, as the ingest and the workflow store them ------------------------------------------


def profile_item(spec: AccountSpec) -> dict[str, Any]:
    return {
        "PK": account_pk(ACCOUNT),
        "SK": "PROFILE",
        "kind": "account",
        "account_id": ACCOUNT,
        "customer_name": "Agreement Test Ltd",
        "customer_type": spec.customer_type,
        "timezone": spec.timezone,
        "locale": spec.locale,
        "country": spec.country,
        "emails": ["ap@agreement.example.com"],
    }


def invoice_item(invoice: InvoiceSpec) -> dict[str, Any]:
    imported = rfc3339(invoice.imported_at)
    return {
        "PK": account_pk(ACCOUNT),
        "SK": invoice_sk(invoice.invoice_id),
        "kind": "invoice",
        "account_id": ACCOUNT,
        "invoice_id": invoice.invoice_id,
        "currency": invoice.currency,
        "amount": invoice.amount,
        "amount_paid": invoice.reported_paid,
        "status": "open",
        "issued_on": invoice.issued_on.isoformat(),
        "due_on": invoice.due_on.isoformat(),
        "imported_at": imported,
        "paid_reported": [{"at": imported, "paid": invoice.reported_paid}],
    }


def payment_item(payment: PaymentSpec, currency: str) -> dict[str, Any]:
    return {
        "PK": account_pk(ACCOUNT),
        "SK": payment_sk(payment.invoice_id, payment.payment_id),
        "kind": "payment",
        "account_id": ACCOUNT,
        "invoice_id": payment.invoice_id,
        "amount": payment.amount,
        "currency": currency,
        "paid_on": payment.paid_on.isoformat(),
        "recorded_at": rfc3339(payment.recorded_at),
    }


def action_items(dispute: DisputeSpec, known: date) -> list[dict[str, Any]]:
    """The dispute (and its resolution) as action items, those dated on or before `known`."""
    items = []
    for action, on in (("dispute", dispute.on), ("resolve", dispute.resolved_on)):
        if on is not None and on <= known:
            items.append(
                {
                    "PK": account_pk(ACCOUNT),
                    "SK": action_sk(on, f"{action}-{dispute.invoice_id}"),
                    "kind": "action",
                    "account_id": ACCOUNT,
                    "action": action,
                    "on": on.isoformat(),
                    "invoice_id": dispute.invoice_id,
                }
            )
    return items


def facts_known_at(spec: AccountSpec, at: datetime) -> list[dict[str, Any]]:
    """The account's uploaded facts in the ledger at `at`: profile, invoices imported, payments recorded,
    actions dated by the customer's local date."""
    today = local_date(at, spec.timezone)
    items = [profile_item(spec)]
    items += [invoice_item(invoice) for invoice in spec.invoices if invoice.imported_at <= at]
    items += [
        payment_item(payment, spec.currency_of(payment.invoice_id))
        for payment in spec.payments
        if payment.recorded_at <= at
    ]
    for dispute in spec.disputes:
        items += action_items(dispute, today)
    return items


# --- in-memory stand-ins for DynamoDB and S3 ---------------------------------------------------------------


# --- the walk ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentNotice:
    stage: str
    at: datetime
    on: date  # the customer's local send date
    invoices: tuple[InvoiceState, ...]  # the ladder's decision: what the notice is about
    due: Owed  # what owed() said, as sending._send asked it
    notice: dict[str, Any]  # the notice as stored (NOTICE item's `notice`, notice_sent's fields)
    item: dict[str, Any]  # the NOTICE item
    event: Event  # notice_sent


@dataclass(frozen=True)
class Handoff:
    at: datetime
    on: date  # the customer's local date of the hand-off instant
    snapshot: AccountSnapshot  # the currency's view the hand-off read
    claim: Owed  # escalation.case_claim on the ledger of the hand-off
    record: Mapping[str, Any]  # the CASE item
    case: Case
    case_opened: Mapping[str, Any]  # the event as the contact log holds it
    manifest: Mapping[str, Any]
    statement: list[dict[str, str]]
    packet: bytes
    problems: list[str]  # verify_packet's


@dataclass(frozen=True)
class Walk:
    """One currency's ladder of one account: the notices sent, then the hand-off (if the debt got there)."""

    currency: str
    notices: list[SentNotice] = field(default_factory=list)
    handoff: Handoff | None = None

    @property
    def final(self) -> SentNotice | None:
        return next((notice for notice in self.notices if notice.stage == FINAL), None)


def _instant(day: date, hour: int, timezone: str) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def send(
    spec: AccountSpec, items: list[dict[str, Any]], currency: str, stage: str, at: datetime
) -> SentNotice | None:
    """The notice of `stage` as sending._send makes it at `at` (None: nothing due to put in it)."""
    policy = spec.policy
    snapshot = AccountSnapshot.from_items(ACCOUNT, items, currency)
    today = local_date(at, snapshot.timezone)
    # The ladder's decision: every chaseable invoice already due on the send day (ladder._in_notice).
    invoices = [invoice for invoice in snapshot.chaseable_invoices(today) if invoice.due_on <= today]
    if not invoices:
        return None
    due = owed(
        snapshot,
        currency,
        on=today,
        policy=policy,
        stage=stage,
        invoice_ids=[invoice.invoice_id for invoice in invoices],
        with_charges=stage in policy.charges.show_on,
    )
    name = f"{at.strftime('%Y%m%dT%H%M%SZ')}-{ACCOUNT}-{currency}-{stage}.eml"
    notice = {
        "stage": stage,
        "invoice_ids": due.invoice_ids,
        "amount_due": format_amount(due.amount_due, currency),
        "charges": format_amount(due.charges_total, currency),
        "total_due": format_amount(due.total_due, currency),
        "currency": currency,
        "to": ["ap@agreement.example.com"],
        "eml": name,
        "charge_lines": [charge_to_json(line) for line in due.charges],
    }
    message_id = f"ses-{currency}-{stage}"
    pk, sk = notice_key(ACCOUNT, currency, EPISODE, stage)
    item = {  # begin_send's reservation, then finish_send's `sent`
        "PK": pk,
        "SK": sk,
        "kind": "notice",
        "account_id": ACCOUNT,
        "currency": currency,
        "episode": EPISODE,
        "stage": stage,
        "status": SENT,
        "started_at": rfc3339(at),
        "archive_key": f"notices/{name}",
        "notice": notice,
        "attempts": 1,
        "message_id": message_id,
        "recipients": 1,
    }
    entry = sent_entry(NoticeId(ACCOUNT, currency, EPISODE, stage), notice, message_id)
    event = Event(at, entry.type, ACCOUNT, entry.data, identity=entry.identity)
    return SentNotice(stage, at, today, tuple(invoices), due, notice, item, event)


def walk(spec: AccountSpec) -> list[Walk]:
    """Each currency's ladder: the notices, then the hand-off. The currencies' ladders run one after the
    other (each reads only its own notices; the contact log holds both)."""
    sent: list[SentNotice] = []
    walks = []
    for currency in spec.currencies:
        ladder = Walk(currency)
        start = min(invoice.due_on for invoice in spec.invoices if invoice.currency == currency)
        final_on = start + timedelta(days=spec.final_after)
        plan = [
            (stage, final_on - timedelta(days=before)) for stage, before in EARLIER if stage in spec.earlier
        ]
        for stage, day in [*plan, (FINAL, final_on)]:
            at = _instant(day, 10, spec.timezone)
            notice = send(spec, _known(spec, at, sent), currency, stage, at)
            if notice is not None:
                ladder.notices.append(notice)
                sent.append(notice)
        if ladder.final is not None:
            at = datetime.combine(final_on + timedelta(days=spec.handoff_after), time(spec.handoff_hour), UTC)
            ladder = Walk(currency, ladder.notices, hand_off(spec, _known(spec, at, sent), currency, at))
        walks.append(ladder)
    return walks


def _known(spec: AccountSpec, at: datetime, sent: Sequence[SentNotice]) -> list[dict[str, Any]]:
    earlier = [notice for notice in sent if notice.at < at]
    return [
        *facts_known_at(spec, at),
        *(notice.item for notice in earlier),
        *(event_item(notice.event) for notice in earlier),
    ]


def hand_off(spec: AccountSpec, items: list[dict[str, Any]], currency: str, at: datetime) -> Handoff | None:
    """escalation's hand-off of `currency` at `at` (None when the ladder would not hand off: nothing
    chaseable is left, the account is settled or disputed)."""
    policy = spec.policy
    books = fake_books(items)
    snapshot = books.ladders.load(ACCOUNT, currency)
    claim = escalation.case_claim(snapshot, policy, at)
    if not claim.invoices:
        return None
    store = FakeObjects(
        {
            (INGEST_BUCKET, item["archive_key"]): b"Subject: a notice\r\n\r\nas SES received it\r\n"
            for item in items
            if item.get("kind") == "notice"
        }
    )
    mailer, archive = FakeMailer(), FakeArchive()
    desk = LegalDesk(
        books=books,
        store=store,
        ingest_bucket=INGEST_BUCKET,
        legal_bucket=LEGAL_BUCKET,
        archive=archive,
        documents=FakeDocuments(),  # every invoice of the case gets a generated copy
        mailer=mailer,
        policy=policy,
        presign=None,
        legal_email=None,
    )
    case_id = case_id_for(ACCOUNT, currency, EPISODE)
    request = escalation.StepRequest(ACCOUNT, EXECUTION, currency)
    progress = Progress(case_id, at, open=True, owner=EXECUTION)
    escalation._open_case(books, policy, request, progress, desk)
    assert not mailer.sent and not archive.objects, "the hand-off itself sends and archives nothing"
    record = books.cases.case(case_id)
    assert record is not None, "the hand-off recorded no case"
    opened = [event for event in books.log.events(ACCOUNT) if event["type"] == "case_opened"]
    packet = store.objects[(LEGAL_BUCKET, packet_key(case_id))]
    with zipfile.ZipFile(io.BytesIO(packet)) as zf:
        manifest = json.loads(zf.read(MANIFEST))
        statement = list(csv.DictReader(io.StringIO(zf.read(STATEMENT).decode())))
    return Handoff(
        at=at,
        on=local_date(at, spec.timezone),
        snapshot=snapshot,
        claim=claim,
        record=dict(record),
        case=Case.from_item(record),
        case_opened=opened[-1],
        manifest=manifest,
        statement=statement,
        packet=packet,
        problems=verify_packet(io.BytesIO(packet)),
    )
