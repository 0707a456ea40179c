"""Statutory regimes per invoice currency, contractual interest, missing rates and per-currency fees
(issue 10), against examples worked by hand.

Interest for a piece is principal x yearly rate x days / 36,500, rounded half-up once to the currency's minor
units. Reference rates used (src/dunning/domain/reference_rates.json), before the 8 points:
  ECB MRO         2020 0.00, 2025 H1 3.15, 2025 H2 2.15
  BoE Bank Rate   31 Dec 2019 0.75, 31 Dec 2025 3.75
  BNR reference   2025 H2 6.50
  MNB base rate   2024 H1 10.75 (in force 1 Jan 2024), 2024 H2 7.00 (in force 1 Jul 2024)
"""

from __future__ import annotations

import logging
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dunning.adapters import metrics
from dunning.domain.charges import (
    Accrued,
    ChargeLine,
    ChargesPolicy,
    ChargeTerms,
    DebtInvoice,
    LateFee,
    MissingRate,
    Payment,
    ReferenceRates,
    accrued_charges,
    charges_for,
)
from dunning.domain.policy import parse_policy

D = Decimal
ON = ChargesPolicy(statutory_interest="on")


def accrue(
    invoices: list[DebtInvoice],
    on: date,
    policy: ChargesPolicy = ON,
    *,
    consumer: bool = False,
    stages: tuple[str, ...] = ("reminder", "firm_notice"),
) -> Accrued:
    return accrued_charges(invoices, on=on, policy=policy, stages_reached=stages, consumer=consumer)


def rows(lines: tuple[ChargeLine, ...] | list[ChargeLine]) -> list[tuple[str, Decimal, str, str, str]]:
    """(kind, amount, rate, days, principal) per line: the figures a reader checks."""
    return [
        (
            line.kind,
            line.amount,
            line.facts.get("rate", ""),
            line.facts.get("days", ""),
            line.facts.get("principal", ""),
        )
        for line in lines
    ]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    monkeypatch.setattr(metrics, "count", lambda name, value=1: names.append(name))
    return names


# --- regimes by currency -------------------------------------------------------------------------------


def test_eur_is_split_at_the_rate_change_and_at_a_partial_payment() -> None:
    # EUR 2,000.00 due 31 May 2025, EUR 500.00 paid 16 June, computed on 30 July 2025.
    #   1-15 Jun:  15 days on 2,000 at 3.15 + 8 = 11.15 %: 2000 x 11.15 x 15 / 36500 = 334500 / 36500
    #              = 9.16438 -> 9.16
    #   16-30 Jun: 15 days on 1,500 at 11.15 %: 1500 x 11.15 x 15 / 36500 = 250875 / 36500 = 6.87329 -> 6.87
    #   1-30 Jul:  30 days on 1,500 at 2.15 + 8 = 10.15 %: 1500 x 10.15 x 30 / 36500 = 456750 / 36500
    #              = 12.51370 -> 12.51
    #   EUR 40.00 fixed compensation.  Total 68.54.
    invoice = DebtInvoice(
        "E-1", "EUR", D("2000.00"), date(2025, 5, 31), payments=(Payment(date(2025, 6, 16), D("500.00")),)
    )
    accrued = accrue([invoice], date(2025, 7, 30))
    assert rows(accrued.lines) == [
        ("statutory_interest", D("9.16"), "11.15", "15", "2000.00"),
        ("statutory_interest", D("6.87"), "11.15", "15", "1500.00"),
        ("statutory_interest", D("12.51"), "10.15", "30", "1500.00"),
        ("fixed_compensation", D("40.00"), "", "", ""),
    ]
    assert [line.facts["from"] for line in accrued.lines[:3]] == [
        date(2025, 6, 1),
        date(2025, 6, 16),
        date(2025, 7, 1),
    ]
    assert sum(line.amount for line in accrued.lines) == D("68.54")
    assert accrued.missing == ()


def test_gbp_in_2026_runs_at_the_bank_rate_of_31_december_2025_with_the_fixed_sum() -> None:
    # GBP 10,000.00 due 31 Jan 2026, computed 31 Mar 2026: 1 Feb - 31 Mar = 28 + 31 = 59 days at
    # 3.75 + 8 = 11.75 %: 10000 x 11.75 x 59 / 36500 = 6932500 / 36500 = 189.93151 -> 189.93.
    # Debt outstanding when the interest starts: 10,000.00 -> GBP 100.00.
    invoice = DebtInvoice("G-1", "GBP", D("10000.00"), date(2026, 1, 31))
    accrued = accrue([invoice], date(2026, 3, 31))
    assert rows(accrued.lines) == [
        ("statutory_interest", D("189.93"), "11.75", "59", "10000.00"),
        ("fixed_compensation", D("100.00"), "", "", ""),
    ]
    assert accrued.lines[0].facts["reference_rate"] == "3.75"
    assert accrued.lines[1].facts == {"regime": "uk", "debt": "10000.00"}


def test_the_uk_fixed_sum_goes_by_the_debt_outstanding_when_interest_starts_not_the_invoice_amount() -> None:
    # GBP 10,500.00 due 31 Jan 2026, GBP 1,000.00 paid 20 Jan (before the due date): the debt when interest
    # starts on 1 Feb is 9,500.00 -> GBP 70 (the invoice amount would have given 100).
    #   59 days on 9,500 at 11.75 %: 9500 x 11.75 x 59 / 36500 = 6585875 / 36500 = 180.43493 -> 180.43
    # GBP 1,200.00 with 300.00 paid earlier (undated): debt 900.00 -> GBP 40 (the invoice amount: 70).
    #   59 days on 900 at 11.75 %: 900 x 11.75 x 59 / 36500 = 623925 / 36500 = 17.09384 -> 17.09
    paid_before = DebtInvoice(
        "G-2", "GBP", D("10500.00"), date(2026, 1, 31), payments=(Payment(date(2026, 1, 20), D("1000.00")),)
    )
    undated = DebtInvoice("G-3", "GBP", D("1200.00"), date(2026, 1, 31), already_paid=D("300.00"))
    accrued = accrue([paid_before, undated], date(2026, 3, 31))
    assert rows(accrued.lines) == [
        ("statutory_interest", D("180.43"), "11.75", "59", "9500.00"),
        ("fixed_compensation", D("70.00"), "", "", ""),
        ("statutory_interest", D("17.09"), "11.75", "59", "900.00"),
        ("fixed_compensation", D("40.00"), "", "", ""),
    ]
    assert [line.facts.get("debt") for line in accrued.lines if line.kind == "fixed_compensation"] == [
        "9500.00",
        "900.00",
    ]


def test_ron_runs_at_the_bnr_reference_rate_plus_8_points_with_no_fixed_sum() -> None:
    # RON 10,000.00 due 30 Jun 2025, computed 28 Sep 2025: 1 Jul - 28 Sep = 31 + 31 + 28 = 90 days at
    # 6.50 + 8 = 14.50 %: 10000 x 14.5 x 90 / 36500 = 13050000 / 36500 = 357.53425 -> 357.53. No fixed sum.
    invoice = DebtInvoice("R-1", "RON", D("10000.00"), date(2025, 6, 30))
    accrued = accrue([invoice], date(2025, 9, 28))
    assert rows(accrued.lines) == [("statutory_interest", D("357.53"), "14.50", "90", "10000.00")]
    assert (accrued.lines[0].facts["regime"], accrued.lines[0].facts["reference_rate"]) == ("ro", "6.50")


def test_statutory_interest_eu_on_a_ron_invoice_now_uses_the_romanian_regime() -> None:
    # An older policy's `statutory_interest: eu` means "on": the RON invoice above gets ro (357.53), not
    # the ECB rate. A policy that wants the ECB rate for RON maps it: 2.15 + 8 = 10.15 %:
    # 10000 x 10.15 x 90 / 36500 = 9135000 / 36500 = 250.27397 -> 250.27, and no EUR 40 on a RON invoice.
    invoice = DebtInvoice("R-1", "RON", D("10000.00"), date(2025, 6, 30))
    legacy = ChargesPolicy.model_validate({"statutory_interest": "eu"})
    assert rows(accrue([invoice], date(2025, 9, 28), legacy).lines) == [
        ("statutory_interest", D("357.53"), "14.50", "90", "10000.00")
    ]
    mapped = ChargesPolicy.model_validate({"statutory_interest": "on", "regimes": {"RON": "eu"}})
    lines = accrue([invoice], date(2025, 9, 28), mapped).lines
    assert rows(lines) == [("statutory_interest", D("250.27"), "10.15", "90", "10000.00")]
    assert lines[0].facts["regime"] == "eu"
    off = ChargesPolicy.model_validate({"statutory_interest": "uk", "regimes": {"RON": "none"}})
    assert accrue([invoice], date(2025, 9, 28), off).lines == ()


def test_huf_runs_at_the_mnb_base_rate_in_force_on_the_first_day_of_each_half_year() -> None:
    # HUF 1,000,000.00 due 15 Jun 2024, computed 14 Jul 2024. The MNB cut its rate to 7.00 on 19 June, but
    # the first half-year keeps the rate in force on 1 January (10.75); the second, the one of 1 July (7.00).
    #   16-30 Jun: 15 days at 10.75 + 8 = 18.75 %: 1000000 x 18.75 x 15 / 36500 = 281250000 / 36500
    #              = 7705.47945 -> 7705.48
    #   1-14 Jul:  14 days at 7.00 + 8 = 15.00 %: 1000000 x 15 x 14 / 36500 = 210000000 / 36500
    #              = 5753.42466 -> 5753.42
    #   No fixed sum (the behajtási költségátalány is out of scope).
    invoice = DebtInvoice("H-1", "HUF", D("1000000.00"), date(2024, 6, 15))
    accrued = accrue([invoice], date(2024, 7, 14))
    assert rows(accrued.lines) == [
        ("statutory_interest", D("7705.48"), "18.75", "15", "1000000.00"),
        ("statutory_interest", D("5753.42"), "15.00", "14", "1000000.00"),
    ]
    assert {line.facts["regime"] for line in accrued.lines} == {"hu"}


def test_a_consumer_gets_no_statutory_interest_and_no_fixed_sum_in_any_currency() -> None:
    # Only the business's own late fee: EUR 10.00 and GBP 8.00.
    fee = LateFee(stage="firm_notice", flat={"EUR": D("10"), "GBP": D("8")})
    policy = ChargesPolicy(statutory_interest="on", late_fees=(fee,))
    invoices = [
        DebtInvoice(f"C-{currency}", currency, D("10000.00"), date(2025, 6, 30))
        for currency in ("EUR", "GBP", "RON", "HUF")
    ]
    accrued = accrue(invoices, date(2025, 9, 28), policy, consumer=True)
    assert [(line.invoice_id, line.kind, line.amount) for line in accrued.lines] == [
        ("C-EUR", "late_fee", D("10.00")),
        ("C-GBP", "late_fee", D("8.00")),
    ]
    assert accrued.missing == ()


def test_other_currencies_have_no_statutory_regime_unless_the_policy_maps_them() -> None:
    invoice = DebtInvoice("U-1", "USD", D("1000.00"), date(2025, 6, 30))
    assert accrue([invoice], date(2025, 9, 28)).lines == ()


def test_minor_units_of_jpy_and_bhd() -> None:
    # Contractual 10 % a year, JPY 12,345 and BHD 100.900 due 31 Jan 2025, computed 15 Feb (15 days):
    #   JPY: 12345 x 10 x 15 / 36500 = 1851750 / 36500 = 50.73288 -> 51 (no decimals)
    #   BHD: 100.9 x 10 x 15 / 36500 = 15135 / 36500 = 0.41466 -> 0.415 (three decimals)
    # Statutory, JPY mapped to eu: 3.15 + 8 = 11.15 %: 12345 x 11.15 x 15 / 36500 = 2064701.25 / 36500
    #   = 56.56716 -> 57, and no EUR 40 on a yen invoice.
    jpy = DebtInvoice("J-1", "JPY", D("12345"), date(2025, 1, 31))
    bhd = DebtInvoice("B-1", "BHD", D("100.900"), date(2025, 1, 31))
    contract = ChargesPolicy.model_validate({"contract_interest": [{"rate": "10", "per": "year"}]})
    lines = accrue([jpy, bhd], date(2025, 2, 15), contract).lines
    assert [(line.invoice_id, str(line.amount), line.facts["principal"]) for line in lines] == [
        ("B-1", "0.415", "100.900"),
        ("J-1", "51", "12345"),
    ]
    mapped = ChargesPolicy.model_validate({"statutory_interest": "on", "regimes": {"JPY": "eu"}})
    [line] = accrue([jpy], date(2025, 2, 15), mapped).lines
    assert (line.kind, str(line.amount), line.facts["rate"]) == ("statutory_interest", "57", "11.15")


# --- missing rates --------------------------------------------------------------------------------------


def test_a_debt_due_in_2020_computes() -> None:
    # EUR 1,000.00 due 31 Mar 2020, computed 15 Jul 2020: ECB 0.00 in both half-years, so one piece:
    #   1 Apr - 15 Jul = 30 + 31 + 30 + 15 = 106 days at 8.00 %: 1000 x 8 x 106 / 36500 = 848000 / 36500
    #   = 23.23288 -> 23.23; EUR 40.00.
    # GBP 1,000.00 due the same day: Bank Rate on 31 Dec 2019 was 0.75 -> 8.75 % for the debt's life (the
    #   cut to 0.10 in March 2020 does not reach it): 1000 x 8.75 x 106 / 36500 = 927500 / 36500
    #   = 25.41096 -> 25.41; debt 1,000.00 -> GBP 70.00.
    eur = DebtInvoice("E-2020", "EUR", D("1000.00"), date(2020, 3, 31))
    gbp = DebtInvoice("G-2020", "GBP", D("1000.00"), date(2020, 3, 31))
    accrued = accrue([eur, gbp], date(2020, 7, 15))
    assert rows(accrued.lines) == [
        ("statutory_interest", D("23.23"), "8.00", "106", "1000.00"),
        ("fixed_compensation", D("40.00"), "", "", ""),
        ("statutory_interest", D("25.41"), "8.75", "106", "1000.00"),
        ("fixed_compensation", D("70.00"), "", "", ""),
    ]
    assert accrued.missing == ()


def test_days_past_the_table_earn_nothing_and_are_reported(
    counted: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    # A table whose last ro half-year is 2025 H1 (6.50). RON 10,000.00 due 15 Jun 2025, paid in full on
    # 11 Jul, computed 20 Jul:
    #   16-30 Jun: 15 days at 14.50 %: 10000 x 14.5 x 15 / 36500 = 2175000 / 36500 = 59.58904 -> 59.59
    #   1-10 Jul:  no rate for 2025 H2: nothing, reported (from 11 Jul nothing is owed, so nothing missing).
    # A second invoice with the same days missing is reported once, and counted once.
    rates = ReferenceRates.model_validate({"ro": [{"from": "2025-01-01", "rate": "6.50"}]})
    policy = ChargesPolicy(statutory_interest="on", reference_rates=rates)
    paid = DebtInvoice(
        "R-2", "RON", D("10000.00"), date(2025, 6, 15), payments=(Payment(date(2025, 7, 11), D("10000.00")),)
    )
    twin = DebtInvoice(
        "R-3", "RON", D("500.00"), date(2025, 6, 15), payments=(Payment(date(2025, 7, 11), D("500.00")),)
    )
    with caplog.at_level(logging.WARNING, logger="dunning.domain.charges"):
        accrued = accrue([paid, twin], date(2025, 7, 20), policy)
    assert rows(accrued.lines)[0] == ("statutory_interest", D("59.59"), "14.50", "15", "10000.00")
    assert all(line.facts["to"] == date(2025, 6, 30) for line in accrued.lines)
    assert accrued.missing == (MissingRate("ro", date(2025, 7, 1), date(2025, 7, 10)),)
    assert accrued.missing[0].describe() == (
        "no ro reference rate for 2025-07-01..2025-07-10; add the half-year to the rate table"
    )
    assert counted == []  # reported in `missing`; counted by the send or hand-off, not here
    assert "no ro reference rate after the half-year from 2025-01-01" in caplog.text


def test_days_before_the_table_earn_nothing_and_are_reported_and_do_not_crash(counted: list[str]) -> None:
    # EUR 1,000.00 due 30 Nov 2018, computed 31 Jan 2019; the shipped eu table starts with 2019:
    #   1-31 Dec 2018: no rate, reported.
    #   1-31 Jan 2019: 31 days at 0.00 + 8 %: 1000 x 8 x 31 / 36500 = 248000 / 36500 = 6.79452 -> 6.79
    #   EUR 40.00 (the invoice was late, whatever the rate).
    invoice = DebtInvoice("E-2018", "EUR", D("1000.00"), date(2018, 11, 30))
    accrued = accrue([invoice], date(2019, 1, 31))
    assert rows(accrued.lines) == [
        ("statutory_interest", D("6.79"), "8.00", "31", "1000.00"),
        ("fixed_compensation", D("40.00"), "", "", ""),
    ]
    assert accrued.missing == (MissingRate("eu", date(2018, 12, 1), date(2018, 12, 31)),)
    assert counted == []  # reported in `missing`; counted by the send or hand-off, not here


def test_a_uk_debt_that_started_before_the_table_has_no_rate_for_its_whole_life(counted: list[str]) -> None:
    # Interest starts 16 Dec 2018 (2018 H2, not in the table): the UK rate is that half-year's for good, so
    # every day to 10 Jan 2019 is missing, even those in 2019. The fixed sum does not need a rate: GBP 40.
    invoice = DebtInvoice("G-2018", "GBP", D("500.00"), date(2018, 12, 15))
    accrued = accrue([invoice], date(2019, 1, 10))
    assert rows(accrued.lines) == [("fixed_compensation", D("40.00"), "", "", "")]
    assert accrued.missing == (MissingRate("uk", date(2018, 12, 16), date(2019, 1, 10)),)


def test_charges_for_is_accrued_charges_behind_the_show_on_gate(counted: list[str]) -> None:
    invoice = DebtInvoice("E-2018", "EUR", D("1000.00"), date(2018, 11, 30))
    common: dict[str, Any] = {"on": date(2019, 1, 31), "policy": ON, "stages_reached": ["reminder"]}
    assert charges_for([invoice], stage="reminder", business_customer=True, **common) == []
    shown = charges_for([invoice], stage="firm_notice", business_customer=True, **common)
    assert shown == list(accrue([invoice], date(2019, 1, 31)).lines)
    # The domain reports the gap; the send or hand-off that logs charges_incomplete counts the alarm's metric
    # (tests/unit/test_metrics.py).
    assert counted == []


def test_a_single_missing_day_is_described_as_one_date() -> None:
    gap = MissingRate("hu", date(2027, 1, 1), date(2027, 1, 1))
    assert gap.describe() == "no hu reference rate for 2027-01-01; add the half-year to the rate table"


# --- contractual interest -------------------------------------------------------------------------------


def test_contract_interest_at_10_percent_a_year() -> None:
    # USD 100.00 overdue 15 days (due 31 Jan 2026, computed 15 Feb) at 10 % a year:
    #   100 x 10 x 15 / 36500 = 15000 / 36500 = 0.41096 -> 0.41
    policy = ChargesPolicy.model_validate(
        {"contract_interest": [{"currency": "USD", "rate": "10", "per": "year"}]}
    )
    invoice = DebtInvoice("U-1", "USD", D("100.00"), date(2026, 1, 31))
    [line] = accrue([invoice], date(2026, 2, 15), policy).lines
    assert (line.kind, line.amount) == ("contract_interest", D("0.41"))
    assert line.facts == {
        "rate": "10.00",
        "days": "15",
        "from": date(2026, 2, 1),
        "to": date(2026, 2, 15),
        "principal": "100.00",
        "per": "year",
        "stated_rate": "10",
    }


def test_contract_interest_at_1_5_percent_a_month_simple_and_compounded() -> None:
    # USD 1,000.00 due 31 Jan 2026, computed 15 Mar 2026, 1.5 % a month = 18 % a year (1.5 x 12), a day
    # 18 / 365 %.
    # Simple: 1 Feb - 15 Mar = 28 + 15 = 43 days: 1000 x 18 x 43 / 36500 = 774000 / 36500 = 21.20548 -> 21.21
    # Compounded monthly: months counted from 1 Feb.
    #   1-28 Feb (a full month): 28 days on 1,000: 1000 x 18 x 28 / 36500 = 504000 / 36500
    #             = 13.80822 -> 13.81, capitalised.
    #   1-15 Mar (partial):      15 days on 1,013.81: 1013.81 x 18 x 15 / 36500 = 273728.7 / 36500
    #             = 7.49942 -> 7.50.  Total 21.31.
    invoice = DebtInvoice("U-2", "USD", D("1000.00"), date(2026, 1, 31))
    entry = {"currency": "USD", "rate": "1.5", "per": "month"}
    simple = ChargesPolicy.model_validate({"contract_interest": [entry]})
    assert rows(accrue([invoice], date(2026, 3, 15), simple).lines) == [
        ("contract_interest", D("21.21"), "18.00", "43", "1000.00")
    ]
    compounded = ChargesPolicy.model_validate({"contract_interest": [{**entry, "monthly_compounding": True}]})
    lines = accrue([invoice], date(2026, 3, 15), compounded).lines
    assert rows(lines) == [
        ("contract_interest", D("13.81"), "18.00", "28", "1000.00"),
        ("contract_interest", D("7.50"), "18.00", "15", "1013.81"),
    ]
    assert (lines[1].facts["per"], lines[1].facts["stated_rate"]) == ("month", "1.5")
    assert (lines[1].facts["compounding"], lines[1].facts["capitalised_interest"]) == ("monthly", "13.81")


def test_compounded_contract_interest_with_a_payment_in_the_second_month() -> None:
    # As above, USD 500.00 paid 6 Mar:
    #   1-28 Feb: 13.81 (capitalised)
    #   1-5 Mar:  5 days on 1,013.81: 1013.81 x 18 x 5 / 36500 = 91242.9 / 36500 = 2.49981 -> 2.50
    #   6-15 Mar: 10 days on 500 + 13.81 = 513.81: 513.81 x 18 x 10 / 36500 = 92485.8 / 36500
    #             = 2.53386 -> 2.53
    policy = ChargesPolicy.model_validate(
        {"contract_interest": [{"rate": "1.5", "per": "month", "monthly_compounding": True}]}
    )
    invoice = DebtInvoice(
        "U-3", "USD", D("1000.00"), date(2026, 1, 31), payments=(Payment(date(2026, 3, 6), D("500.00")),)
    )
    assert rows(accrue([invoice], date(2026, 3, 15), policy).lines) == [
        ("contract_interest", D("13.81"), "18.00", "28", "1000.00"),
        ("contract_interest", D("2.50"), "18.00", "5", "1013.81"),
        ("contract_interest", D("2.53"), "18.00", "10", "513.81"),
    ]


def test_contract_interest_replaces_the_statutory_regime_for_the_customers_it_names() -> None:
    # EUR 1,000.00 due 31 May 2025, computed 30 Jun 2025 (30 days), contract 12 % a year for businesses:
    #   1000 x 12 x 30 / 36500 = 360000 / 36500 = 9.86301 -> 9.86, and no EUR 40 (the contract replaces the
    #   statutory regime). A consumer is not named by the entry: no interest at all.
    policy = ChargesPolicy.model_validate(
        {
            "statutory_interest": "on",
            "contract_interest": [
                {"currency": "EUR", "customer_type": "business", "rate": "12", "per": "year"}
            ],
        }
    )
    invoice = DebtInvoice("E-9", "EUR", D("1000.00"), date(2025, 5, 31))
    assert rows(accrue([invoice], date(2025, 6, 30), policy).lines) == [
        ("contract_interest", D("9.86"), "12.00", "30", "1000.00")
    ]
    assert accrue([invoice], date(2025, 6, 30), policy, consumer=True).lines == ()


def test_the_first_matching_contract_entry_wins_and_an_entry_without_customer_type_covers_consumers() -> None:
    # USD 100.00, 15 days: the USD entry (1 % a month = 12 % a year): 100 x 12 x 15 / 36500 = 0.49315 -> 0.49;
    # EUR falls to the catch-all 10 % a year: 100 x 10 x 15 / 36500 = 0.41096 -> 0.41, consumer or not.
    policy = ChargesPolicy.model_validate(
        {
            "contract_interest": [
                {"currency": "USD", "rate": "1", "per": "month"},
                {"rate": "10", "per": "year"},
            ]
        }
    )
    usd = DebtInvoice("U-4", "USD", D("100.00"), date(2026, 1, 31))
    eur = DebtInvoice("E-4", "EUR", D("100.00"), date(2026, 1, 31))
    lines = accrue([usd, eur], date(2026, 2, 15), policy, consumer=True).lines
    assert [(line.invoice_id, line.amount, line.facts["per"]) for line in lines] == [
        ("E-4", D("0.41"), "year"),
        ("U-4", D("0.49"), "month"),
    ]


# --- late fees per currency -----------------------------------------------------------------------------


def test_flat_fees_per_currency() -> None:
    # GBP 25.00 and EUR 30.00 at firm_notice; a USD invoice gets none; JPY "25.5" is charged as 26
    # (half-up to whole yen).
    policy = ChargesPolicy.model_validate(
        {"late_fees": [{"stage": "firm_notice", "flat": {"GBP": "25.00", "EUR": "30.00", "JPY": "25.5"}}]}
    )
    invoices = [
        DebtInvoice(f"F-{currency}", currency, D("100"), date(2025, 1, 31))
        for currency in ("GBP", "EUR", "USD", "JPY")
    ]
    lines = accrue(invoices, date(2025, 3, 1), policy).lines
    assert [(line.invoice_id, str(line.amount), line.currency) for line in lines] == [
        ("F-EUR", "30.00", "EUR"),
        ("F-GBP", "25.00", "GBP"),
        ("F-JPY", "26", "JPY"),
    ]
    assert policy.warnings() == [
        "charges.late_fees: the flat fee of stage firm_notice in JPY (25.5) has more decimals than JPY "
        "allows; it is charged as 26"
    ]


def test_a_bare_flat_fee_is_in_the_policy_currency_and_without_one_applies_to_no_invoice() -> None:
    eur = DebtInvoice("B-EUR", "EUR", D("100.00"), date(2025, 1, 31))
    huf = DebtInvoice("B-HUF", "HUF", D("100000.00"), date(2025, 1, 31))
    bare = {"late_fees": [{"stage": "firm_notice", "flat": "25.00"}]}
    policy = ChargesPolicy.model_validate(bare)
    assert accrue([eur, huf], date(2025, 3, 1), policy).lines == ()
    [warning] = policy.warnings()
    assert "names no currency" in warning and "applies to no invoice" in warning
    in_euro = ChargesPolicy.model_validate({**bare, "currency": "EUR"})
    assert [
        (line.invoice_id, line.amount) for line in accrue([eur, huf], date(2025, 3, 1), in_euro).lines
    ] == [("B-EUR", D("25.00"))]
    assert in_euro.warnings() == []


@pytest.mark.parametrize("flat", [{}, {"EUR": "0"}, {"EURO": "5"}, {"EUR": "NaN"}])
def test_a_per_currency_flat_fee_must_name_currencies_and_positive_amounts(flat: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        LateFee.model_validate({"stage": "firm_notice", "flat": flat})


# --- the policy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "charges_section",
    [
        {"statutory_interest": "fr"},
        {"regimes": {"XX": "eu"}},
        {"regimes": {"RON": "de"}},
        {"currency": "euro"},
        {"contract_interest": [{"rate": "2", "per": "week"}]},
        {"contract_interest": [{"rate": "0", "per": "year"}]},
        {"contract_interest": [{"rate": "2", "per": "year", "customer_type": "government"}]},
    ],
)
def test_a_policy_with_an_unknown_regime_currency_or_period_is_refused(
    charges_section: dict[str, Any],
) -> None:
    with pytest.raises(ValidationError):
        ChargesPolicy.model_validate(charges_section)


def test_the_readme_policy_example_loads_and_a_bare_yaml_on_or_off_is_understood() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    example = re.search(r"## Policy.*?```yaml\n(.*?)```", readme, re.DOTALL)
    assert example is not None
    policy = parse_policy(example.group(1), "README.md").charges
    assert (policy.statutory_interest, policy.warnings()) == ("on", [])
    assert policy.terms_for("USD", consumer=False).interest == "contract"
    assert parse_policy("charges: {statutory_interest: off}\n", "x").charges.statutory_interest == "none"


def test_older_regime_names_still_load_and_a_warning_says_what_they_mean_now() -> None:
    for value in ("eu", "uk"):
        policy = ChargesPolicy.model_validate({"statutory_interest": value})
        assert policy.regime_for("GBP") == "uk" and policy.regime_for("EUR") == "eu"
        assert any("now means `on`" in warning for warning in policy.warnings())
    assert ChargesPolicy.model_validate({"statutory_interest": "on"}).warnings() == []
    assert ChargesPolicy().regime_for("EUR") is None


def test_a_contract_entry_behind_a_catch_all_is_flagged() -> None:
    policy = ChargesPolicy.model_validate(
        {
            "contract_interest": [
                {"rate": "10", "per": "year"},
                {"currency": "USD", "rate": "1", "per": "month"},
            ]
        }
    )
    assert policy.warnings() == [
        "charges.contract_interest: entry 2 is never used, an earlier entry matches every invoice it would"
    ]


def test_terms_for_says_what_a_notice_may_mention() -> None:
    policy = ChargesPolicy.model_validate(
        {
            "statutory_interest": "on",
            "regimes": {"HUF": "none"},
            "late_fees": [{"stage": "firm_notice", "flat": {"EUR": "30.00"}}],
            "contract_interest": [
                {"currency": "USD", "customer_type": "business", "rate": "1", "per": "month"}
            ],
        }
    )
    assert policy.terms_for("EUR", consumer=False) == ChargeTerms(
        True, "statutory", "eu", fixed_compensation=True
    )
    assert policy.terms_for("EUR", consumer=True) == ChargeTerms(True, None, None, fixed_compensation=False)
    assert policy.terms_for("GBP", consumer=False) == ChargeTerms(
        False, "statutory", "uk", fixed_compensation=True
    )
    assert policy.terms_for("RON", consumer=False) == ChargeTerms(
        False, "statutory", "ro", fixed_compensation=False
    )
    assert policy.terms_for("USD", consumer=False) == ChargeTerms(
        False, "contract", None, fixed_compensation=False
    )
    assert not policy.terms_for("USD", consumer=True).any
    assert not policy.terms_for("HUF", consumer=False).any
    assert policy.terms_for("EUR", consumer=True).any  # the late fee
    percent = ChargesPolicy.model_validate({"late_fees": [{"stage": "firm_notice", "percent": "2"}]})
    assert percent.terms_for("JPY", consumer=True) == ChargeTerms(True, None, None, fixed_compensation=False)
