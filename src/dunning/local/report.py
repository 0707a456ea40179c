"""`report.html` of `dunning simulate` (CONTRACT section 2): one self-contained page for an accountant.

It is built only from the contact log (CONTRACT section 5) and the invoices as they stand at the end, so the
page tells the same story as `events.jsonl`. It must open offline and from an email attachment, hence no
scripts, no external styles, fonts or images: charts are inline SVG. The same inputs give the same bytes
(everything is sorted, nothing depends on the current time), so two simulation runs can be diffed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from dunning.domain.events import EventType
from dunning.domain.money import format_amount, is_currency
from dunning.domain.owed import Owed
from dunning.local import report_metrics as metrics
from dunning.local.report_metrics import BUCKETS, InvoiceLine, aging_bucket, parse_at, payment_day

__all__ = ["BUCKETS", "InvoiceLine", "aging", "aging_bucket", "collected", "describe", "render_report"]
# A month or less reads better day by day; a longer simulation would give a chart of mostly empty days.
DAILY_UP_TO_DAYS = 31
# Keys every event has (CONTRACT section 5); the rest is the event's own detail.
_COMMON_KEYS = frozenset({"at", "type", "account_id"})


@dataclass(frozen=True)
class BucketTotal:
    count: int
    amount: Decimal


@dataclass(frozen=True)
class Period:
    first: date  # the day itself, or the Monday of an ISO week
    label: str


@dataclass(frozen=True)
class Collected:
    currency: str
    periods: tuple[tuple[Period, Decimal], ...]
    total: Decimal


def aging(invoices: Iterable[InvoiceLine], as_of: date) -> dict[str, dict[str, BucketTotal]]:
    """Outstanding amounts of open invoices per currency and bucket (every bucket, in BUCKETS order)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    amounts: dict[str, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(BUCKETS, Decimal(0)))
    for invoice in invoices:
        # Paid, void and draft invoices are not owed; an open one paid in full is not either.
        if invoice.status != "open" or invoice.outstanding <= 0:
            continue
        bucket = aging_bucket(invoice.due_on, as_of)
        counts[invoice.currency][bucket] += 1
        amounts[invoice.currency][bucket] += invoice.outstanding
    return {
        currency: {
            bucket: BucketTotal(counts[currency][bucket], amounts[currency][bucket]) for bucket in BUCKETS
        }
        for currency in sorted(amounts)
    }


def collected(events: Iterable[Mapping[str, Any]], start: date, end: date) -> list[Collected]:
    """payment_applied amounts per currency, per day when start..end is at most 31 days, else per ISO week.

    Every period from start to end is listed, empty ones too, so the charts of all currencies share one time
    axis; payments dated outside start..end widen it rather than vanish from the totals.
    """
    daily = (end - start).days + 1 <= DAILY_UP_TO_DAYS
    sums: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for event in events:
        if event.get("type") != EventType.PAYMENT_APPLIED:
            continue
        first = _period_start(payment_day(event), daily)
        sums[str(event["currency"])][first] += Decimal(str(event["amount"]))
    days = [start, end, *(first for per_currency in sums.values() for first in per_currency)]
    step = timedelta(days=1 if daily else 7)
    first, last = _period_start(min(days), daily), _period_start(max(days), daily)
    periods = []
    while first <= last:
        periods.append(Period(first, _period_label(first, daily)))
        first += step
    return [
        Collected(
            currency,
            tuple((period, sums[currency].get(period.first, Decimal(0))) for period in periods),
            sum(sums[currency].values(), Decimal(0)),
        )
        for currency in sorted(sums)
    ]


def describe(event: Mapping[str, Any]) -> str:
    """A short line for the timeline, from the keys CONTRACT section 5 gives each type."""
    describer = _DESCRIBERS.get(str(event.get("type", "")))
    if describer is not None:
        return describer(_Keys(event))
    # Unknown types still show everything they carry: the report must not hide what it does not understand.
    extra = sorted((key, value) for key, value in event.items() if key not in _COMMON_KEYS)
    return " ".join(f"{key}={_text(value)}" for key, value in extra)


def render_report(
    *,
    events: Sequence[Mapping[str, Any]],
    invoices: Sequence[InvoiceLine],
    start: date,
    end: date,
    title: str = "dunning simulation",
    failures: Sequence[tuple[str, str, str, str]] = (),
    owed: Mapping[str, Sequence[Owed]] | None = None,
    worklists: Mapping[date, Sequence[Mapping[str, str]]] | None = None,
) -> str:
    """`owed`: what each account owes at the end, per currency (dunning.domain.owed); without it, each
    account's line sums its invoices' outstanding amounts. `worklists`: the collector's worklist rows
    (services.worklist.COLUMNS) at the end of each simulated day; the last day's is the page's worklist,
    and the month ends' give the aging tables their task priorities."""
    ordered = _in_time_order(events)
    by_type = Counter(str(event.get("type", "")) for _, event in ordered)
    skipped = Counter(
        _text(event.get("reason")) or "unknown"
        for _, event in ordered
        if event.get("type") == EventType.NOTICE_SKIPPED
    )
    accounts = _accounts(ordered, invoices, owed)
    balances = metrics.Balances(invoices, events)
    days = worklists or {}
    last_day = max((day for day in days if day <= end), default=None)
    sent_stages = Counter(
        str(event.get("stage", "")) for _, event in ordered if event.get("type") == EventType.NOTICE_SENT
    )
    context = {
        "title": title,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "days": (end - start).days + 1,
        "account_count": len(accounts),
        "invoice_count": len(invoices),
        "counts": by_type,
        "skipped": sorted(skipped.items()),
        "buckets": BUCKETS,
        "aging": [_aging_view(currency, rows) for currency, rows in aging(invoices, end).items()],
        "collected": [_collected_view(series) for series in collected(events, start, end)],
        "daily": (end - start).days + 1 <= DAILY_UP_TO_DAYS,
        "accounts": accounts,
        "file_problems": [_row(at, event) for at, event in ordered if not event.get("account_id")],
        "failures": list(failures),
        "worklist": _worklist_view(days[last_day] if last_day else ()),
        "worklist_day": last_day.isoformat() if last_day else "",
        "has_worklists": worklists is not None,
        "month_ends": [
            _month_end_view(currency, rows)
            for currency, rows in metrics.aging_at(balances, metrics.month_ends(start, end), days).items()
        ],
        "figures": [_figures_view(f) for f in metrics.period_figures(balances, events, start, end)],
        "promises": _promises_view(metrics.promises(events)),
        "plans": [_plan_view(plan) for plan in metrics.plans(events)],
        "plan_notices": [
            (stage, sent_stages[stage]) for stage in ("agreement_confirmation", "instalment_reminder")
        ],
    }
    return _ENVIRONMENT.get_template("report.html.j2").render(context)


# --- building blocks ------------------------------------------------------------------------------------


def _period_start(day: date, daily: bool) -> date:
    return day if daily else day - timedelta(days=day.weekday())


def _period_label(first: date, daily: bool) -> str:
    if daily:
        return first.isoformat()
    year, week, _ = first.isocalendar()
    return f"{year}-W{week:02d} ({first.isoformat()} to {(first + timedelta(days=6)).isoformat()})"


def _in_time_order(events: Sequence[Mapping[str, Any]]) -> list[tuple[datetime, Mapping[str, Any]]]:
    # The index breaks ties so events sharing one instant keep their logged order (payment, then settled).
    keyed = sorted((parse_at(event["at"]), index, event) for index, event in enumerate(events))
    return [(at, event) for at, _, event in keyed]


def _money(amount: Decimal, currency: str) -> str:
    # An unknown code cannot be quantized; showing the exact amount beats failing the whole report.
    return format_amount(amount, currency) if is_currency(currency) else str(amount)


def _aging_view(currency: str, rows: Mapping[str, BucketTotal]) -> dict[str, Any]:
    return {
        "currency": currency,
        "rows": [(bucket, total.count, _money(total.amount, currency)) for bucket, total in rows.items()],
        "count": sum(total.count for total in rows.values()),
        "total": _money(sum((total.amount for total in rows.values()), Decimal(0)), currency),
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value)
    return str(value)


class _Keys:
    """An event's keys as display text: a missing key reads as empty rather than failing the report."""

    def __init__(self, event: Mapping[str, Any]) -> None:
        self._event = event

    def __getitem__(self, key: str) -> str:
        return _text(self._event.get(key))

    def count(self, key: str) -> int:
        value = self._event.get(key)
        return len(value) if isinstance(value, list | tuple) else int(value is not None)


def _joined(*parts: str) -> str:
    return " — ".join(part for part in parts if part)


def _amount_of(keys: _Keys, key: str) -> str:
    return f"{keys[key]} {keys['currency']}".strip()


def _notice_sent(keys: _Keys) -> str:
    noun = "invoice" if keys.count("invoice_ids") == 1 else "invoices"
    invoices = f"{noun} {keys['invoice_ids']}" if keys["invoice_ids"] else ""
    to = f"to {keys['to']}" if keys["to"] else ""
    return _joined(keys["stage"], _amount_of(keys, "amount_due"), invoices, to)


def _payment(prefix: str) -> Callable[[_Keys], str]:
    def describe_payment(keys: _Keys) -> str:
        on = f" on {keys['invoice_id']}" if keys["invoice_id"] else ""
        return f"{prefix}{_amount_of(keys, 'amount')}{on}"

    return describe_payment


def _until(keys: _Keys) -> str:
    until = f"until {keys['until']}" if keys["until"] else ""
    invoice = f"invoice {keys['invoice_id']}" if keys["invoice_id"] else ""
    return _joined(until, invoice)


def _plan_agreed(keys: _Keys) -> str:
    count = keys.count("instalments")
    noun = "instalment" if count == 1 else "instalments"
    return _joined(f"plan {keys['plan_id']}", f"{_amount_of(keys, 'total')} in {count} {noun}")


_DESCRIBERS: dict[str, Callable[[_Keys], str]] = {
    EventType.INVOICE_IMPORTED: lambda keys: keys["invoice_id"],
    EventType.ROW_REJECTED: lambda keys: f"{keys['source']} row {keys['row']}: {keys['error']}",
    EventType.PAYMENT_APPLIED: _payment(""),
    EventType.CREDIT_RECORDED: _payment("credit "),
    EventType.NOTICE_SENT: _notice_sent,
    EventType.NOTICE_SKIPPED: lambda keys: f"{keys['stage']} skipped: {keys['reason']}",
    EventType.PROMISE_RECORDED: _until,
    EventType.PROMISE_KEPT: _until,
    EventType.PROMISE_BROKEN: _until,
    EventType.DISPUTE_OPENED: lambda keys: keys["invoice_id"],
    EventType.DISPUTE_RESOLVED: lambda keys: keys["invoice_id"],
    EventType.ACCOUNT_PAUSED: lambda keys: f"until {keys['until']}" if keys["until"] else "until resumed",
    EventType.ACCOUNT_RESUMED: lambda keys: "",
    EventType.ACCOUNT_SETTLED: lambda keys: "",
    EventType.CASE_OPENED: lambda keys: _joined(f"case {keys['case_id']}", _amount_of(keys, "amount_due")),
    EventType.PLAN_AGREED: _plan_agreed,
    EventType.INSTALMENT_PAID: lambda keys: _joined(
        f"plan {keys['plan_id']}", f"{_amount_of(keys, 'amount')} toward the instalment of {keys['due_on']}"
    ),
    EventType.PLAN_BROKEN: lambda keys: _joined(
        f"plan {keys['plan_id']} broken",
        f"instalment of {keys['due_on']}",
        f"{_amount_of(keys, 'short')} short" if keys["short"] else "",
    ),
    EventType.PLAN_COMPLETED: lambda keys: f"plan {keys['plan_id']} completed",
    EventType.LEGAL_NOTIFIED: lambda keys: _joined(
        f"case {keys['case_id']}", f"to {keys['to']}" if keys["to"] else ""
    ),
}


def _row(at: datetime, event: Mapping[str, Any]) -> tuple[str, str, str]:
    return at.strftime("%Y-%m-%d %H:%M"), _text(event.get("type")), describe(event)


@dataclass(frozen=True)
class _Account:
    anchor: str
    account_id: str
    customer_name: str
    invoice_count: int
    outstanding: str
    rows: list[tuple[str, str, str]]


def _accounts(
    ordered: list[tuple[datetime, Mapping[str, Any]]],
    invoices: Sequence[InvoiceLine],
    owed_at_end: Mapping[str, Sequence[Owed]] | None = None,
) -> list[_Account]:
    names: dict[str, set[str]] = defaultdict(set)
    counts: Counter[str] = Counter()
    owed: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for invoice in invoices:
        names[invoice.account_id].add(invoice.customer_name)
        counts[invoice.account_id] += 1
        if invoice.status == "open" and invoice.outstanding > 0:
            owed[invoice.account_id][invoice.currency] += invoice.outstanding
    rows: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for at, event in ordered:
        if event.get("account_id"):
            rows[str(event["account_id"])].append(_row(at, event))
    ids = sorted(set(counts) | set(rows))
    return [
        _Account(
            # Account ids are customer data: anchors are numbered so no id has to be made safe for a URL.
            anchor=f"account-{number}",
            account_id=account_id,
            # Re-uploads can rename a customer; show every name seen rather than pick one arbitrarily.
            customer_name=" / ".join(sorted(names[account_id])),
            invoice_count=counts[account_id],
            outstanding=_owed_text(owed_at_end[account_id])
            if owed_at_end is not None and account_id in owed_at_end
            else ", ".join(
                f"{_money(amount, currency)} {currency}"
                for currency, amount in sorted(owed[account_id].items())
            ),
            rows=rows[account_id],
        )
        for number, account_id in enumerate(ids, start=1)
    ]


def _owed_text(owed: Sequence[Owed]) -> str:
    """Per currency: the principal, and with charges what they add up to (the same figures a notice or a
    case would state that day)."""
    parts = []
    for debt in sorted(owed, key=lambda d: d.currency):
        if debt.amount_due <= 0 and debt.charges_total <= 0:
            continue
        text = f"{_money(debt.amount_due, debt.currency)} {debt.currency}"
        if debt.charges_total:
            text += (
                f" + {_money(debt.charges_total, debt.currency)} fees and interest = "
                f"{_money(debt.total_due, debt.currency)} {debt.currency}"
            )
        if debt.missing_rates:
            text += " (interest of some days left out: no reference rate)"
        parts.append(text)
    return ", ".join(parts)


def _worklist_view(rows: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    view = []
    for row in rows:
        script = row.get("script") or f"scripts/{row.get('task_id', '')}.txt"
        view.append(
            {
                **{key: str(value) for key, value in row.items()},
                # Written beside report.html by `dunning simulate`; quoted, as any name in a link must be.
                "href": quote(script, safe="/"),
                "letter_href": quote(row["letter"], safe="/") if row.get("letter") else "",
            }
        )
    return view


def _percent(ratio: metrics.Ratio) -> tuple[str, str]:
    return (f"{ratio.value}%", "") if ratio.value is not None else ("n/a", ratio.reason)


def _figures_view(figures: metrics.PeriodFigures) -> dict[str, Any]:
    currency = figures.currency
    dso = figures.dso
    return {
        "currency": currency,
        "amounts": [
            _money(amount, currency)
            for amount in (
                figures.beginning,
                figures.billed,
                figures.collected,
                figures.ending,
                figures.ending_current,
            )
        ],
        "ratios": [
            (f"{dso.value} days", "") if dso.value is not None else ("n/a", dso.reason),
            _percent(figures.cei),
            _percent(figures.realization),
        ],
    }


def _month_end_view(currency: str, rows: Sequence[metrics.AgingRow]) -> dict[str, Any]:
    return {
        "currency": currency,
        "rows": [
            {
                "as_of": row.as_of.isoformat(),
                "cells": [
                    (
                        _money(cell.amount, currency),
                        cell.count,
                        "" if cell.top_priority is None else str(cell.top_priority),
                    )
                    for cell in row.cells
                ],
                "count": row.count,
                "total": _money(row.amount, currency),
            }
            for row in rows
        ],
    }


def _promises_view(promises: metrics.Promises) -> dict[str, Any]:
    return {
        "recorded": promises.recorded,
        "kept": promises.kept,
        "broken": promises.broken,
        "open": promises.open,
        "replaced": promises.replaced,
        "rate": _percent(promises.kept_rate),
        "lines": [
            (
                line.account_id,
                line.recorded_at.strftime("%Y-%m-%d %H:%M"),
                line.until,
                f"{line.amount} {line.currency}".strip(),
                line.outcome,
            )
            for line in promises.lines
        ],
    }


def _plan_view(plan: metrics.Plan) -> dict[str, Any]:
    currency = plan.currency

    def paid_text(instalment: metrics.Instalment) -> str:
        if instalment.settled:
            return "paid"
        if instalment.paid > 0:
            return f"part paid: {_money(instalment.paid, currency)}"
        return "not paid"

    status = plan.status
    if plan.status == "broken" and plan.broken_on:
        short = f", {_money(plan.short, currency)} {currency} short" if plan.short is not None else ""
        status = f"broken (instalment of {plan.broken_on}{short})"
    return {
        "plan_id": plan.plan_id,
        "account_id": plan.account_id,
        "currency": currency,
        "agreed": plan.agreed_at.strftime("%Y-%m-%d"),
        "total": _money(plan.total, currency),
        "status": status,
        "state": plan.status,
        "instalments": [
            (instalment.due_on, _money(instalment.amount, currency), paid_text(instalment))
            for instalment in plan.instalments
        ],
    }


_CHART_HEIGHT = 120
_CHART_TOP = 16
_CHART_LEFT = 4
_MAX_TICKS = 8


def _collected_view(series: Collected) -> dict[str, Any]:
    currency = series.currency
    peak = max((amount for _, amount in series.periods), default=Decimal(0))
    slot = 18 if len(series.periods) > 20 else 28
    tick_every = max(1, -(-len(series.periods) // _MAX_TICKS))
    bars = []
    for index, (period, amount) in enumerate(series.periods):
        # The Decimal ratio becomes a float here only to place pixels; every amount shown stays Decimal.
        height = float(amount / peak) * _CHART_HEIGHT if peak > 0 else 0.0
        bars.append(
            {
                "x": f"{_CHART_LEFT + index * slot + 2:.1f}",
                "y": f"{_CHART_TOP + _CHART_HEIGHT - height:.1f}",
                "width": f"{slot - 4:.1f}",
                "height": f"{height:.1f}",
                "centre": f"{_CHART_LEFT + index * slot + slot / 2:.1f}",
                "tick": period.first.strftime("%m-%d") if index % tick_every == 0 else "",
                "tip": f"{period.label}: {_money(amount, currency)} {currency}",
                "drawn": amount > 0,
            }
        )
    return {
        "currency": currency,
        "rows": [(period.label, _money(amount, currency)) for period, amount in series.periods],
        "total": _money(series.total, currency),
        "peak": _money(peak, currency),
        "bars": bars,
        "width": _CHART_LEFT * 2 + len(series.periods) * slot,
        "height": _CHART_TOP + _CHART_HEIGHT + 18,
        "baseline": _CHART_TOP + _CHART_HEIGHT,
        "tick_y": _CHART_TOP + _CHART_HEIGHT + 13,
    }


# The page: templates/report.html.j2 (package data of dunning.local). A line of it that ends in `{# -#}`
# goes on in the next one: the comment and the line break are not part of the page.
TEMPLATE_DIR = Path(__file__).parent / "templates"
# Autoescape on: names, references, errors and file names in the log all come from customers' files.
_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
