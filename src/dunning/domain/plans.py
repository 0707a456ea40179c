"""Payment plans (CONTRACT 10): a debt agreed to be paid in instalments, each on its date.

While a plan runs the ladder is held. Payments count toward the instalments in date order; an instalment
still short `grace_days` after its date breaks the plan (the ladder resumes for the whole remaining
balance); every instalment paid completes it. Pure: amounts are Decimal in the plan's one currency, dates
are the customer's calendar days. (Issue 13, in progress: the model; the actions CSV, the ladder's hold and
the instalment reminders use it as they come.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from dunning.domain.money import format_amount, parse_decimal, to_minor_units

PLAN_GRACE_DAYS = 5
PlanStatus = Literal["running", "broken", "completed"]


class PlanError(ValueError):
    """An `instalments` cell that does not describe a plan, in words for the row's report."""


@dataclass(frozen=True)
class Instalment:
    due_on: date
    amount: Decimal


def parse_instalments(text: str, currency: str) -> tuple[Instalment, ...]:
    """`YYYY-MM-DD=amount;YYYY-MM-DD=amount;...` (the actions CSV's `instalments`), in date order, each
    amount positive and at the currency's precision; PlanError naming what is wrong."""
    instalments: list[Instalment] = []
    for number, part in enumerate((p.strip() for p in text.split(";") if p.strip()), start=1):
        when, equals, amount_text = part.partition("=")
        if not equals:
            raise PlanError(f"instalment {number} ({part!r}) must be YYYY-MM-DD=amount")
        try:
            due_on = date.fromisoformat(when.strip())
        except ValueError:
            raise PlanError(f"instalment {number}: {when.strip()!r} is not a date (YYYY-MM-DD)") from None
        try:
            amount = to_minor_units(parse_decimal(amount_text), currency)
        except ValueError as exc:
            raise PlanError(f"instalment {number}: the amount {exc}") from None
        if amount <= 0:
            raise PlanError(f"instalment {number}: the amount must be more than zero")
        instalments.append(Instalment(due_on, amount))
    if not instalments:
        raise PlanError("a plan needs at least one instalment (YYYY-MM-DD=amount;...)")
    dates = [instalment.due_on for instalment in instalments]
    if len(set(dates)) != len(dates):
        raise PlanError("two instalments on one date: give each its own date")
    return tuple(sorted(instalments, key=lambda instalment: instalment.due_on))


@dataclass(frozen=True)
class InstalmentStanding:
    instalment: Instalment
    paid: Decimal

    @property
    def short(self) -> Decimal:
        return self.instalment.amount - self.paid

    @property
    def settled(self) -> bool:
        return self.short <= 0


@dataclass(frozen=True)
class PlanStanding:
    """A plan on one day: what each instalment has received, and whether the plan runs, broke or is done."""

    status: PlanStatus
    instalments: tuple[InstalmentStanding, ...]
    # The first instalment still short `grace_days` after its date (the one that broke the plan).
    broken_by: Instalment | None = None

    @property
    def next_due(self) -> Instalment | None:
        """The earliest instalment not yet settled (its reminders are the ladder's while the plan runs)."""
        return next((s.instalment for s in self.instalments if not s.settled), None)


@dataclass(frozen=True)
class Plan:
    agreed_on: date
    currency: str
    instalments: tuple[Instalment, ...]
    grace_days: int = PLAN_GRACE_DAYS

    @property
    def total(self) -> Decimal:
        return sum((instalment.amount for instalment in self.instalments), Decimal(0))

    def check_covers(self, overdue: Decimal, issued: Decimal | None = None) -> None:
        """A plan adds up to what is owed (CONTRACT 10): what is due by its date, or everything invoiced by
        then (`issued`, the not yet due too); PlanError saying what it should add up to."""
        if self.total in (overdue, issued):
            return
        owed = format_amount(overdue, self.currency)
        also = ""
        if issued is not None and issued != overdue:
            also = f" ({format_amount(issued, self.currency)} with the invoices not yet due)"
        raise PlanError(
            f"the instalments add up to {format_amount(self.total, self.currency)}, but "
            f"{owed} {self.currency} is owed{also}"
        )

    def standing(self, paid_since_agreed: Iterable[Decimal], on: date) -> PlanStanding:
        """The plan on day `on`, given the payments received since it was agreed (in the plan's currency):
        they fill the instalments in date order, an overpayment going to the next ones."""
        remaining = sum(paid_since_agreed, Decimal(0))
        standings = []
        for instalment in self.instalments:
            paid = min(instalment.amount, max(Decimal(0), remaining))
            remaining -= paid
            standings.append(InstalmentStanding(instalment, paid))
        if all(s.settled for s in standings):
            return PlanStanding("completed", tuple(standings))
        grace = timedelta(days=self.grace_days)
        late = next(
            (s.instalment for s in standings if not s.settled and on > s.instalment.due_on + grace), None
        )
        return PlanStanding("broken" if late else "running", tuple(standings), late)
