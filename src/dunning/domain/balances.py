"""How much is owed: derived from facts (what the accounting export reported, the payments received and the
credit notes), never stored. Everything that decides whether an invoice is owed uses this module: the
ingest's due index and its `payment_applied` and `credit_recorded` events, and `AccountSnapshot` (hence
every notice, case and report).

THE RULE (issue 10): the export's figure covers the money the accounting system knew when it exported;
feed payments it could not have known are added on top; the same money is subtracted once.

- The export's figure (`reported`) is what it says was paid OR credited: our format's `amount_paid`;
  Xero's `Total - InvoiceAmountDue` (authoritative: it counts the credit notes allocated in Xero), or its
  `InvoiceAmountPaid` when the export has no InvoiceAmountDue column. The ledger remembers each time
  that figure CHANGED and when (an upload that repeats it changes nothing, so a re-upload of the same
  export never forgets a feed payment).
- A feed payment recorded (uploaded) after the export's figure last changed could not have been known
  to it: it is added on top.
- When the figure changes, it may be the feed money the accounting system has caught up with: the money
  counted becomes the larger of the new figure and what was counted just before (the figure before plus
  the feed recorded since), never less than the feed itself. A figure that went DOWN takes that much off
  what was counted (the accounting system removed money it had), again never below the feed itself
  (only a reversal row removes a feed payment).

  In symbols, for the figure's changes (T1, E1) ... (Tn, En) and F(a, b] the feed recorded in (a, b]:
      R0 = 0, E0 = 0;  R_k = max(E_k, F(.., T_k], R_(k-1) + F(T_(k-1), T_k] + min(E_k - E_(k-1), 0))
      received = R_n + F(T_n, ..)
  For one change this is `max(export, feed recorded before it) + feed recorded after it`.

- Received beyond the amount settles the invoice; the excess is a credit in its currency (dated the day
  of the money that made it). The credits of an account and currency are those excesses and the
  unallocated remainders of the export's credit notes. A credit note whose reference names one of the
  account's invoices (same currency) reduces that invoice first. The rest, oldest credit first, reduces
  the account's open invoices of that currency, oldest due date first (ties: invoice id), as a payment
  on account does; what is still left stays a credit on the account (`AccountCredits.left`).
- Paid invoices owe nothing (and what the feed and export do not explain is paid from the start); void
  and draft invoices owe nothing and are paid nothing (a payment recorded on one is not a credit).
- `credit_recorded` events log every change of an invoice's excess and of a credit note's remainder, so
  their sum per account and currency is `AccountCredits.total`.

LIMITS (what the rule cannot know, and which way it errs):
- A feed that lags the export (lists, after an export, a payment the export had already counted) counts
  that payment twice: the invoice is under-chased, never over-chased. Remedy: a reversal row for it, or
  uploading the feed before the export.
- An export figure that grew by less than the feed recorded since its last change, because it learned
  of other money instead, is taken to be (part of) that feed: the other money is missed until the feed
  or the export shows it.
- A credit note is counted with the remainder the latest export gave it; one no longer exported stays as
  last seen.
- Uploads of the same instant are ordered export first: a feed payment recorded at the very instant the
  figure changed counts as known to it. Payments recorded before the ledger kept `recorded_at`, and
  states built without times, count as known to the export (the larger of the two).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol

from dunning.domain.models import InvoiceStatus

ZERO = Decimal(0)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
# Reductions are ordered by date; undated ones (the export's part beyond the feed) come first.
_FIRST_DAY = date.min

Reduction = tuple[date | None, Decimal]


@dataclass(frozen=True)
class FeedPayment:
    """A payment from the payments feed: when it was paid and when it entered the ledger."""

    paid_on: date
    amount: Decimal
    recorded_at: datetime | None = None  # None: not known (counts as known to the export)


@dataclass(frozen=True)
class Reported:
    """The export's paid-or-credited figure from `at` on (None: before anything else)."""

    at: datetime | None
    paid: Decimal


@dataclass(frozen=True)
class InvoiceBalance:
    outstanding: Decimal  # still owed, >= 0; zero for paid, void and draft
    paid: Decimal  # paid or credited: amount - outstanding (zero for void and draft)
    reductions: tuple[Reduction, ...]  # what makes up `paid`: undated first, then by date
    excess: tuple[Reduction, ...] = ()  # received beyond the amount: credits on the account

    @property
    def credit(self) -> Decimal:
        return sum((amount for _, amount in self.excess), ZERO)


def _when(at: datetime | None) -> datetime:
    return _EARLIEST if at is None else at


def received(reported: Sequence[Reported], feed: Sequence[FeedPayment]) -> Decimal:
    """Money received for one invoice, export and feed reconciled by THE RULE (module docstring)."""
    changes = sorted(reported, key=lambda r: _when(r.at))
    counted = previous = ZERO
    since: datetime | None = None  # the last change's time; None before the first
    for change in changes:
        upto = _when(change.at)
        known = sum((p.amount for p in feed if _when(p.recorded_at) <= upto), ZERO)
        between = known - sum(
            (p.amount for p in feed if since is not None and _when(p.recorded_at) <= since), ZERO
        )
        went_down = min(change.paid - previous, ZERO)
        counted = max(change.paid, known, counted + between + went_down)
        previous, since = change.paid, upto
    after = sum((p.amount for p in feed if since is None or _when(p.recorded_at) > since), ZERO)
    return counted + after


def settle(
    amount: Decimal,
    status: InvoiceStatus | str,
    reported: Sequence[Reported],
    feed: Sequence[FeedPayment],
    credits: Iterable[Reduction] = (),
) -> InvoiceBalance:
    """One invoice: what it still owes, what was paid or credited and when, and what it received beyond
    its amount. `credits` are account credits applied to it (`allocate_credits`)."""
    state = InvoiceStatus(status)
    if state in (InvoiceStatus.VOID, InvoiceStatus.DRAFT):
        return InvoiceBalance(ZERO, ZERO, ())
    fed = sum((p.amount for p in feed), ZERO)
    # The feed is itemised by date; what the export reported beyond it has no date (from the start).
    undated = received(reported, feed) - fed
    pieces: list[Reduction] = [(p.paid_on, p.amount) for p in sorted(feed, key=_feed_order)]
    extra = list(credits)
    undated += sum((value for day, value in extra if day is None), ZERO)
    pieces += [(day, value) for day, value in extra if day is not None]
    pieces.sort(key=lambda piece: piece[0] or _FIRST_DAY)
    ordered: list[Reduction] = ([(None, undated)] if undated > 0 else []) + pieces
    left = amount
    kept: list[Reduction] = []
    excess: list[Reduction] = []
    for day, value in ordered:
        taken = min(value, left)
        left -= taken
        if taken > 0:
            kept.append((day, taken))
        if value > taken:
            excess.append((day, value - taken))
    if state is InvoiceStatus.PAID and left > 0:
        # Paid in full as the accounting records say: what nothing here explains was paid from the start.
        if kept and kept[0][0] is None:
            kept[0] = (None, kept[0][1] + left)
        else:
            kept.insert(0, (None, left))
        left = ZERO
    return InvoiceBalance(left, amount - left, tuple(kept), tuple(excess))


def _feed_order(payment: FeedPayment) -> tuple[date, datetime]:
    return payment.paid_on, _when(payment.recorded_at)


def outstanding(
    amount: Decimal, reported_paid: Decimal, payments_total: Decimal, status: InvoiceStatus | str
) -> Decimal:
    """What one invoice owes from totals alone (no times known: the feed counts as known to the export,
    so this is amount - max(reported, feed)). The ledger's readers use `settle` with the recorded times."""
    feed = [FeedPayment(date.min, payments_total)] if payments_total else []
    return settle(amount, status, [Reported(None, reported_paid)], feed).outstanding


# --- the account: credits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditNote:
    """A credit note from the accounting export: `amount` is what is not yet allocated there."""

    note_id: str
    currency: str
    amount: Decimal
    on: date
    reference: str = ""


class Creditable(Protocol):
    """An invoice as the credit allocation sees it (account.InvoiceState is one)."""

    @property
    def invoice_id(self) -> str: ...

    @property
    def currency(self) -> str: ...

    @property
    def due_on(self) -> date: ...

    @property
    def own(self) -> InvoiceBalance:
        """Its balance before any account credit."""
        ...


@dataclass(frozen=True)
class AccountCredits:
    applied: Mapping[str, tuple[Reduction, ...]]  # invoice id -> the credits that reduce it
    left: Mapping[str, Decimal]  # currency -> credit not used by any open invoice
    total: Mapping[str, Decimal]  # currency -> every credit: excesses + credit note remainders
    matched: Mapping[str, str] = field(default_factory=dict)  # credit note id -> the invoice it names


def named_invoice(note: CreditNote, invoices: Iterable[Creditable]) -> str | None:
    """The one invoice of the note's currency that its reference names (the whole reference, or a word of
    it: an invoice number between non-alphanumeric characters); None if none or several."""
    reference = note.reference.strip()
    if not reference:
        return None
    found = {
        invoice.invoice_id
        for invoice in invoices
        if invoice.currency == note.currency
        and (
            invoice.invoice_id == reference
            or re.search(rf"(?<![0-9A-Za-z]){re.escape(invoice.invoice_id)}(?![0-9A-Za-z])", reference)
        )
    }
    return found.pop() if len(found) == 1 else None


def allocate_credits(invoices: Sequence[Creditable], notes: Sequence[CreditNote] = ()) -> AccountCredits:
    """The account's credits, per currency, applied to its open invoices (module docstring)."""
    owed = {invoice.invoice_id: invoice.own.outstanding for invoice in invoices}
    applied: dict[str, list[Reduction]] = defaultdict(list)
    pool: dict[str, list[Reduction]] = defaultdict(list)
    total: dict[str, Decimal] = defaultdict(Decimal)
    matched: dict[str, str] = {}
    for invoice in invoices:
        pool[invoice.currency] += invoice.own.excess
        total[invoice.currency] += invoice.own.credit
    for note in notes:
        if note.amount <= 0:
            continue
        total[note.currency] += note.amount
        target = named_invoice(note, invoices)
        left = note.amount
        if target is not None:
            matched[note.note_id] = target
            left = _apply(note.on, left, [target], owed, applied)
        if left > 0:
            pool[note.currency].append((note.on, left))
    remaining: dict[str, Decimal] = {}
    for currency, credits in pool.items():
        targets = [
            i.invoice_id
            for i in sorted(invoices, key=lambda i: (i.due_on, i.invoice_id))
            if i.currency == currency and owed[i.invoice_id] > 0
        ]
        for day, value in sorted(credits, key=lambda piece: piece[0] or _FIRST_DAY):
            left = _apply(day, value, targets, owed, applied)
            if left > 0:
                remaining[currency] = remaining.get(currency, ZERO) + left
    return AccountCredits(
        {key: tuple(value) for key, value in applied.items()},
        remaining,
        {currency: value for currency, value in total.items() if value > 0},
        matched,
    )


def _apply(
    day: date | None,
    value: Decimal,
    targets: Sequence[str],
    owed: dict[str, Decimal],
    applied: dict[str, list[Reduction]],
) -> Decimal:
    """Apply one credit of `value` to `targets` in order, each up to what it still owes; what is left."""
    left = value
    for invoice_id in targets:
        if left <= 0:
            break
        taken = min(left, owed[invoice_id])
        if taken > 0:
            applied[invoice_id].append((day, taken))
            owed[invoice_id] -= taken
            left -= taken
    return left
