"""Late fees, statutory late-payment interest and contractual interest, as the charge lines a notice shows.

Everything is Decimal: amounts are rounded once, per charge line, to the currency's minor units with
ROUND_HALF_UP (the way a clerk rounds), never per day.

Late fees are the business's own terms and apply to every customer, per currency: a flat fee is stated per
currency (``flat: {GBP: "25.00", EUR: "30.00"}``); a bare ``flat: "25.00"`` is in ``charges.currency`` and,
without that setting, applies to no invoice (25 is not the same fee in HUF and in BHD), which
``ChargesPolicy.warnings()`` says.

Statutory interest (``charges.statutory_interest`` on: ``on``, or ``eu`` / ``uk`` as older policies wrote
it) follows the regime of each invoice's currency, never one regime for the whole policy: EUR under ``eu``,
GBP under ``uk``, RON under ``ro``, HUF under ``hu``, any other currency under none unless
``charges.regimes`` maps it (``{RON: eu, USD: none}``). It applies to business customers only; consumers
never get statutory interest or fixed sums.

- ``eu`` (Late Payment Directive 2011/7/EU): the ECB main refinancing rate in force on 1 January / 1 July of
  each half-year plus 8 percentage points; a period crossing 1 January or 1 July is split at the rate of
  each. Fixed compensation of EUR 40 per late invoice (article 6), for EUR invoices only: the Directive
  states the sum in euro, so an invoice in another currency mapped to ``eu`` gets none rather than a
  guessed equivalent.
- ``uk`` (Late Payment of Commercial Debts (Interest) Act 1998): the Bank of England Bank Rate in force on
  31 December / 30 June plus 8 percentage points, fixed by the half-year in which the interest *starts to
  run* (SI 2002/1675) and kept for the life of the debt, so a UK debt is never split at 1 January or
  1 July. Fixed sums of GBP 40 / 70 / 100 (section 5A) by the debt outstanding when the interest starts to
  run (what was still unpaid at the end of the due date): under 1,000 / under 10,000 / 10,000 and over,
  for GBP invoices only.
- ``ro`` (Law 72/2013 with OG 13/2011): the BNR reference rate in force on the first day of each half-year
  plus 8 percentage points, split by half-year. The Law's EUR 40 equivalent in lei is left out: no fixed sum.
- ``hu`` (Civil Code 6:155): the MNB base rate in force on the first day of each half-year plus 8
  percentage points, split by half-year. The EUR 40 recovery-cost lump sum (behajtási költségátalány) is
  left out: no fixed sum.

Contractual interest (``charges.contract_interest``) replaces the statutory regime for an invoice when an
entry matches its currency and the customer type (the first match wins; an entry without a currency or a
customer type matches any): it applies to consumers too when the entry says so, and gives no fixed sum.

Interest of every kind is simple interest, running from the day after the due date up to and including the
computation date; day count actual/365 (a leap year's 366th day earns a 365th of the yearly rate too); the
principal on each day is what was still unpaid that day, so a payment reduces it from its own date and the
period is split there. A contractual rate ``per: month`` is ``rate x 12`` a year, so ``rate x 12 / 365`` a
day. With ``monthly_compounding: true`` the period is cut into months counted from the first overdue day
(the day after the due date, then the same day of each following month, or that month's last day);
within a month interest runs day by day as above on the principal plus the interest capitalised so far, and
at the end of each *full* month that month's interest (the rounded lines, as the notice shows them) is
added to the base of the months after; the last, partial month is not capitalised. Interest runs only on
days with unpaid principal.

A day whose half-year has no rate in the reference-rate table earns no statutory interest: the
computation reports it (``Accrued.missing``, metric ``MissingReferenceRate``, a warning in the log) and never
uses a stale rate in its place.
"""

from __future__ import annotations

import calendar
import functools
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from dunning.domain.money import format_amount, is_currency, quantum

logger = logging.getLogger(__name__)

Regime = Literal["eu", "uk", "ro", "hu"]
REGIMES: tuple[Regime, ...] = ("eu", "uk", "ro", "hu")
# The regime of an invoice in each currency unless the policy maps it otherwise; any other currency: none.
DEFAULT_REGIMES: Mapping[str, Regime] = {"EUR": "eu", "GBP": "uk", "RON": "ro", "HUF": "hu"}


@dataclass(frozen=True)
class ChargeLine:
    """A late fee, statutory interest or fixed compensation added to a notice that mentions charges.

    The templates describe each line from its details, so they must carry what a reader needs to check the
    figure (render_notice refuses a line without the required ones):
    - statutory_interest: "rate" (a year, in percent: "10.15" is 10.15 %), "days", "from" and "to" (dates,
      both included in the days); optionally "principal", the amount the interest ran on;
    - contract_interest (interest the contract states, CONTRACT 13): "stated_rate" (in percent, as the
      contract states it) and "per" ("month" or "year": the period the stated rate is for), "days",
      "from" and "to"; optionally "principal" (and "rate", the yearly equivalent, which the notice does not
      print);
    - late_fee: optionally "rate" (percent) and "of" (the amount it is a percentage of);
    - fixed_compensation: nothing.
    Numbers are Decimal, int or str, never float; other details are ignored.
    """

    kind: str  # late_fee | statutory_interest | contract_interest | fixed_compensation
    invoice_id: str | None
    amount: Decimal
    currency: str
    details: tuple[tuple[str, Any], ...] = ()

    @property
    def facts(self) -> dict[str, Any]:
        """The details by name, for the templates."""
        return dict(self.details)


LATE_FEE = "late_fee"
STATUTORY_INTEREST = "statutory_interest"
CONTRACT_INTEREST = "contract_interest"
FIXED_COMPENSATION = "fixed_compensation"
INTEREST_KINDS = frozenset({STATUTORY_INTEREST, CONTRACT_INTEREST})
# Within one invoice a notice reads best as: the business's fees, the interest pieces in date order, then
# the fixed compensation; the sort key uses this rank rather than the alphabet.
_KIND_ORDER = {LATE_FEE: 0, STATUTORY_INTEREST: 1, CONTRACT_INTEREST: 1, FIXED_COMPENSATION: 2}

STATUTORY_MARGIN = Decimal(8)  # percentage points over the reference rate, every regime
_DAYS_IN_YEAR = Decimal(365)
_ONE_DAY = timedelta(days=1)
_STAGE_NAME = r"^[a-z][a-z0-9_]{0,39}$"  # as policy.Stage.name (not imported: policy will import us)

EU_COMPENSATION = Decimal(40)  # EUR, Directive 2011/7/EU article 6
# (debt below, fixed sum) in GBP, Late Payment Act section 5A; a debt of 10,000.00 or more gets 100.
_UK_FIXED_SUMS = ((Decimal(1000), Decimal(40)), (Decimal(10000), Decimal(70)))
_UK_FIXED_SUM_TOP = Decimal(100)


def _currency_code(code: str) -> str:
    if not is_currency(code):
        raise ValueError(f"{code!r} is not an ISO 4217 currency code (such as EUR, GBP, RON, HUF)")
    return code


CurrencyCode = Annotated[str, AfterValidator(_currency_code)]
_Amount = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class MissingReferenceRate(LookupError):
    """The reference-rate table has no entry for a day (raised by `rate_in_force`, never by the charges)."""


# --- reference rates ---------------------------------------------------------------------------------


class RateEntry(BaseModel):
    """The reference rate (percent per year, before the 8 points) for the half-year starting at `from`."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    starts: date = Field(alias="from")
    rate: Decimal = Field(allow_inf_nan=False, ge=-100, le=100)
    # Where the figure was read: the central bank's official publication.
    source: str | None = Field(default=None, max_length=500)

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
    """Dated reference-rate tables per regime (src/dunning/domain/reference_rates.json ships the defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    note: str = ""
    eu: tuple[RateEntry, ...] = ()
    uk: tuple[RateEntry, ...] = ()
    ro: tuple[RateEntry, ...] = ()
    hu: tuple[RateEntry, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for regime in REGIMES:
            _ascending(regime, self.entries(regime))
        return self

    @classmethod
    def load(cls, path: Path | None = None) -> ReferenceRates:
        """The table at `path`, or the one shipped with the package."""
        if path is None:
            return _shipped_rates()
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))

    def entries(self, regime: str) -> tuple[RateEntry, ...]:
        tables = {"eu": self.eu, "uk": self.uk, "ro": self.ro, "hu": self.hu}
        return tables[regime]

    def for_half_year(self, regime: Regime, day: date) -> Decimal | None:
        """The rate of the half-year containing `day` when the table has that half-year, else None."""
        starts = half_year_start(day)
        return next((entry.rate for entry in self.entries(regime) if entry.starts == starts), None)

    def rate_in_force(self, regime: Regime, day: date) -> Decimal:
        """The latest entry starting on or before `day` (a lookup for people; the charges do not use it).

        Before the table: MissingReferenceRate. Past the table's last half-year: the last known rate, with a
        warning. The charges never do this: they use only the rate of
        the day's own half-year and report a day without one (see `accrued_charges`).
        """
        entries = self.entries(regime)
        known = [entry for entry in entries if entry.starts <= day]
        if not known:
            first = entries[0].starts.isoformat() if entries else "none"
            raise MissingReferenceRate(
                f"no {regime} reference rate for {day.isoformat()} (the table starts at {first}); "
                f"add the half-years before it to the reference-rate table"
            )
        latest = known[-1]
        if day >= next_half_year(latest.starts):
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
    text = resources.files("dunning.domain").joinpath("reference_rates.json").read_text(encoding="utf-8")
    return ReferenceRates.model_validate(json.loads(text))


def rate_in_force(regime: Regime, day: date, rates: ReferenceRates | None = None) -> Decimal:
    """The reference rate (before the 8 points) on `day` under `regime`, from `rates` or the shipped table."""
    return (rates or _shipped_rates()).rate_in_force(regime, day)


def half_year_start(day: date) -> date:
    return date(day.year, 1 if day.month < 7 else 7, 1)


def next_half_year(day: date) -> date:
    return date(day.year, 7, 1) if day.month < 7 else date(day.year + 1, 1, 1)


def _add_months(day: date, months: int) -> date:
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- policy ------------------------------------------------------------------------------------------


class LateFee(BaseModel):
    """A fee charged when a given stage's notice goes out: a flat sum or a percentage, per invoice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str = Field(pattern=_STAGE_NAME)
    # Per currency ({GBP: "25.00", EUR: "30.00"}); an invoice in a currency not listed gets none. A bare
    # amount is in the policy's `currency` (none without it). Rounded to the currency's minor units.
    flat: _Amount | dict[CurrencyCode, _Amount] | None = None
    # Of what is still outstanding on the invoice on the computation date, in any currency.
    percent: Decimal | None = Field(default=None, gt=0, le=100, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.flat is None) == (self.percent is None) or self.flat == {}:
            raise ValueError(
                f"late fee for stage {self.stage!r}: give exactly one of `flat` (an amount per currency) or "
                f"`percent` (of the outstanding amount), not both and not neither"
            )
        return self

    def flat_in(self, currency: str, policy_currency: str | None) -> Decimal | None:
        """The flat amount for an invoice in `currency` (None: no flat fee in that currency)."""
        if isinstance(self.flat, dict):
            return self.flat.get(currency)
        return self.flat if self.flat is not None and currency == policy_currency else None

    def applies_in(self, currency: str, policy_currency: str | None) -> bool:
        return self.percent is not None or self.flat_in(currency, policy_currency) is not None


class ContractInterest(BaseModel):
    """Interest the contract states, used instead of the statutory regime where it matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: CurrencyCode | None = None  # None: any currency
    customer_type: Literal["business", "consumer"] | None = None  # None: both
    rate: Decimal = Field(gt=0, le=100, allow_inf_nan=False)  # percent
    per: Literal["month", "year"]
    monthly_compounding: bool = False

    def matches(self, currency: str, consumer: bool) -> bool:
        customer = "consumer" if consumer else "business"
        return self.currency in (None, currency) and self.customer_type in (None, customer)

    @property
    def yearly(self) -> Decimal:
        """The rate a year, in percent: `rate` x 12 for a monthly rate."""
        return self.rate * 12 if self.per == "month" else self.rate


@dataclass(frozen=True)
class ChargeTerms:
    """What a notice may mention to one customer in one currency."""

    late_fees: bool
    interest: Literal["statutory", "contract"] | None
    regime: str | None  # the statutory regime, when interest is statutory
    fixed_compensation: bool

    @property
    def any(self) -> bool:
        """Fees or interest apply."""
        return self.late_fees or self.interest is not None


class ChargesPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    late_fees: tuple[LateFee, ...] = ()
    # Statutory charges on (`on`) or off (`none`). `eu` and `uk`, as older policies wrote it, mean `on`: the
    # regime always follows each invoice's currency (DEFAULT_REGIMES, then `regimes`).
    statutory_interest: Literal["none", "on", "eu", "uk"] = "none"
    # A currency's regime instead of the default one, or `none` for no statutory charges in it.
    regimes: dict[CurrencyCode, Literal["eu", "uk", "ro", "hu", "none"]] = Field(default_factory=dict)
    contract_interest: tuple[ContractInterest, ...] = ()
    # The currency of a bare `flat` late fee.
    currency: CurrencyCode | None = None
    # Charges already demanded on an invoice that is paid since are dropped rather than still claimed with
    # the rest of the debt (CONTRACT 13: accrued interest is not lost when the principal is paid unless the
    # policy waives it). Read by dunning.domain.owed, not by this module.
    waive_when_paid: bool = False
    # The notices of these stages show the charges; the earlier, friendlier ones do not mention them.
    show_on: tuple[str, ...] = ("firm_notice", "demand_letter", "final_notice")
    # None: the table shipped with the code in force (so a deployment's new half-years reach every policy).
    reference_rates: ReferenceRates | None = None

    @field_validator("statutory_interest", mode="before")
    @classmethod
    def _yaml_switch(cls, value: object) -> object:
        # YAML reads a bare `on` / `off` (and yes / no, true / false) as a boolean.
        if isinstance(value, bool):
            return "on" if value else "none"
        return value

    @model_validator(mode="after")
    def _one_fee_per_stage(self) -> Self:
        stages = [fee.stage for fee in self.late_fees]
        doubled = sorted({stage for stage in stages if stages.count(stage) > 1})
        if doubled:
            raise ValueError(f"one late fee per stage: {', '.join(doubled)} has more than one")
        return self

    @property
    def rates(self) -> ReferenceRates:
        return self.reference_rates or _shipped_rates()

    def regime_for(self, currency: str) -> Regime | None:
        """The statutory regime of an invoice in `currency` (None: no statutory charges)."""
        if self.statutory_interest == "none":
            return None
        regime = self.regimes.get(currency, DEFAULT_REGIMES.get(currency, "none"))
        return None if regime == "none" else regime

    def contract_for(self, currency: str, consumer: bool) -> ContractInterest | None:
        return next((entry for entry in self.contract_interest if entry.matches(currency, consumer)), None)

    def terms_for(self, currency: str, consumer: bool) -> ChargeTerms:
        """Which charges apply to a customer (a consumer or a business) on invoices in `currency`."""
        fees = any(fee.applies_in(currency, self.currency) for fee in self.late_fees)
        if self.contract_for(currency, consumer) is not None:
            return ChargeTerms(fees, "contract", None, fixed_compensation=False)
        regime = None if consumer else self.regime_for(currency)
        if regime is None:
            return ChargeTerms(fees, None, None, fixed_compensation=False)
        fixed = (regime, currency) in (("eu", "EUR"), ("uk", "GBP"))
        return ChargeTerms(fees, "statutory", regime, fixed_compensation=fixed)

    def warnings(self) -> list[str]:
        """What the policy says that probably does not do what its author meant (it still loads)."""
        found: list[str] = []
        for fee in self.late_fees:
            if isinstance(fee.flat, Decimal) and self.currency is None:
                found.append(
                    f"charges.late_fees: the flat fee of stage {fee.stage} ({fee.flat}) names no currency "
                    f"and the policy has no charges.currency, so it applies to no invoice; write it per "
                    f'currency, e.g. flat: {{EUR: "{fee.flat}"}}, or set charges.currency'
                )
            for currency, amount in _flat_amounts(fee, self.currency):
                if amount != amount.quantize(quantum(currency)):
                    found.append(
                        f"charges.late_fees: the flat fee of stage {fee.stage} in {currency} ({amount}) has "
                        f"more decimals than {currency} allows; it is charged as "
                        f"{format_amount(amount, currency)}"
                    )
        if self.statutory_interest in ("eu", "uk"):
            found.append(
                f"charges.statutory_interest: {self.statutory_interest} now means `on`: each invoice follows "
                f"the regime of its currency (EUR eu, GBP uk, RON ro, HUF hu; others none unless "
                f"charges.regimes maps them); write `on` to say so"
            )
        for later, entry in enumerate(self.contract_interest):
            for earlier in self.contract_interest[:later]:
                if earlier.currency in (None, entry.currency) and earlier.customer_type in (
                    None,
                    entry.customer_type,
                ):
                    found.append(
                        f"charges.contract_interest: entry {later + 1} is never used, an earlier entry "
                        f"matches every invoice it would"
                    )
                    break
        return found


def _flat_amounts(fee: LateFee, policy_currency: str | None) -> list[tuple[str, Decimal]]:
    if isinstance(fee.flat, dict):
        return list(fee.flat.items())
    if fee.flat is not None and policy_currency is not None:
        return [(policy_currency, fee.flat)]
    return []


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
class MissingRate:
    """Days that earned no statutory interest because the rate table has no rate for their half-year."""

    regime: str
    first: date
    last: date

    def describe(self) -> str:
        days = self.first.isoformat()
        if self.last != self.first:
            days += f"..{self.last.isoformat()}"
        return f"no {self.regime} reference rate for {days}; add the half-year to the rate table"


@dataclass(frozen=True)
class Accrued:
    lines: tuple[ChargeLine, ...]
    missing: tuple[MissingRate, ...]


@dataclass(frozen=True)
class _Piece:
    first: date
    last: date
    principal: Decimal
    reference: Decimal

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class _Overdue:
    """An invoice's overdue period cut into statutory pieces, with the days that had no rate."""

    pieces: list[_Piece]
    missing: list[MissingRate]
    late: bool  # some overdue day had unpaid principal


# --- the charges -------------------------------------------------------------------------------------


def accrued_charges(
    invoices: Sequence[DebtInvoice],
    *,
    on: date,
    policy: ChargesPolicy,
    stages_reached: Sequence[str],
    consumer: bool,
) -> Accrued:
    """Every charge accrued on `on`: the late fee of each stage reached (once per invoice still
    outstanding and overdue on `on`), interest (statutory or contractual) to `on` inclusive, fixed sums.

    Lines come ordered by invoice, then fee / interest / compensation, then date. Days with no reference
    rate earn nothing and come back in `missing` (each distinct gap once; each counted in the
    MissingReferenceRate metric and logged as a warning).
    """
    reached = set(stages_reached)
    fees = [fee for fee in policy.late_fees if fee.stage in reached]
    lines: list[ChargeLine] = []
    missing: list[MissingRate] = []
    for invoice in invoices:
        lines.extend(_late_fees(invoice, fees, on, policy.currency))
        contract = policy.contract_for(invoice.currency, consumer)
        regime = None if consumer else policy.regime_for(invoice.currency)
        if contract is not None:
            lines.extend(_contract(invoice, on, contract))
        elif regime is not None:
            overdue = _overdue(invoice, on, regime, policy.rates)
            lines.extend(_statutory(invoice, regime, overdue))
            missing.extend(gap for gap in overdue.missing if gap not in missing)
    for gap in missing:
        _report(gap, policy.rates)
    return Accrued(tuple(sorted(lines, key=_order)), tuple(missing))


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
    left out). The lines of `accrued_charges`; its missing rates are counted and logged there.
    """
    if stage not in policy.show_on:
        return []
    reached = [*stages_reached, stage]
    accrued = accrued_charges(
        invoices, on=on, policy=policy, stages_reached=reached, consumer=not business_customer
    )
    return list(accrued.lines)


def _report(gap: MissingRate, rates: ReferenceRates) -> None:
    entries = rates.entries(gap.regime)
    if entries and gap.first >= next_half_year(entries[-1].starts):
        # Two leading arguments (regime, last half-year) keep one summary line per table end for the
        # simulator's collector, however many days are missing.
        logger.warning(
            "no %s reference rate after the half-year from %s: %s..%s earned no interest; add the half-year "
            "to the rate table",
            gap.regime,
            entries[-1].starts.isoformat(),
            gap.first.isoformat(),
            gap.last.isoformat(),
        )
    else:
        logger.warning("%s", gap.describe())


def _order(line: ChargeLine) -> tuple[str, int, date]:
    start = dict(line.details).get("from")
    return (line.invoice_id or "", _KIND_ORDER[line.kind], start if isinstance(start, date) else date.min)


def _late_fees(
    invoice: DebtInvoice, fees: Sequence[LateFee], on: date, policy_currency: str | None
) -> Iterator[ChargeLine]:
    outstanding = invoice.outstanding_on(on)
    # A fee called "late" on an invoice that is not late yet (another invoice of the account started the
    # ladder) or is already paid would be a false statement on the notice.
    if outstanding <= 0 or on <= invoice.due_on:
        return
    unit = quantum(invoice.currency)
    for fee in fees:
        flat = fee.flat_in(invoice.currency, policy_currency)
        if flat is not None:
            amount = flat.quantize(unit, ROUND_HALF_UP)
            details: tuple[tuple[str, object], ...] = (("stage", fee.stage),)
        elif fee.percent is not None:
            with localcontext() as ctx:
                ctx.prec = 34
                amount = (outstanding * fee.percent / 100).quantize(unit, ROUND_HALF_UP)
            details = (
                ("stage", fee.stage),
                ("rate", _plain(fee.percent)),  # the key the notice templates read
                ("of", format_amount(outstanding, invoice.currency)),
            )
        else:
            continue  # a flat fee stated in other currencies only
        if amount > 0:
            yield ChargeLine(LATE_FEE, invoice.invoice_id, amount, invoice.currency, details)


def _interest(principal: Decimal, yearly_percent: Decimal, days: int, currency: str) -> Decimal:
    """principal x rate x days / (100 x 365), rounded once."""
    with localcontext() as ctx:
        ctx.prec = 34
        exact = principal * yearly_percent * days / (100 * _DAYS_IN_YEAR)
        return exact.quantize(quantum(currency), ROUND_HALF_UP)


def _statutory(invoice: DebtInvoice, regime: Regime, overdue: _Overdue) -> Iterator[ChargeLine]:
    for piece in overdue.pieces:
        rate = piece.reference + STATUTORY_MARGIN
        interest = _interest(piece.principal, rate, piece.days, invoice.currency)
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
    if overdue.late:
        yield from _fixed_sum(invoice, regime)


def _cuts(invoice: DebtInvoice, first: date, on: date, extra: Sequence[date] = ()) -> list[tuple[date, date]]:
    """[first, on] cut at every payment date and at `extra`, as (first, last) day ranges."""
    starts = {first, *(day for day in extra if first < day <= on)}
    starts.update(p.paid_on for p in invoice.payments if first < p.paid_on <= on)
    return [(start, following - _ONE_DAY) for start, following in pairwise([*sorted(starts), on + _ONE_DAY])]


def _overdue(invoice: DebtInvoice, on: date, regime: Regime, rates: ReferenceRates) -> _Overdue:
    """The overdue period cut wherever the principal or the rate changes; days without a rate set apart."""
    first = invoice.due_on + _ONE_DAY
    if on < first:
        return _Overdue([], [], late=False)
    half_years: list[date] = []
    if regime != "uk":  # the UK rate is the one of the half-year the interest started in, for good
        half_year = next_half_year(first)
        while half_year <= on:
            half_years.append(half_year)
            half_year = next_half_year(half_year)
    pieces: list[_Piece] = []
    missing: list[MissingRate] = []
    late = False
    for start, last in _cuts(invoice, first, on, half_years):
        principal = invoice.outstanding_on(start)
        if principal <= 0:
            continue
        late = True
        reference = rates.for_half_year(regime, first if regime == "uk" else start)
        if reference is None:
            if missing and missing[-1].last + _ONE_DAY == start:
                missing[-1] = MissingRate(regime, missing[-1].first, last)
            else:
                missing.append(MissingRate(regime, start, last))
            continue
        previous = pieces[-1] if pieces else None
        # A cut where nothing changed (a half-year whose rate stayed the same, a zero payment) would only
        # add a line the reader has to add up again.
        same = (principal, reference)
        if (
            previous is not None
            and (previous.principal, previous.reference) == same
            and previous.last + _ONE_DAY == start
        ):
            pieces[-1] = _Piece(previous.first, last, principal, reference)
        else:
            pieces.append(_Piece(start, last, principal, reference))
    return _Overdue(pieces, missing, late)


def _fixed_sum(invoice: DebtInvoice, regime: Regime) -> Iterator[ChargeLine]:
    """The statute's fixed sum for a late invoice, if its regime gives one in the invoice's currency."""
    unit = quantum(invoice.currency)
    details: tuple[tuple[str, object], ...] = (("regime", regime),)
    if regime == "eu" and invoice.currency == "EUR":
        fixed = EU_COMPENSATION
    elif regime == "uk" and invoice.currency == "GBP":
        # The debt when the interest starts to run: what was unpaid at the end of the due date.
        debt = invoice.outstanding_on(invoice.due_on)
        fixed = next((amount for below, amount in _UK_FIXED_SUMS if debt < below), _UK_FIXED_SUM_TOP)
        details += (("debt", format_amount(debt, invoice.currency)),)
    else:
        return
    yield ChargeLine(FIXED_COMPENSATION, invoice.invoice_id, fixed.quantize(unit), invoice.currency, details)


def _contract(invoice: DebtInvoice, on: date, terms: ContractInterest) -> Iterator[ChargeLine]:
    """Contractual interest: simple, or capitalised at the end of each full month (see the module notes)."""
    first = invoice.due_on + _ONE_DAY
    if on < first:
        return
    capitalised = Decimal(0)
    month = 0
    window_start = first
    while window_start <= on:
        # Without compounding the whole period is one window; with it, one window per month from `first`.
        following = _add_months(first, month + 1) if terms.monthly_compounding else on + _ONE_DAY
        window_end = min(following - _ONE_DAY, on)
        earned = Decimal(0)
        for start, last in _cuts(invoice, window_start, window_end):
            principal = invoice.outstanding_on(start)
            if principal <= 0:
                continue
            line = _contract_line(invoice, terms, start, last, principal, capitalised)
            if line is not None:
                earned += line.amount
                yield line
        if following - _ONE_DAY <= on:  # a full month: its interest joins the base
            capitalised += earned
        month += 1
        window_start = following


def _contract_line(
    invoice: DebtInvoice,
    terms: ContractInterest,
    first: date,
    last: date,
    principal: Decimal,
    capitalised: Decimal,
) -> ChargeLine | None:
    days = (last - first).days + 1
    base = principal + capitalised
    interest = _interest(base, terms.yearly, days, invoice.currency)
    if interest <= 0:
        return None
    details: tuple[tuple[str, object], ...] = (
        ("rate", _percent(terms.yearly)),
        ("days", str(days)),
        ("from", first),
        ("to", last),
        ("principal", format_amount(base, invoice.currency)),
        ("per", terms.per),
        ("stated_rate", _plain(terms.rate)),
    )
    if terms.monthly_compounding:
        details += (("compounding", "monthly"),)
    if capitalised > 0:
        details += (("capitalised_interest", format_amount(capitalised, invoice.currency)),)
    return ChargeLine(CONTRACT_INTEREST, invoice.invoice_id, interest, invoice.currency, details)


def _percent(value: Decimal) -> str:
    """A rate as a notice prints it: at least two decimals ("12.50"), more only when the rate has them."""
    two = value.quantize(Decimal("0.01"))
    return format(two if two == value else value.normalize(), "f")


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")
