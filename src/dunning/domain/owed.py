"""What an account owes in one currency: the one computation every notice, event, case record, packet and
report uses (CONTRACT 13), so that they can never disagree.

Per account and currency, on a given day: the open, undisputed invoices (each with its total, what was paid
or credited, and what is outstanding), the charges accrued on them (the late fee of every stage reached,
interest up to and including that day, fixed sums), and the total. Nothing here is ever summed across
currencies: an `Owed` has one currency.

Charges hold: a figure once demanded is never lowered by a later computation. A percentage fee is fixed at
what the notice of its stage said; interest that a backdated payment would now compute lower stays at the
figure the customer was told; and the charges demanded on an invoice paid since are still claimed with the
rest of the debt, unless the policy waives them (`charges.waive_when_paid`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from dunning.domain.account import AccountSnapshot, InvoiceState, NoticeRecord
from dunning.domain.charges import (
    INTEREST_KINDS,
    Accrued,
    ChargeLine,
    DebtInvoice,
    MissingRate,
    Payment,
    accrued_charges,
)
from dunning.domain.money import quantum
from dunning.domain.policy import Policy

_DATE_DETAILS = ("from", "to")


@dataclass(frozen=True)
class OwedInvoice:
    invoice_id: str
    reference: str | None
    issued_on: date
    due_on: date
    amount: Decimal  # the invoice's total
    paid: Decimal  # paid or credited so far
    outstanding: Decimal


@dataclass(frozen=True)
class Owed:
    account_id: str
    currency: str
    on: date
    invoices: tuple[OwedInvoice, ...]
    charges: tuple[ChargeLine, ...] = ()
    # Days on which interest could not be computed (no reference rate known): reported, never guessed.
    missing_rates: tuple[MissingRate, ...] = ()
    # Interest that keeps running after `on`, per day, at today's rates on today's outstanding amounts.
    daily_interest: Decimal = Decimal(0)

    @property
    def amount_due(self) -> Decimal:
        """The principal still outstanding."""
        return sum((invoice.outstanding for invoice in self.invoices), Decimal(0))

    @property
    def charges_total(self) -> Decimal:
        return sum((line.amount for line in self.charges), Decimal(0))

    @property
    def total_due(self) -> Decimal:
        return self.amount_due + self.charges_total

    @property
    def invoice_ids(self) -> list[str]:
        return [invoice.invoice_id for invoice in self.invoices]


def principal_owed(snapshot: AccountSnapshot, currency: str, on: date, *, due_only: bool = False) -> Owed:
    """What the account owes in `currency` on `on` without fees or interest: the principal of its open,
    undisputed invoices issued by then (`due_only`: only those due by then). A payment plan covers it."""
    chaseable = [
        i
        for i in snapshot.chaseable_invoices(on)
        if i.currency == currency and i.issued_on <= on and (i.due_on <= on or not due_only)
    ]
    return Owed(snapshot.account_id, currency, on, tuple(_owed_invoice(invoice) for invoice in chaseable))


def owed(
    snapshot: AccountSnapshot,
    currency: str,
    *,
    on: date,
    policy: Policy,
    stage: str | None = None,
    invoice_ids: Collection[str] | None = None,
    with_charges: bool = True,
) -> Owed:
    """What the account owes in `currency` on `on` (the customer's local date).

    `stage`: the ladder stage being sent (or handed off) now; its late fee counts as reached.
    `invoice_ids`: only these invoices (a notice that covers part of the debt); default every open,
    undisputed invoice of the currency. `with_charges`: False for a notice that does not show charges.
    """
    chaseable = [i for i in snapshot.chaseable_invoices(on) if i.currency == currency]
    if invoice_ids is not None:
        wanted = set(invoice_ids)
        chaseable = [invoice for invoice in chaseable if invoice.invoice_id in wanted]
    invoices = tuple(_owed_invoice(invoice) for invoice in chaseable)
    result = Owed(snapshot.account_id, currency, on, invoices)
    if not with_charges:
        return result
    episode = snapshot.notices_in(snapshot.state.episode)
    # A stage's fee is earned by a notice that went out (or most likely did), not by one passed over.
    reached = [notice.stage for notice in episode if notice.status in ("sent", "unconfirmed")]
    accrued = accrued_charges(
        [debt_invoice(invoice) for invoice in chaseable],
        on=on,
        policy=policy.charges,
        stages_reached=[*reached, *([stage] if stage else [])],
        consumer=snapshot.customer_type == "consumer",
    )
    demanded = _demanded(episode, currency)
    claimed = set(result.invoice_ids)
    open_ids = {invoice.invoice_id for invoice in snapshot.open_invoices()}
    disputed = snapshot.disputed_invoice_ids(on)
    # Charges demanded on an invoice paid since are still owed (unless waived); never a disputed one's.
    paid_since = {
        line.invoice_id
        for line in demanded
        if line.invoice_id and line.invoice_id not in open_ids and line.invoice_id not in disputed
    }
    keep_paid = set() if policy.charges.waive_when_paid else paid_since
    lines = _held(accrued, demanded, claimed | keep_paid)
    return Owed(
        snapshot.account_id,
        currency,
        on,
        invoices,
        tuple(lines),
        accrued.missing,
        _daily_interest(accrued, chaseable, on),
    )


def debt_invoice(invoice: InvoiceState) -> DebtInvoice:
    """An invoice as the charge computation sees it: its principal and each dated reduction of it."""
    reductions = invoice.reductions()
    dated = tuple(Payment(day, amount) for day, amount in reductions if day is not None)
    undated = sum((amount for day, amount in reductions if day is None), Decimal(0))
    return DebtInvoice(
        invoice_id=invoice.invoice_id,
        currency=invoice.currency,
        amount=invoice.amount,
        due_on=invoice.due_on,
        payments=dated,
        already_paid=undated,
    )


def _owed_invoice(invoice: InvoiceState) -> OwedInvoice:
    return OwedInvoice(
        invoice_id=invoice.invoice_id,
        reference=invoice.reference,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        amount=invoice.amount,
        paid=invoice.amount - invoice.outstanding,
        outstanding=invoice.outstanding,
    )


# --- charges that hold ----------------------------------------------------------------------------------


def _group(line: ChargeLine) -> tuple[str, str, str]:
    """Lines that together make one figure: an invoice's interest, its fixed sum, one stage's fee."""
    stage = str(line.facts.get("stage", "")) if line.kind not in INTEREST_KINDS else ""
    return line.invoice_id or "", line.kind, stage


def _held(accrued: Accrued, demanded: Sequence[ChargeLine], invoices: set[str]) -> list[ChargeLine]:
    """The accrued lines, except where a figure already demanded is higher: that figure stands, as it was
    shown. Only lines of `invoices`."""
    now: dict[tuple[str, str, str], list[ChargeLine]] = defaultdict(list)
    before: dict[tuple[str, str, str], list[ChargeLine]] = defaultdict(list)
    for line in accrued.lines:
        if (line.invoice_id or "") in invoices:
            now[_group(line)].append(line)
    for line in demanded:
        if (line.invoice_id or "") in invoices:
            before[_group(line)].append(line)
    lines: list[ChargeLine] = []
    for group in sorted(now.keys() | before.keys()):
        if _total(before[group]) > _total(now[group]):
            lines.extend(before[group])
        else:
            lines.extend(now[group])
    return sorted(lines, key=_order)


def _total(lines: Iterable[ChargeLine]) -> Decimal:
    return sum((line.amount for line in lines), Decimal(0))


def _order(line: ChargeLine) -> tuple[str, int, date]:
    rank = {"late_fee": 0, "statutory_interest": 1, "contract_interest": 1, "fixed_compensation": 2}
    start = line.facts.get("from")
    return (line.invoice_id or "", rank.get(line.kind, 3), start if isinstance(start, date) else date.min)


def _demanded(notices: Sequence[NoticeRecord], currency: str) -> list[ChargeLine]:
    """For each figure (an invoice's interest, its fixed sum, one stage's fee), the lines of the episode's
    notice that demanded the most for it: a notice that left an invoice out (disputed then) does not
    lower what an earlier one demanded on it."""
    best: dict[tuple[str, str, str], list[ChargeLine]] = {}
    for notice in sorted((n for n in notices if n.done and n.charges), key=lambda n: n.at):
        groups: dict[tuple[str, str, str], list[ChargeLine]] = defaultdict(list)
        for line in map(charge_from_json, notice.charges):
            if line.currency == currency:
                groups[_group(line)].append(line)
        for group, lines in groups.items():
            if group not in best or _total(lines) >= _total(best[group]):
                best[group] = lines
    return [line for group in sorted(best) for line in best[group]]


def _daily_interest(accrued: Accrued, invoices: Sequence[InvoiceState], on: date) -> Decimal:
    """Interest per day from `on`: each invoice's outstanding amount at the yearly rate of its latest
    interest line (actual/365), rounded to the currency's minor units."""
    rates: dict[str, Decimal] = {}
    for line in accrued.lines:
        if line.kind in INTEREST_KINDS and line.facts.get("to") == on:
            rates[line.invoice_id or ""] = Decimal(str(line.facts["rate"]))
    if not invoices:
        return Decimal(0)
    with localcontext() as ctx:
        ctx.prec = 34
        daily = sum(
            (
                invoice.outstanding * rates[invoice.invoice_id] / Decimal(36500)
                for invoice in invoices
                if invoice.invoice_id in rates
            ),
            Decimal(0),
        )
    return daily.quantize(quantum(invoices[0].currency), ROUND_HALF_UP)


# --- stored form of a charge line (kept with the notice that demanded it) ------------------------------


def charge_to_json(line: ChargeLine) -> dict[str, Any]:
    return {
        "kind": line.kind,
        "invoice_id": line.invoice_id,
        "amount": format(line.amount, "f"),
        "currency": line.currency,
        "details": [
            [key, value.isoformat() if isinstance(value, date) else str(value)] for key, value in line.details
        ],
    }


def charge_from_json(data: Mapping[str, Any]) -> ChargeLine:
    details = tuple(
        (str(key), date.fromisoformat(str(value)) if key in _DATE_DETAILS else str(value))
        for key, value in data.get("details") or ()
    )
    return ChargeLine(
        str(data["kind"]),
        data.get("invoice_id"),
        Decimal(str(data["amount"])),
        str(data["currency"]),
        details,
    )
