"""What one chunk of payment rows knows of the ledger, how a payment on account is allocated, and how a
payment row is identified (so that a re-delivery or an overlapping export is recognised).

An invoice is named (account_id, invoice_id); a payment record is one entry of its invoice, its id derived
from the row: its content and occurrence in the file, its payment_id, or (a part of a payment on account)
its allocation and invoice.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dunning.domain import balances
from dunning.domain.account import InvoiceState, feed_payment, invoice_state, with_credits
from dunning.domain.models import InvoiceStatus, Payment
from dunning.domain.money import to_minor_units
from dunning.ingest import formats
from dunning.ingest.records import Part
from dunning.ports import IngestLedger, StoredRecord

# (account_id, invoice_id)
InvoiceKey = tuple[str, str]

_CHARGEABLE = (InvoiceStatus.OPEN.value, InvoiceStatus.PAID.value)


@dataclass
class AccountView:
    """An account that received a payment on account: its invoices (what they owe is `account_owed`), its
    credit notes, and the allocations already recorded for rows without payment_id, by allocation_id."""

    invoices: tuple[InvoiceState, ...]
    allocations: dict[str, StoredRecord]
    credit_notes: tuple[balances.CreditNote, ...] = ()


@dataclass
class PaymentChunk:
    """What one chunk of payment rows needs from the ledger, read up front, and kept current as they are
    applied."""

    ledger: IngestLedger
    invoices: dict[InvoiceKey, StoredRecord]
    refs: dict[tuple[str, str], StoredRecord]  # by (account_id, payment_id)
    legal: set[tuple[str, str | None]]  # (account_id, currency) of the ladders with the legal team; None: all
    occurrences: Counter[bytes]  # of each payment content in the file
    reversals: Counter[bytes]  # of each reversal content in the file
    # The payments that count towards each invoice, by entry: read once per invoice (or with its account's
    # view), then kept current by `add` and `remove` (keyed by entry: never counted twice).
    feeds: dict[InvoiceKey, dict[str, balances.FeedPayment]] = field(default_factory=dict)
    touched: set[InvoiceKey] = field(default_factory=set)
    accounts: dict[str, AccountView] = field(default_factory=dict)  # by account_id: accounts paid on account

    def with_legal(self, account_id: str, currency: str) -> bool:
        """The account's debt in `currency` is with the legal team (its hand-off took it off the index)."""
        return (account_id, currency) in self.legal or (account_id, None) in self.legal

    def feed(self, key: InvoiceKey) -> dict[str, balances.FeedPayment]:
        if key not in self.feeds:
            payments = self.ledger.payments(*key)
            self.feeds[key] = {
                entry: feed_payment(item) for entry, item in payments.items() if item.get("kind") == "payment"
            }
        return self.feeds[key]

    def state(
        self,
        key: InvoiceKey,
        leaving_out: Collection[str] = (),
        adding: Sequence[balances.FeedPayment] = (),
    ) -> InvoiceState:
        """The invoice as it stands (leaving out the payment entries `leaving_out`, with `adding`
        recorded)."""
        payments = [payment for entry, payment in self.feed(key).items() if entry not in leaving_out]
        return invoice_state(self.invoices[key], [*payments, *adding])

    def owed(self, key: InvoiceKey, leaving_out: Collection[str] = ()) -> Decimal:
        """What the invoice owes by its own export figure and payments (InvoiceState.own): the due index's
        test, which leaves account credits out."""
        return self.state(key, leaving_out).own.outstanding

    def credit_changes(
        self,
        leaving: Mapping[InvoiceKey, Collection[str]],
        adding: Mapping[InvoiceKey, Sequence[balances.FeedPayment]],
    ) -> dict[InvoiceKey, Decimal]:
        """How each invoice's credit (what it received beyond its amount) would change if the payment entries
        `leaving` stopped counting and `adding` were recorded."""
        return {
            key: self.state(key, leaving.get(key, ()), adding.get(key, ())).own.credit
            - self.state(key).own.credit
            for key in sorted(set(leaving) | set(adding))
        }

    def reread_ref(self, key: tuple[str, str]) -> None:
        """Another delivery changed the reference since it was read: read it again."""
        current = self.ledger.payment_ref(*key)
        if current is None:
            self.refs.pop(key, None)
        else:
            self.refs[key] = current

    def add(self, key: InvoiceKey, entry: str, payment: balances.FeedPayment) -> None:
        self.feed(key)[entry] = payment
        self.touched.add(key)

    def remove(self, key: InvoiceKey, entry: str) -> None:
        self.feed(key).pop(entry, None)
        self.touched.add(key)


def account_owed(
    chunk: PaymentChunk, account_id: str, view: AccountView, leaving: Mapping[InvoiceKey, Collection[str]]
) -> dict[str, Decimal]:
    """What each invoice of the account owes with the account's credits applied, as AccountSnapshot
    computes it (leaving out the payment entries `leaving`: the payment being corrected)."""
    states = [
        chunk.state((account_id, invoice.invoice_id), leaving.get((account_id, invoice.invoice_id), ()))
        for invoice in view.invoices
    ]
    return {state.invoice_id: state.outstanding for state in with_credits(states, view.credit_notes)}


def credited(
    chunk: PaymentChunk,
    account_id: str,
    parts: list[Part],
    leaving: Mapping[InvoiceKey, Collection[str]],
    paid_on: date,
    at: datetime,
) -> tuple[list[Part], dict[InvoiceKey, Decimal]]:
    """`parts` with the credit each makes (the change of its invoice's credit, balances.py, once the
    payment entries `leaving` stop counting), and the credit changes of the invoices the payment leaves."""
    adding = {
        (account_id, part.invoice_id): [balances.FeedPayment(paid_on, part.amount, at)] for part in parts
    }
    changes = chunk.credit_changes(leaving, adding)
    with_credit = [replace(part, credit=changes[(account_id, part.invoice_id)]) for part in parts]
    return with_credit, {key: change for key, change in changes.items() if key not in adding and change}


def allocate(
    chunk: PaymentChunk,
    account_id: str,
    view: AccountView,
    currency: str,
    amount: Decimal,
    leaving: Mapping[InvoiceKey, Collection[str]],
) -> list[Part]:
    """A payment on account split over the open invoices of its currency, oldest due date first, each
    taking at most what it owes with the account's credits applied (leaving out `leaving`, the payment
    entries of the payment being corrected); the rest goes on the last part, or on the newest invoice of the
    currency if none is open: received beyond that invoice's amount, it is a credit (see `credited`)."""
    owed = account_owed(chunk, account_id, view, leaving)
    of_currency = sorted(
        (invoice for invoice in view.invoices if invoice.currency == currency),
        key=lambda invoice: (invoice.due_on, invoice.invoice_id),
    )
    parts: list[Part] = []
    left = amount
    for invoice in of_currency:
        if left <= 0:
            break
        if owed[invoice.invoice_id] > 0:
            taken = min(left, owed[invoice.invoice_id])
            parts.append(Part(invoice.invoice_id, taken))
            left -= taken
    if left > 0:
        if parts:
            last = parts.pop()
            parts.append(Part(last.invoice_id, last.amount + left))
        else:
            holders = [invoice for invoice in of_currency if invoice.status in _CHARGEABLE]
            # on_account_currency rejected the row when there is no invoice of the currency to hold it.
            parts.append(Part(holders[-1].invoice_id, left))
    return parts


def on_account_currency(
    row: formats.PaymentRow, chunk: PaymentChunk, view: AccountView, ref: StoredRecord | None
) -> str | formats.Rejection:
    """The currency of a payment on account: the row's, else the one it was allocated in before (a
    re-delivery, or the payment_id's reference), else that of the account's open invoices if they share
    one (else, when none is open, of all its invoices); else a rejection."""
    payment = row.payment
    account = payment.account_id
    chargeable = [invoice for invoice in view.invoices if invoice.status in _CHARGEABLE]
    if not chargeable:
        return formats.Rejection(
            row.line,
            "invoice_id",
            "",
            f"account {account} has no invoices, so a payment on account has nothing to be allocated "
            "to; import its invoices first, or name the invoice",
            account,
        )
    all_currencies = sorted({invoice.currency for invoice in chargeable})
    currency = payment.currency
    if currency is None and ref is not None and ref.get("currency") in all_currencies:
        currency = str(ref["currency"])
    if currency is None:
        currency = _allocated_before(payment, chunk, view, all_currencies)
    if currency is None:
        owed = account_owed(chunk, account, view, {})
        open_currencies = sorted({invoice.currency for invoice in chargeable if owed[invoice.invoice_id] > 0})
        choices = open_currencies or all_currencies
        if len(choices) > 1:
            which = "open invoices" if open_currencies else "invoices"
            return formats.Rejection(
                row.line,
                "currency",
                "",
                f"ambiguous currency: account {account} has {which} in {', '.join(choices)}; give the "
                "payment's currency so it can be allocated",
                account,
            )
        currency = choices[0]
    if currency not in all_currencies:
        return formats.Rejection(
            row.line,
            "currency",
            currency,
            f"account {account} has no invoices in {currency} for a payment on account to be allocated to",
            account,
        )
    return currency


def _allocated_before(
    payment: Payment, chunk: PaymentChunk, view: AccountView, currencies: list[str]
) -> str | None:
    """The currency the row's next occurrence was allocated in before (a re-delivery), if any."""
    for candidate in currencies:
        try:
            amount = to_minor_units(payment.amount, candidate)
        except (ValueError, ArithmeticError):
            continue
        digest = payment_digest(payment, amount, candidate)
        if occurrence_id(digest, chunk.occurrences[digest] + 1) in view.allocations:
            return candidate
    return None


def part_entry(allocation_id: str, invoice_id: str) -> str:
    """A part's entry: from the row's identity (allocation_id) and its invoice."""
    return "oa-" + hashlib.sha256(f"{allocation_id}\x1f{invoice_id}".encode()).hexdigest()[:24]


def row_account(row: formats.PaymentRow | formats.ReversalRow) -> str:
    return row.account_id if isinstance(row, formats.ReversalRow) else row.payment.account_id


def payment_digest(payment: Payment, amount: Decimal, currency: str) -> bytes:
    identity = "\x1f".join(
        (
            payment.account_id,
            payment.invoice_id or "",
            payment.paid_on.isoformat(),
            str(amount),
            currency,
            payment.reference or "",
        )
    )
    return hashlib.sha256(identity.encode()).digest()[:16]


def occurrence_id(digest: bytes, occurrence: int) -> str:
    return hashlib.sha256(digest + str(occurrence).encode()).hexdigest()[:24]


def identified_entry(payment_id: str) -> str:
    # Hashed: a payment_id may hold '#' or be long, and must not be mistaken for a content hash.
    return "id-" + hashlib.sha256(payment_id.encode()).hexdigest()[:24]


def payment_content(payment: Payment, amount: Decimal, currency: str) -> str:
    return json.dumps(
        [
            payment.invoice_id or "",
            payment.paid_on.isoformat(),
            str(amount),
            currency,
            payment.reference or "",
        ]
    )


def amount_rejection(line: int, payment: Payment, error: str) -> formats.Rejection:
    return formats.Rejection(line, "amount", str(payment.amount), error, payment.account_id)


def minor_units(line: int, payment: Payment, currency: str) -> Decimal | formats.Rejection:
    """The payment's amount in `currency`'s minor units, or the row's rejection when it has none."""
    try:
        return to_minor_units(payment.amount, currency)
    except (ValueError, ArithmeticError) as exc:
        return amount_rejection(line, payment, str(exc) or "is not a usable amount")


def payment_problem(
    line: int, payment: Payment, invoice: Mapping[str, Any] | None, *, reversal: bool = False
) -> formats.Rejection | None:
    account = payment.account_id
    if invoice is None:
        return formats.Rejection(
            line,
            "invoice_id",
            payment.invoice_id or "",
            f"account {account} has no invoice {payment.invoice_id}; import the invoice first",
            account,
        )
    # A payment already applied to an invoice voided since can still be reversed.
    if not reversal and invoice["status"] in (InvoiceStatus.VOID.value, InvoiceStatus.DRAFT.value):
        return formats.Rejection(
            line,
            "invoice_id",
            payment.invoice_id or "",
            f"invoice {payment.invoice_id} is {invoice['status']}; a payment cannot be applied to it",
            account,
        )
    if payment.currency and payment.currency != invoice["currency"]:
        return formats.Rejection(
            line,
            "currency",
            payment.currency,
            f"the payment is in {payment.currency} but invoice {payment.invoice_id} is in "
            f"{invoice['currency']}",
            account,
        )
    amount = minor_units(line, payment, invoice["currency"])
    return amount if isinstance(amount, formats.Rejection) else None
