"""Late fees and statutory late-payment interest, as the charge lines a notice shows.

Everything is Decimal: amounts are rounded once, per charge line, to the currency's minor units with
ROUND_HALF_UP (the way a clerk rounds), never per day.

Late fees are the business's own terms and apply to every customer. Statutory interest applies only to
business customers (B2B), under the regime the policy names:

- ``eu`` (Late Payment Directive 2011/7/EU): the ECB main refinancing rate in force on 1 January / 1 July
  of each half-year plus 8 percentage points. The rate follows the half-years, so an overdue period that
  crosses 1 January or 1 July is split into pieces at the rate of each. Fixed compensation of EUR 40 per
  late invoice (article 6), for EUR invoices only: the Directive states the sum in euro and leaves its
  conversion to the Member States outside the euro area, so an invoice in another currency gets none
  rather than a guessed equivalent. Several Member States implement the Directive with their own
  reference rate (Germany's Basiszinssatz, for one); this module uses the Directive's ECB rate.
- ``uk`` (Late Payment of Commercial Debts (Interest) Act 1998): the Bank of England Bank Rate in force on
  31 December / 30 June plus 8 percentage points. Unlike the EU rule the rate does not follow the
  half-years: SI 2002/1675 fixes it by the half-year in which the interest *starts to run*, and that
  rate holds until the debt is paid, so a UK debt is never split at 1 January or 1 July. Fixed sums of
  GBP 40 / 70 / 100 for a debt (the invoice amount) under 1,000 / under 10,000 / 10,000 and over
  (section 5A), for GBP invoices only.

Both regimes: simple interest, running from the day after the due date up to and including the notice
date; day count actual/365 (a leap year's 366th day earns a 365th of the yearly rate too, as the UK
government's guidance and most EU implementations compute it); the principal on each day is what was still
unpaid that day, so a payment reduces it from its own date and the period is split there as well.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dunning import metrics
from dunning.money import format_amount, quantum
from dunning.notices.render import ChargeLine

logger = logging.getLogger(__name__)

Regime = Literal["eu", "uk"]

LATE_FEE = "late_fee"
STATUTORY_INTEREST = "statutory_interest"
FIXED_COMPENSATION = "fixed_compensation"
# Within one invoice a notice reads best as: the business's fees, the interest pieces in date order, then
# the fixed compensation; the sort key uses this rank rather than the alphabet.
_KIND_ORDER = {LATE_FEE: 0, STATUTORY_INTEREST: 1, FIXED_COMPENSATION: 2}

STATUTORY_MARGIN = Decimal(8)  # percentage points over the reference rate, both regimes
_DAYS_IN_YEAR = Decimal(365)
_ONE_DAY = timedelta(days=1)
_STAGE_NAME = r"^[a-z][a-z0-9_]{0,39}$"  # as policy.Stage.name (not imported: policy will import us)

EU_COMPENSATION = Decimal(40)  # EUR, Directive 2011/7/EU article 6
# (debt below, fixed sum) in GBP, Late Payment Act section 5A; a debt of 10,000.00 or more gets 100.
_UK_FIXED_SUMS = ((Decimal(1000), Decimal(40)), (Decimal(10000), Decimal(70)))
_UK_FIXED_SUM_TOP = Decimal(100)


class MissingReferenceRate(LookupError):
    """The reference-rate table has no entry for a day that interest is computed on."""


# --- reference rates ---------------------------------------------------------------------------------


class RateEntry(BaseModel):
    """The reference rate (percent per year, before the 8 points) for the half-year starting at `from`."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    starts: date = Field(alias="from")
    rate: Decimal = Field(allow_inf_nan=False, ge=-100, le=100)

    @model_validator(mode="after")
    def _half_year(self) -> Self:
        if (self.starts.month, self.starts.day) not in ((1, 1), (7, 1)):
            raise ValueError(f"{self.starts.isoformat()}: a half-year starts on 1 January or 1 July")
        return self


def _ascending(regime: str, entries: tuple[RateEntry, ...]) -> None:
    starts = [entry.starts for entry in entries]
    if any(later <= earlier for earlier, later in pairwise(starts)):
        raise ValueError(f"{regime}: list the half-years in date order, each once")


class ReferenceRates(BaseModel):
    """Dated reference-rate tables per regime (src/dunning/reference_rates.json ships the defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    note: str = ""
    eu: tuple[RateEntry, ...] = ()
    uk: tuple[RateEntry, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        _ascending("eu", self.eu)
        _ascending("uk", self.uk)
        return self

    @classmethod
    def load(cls, path: Path | None = None) -> ReferenceRates:
        """The table at `path`, or the one shipped with the package."""
        if path is None:
            return _shipped_rates()
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))

    def rate_in_force(self, regime: Regime, day: date) -> Decimal:
        """The reference rate for the half-year containing `day`: the latest entry starting on or before it.

        A day past the table's last half-year gets the last known rate (nobody can know future rates, and
        inventing one would be worse); that is logged, because the business has to append the new
        half-year for the figures to be right.
        """
        entries = self.eu if regime == "eu" else self.uk
        known = [entry for entry in entries if entry.starts <= day]
        if not known:
            first = entries[0].starts.isoformat() if entries else "none"
            metrics.count(metrics.MISSING_REFERENCE_RATE)
            raise MissingReferenceRate(
                f"no {regime} reference rate for {day.isoformat()} (the table starts at {first}); "
                f"add the half-years before it to the reference-rate table"
            )
        latest = known[-1]
        if day >= _next_half_year(latest.starts):
            metrics.count(metrics.MISSING_REFERENCE_RATE)
            logger.warning(
                "the %s reference-rate table ends with the half-year from %s; %s uses its rate %s until "
                "the new half-year is added",
                regime,
                latest.starts.isoformat(),
                day.isoformat(),
                latest.rate,
            )
        return latest.rate


@functools.cache
def _shipped_rates() -> ReferenceRates:
    text = resources.files("dunning").joinpath("reference_rates.json").read_text(encoding="utf-8")
    return ReferenceRates.model_validate(json.loads(text))


def rate_in_force(regime: Regime, day: date, rates: ReferenceRates | None = None) -> Decimal:
    """The reference rate (before the 8 points) on `day` under `regime`, from `rates` or the shipped table."""
    return (rates or _shipped_rates()).rate_in_force(regime, day)


def _next_half_year(day: date) -> date:
    return date(day.year, 7, 1) if day.month < 7 else date(day.year + 1, 1, 1)


# --- policy ------------------------------------------------------------------------------------------


class LateFee(BaseModel):
    """A fee charged when a given stage's notice goes out: a flat sum or a percentage, per invoice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str = Field(pattern=_STAGE_NAME)
    # In the invoice's own currency (a flat 25 is EUR 25.00 on a EUR invoice and JPY 25 on a JPY one),
    # rounded to that currency's minor units.
    flat: Decimal | None = Field(default=None, gt=0, allow_inf_nan=False)
    # Of what is still outstanding on the invoice on the notice date.
    percent: Decimal | None = Field(default=None, gt=0, le=100, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.flat is None) == (self.percent is None):
            raise ValueError(
                f"late fee for stage {self.stage!r}: give exactly one of `flat` (an amount) or "
                f"`percent` (of the outstanding amount), not both and not neither"
            )
        return self


class ChargesPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    late_fees: tuple[LateFee, ...] = ()
    statutory_interest: Literal["none", "eu", "uk"] = "none"
    # The notices of these stages show the charges; the earlier, friendlier ones do not mention them.
    show_on: tuple[str, ...] = ("firm_notice", "demand_letter", "final_notice")
    reference_rates: ReferenceRates = Field(default_factory=_shipped_rates)

    @model_validator(mode="after")
    def _one_fee_per_stage(self) -> Self:
        stages = [fee.stage for fee in self.late_fees]
        doubled = sorted({stage for stage in stages if stages.count(stage) > 1})
        if doubled:
            raise ValueError(f"one late fee per stage: {', '.join(doubled)} has more than one")
        return self


# --- the debt ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Payment:
    paid_on: date
    amount: Decimal


@dataclass(frozen=True)
class DebtInvoice:
    invoice_id: str
    currency: str
    amount: Decimal
    due_on: date
    payments: tuple[Payment, ...] = ()
    # Paid before or outside the payments feed, so without a date: it reduces the principal from the start.
    # Must not overlap `payments` (from an InvoiceState: max(0, reported_paid - payments_total)).
    already_paid: Decimal = Decimal(0)

    def outstanding_on(self, day: date) -> Decimal:
        paid = self.already_paid + sum((p.amount for p in self.payments if p.paid_on <= day), Decimal(0))
        return max(self.amount - paid, Decimal(0))


@dataclass(frozen=True)
class _Piece:
    first: date
    last: date
    principal: Decimal
    reference: Decimal

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


# --- the charges -------------------------------------------------------------------------------------


def charges_for(
    invoices: Sequence[DebtInvoice],
    *,
    stage: str,
    on: date,
    policy: ChargesPolicy,
    stages_reached: Sequence[str],
    business_customer: bool,
) -> list[ChargeLine]:
    """The charge lines for the notice of `stage` sent `on`, or none when that stage does not show charges.

    `stages_reached` are the stages whose notices have gone out in this episode (`stage` counts even when
    left out); each of them with a late fee adds it once per invoice still outstanding and overdue on `on`.
    Lines come ordered by invoice, then fee / interest / compensation, then date.
    """
    if stage not in policy.show_on:
        return []
    reached = {*stages_reached, stage}
    fees = [fee for fee in policy.late_fees if fee.stage in reached]
    regime = policy.statutory_interest if business_customer else "none"
    lines: list[ChargeLine] = []
    for invoice in invoices:
        lines.extend(_late_fees(invoice, fees, on))
        if regime != "none":
            lines.extend(_statutory(invoice, on, regime, policy.reference_rates))
    return sorted(lines, key=_order)


def _order(line: ChargeLine) -> tuple[str, int, date]:
    start = dict(line.details).get("from")
    return (line.invoice_id or "", _KIND_ORDER[line.kind], start if isinstance(start, date) else date.min)


def _late_fees(invoice: DebtInvoice, fees: Sequence[LateFee], on: date) -> Iterator[ChargeLine]:
    outstanding = invoice.outstanding_on(on)
    # A fee called "late" on an invoice that is not late yet (another invoice of the account started the
    # ladder) or is already paid would be a false statement on the notice.
    if outstanding <= 0 or on <= invoice.due_on:
        return
    unit = quantum(invoice.currency)
    for fee in fees:
        if fee.flat is not None:
            amount = fee.flat.quantize(unit, ROUND_HALF_UP)
            details: tuple[tuple[str, object], ...] = (("stage", fee.stage),)
        else:
            assert fee.percent is not None
            with localcontext() as ctx:
                ctx.prec = 34
                amount = (outstanding * fee.percent / 100).quantize(unit, ROUND_HALF_UP)
            details = (
                ("stage", fee.stage),
                ("rate", _plain(fee.percent)),  # the key the notice templates read
                ("of", format_amount(outstanding, invoice.currency)),
            )
        if amount > 0:
            yield ChargeLine(LATE_FEE, invoice.invoice_id, amount, invoice.currency, details)


def _statutory(invoice: DebtInvoice, on: date, regime: Regime, rates: ReferenceRates) -> Iterator[ChargeLine]:
    pieces = _pieces(invoice, on, regime, rates)
    if not pieces:
        return
    unit = quantum(invoice.currency)
    for piece in pieces:
        rate = piece.reference + STATUTORY_MARGIN
        with localcontext() as ctx:
            ctx.prec = 34
            interest = (piece.principal * rate * piece.days / (100 * _DAYS_IN_YEAR)).quantize(
                unit, ROUND_HALF_UP
            )
        if interest <= 0:
            continue
        yield ChargeLine(
            STATUTORY_INTEREST,
            invoice.invoice_id,
            interest,
            invoice.currency,
            (
                ("rate", _percent(rate)),
                ("days", str(piece.days)),
                ("from", piece.first),
                ("to", piece.last),
                ("principal", format_amount(piece.principal, invoice.currency)),
                ("reference_rate", _percent(piece.reference)),
                ("regime", regime),
            ),
        )
    fixed = _fixed_sum(invoice, regime)
    if fixed is not None:
        details: tuple[tuple[str, object], ...] = (("regime", regime),)
        if regime == "uk":
            details += (("debt", format_amount(invoice.amount, invoice.currency)),)
        yield ChargeLine(FIXED_COMPENSATION, invoice.invoice_id, fixed, invoice.currency, details)


def _pieces(invoice: DebtInvoice, on: date, regime: Regime, rates: ReferenceRates) -> list[_Piece]:
    """The overdue period cut wherever the principal or the rate changes; only pieces with a principal."""
    first = invoice.due_on + _ONE_DAY
    if on < first:
        return []
    starts = {first}
    starts.update(p.paid_on for p in invoice.payments if first < p.paid_on <= on)
    fixed_reference: Decimal | None = None
    if regime == "uk":
        fixed_reference = rates.rate_in_force("uk", first)
    else:
        half_year = _next_half_year(first)
        while half_year <= on:
            starts.add(half_year)
            half_year = _next_half_year(half_year)
    pieces: list[_Piece] = []
    for start, next_start in pairwise([*sorted(starts), on + _ONE_DAY]):
        principal = invoice.outstanding_on(start)
        reference = fixed_reference if fixed_reference is not None else rates.rate_in_force("eu", start)
        previous = pieces[-1] if pieces else None
        # A cut where nothing changed (a half-year whose rate stayed the same, a zero payment) would only
        # add a line the reader has to add up again.
        if previous and (previous.principal, previous.reference) == (principal, reference):
            pieces[-1] = _Piece(previous.first, next_start - _ONE_DAY, principal, reference)
        else:
            pieces.append(_Piece(start, next_start - _ONE_DAY, principal, reference))
    return [piece for piece in pieces if piece.principal > 0]


def _fixed_sum(invoice: DebtInvoice, regime: Regime) -> Decimal | None:
    """The statute's fixed sum for a late invoice (called only when interest has run on it)."""
    unit = quantum(invoice.currency)
    if regime == "eu":
        return EU_COMPENSATION.quantize(unit) if invoice.currency == "EUR" else None
    if invoice.currency != "GBP":
        return None
    for below, fixed in _UK_FIXED_SUMS:
        if invoice.amount < below:
            return fixed.quantize(unit)
    return _UK_FIXED_SUM_TOP.quantize(unit)


def _percent(value: Decimal) -> str:
    """A rate as a notice prints it: at least two decimals ("12.50"), more only when the rate has them."""
    two = value.quantize(Decimal("0.01"))
    return format(two if two == value else value.normalize(), "f")


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")
