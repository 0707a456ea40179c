"""Late fees and statutory interest against examples worked by hand.

Every figure below was computed on paper from the rule, not by running the code: interest for a piece is
principal x (reference rate + 8) / 100 x days / 365, rounded half-up to the currency's minor units.
Reference rates used (src/dunning/domain/reference_rates.json):
  ECB MRO   2024 H1 4.50, 2024 H2 4.25
  BoE Bank Rate  2025 H1 (31 Dec 2024) 4.75, 2025 H2 (30 Jun 2025) 4.25

Since issue 10 the regime follows each invoice's currency (`statutory_interest: eu | uk` both mean "on") and
a bare flat fee needs `charges.currency`: the tests below that relied on one regime for every currency or
on a bare flat fee say where they changed and why. The new regimes (ro, hu), contractual interest, missing
rates and per-currency fees are in test_regimes.py.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from pydantic import ValidationError

from dunning.domain.charges import (
    ChargesPolicy,
    DebtInvoice,
    LateFee,
    MissingReferenceRate,
    Payment,
    ReferenceRates,
    next_half_year,
    rate_in_force,
)
from dunning.domain.charges import (
    charges_for as _charges_for,
)
from dunning.notices.render import ChargeLine

D = Decimal
EU = ChargesPolicy(statutory_interest="eu")
UK = ChargesPolicy(statutory_interest="uk")


def charges_for(
    invoices: list[DebtInvoice],
    on: date,
    policy: ChargesPolicy,
    *,
    stage: str = "firm_notice",
    stages_reached: tuple[str, ...] = ("reminder", "firm_notice"),
    business_customer: bool = True,
) -> list[ChargeLine]:
    return _charges_for(
        invoices,
        stage=stage,
        on=on,
        policy=policy,
        stages_reached=stages_reached,
        business_customer=business_customer,
    )


def summary(lines: list[ChargeLine]) -> list[tuple[str, str | None, Decimal, str, str, str]]:
    """(kind, invoice, amount, rate, days, principal) per line: the figures a reader checks."""
    out = []
    for line in lines:
        details = dict(line.details)
        out.append(
            (
                line.kind,
                line.invoice_id,
                line.amount,
                details.get("rate", ""),
                details.get("days", ""),
                details.get("principal", ""),
            )
        )
    return out


# --- reference rates ---------------------------------------------------------------------------------


def test_the_rate_in_force_is_the_latest_half_year_starting_on_or_before_the_day() -> None:
    assert rate_in_force("eu", date(2024, 6, 30)) == D("4.50")
    assert rate_in_force("eu", date(2024, 7, 1)) == D("4.25")
    assert rate_in_force("uk", date(2025, 1, 1)) == D("4.75")
    assert rate_in_force("uk", date(2025, 12, 31)) == D("4.25")


def test_rate_in_force_past_the_table_gives_the_last_known_rate_and_a_warning_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # rate_in_force is a lookup for people (and the metric test); the charges no longer use it: they give a
    # day past the table no interest and report it (test_regimes.py). The table now ends with 2026 H2.
    with caplog.at_level(logging.WARNING, logger="dunning.domain.charges"):
        assert rate_in_force("eu", date(2031, 3, 1)) == D("2.40")
    assert "ends with the half-year from 2026-07-01" in caplog.text


def test_before_the_table_there_is_no_rate_to_use() -> None:
    # The table now starts with 2019 (it started with 2022).
    with pytest.raises(MissingReferenceRate, match=r"no eu reference rate for 2018-12-31 .*2019-01-01"):
        rate_in_force("eu", date(2018, 12, 31))


def test_the_shipped_table_is_ordered_and_tells_the_business_to_append_half_years() -> None:
    shipped = Path(__file__).parents[2] / "src" / "dunning" / "domain" / "reference_rates.json"
    rates = ReferenceRates.load(shipped)
    assert rates == ReferenceRates.load()
    assert "append" in rates.note
    assert [entry.starts for entry in rates.eu] == [entry.starts for entry in rates.uk]
    # Every half-year from 2019 on has its own entry (gaps would be reported as missing rates), and every
    # figure names its official source.
    for regime in ("eu", "uk", "ro", "hu"):
        entries = rates.entries(regime)
        assert entries[0].starts == date(2019, 1, 1)
        assert all(later.starts == next_half_year(earlier.starts) for earlier, later in pairwise(entries))
        assert all(entry.source and entry.source.startswith("https://") for entry in entries)


def test_a_table_with_a_date_that_is_not_a_half_year_or_out_of_order_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "rates.json"
    bad.write_text(json.dumps({"eu": [{"from": "2024-03-01", "rate": "4.50"}]}))
    with pytest.raises(ValidationError, match="1 January or 1 July"):
        ReferenceRates.load(bad)
    bad.write_text(
        json.dumps({"uk": [{"from": "2024-07-01", "rate": "5"}, {"from": "2024-01-01", "rate": "5"}]})
    )
    with pytest.raises(ValidationError, match="date order"):
        ReferenceRates.load(bad)


def test_a_policy_round_trips_through_json_with_its_rate_table() -> None:
    policy = ChargesPolicy(
        statutory_interest="eu",
        late_fees=(LateFee(stage="firm_notice", flat={"EUR": D("25")}),),
        reference_rates=ReferenceRates.model_validate({"eu": [{"from": "2024-01-01", "rate": "4.5"}]}),
    )
    dumped = policy.model_dump(mode="json")
    # RateEntry gained an optional `source` (None when a policy's own table does not give one).
    assert dumped["reference_rates"]["eu"] == [{"from": "2024-01-01", "rate": "4.5", "source": None}]
    assert ChargesPolicy.model_validate(dumped) == policy


def test_a_policy_without_its_own_table_stores_none_and_uses_the_shipped_one() -> None:
    # The active policy is stored as JSON: writing the shipped table into it would freeze the rates at upload
    # time, so a deployment's new half-year would never reach it.
    policy = ChargesPolicy(statutory_interest="on")
    dumped = policy.model_dump(mode="json")
    assert dumped["reference_rates"] is None
    assert ChargesPolicy.model_validate(dumped).rates == ReferenceRates.load()


# --- EU ----------------------------------------------------------------------------------------------


def test_eu_interest_is_split_where_the_half_year_rate_changes() -> None:
    # EUR 1,000.00 due Fri 31 May 2024, unpaid; notice on 30 July 2024.
    #   1 Jun - 30 Jun: 30 days at 4.50 + 8 = 12.50 %: 1000 x 0.125 x 30 / 365 = 3750 / 365
    #                   = 10.27397... -> 10.27
    #   1 Jul - 30 Jul: 30 days at 4.25 + 8 = 12.25 %: 1000 x 0.1225 x 30 / 365 = 3675 / 365
    #                   = 10.06849... -> 10.07
    #   fixed compensation EUR 40.00.  Total 60.34.
    invoice = DebtInvoice("INV-1", "EUR", D("1000.00"), date(2024, 5, 31))
    lines = charges_for([invoice], date(2024, 7, 30), EU)
    assert summary(lines) == [
        ("statutory_interest", "INV-1", D("10.27"), "12.50", "30", "1000.00"),
        ("statutory_interest", "INV-1", D("10.07"), "12.25", "30", "1000.00"),
        ("fixed_compensation", "INV-1", D("40.00"), "", "", ""),
    ]
    first, second = (dict(line.details) for line in lines[:2])
    assert (first["from"], first["to"]) == (date(2024, 6, 1), date(2024, 6, 30))
    assert (second["from"], second["to"]) == (date(2024, 7, 1), date(2024, 7, 30))
    assert first["reference_rate"] == "4.50"
    assert sum(line.amount for line in lines) == D("60.34")
    assert all(line.currency == "EUR" for line in lines)


def test_eu_interest_with_a_partial_payment_runs_on_the_reduced_principal_from_the_payment_date() -> None:
    # EUR 2,000.00 due 31 May 2024; EUR 500.00 paid on 16 June; notice on 30 July 2024.
    #   1 Jun - 15 Jun: 15 days on 2000 at 12.50 %: 2000 x 0.125 x 15 / 365 = 3750 / 365 = 10.27397 -> 10.27
    #   16 Jun - 30 Jun: 15 days on 1500 at 12.50 %: 1500 x 0.125 x 15 / 365 = 2812.5 / 365 = 7.70548 -> 7.71
    #   1 Jul - 30 Jul: 30 days on 1500 at 12.25 %: 1500 x 0.1225 x 30 / 365 = 5512.5 / 365
    #                   = 15.10274 -> 15.10
    #   fixed compensation EUR 40.00.
    invoice = DebtInvoice(
        "INV-2", "EUR", D("2000.00"), date(2024, 5, 31), payments=(Payment(date(2024, 6, 16), D("500.00")),)
    )
    lines = charges_for([invoice], date(2024, 7, 30), EU)
    assert summary(lines) == [
        ("statutory_interest", "INV-2", D("10.27"), "12.50", "15", "2000.00"),
        ("statutory_interest", "INV-2", D("7.71"), "12.50", "15", "1500.00"),
        ("statutory_interest", "INV-2", D("15.10"), "12.25", "30", "1500.00"),
        ("fixed_compensation", "INV-2", D("40.00"), "", "", ""),
    ]
    assert dict(lines[1].details)["from"] == date(2024, 6, 16)


def test_an_undated_earlier_payment_reduces_the_principal_from_the_start() -> None:
    # EUR 1,000.00 due 31 May 2024, EUR 400.00 already paid (no date), notice on 30 June 2024.
    #   1 Jun - 30 Jun: 30 days on 600 at 12.50 %: 600 x 0.125 x 30 / 365 = 2250 / 365 = 6.16438 -> 6.16
    invoice = DebtInvoice("INV-3", "EUR", D("1000.00"), date(2024, 5, 31), already_paid=D("400.00"))
    assert summary(charges_for([invoice], date(2024, 6, 30), EU)) == [
        ("statutory_interest", "INV-3", D("6.16"), "12.50", "30", "600.00"),
        ("fixed_compensation", "INV-3", D("40.00"), "", "", ""),
    ]


def test_an_invoice_paid_in_full_earns_no_interest_after_its_payment_date() -> None:
    # EUR 1,000.00 due 31 May 2024, paid in full on 11 June; notice on 30 July 2024.
    #   1 Jun - 10 Jun: 10 days on 1000 at 12.50 %: 1000 x 0.125 x 10 / 365 = 1250 / 365 = 3.42466 -> 3.42
    #   from 11 Jun the principal is 0: nothing more (and no July piece).
    #   It was paid late, so the EUR 40 compensation is still due; no late fee (nothing outstanding).
    fee = LateFee(stage="firm_notice", flat=D("15"))
    policy = ChargesPolicy(statutory_interest="eu", late_fees=(fee,))
    invoice = DebtInvoice(
        "INV-4", "EUR", D("1000.00"), date(2024, 5, 31), payments=(Payment(date(2024, 6, 11), D("1000.00")),)
    )
    lines = charges_for([invoice], date(2024, 7, 30), policy)
    assert summary(lines) == [
        ("statutory_interest", "INV-4", D("3.42"), "12.50", "10", "1000.00"),
        ("fixed_compensation", "INV-4", D("40.00"), "", "", ""),
    ]
    assert dict(lines[0].details)["to"] == date(2024, 6, 10)


def test_an_invoice_paid_before_it_was_late_or_not_yet_late_has_no_statutory_charges() -> None:
    paid_early = DebtInvoice(
        "INV-5", "EUR", D("100.00"), date(2024, 5, 31), payments=(Payment(date(2024, 5, 31), D("100.00")),)
    )
    due_on_the_notice_date = DebtInvoice("INV-6", "EUR", D("100.00"), date(2024, 7, 30))
    assert charges_for([paid_early, due_on_the_notice_date], date(2024, 7, 30), EU) == []


def test_eu_gives_no_fixed_compensation_on_an_invoice_that_is_not_in_euro() -> None:
    # USD 1,000.00 due 31 May 2024, notice 30 June: interest as in euro (30 days at 12.50 % = 10.27), but
    # the Directive's EUR 40 is not converted into dollars.
    # Changed: USD has no statutory regime of its own now (`statutory_interest: eu` alone gives it none),
    # so the policy maps USD to eu explicitly.
    invoice = DebtInvoice("INV-7", "USD", D("1000.00"), date(2024, 5, 31))
    policy = ChargesPolicy(statutory_interest="eu", regimes={"USD": "eu"})
    assert charges_for([invoice], date(2024, 6, 30), EU) == []
    assert summary(charges_for([invoice], date(2024, 6, 30), policy)) == [
        ("statutory_interest", "INV-7", D("10.27"), "12.50", "30", "1000.00"),
    ]


# --- UK ----------------------------------------------------------------------------------------------


def test_uk_interest_keeps_the_rate_of_the_half_year_in_which_it_started_to_run() -> None:
    # GBP 5,000.00 due 31 March 2025; notice on 15 July 2025. Interest starts to run on 1 April 2025, in
    # the January-June half-year, so the rate is Bank Rate on 31 December 2024 (4.75) + 8 = 12.75 % for
    # the whole period (SI 2002/1675): the 4.25 of 30 June 2025 applies only to debts that start to earn
    # interest from July, so the period is not split at 1 July.
    #   1 Apr - 15 Jul: 30 + 31 + 30 + 15 = 106 days: 5000 x 0.1275 x 106 / 365 = 67575 / 365
    #                   = 185.13699 -> 185.14
    #   fixed sum: debt of 5,000.00 is under 10,000 -> GBP 70.00.  Total 255.14.
    invoice = DebtInvoice("INV-UK", "GBP", D("5000.00"), date(2025, 3, 31))
    lines = charges_for([invoice], date(2025, 7, 15), UK)
    assert summary(lines) == [
        ("statutory_interest", "INV-UK", D("185.14"), "12.75", "106", "5000.00"),
        ("fixed_compensation", "INV-UK", D("70.00"), "", "", ""),
    ]
    details = dict(lines[0].details)
    assert (details["from"], details["to"]) == (date(2025, 4, 1), date(2025, 7, 15))
    assert details["reference_rate"] == "4.75"
    assert dict(lines[1].details)["debt"] == "5000.00"


def test_uk_interest_starting_in_july_uses_the_30_june_rate() -> None:
    # GBP 5,000.00 due 30 June 2025: interest starts 1 July 2025 -> 4.25 + 8 = 12.25 %.
    #   1 Jul - 15 Jul: 15 days: 5000 x 0.1225 x 15 / 365 = 9187.5 / 365 = 25.17123 -> 25.17
    invoice = DebtInvoice("INV-UK2", "GBP", D("5000.00"), date(2025, 6, 30))
    assert summary(charges_for([invoice], date(2025, 7, 15), UK))[0] == (
        "statutory_interest",
        "INV-UK2",
        D("25.17"),
        "12.25",
        "15",
        "5000.00",
    )


def test_uk_interest_is_split_at_a_partial_payment_but_keeps_its_rate() -> None:
    # GBP 5,000.00 due 31 March 2025, GBP 2,000.00 paid 1 May 2025, notice 15 July 2025; 12.75 % throughout.
    #   1 Apr - 30 Apr: 30 days on 5000: 5000 x 0.1275 x 30 / 365 = 19125 / 365 = 52.39726 -> 52.40
    #   1 May - 15 Jul: 31 + 30 + 15 = 76 days on 3000: 3000 x 0.1275 x 76 / 365 = 29070 / 365
    #                   = 79.64384 -> 79.64
    #   fixed sum by the debt when the interest started to run (5,000.00 unpaid at the end of the due date,
    #   not what is left after the May payment): GBP 70.00.
    invoice = DebtInvoice(
        "INV-UK3", "GBP", D("5000.00"), date(2025, 3, 31), payments=(Payment(date(2025, 5, 1), D("2000.00")),)
    )
    assert summary(charges_for([invoice], date(2025, 7, 15), UK)) == [
        ("statutory_interest", "INV-UK3", D("52.40"), "12.75", "30", "5000.00"),
        ("statutory_interest", "INV-UK3", D("79.64"), "12.75", "76", "3000.00"),
        ("fixed_compensation", "INV-UK3", D("70.00"), "", "", ""),
    ]


@pytest.mark.parametrize(
    ("debt", "fixed"),
    [("999.99", "40.00"), ("1000.00", "70.00"), ("9999.99", "70.00"), ("10000.00", "100.00")],
)
def test_uk_fixed_sum_bands(debt: str, fixed: str) -> None:
    invoice = DebtInvoice("INV", "GBP", D(debt), date(2025, 3, 31))
    lines = charges_for([invoice], date(2025, 4, 30), UK)
    assert [line.amount for line in lines if line.kind == "fixed_compensation"] == [D(fixed)]


def test_uk_gives_no_fixed_sum_on_an_invoice_that_is_not_in_pounds() -> None:
    # Changed: `statutory_interest: uk` no longer puts a EUR invoice under the UK Act (it follows its
    # currency, so eu, with the EUR 40); only a policy that maps EUR to uk does, and then without a fixed sum.
    invoice = DebtInvoice("INV", "EUR", D("5000.00"), date(2025, 3, 31))
    eur_under_uk = ChargesPolicy(statutory_interest="on", regimes={"EUR": "uk"})
    assert [line.kind for line in charges_for([invoice], date(2025, 4, 30), eur_under_uk)] == [
        "statutory_interest"
    ]
    assert [line.kind for line in charges_for([invoice], date(2025, 4, 30), UK)] == [
        "statutory_interest",
        "fixed_compensation",
    ]


# --- who gets interest ---------------------------------------------------------------------------------


def test_consumers_get_late_fees_but_no_statutory_interest() -> None:
    # Changed: the flat fee is stated per currency (a bare one would apply to no invoice).
    fee = LateFee(stage="firm_notice", flat={"EUR": D("10")})
    policy = ChargesPolicy(statutory_interest="eu", late_fees=(fee,))
    invoice = DebtInvoice("INV-C", "EUR", D("1000.00"), date(2024, 5, 31))
    lines = charges_for([invoice], date(2024, 7, 30), policy, business_customer=False)
    assert summary(lines) == [("late_fee", "INV-C", D("10.00"), "", "", "")]


def test_no_statutory_interest_when_the_policy_says_none() -> None:
    invoice = DebtInvoice("INV-N", "EUR", D("1000.00"), date(2024, 5, 31))
    assert charges_for([invoice], date(2024, 7, 30), ChargesPolicy()) == []


def test_a_stage_that_does_not_show_charges_gets_none() -> None:
    # Changed: a bare flat fee needs charges.currency now.
    fee = LateFee(stage="reminder", flat=D("5"))
    policy = ChargesPolicy(statutory_interest="eu", late_fees=(fee,), currency="EUR")
    invoice = DebtInvoice("INV", "EUR", D("1000.00"), date(2024, 5, 31))
    assert charges_for([invoice], date(2024, 6, 5), policy, stage="reminder", stages_reached=()) == []
    # ... but the fee of the reminder is shown once a stage that shows charges goes out.
    lines = charges_for([invoice], date(2024, 6, 5), policy, stages_reached=("reminder",))
    assert [line.kind for line in lines] == ["late_fee", "statutory_interest", "fixed_compensation"]


# --- late fees -----------------------------------------------------------------------------------------


def test_late_fees_flat_and_percent_round_half_up_to_the_currency_minor_units() -> None:
    # Flat 500 at firm_notice, 10 % at demand_letter; both stages reached.
    #   JPY 12,345 (no decimals):  flat 500 -> 500;      10 % = 1,234.5 -> 1,235 (half-up; half-even: 1,234)
    #   BHD 100.900 (3 decimals):  flat 500 -> 500.000;  10 % = 10.09 -> 10.090
    # Changed: the flat fee is stated per currency (the same 500 in both, as the old bare fee meant).
    policy = ChargesPolicy(
        late_fees=(
            LateFee(stage="firm_notice", flat={"JPY": D("500"), "BHD": D("500")}),
            LateFee(stage="demand_letter", percent=D("10")),
        )
    )
    jpy = DebtInvoice("A-JPY", "JPY", D("12345"), date(2025, 1, 31))
    bhd = DebtInvoice("B-BHD", "BHD", D("100.900"), date(2025, 1, 31))
    lines = charges_for(
        [bhd, jpy],
        date(2025, 3, 1),
        policy,
        stage="demand_letter",
        stages_reached=("reminder", "firm_notice", "demand_letter"),
    )
    assert [(line.invoice_id, line.amount, line.currency) for line in lines] == [
        ("A-JPY", D("500"), "JPY"),
        ("A-JPY", D("1235"), "JPY"),
        ("B-BHD", D("500.000"), "BHD"),
        ("B-BHD", D("10.090"), "BHD"),
    ]
    assert str(lines[1].amount) == "1235"
    assert dict(lines[1].details) == {"stage": "demand_letter", "rate": "10", "of": "12345"}


def test_a_percent_fee_on_three_decimals_rounds_half_up() -> None:
    # BHD 100.900 at 0.5 % = 0.5045 -> 0.505 (half-up; half-even would give 0.504).
    # EUR 1,000.00 with EUR 250.00 paid 1 Feb: 1.5 % of the 750.00 outstanding = 11.25.
    policy = ChargesPolicy(late_fees=(LateFee(stage="firm_notice", percent=D("0.5")),))
    bhd = DebtInvoice("BHD-1", "BHD", D("100.900"), date(2025, 1, 31))
    assert [line.amount for line in charges_for([bhd], date(2025, 3, 1), policy)] == [D("0.505")]
    policy = ChargesPolicy(late_fees=(LateFee(stage="firm_notice", percent=D("1.5")),))
    eur = DebtInvoice(
        "EUR-1", "EUR", D("1000.00"), date(2025, 1, 31), payments=(Payment(date(2025, 2, 1), D("250.00")),)
    )
    [line] = charges_for([eur], date(2025, 3, 1), policy)
    assert line.amount == D("11.25")
    assert dict(line.details)["of"] == "750.00"


def test_fees_only_for_stages_reached_and_only_on_invoices_that_are_late_and_unpaid() -> None:
    # Changed: bare flat fees, so the policy names their currency.
    policy = ChargesPolicy(
        late_fees=(
            LateFee(stage="firm_notice", flat=D("10")),
            LateFee(stage="demand_letter", flat=D("20")),
            LateFee(stage="final_notice", flat=D("30")),
        ),
        currency="EUR",
    )
    late = DebtInvoice("A", "EUR", D("100.00"), date(2025, 1, 31))
    not_yet_due = DebtInvoice("B", "EUR", D("100.00"), date(2025, 3, 15))
    paid = DebtInvoice("C", "EUR", D("100.00"), date(2025, 1, 31), already_paid=D("100.00"))
    lines = charges_for(
        [late, not_yet_due, paid],
        date(2025, 3, 1),
        policy,
        stage="demand_letter",
        stages_reached=("reminder", "firm_notice"),  # the current stage counts even when left out
    )
    assert [(line.invoice_id, line.amount, dict(line.details)["stage"]) for line in lines] == [
        ("A", D("10.00"), "firm_notice"),
        ("A", D("20.00"), "demand_letter"),
    ]


def test_lines_come_ordered_by_invoice_then_fee_interest_compensation_then_date() -> None:
    # Changed: the flat fee is stated per currency.
    fee = LateFee(stage="firm_notice", flat={"EUR": D("5")})
    policy = ChargesPolicy(statutory_interest="eu", late_fees=(fee,))
    b = DebtInvoice("B", "EUR", D("1000.00"), date(2024, 5, 31))
    a = DebtInvoice("A", "EUR", D("1000.00"), date(2024, 5, 31))
    lines = charges_for([b, a], date(2024, 7, 30), policy)
    assert [(line.invoice_id, line.kind) for line in lines] == [
        ("A", "late_fee"),
        ("A", "statutory_interest"),
        ("A", "statutory_interest"),
        ("A", "fixed_compensation"),
        ("B", "late_fee"),
        ("B", "statutory_interest"),
        ("B", "statutory_interest"),
        ("B", "fixed_compensation"),
    ]


# --- policy validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [{"flat": "10", "percent": "5"}, {}])
def test_a_late_fee_needs_exactly_one_of_flat_or_percent(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match=r"exactly one of `flat` .* or `percent`"):
        LateFee.model_validate({"stage": "firm_notice", **fields})


@pytest.mark.parametrize("fields", [{"flat": "0"}, {"percent": "-1"}, {"percent": "101"}, {"flat": "NaN"}])
def test_a_late_fee_must_be_a_positive_amount_or_a_percentage(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        LateFee.model_validate({"stage": "firm_notice", **fields})


def test_one_late_fee_per_stage() -> None:
    with pytest.raises(ValidationError, match="one late fee per stage: firm_notice"):
        ChargesPolicy.model_validate(
            {"late_fees": [{"stage": "firm_notice", "flat": "5"}, {"stage": "firm_notice", "percent": "1"}]}
        )
