"""The figures of `report.html` (CONTRACT 2) that take more than a count: aging as of any day, DSO, CEI,
the realization rate, promises kept and payment plans. Pure: events (CONTRACT 5) and invoice lines in,
Decimals and small records out; nothing here renders, reads AWS or adds money across currencies.

Aging as of a past day needs each invoice's balance that day. An invoice line carries the dated reductions
of its principal (payments and credits, from the ledger's snapshot: the same facts `owed` reads); a line
without them is rolled back from its outstanding amount at the end with the `payment_applied` events dated
after that day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dunning.domain.events import EventType

BUCKETS = ("not yet due", "1-30", "31-60", "61-90", "over 90")
ZERO = Decimal(0)
_EPOCH = date(2000, 1, 1)
_NOT_OWED = ("void", "draft")
# A reduction of an invoice's principal: (the day it was paid or credited, None: from the start; amount).
Reduction = tuple[date | None, Decimal]


@dataclass(frozen=True)
class InvoiceLine:
    account_id: str
    customer_name: str
    invoice_id: str
    currency: str
    amount: Decimal
    due_on: date
    outstanding: Decimal  # at the end of the simulation
    status: str  # open | paid | void | draft
    issued_on: date | None = None  # None: not known (counts as issued before the period)
    # What makes up amount - outstanding, dated (see the module docstring); None: not known.
    reductions: tuple[Reduction, ...] | None = None


def aging_bucket(due_on: date, as_of: date) -> str:
    days_past_due = (as_of - due_on).days
    if days_past_due <= 0:
        return BUCKETS[0]
    if days_past_due <= 30:
        return BUCKETS[1]
    if days_past_due <= 60:
        return BUCKETS[2]
    if days_past_due <= 90:
        return BUCKETS[3]
    return BUCKETS[4]


def bucket_of_days(days_past_due: int) -> str:
    return aging_bucket(_EPOCH, _EPOCH + timedelta(days=days_past_due))


def parse_at(value: Any) -> datetime:
    at = datetime.fromisoformat(str(value))
    # The log is UTC by contract; a naive time can only have come from a hand-written file, so read it as UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def payment_day(event: Mapping[str, Any]) -> date:
    """The day a payment counts from: `paid_on` (the payment's own date) when the log has it; `at` is when
    it was recorded, which for a payment taking effect at local midnight can be the previous day in UTC."""
    paid_on = event.get("paid_on")
    if paid_on:
        try:
            return date.fromisoformat(str(paid_on))
        except ValueError:
            pass
    return parse_at(event["at"]).date()


def amount_of(value: Any) -> Decimal:
    """A decimal string from the log; anything unreadable counts as nothing rather than failing the page."""
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return ZERO


# --- balances as of a day ---------------------------------------------------------------------------------


class Balances:
    """Each invoice's outstanding principal as of any day."""

    def __init__(self, invoices: Iterable[InvoiceLine], events: Iterable[Mapping[str, Any]]) -> None:
        self.invoices = list(invoices)
        # Payments per (account, invoice): only needed for lines that do not carry their reductions.
        self._paid: dict[tuple[str, str], list[tuple[date, Decimal]]] = defaultdict(list)
        for event in events:
            if event.get("type") == EventType.PAYMENT_APPLIED and event.get("invoice_id"):
                key = (str(event.get("account_id", "")), str(event["invoice_id"]))
                self._paid[key].append((payment_day(event), amount_of(event.get("amount"))))

    def outstanding_on(self, invoice: InvoiceLine, day: date) -> Decimal:
        """Its principal still owed at the end of `day`: nothing before it was issued, nothing if void or
        draft; else its amount less what was paid or credited by then."""
        if invoice.status in _NOT_OWED:
            return ZERO
        if invoice.issued_on is not None and invoice.issued_on > day:
            return ZERO
        if invoice.reductions is not None:
            paid = sum((amount for on, amount in invoice.reductions if on is None or on <= day), ZERO)
            return max(ZERO, invoice.amount - paid)
        later = sum(
            (amount for on, amount in self._paid[(invoice.account_id, invoice.invoice_id)] if on > day), ZERO
        )
        return max(ZERO, min(invoice.amount, invoice.outstanding + later))

    def currencies(self) -> list[str]:
        return sorted({invoice.currency for invoice in self.invoices})

    def receivables(self, currency: str, day: date, *, current_only: bool = False) -> Decimal:
        """Outstanding principal in `currency` at the end of `day` (current_only: not yet due that day)."""
        return sum(
            (
                self.outstanding_on(invoice, day)
                for invoice in self.invoices
                if invoice.currency == currency and (not current_only or invoice.due_on >= day)
            ),
            ZERO,
        )


# --- aging at month ends ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgingCell:
    count: int
    amount: Decimal
    top_priority: int | None  # the highest priority of the open tasks whose debt is this old, if any


@dataclass(frozen=True)
class AgingRow:
    as_of: date
    cells: tuple[AgingCell, ...]  # in BUCKETS order

    @property
    def count(self) -> int:
        return sum(cell.count for cell in self.cells)

    @property
    def amount(self) -> Decimal:
        return sum((cell.amount for cell in self.cells), ZERO)


def month_ends(start: date, end: date) -> list[date]:
    """The last day of each month from start to end, then `end` itself when it is not one."""
    days = []
    month = date(start.year, start.month, 1)
    while month <= end:
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        last = following - timedelta(days=1)
        if start <= last <= end:
            days.append(last)
        month = following
    if not days or days[-1] != end:
        days.append(end)
    return days


def aging_at(
    balances: Balances,
    days: Sequence[date],
    worklists: Mapping[date, Sequence[Mapping[str, str]]] | None = None,
) -> dict[str, list[AgingRow]]:
    """Per currency, one row per day: each bucket's open invoices (count and outstanding amount that day)
    and the highest priority of the tasks open that day, each placed in the bucket of its days overdue."""
    table: dict[str, list[AgingRow]] = {}
    for currency in balances.currencies():
        rows = []
        for day in days:
            counts = dict.fromkeys(BUCKETS, 0)
            amounts = dict.fromkeys(BUCKETS, ZERO)
            for invoice in balances.invoices:
                if invoice.currency != currency:
                    continue
                left = balances.outstanding_on(invoice, day)
                if left > 0:
                    bucket = aging_bucket(invoice.due_on, day)
                    counts[bucket] += 1
                    amounts[bucket] += left
            top = _top_priorities((worklists or {}).get(day, ()), currency)
            rows.append(
                AgingRow(
                    day, tuple(AgingCell(counts[name], amounts[name], top.get(name)) for name in BUCKETS)
                )
            )
        if any(row.count for row in rows):
            table[currency] = rows
    return table


def _top_priorities(rows: Iterable[Mapping[str, str]], currency: str) -> dict[str, int]:
    top: dict[str, int] = {}
    for row in rows:
        if row.get("currency") != currency:
            continue
        try:
            score, days = int(row.get("priority", "")), int(row.get("days_overdue", ""))
        except ValueError:
            continue
        bucket = bucket_of_days(days)
        top[bucket] = max(score, top.get(bucket, score))
    return top


# --- DSO, CEI, realization --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    """A figure, or why there is none (a denominator of zero)."""

    value: Decimal | None
    reason: str = ""


@dataclass(frozen=True)
class PeriodFigures:
    currency: str
    days: int
    beginning: Decimal  # receivables at the end of the day before the period
    billed: Decimal  # invoices issued in the period (their amounts)
    collected: Decimal  # payment_applied in the period
    ending: Decimal  # receivables at the end of the period
    ending_current: Decimal  # of which not yet due

    @property
    def dso(self) -> Ratio:
        if self.billed == 0:
            return Ratio(None, "billed = 0")
        return Ratio(_round(self.ending / self.billed * self.days))

    @property
    def cei(self) -> Ratio:
        collectible = self.beginning + self.billed - self.ending_current
        if collectible == 0:
            return Ratio(None, "start + billed - current at the end = 0")
        return Ratio(_round((self.beginning + self.billed - self.ending) / collectible * 100))

    @property
    def realization(self) -> Ratio:
        if self.billed == 0:
            return Ratio(None, "billed = 0")
        return Ratio(_round(self.collected / self.billed * 100))


def _round(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def period_figures(
    balances: Balances, events: Iterable[Mapping[str, Any]], start: date, end: date
) -> list[PeriodFigures]:
    """Per currency, what DSO, CEI and the realization rate are computed from, over start..end."""
    collected: dict[str, Decimal] = defaultdict(Decimal)
    for event in events:
        if event.get("type") == EventType.PAYMENT_APPLIED and start <= payment_day(event) <= end:
            collected[str(event.get("currency", ""))] += amount_of(event.get("amount"))
    before = start - timedelta(days=1)
    figures = []
    for currency in sorted(set(balances.currencies()) | set(collected)):
        billed = sum(
            (
                invoice.amount
                for invoice in balances.invoices
                if invoice.currency == currency
                and invoice.status not in _NOT_OWED
                and invoice.issued_on is not None
                and start <= invoice.issued_on <= end
            ),
            ZERO,
        )
        figures.append(
            PeriodFigures(
                currency=currency,
                days=(end - start).days + 1,
                beginning=balances.receivables(currency, before),
                billed=billed,
                collected=collected[currency],
                ending=balances.receivables(currency, end),
                ending_current=balances.receivables(currency, end, current_only=True),
            )
        )
    return figures


# --- promises ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromiseLine:
    account_id: str
    recorded_at: datetime
    until: str
    amount: str
    currency: str
    outcome: str  # kept | broken | kept and broken (per currency) | open | replaced


@dataclass(frozen=True)
class Promises:
    recorded: int
    kept: int  # promise_kept events (one per currency of the account's debt)
    broken: int  # promise_broken events
    open: int  # recorded, no outcome yet, and the account's latest promise
    replaced: int  # recorded, no outcome, and a later promise of the same account took its place
    lines: tuple[PromiseLine, ...]

    @property
    def kept_rate(self) -> Ratio:
        if self.kept + self.broken == 0:
            return Ratio(None, "no promise kept or broken yet: kept + broken = 0")
        return Ratio(_round(Decimal(self.kept) / Decimal(self.kept + self.broken) * 100))


def promises(events: Sequence[Mapping[str, Any]]) -> Promises:
    """Promises to pay and their outcomes; an outcome names its promise by account and `until`."""
    ordered = sorted(enumerate(events), key=lambda pair: (parse_at(pair[1]["at"]), pair[0]))
    outcomes: dict[tuple[str, str], list[str]] = defaultdict(list)
    recorded: list[Mapping[str, Any]] = []
    kept = broken = 0
    for _, event in ordered:
        kind = event.get("type")
        key = (str(event.get("account_id", "")), str(event.get("until", "")))
        if kind == EventType.PROMISE_RECORDED:
            recorded.append(event)
        elif kind == EventType.PROMISE_KEPT:
            kept += 1
            outcomes[key].append("kept")
        elif kind == EventType.PROMISE_BROKEN:
            broken += 1
            outcomes[key].append("broken")
    latest = {str(event.get("account_id", "")): index for index, event in enumerate(recorded)}
    lines = []
    for index, event in enumerate(recorded):
        account = str(event.get("account_id", ""))
        found = sorted(set(outcomes.get((account, str(event.get("until", ""))), [])))
        unresolved = "open" if latest[account] == index else "replaced"
        outcome = " and ".join(found) if found else unresolved
        lines.append(
            PromiseLine(
                account_id=account,
                recorded_at=parse_at(event["at"]),
                until=str(event.get("until", "")),
                amount=str(event.get("amount") or ""),
                currency=str(event.get("currency") or ""),
                outcome=outcome,
            )
        )
    return Promises(
        recorded=len(recorded),
        kept=kept,
        broken=broken,
        open=sum(1 for line in lines if line.outcome == "open"),
        replaced=sum(1 for line in lines if line.outcome == "replaced"),
        lines=tuple(lines),
    )


# --- payment plans ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instalment:
    due_on: str
    amount: Decimal
    paid: Decimal

    @property
    def settled(self) -> bool:
        return self.paid >= self.amount


@dataclass(frozen=True)
class Plan:
    plan_id: str
    account_id: str
    currency: str
    agreed_at: datetime
    total: Decimal
    instalments: tuple[Instalment, ...]
    status: str  # running | broken | completed
    broken_on: str = ""  # the instalment that broke it
    short: Decimal | None = None  # what was still unpaid of that instalment


def plans(events: Sequence[Mapping[str, Any]]) -> list[Plan]:
    """Each plan_agreed, with what instalment_paid paid toward each instalment and how it ended."""
    ordered = sorted(enumerate(events), key=lambda pair: (parse_at(pair[1]["at"]), pair[0]))
    agreed: dict[str, Mapping[str, Any]] = {}
    paid: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    broken: dict[str, Mapping[str, Any]] = {}
    completed: set[str] = set()
    for _, event in ordered:
        kind = event.get("type")
        plan_id = str(event.get("plan_id", ""))
        if kind == EventType.PLAN_AGREED:
            agreed[plan_id] = event
        elif kind == EventType.INSTALMENT_PAID:
            paid[(plan_id, str(event.get("due_on", "")))] += amount_of(event.get("amount"))
        elif kind == EventType.PLAN_BROKEN:
            broken[plan_id] = event
        elif kind == EventType.PLAN_COMPLETED:
            completed.add(plan_id)
    result = []
    for plan_id, event in agreed.items():
        raw = event.get("instalments") or []
        instalments = tuple(
            Instalment(
                str(item.get("due_on", "")),
                amount_of(item.get("amount")),
                paid[(plan_id, str(item.get("due_on", "")))],
            )
            for item in raw
            if isinstance(item, Mapping)
        )
        breaking = broken.get(plan_id)
        status = "completed" if plan_id in completed else "broken" if breaking else "running"
        result.append(
            Plan(
                plan_id=plan_id,
                account_id=str(event.get("account_id", "")),
                currency=str(event.get("currency", "")),
                agreed_at=parse_at(event["at"]),
                total=amount_of(event.get("total")),
                instalments=instalments,
                status=status,
                broken_on=str(breaking.get("due_on", "")) if breaking else "",
                short=amount_of(breaking.get("short")) if breaking and breaking.get("short") else None,
            )
        )
    return sorted(result, key=lambda plan: (plan.account_id, plan.agreed_at, plan.plan_id))
