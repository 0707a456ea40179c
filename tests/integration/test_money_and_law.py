"""What is owed, end to end on the real state machine (issue 10): every defect measured on 00c6c29 as a test.

Dates are in 2026, inside the shipped reference-rate tables, so no figure is left out for a missing rate.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dunning.local.embedded_aws import LEGAL_BUCKET
from tests.support.collections import World, world
from tests.support.files import invoice_row

CHARGES = (
    "charges:\n"
    "  statutory_interest: on\n"
    "  late_fees:\n"
    "    - {stage: firm_notice, flat: {GBP: '25.00', EUR: '30.00'}}\n"
    "    - {stage: demand_letter, percent: '2'}\n"
)


def _packet(w: World, case_id: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    body = w.aws.s3.get_object(Bucket=LEGAL_BUCKET, Key=f"cases/{case_id}.zip")["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        statement = list(csv.DictReader(io.StringIO(archive.read("statement_of_account.csv").decode())))
    return manifest, statement


def _charges_by_line(event: dict[str, Any]) -> Decimal:
    return Decimal(event.get("charges", "0"))


def test_two_currencies_are_two_ladders_and_two_cases_never_summed() -> None:
    # GBP 5,000.00 and EUR 1,200.00 owed by one customer (the measured letter demanded "€1,386.37" for both).
    with world(date(2026, 1, 5)) as w:
        w.invoices(
            invoice_row("G-1", amount="5000.00", currency="GBP", due_on="2026-01-15", issued_on="2025-12-15"),
            invoice_row("E-1", amount="1200.00", currency="EUR", due_on="2026-01-20", issued_on="2025-12-20"),
        )
        w.run_through(date(2026, 4, 15))

        sent = w.events("ACME", "notice_sent")
        assert {event["currency"] for event in sent} == {"GBP", "EUR"}
        for event in sent:
            # One currency per notice, and only that currency's invoice in it.
            assert event["invoice_ids"] == (["G-1"] if event["currency"] == "GBP" else ["E-1"])
        per_currency = {c: [e["stage"] for e in sent if e["currency"] == c] for c in ("GBP", "EUR")}
        ladder = ["pre_due", "reminder", "second_reminder", "firm_notice", "demand_letter", "final_notice"]
        assert per_currency == {"GBP": ladder, "EUR": ladder}

        cases = {event["currency"]: event for event in w.events("ACME", "case_opened")}
        assert set(cases) == {"GBP", "EUR"}
        assert cases["GBP"]["amount_due"] == "5000.00" and cases["EUR"]["amount_due"] == "1200.00"
        for currency, case in cases.items():
            manifest, statement = _packet(w, case["case_id"])
            assert manifest["currency"] == currency and manifest["amount_due"] == case["amount_due"]
            assert {row["invoice_id"] for row in statement} == {"G-1" if currency == "GBP" else "E-1"}
        # Two executions walked the account: one per currency.
        names = {e["name"].split("-")[1] for e in w.aws.executions()}
        assert names == {"GBP", "EUR"}


def test_a_disputed_invoice_is_in_no_notice_and_no_claim() -> None:
    # EUR 100 disputed, GBP 70 open: the measured case record and manifest claimed the EUR 100.
    with world(date(2026, 1, 5)) as w:
        w.invoices(
            invoice_row("E-1", amount="100.00", currency="EUR", due_on="2026-01-10", issued_on="2025-12-10"),
            invoice_row("G-1", amount="70.00", currency="GBP", due_on="2026-01-12", issued_on="2025-12-12"),
        )
        w.action("ACME", "dispute", date(2026, 1, 6), invoice="E-1")
        w.run_through(date(2026, 4, 1))

        for event in w.events("ACME", "notice_sent"):
            assert event["currency"] == "GBP" and event["invoice_ids"] == ["G-1"]
            assert event["amount_due"] == "70.00"
        [case] = w.events("ACME", "case_opened")
        assert (case["currency"], case["amount_due"], case["total_due"]) == ("GBP", "70.00", "70.00")
        manifest, statement = _packet(w, case["case_id"])
        assert (manifest["currency"], manifest["total_claimed"]) == ("GBP", "70.00")
        assert "E-1" not in {row["invoice_id"] for row in statement}


def test_the_packet_claims_what_the_final_notice_demanded_brought_forward() -> None:
    # GBP 8,400.00 due 15 Jan 2026, business customer, statutory charges on (UK: Bank Rate 3.75 % on 31 Dec
    # 2025 + 8 = 11.75 %), a flat fee at the firm notice and 2 % at the demand letter.
    with world(date(2026, 1, 5), policy=CHARGES) as w:
        w.invoices(
            invoice_row("G-1", amount="8400.00", currency="GBP", due_on="2026-01-15", issued_on="2025-12-15")
        )
        # Part paid after the demand letter: the 2 % fee (168.00) must not become 2 % of 6,400.00 = 128.00.
        w.payment("ACME", "G-1", "2000.00", date(2026, 2, 20))
        w.run_through(date(2026, 4, 20))

        final = next(e for e in w.events("ACME", "notice_sent") if e["stage"] == "final_notice")
        [case] = w.events("ACME", "case_opened")
        manifest, statement = _packet(w, case["case_id"])

        assert Decimal(final["charges"]) > 0, "the final notice demanded fees and interest"
        assert Decimal(case["charges"]) >= Decimal(final["charges"]), "nothing demanded is lowered"
        assert manifest["charges"] == case["charges"] and manifest["total_claimed"] == case["total_due"]
        assert Decimal(case["amount_due"]) + Decimal(case["charges"]) == Decimal(case["total_due"])
        assert Decimal(statement[-1]["balance"]) == Decimal(manifest["total_claimed"])
        fees = [row for row in statement if row["type"] == "late_fee"]
        assert sorted(Decimal(row["debit"]) for row in fees) == [Decimal("25.00"), Decimal("168.00")]
        # Interest runs on: 6,400.00 x 11.75 % / 365 = 2.0602... a day.
        assert manifest["interest_per_day"] == "2.06"
        # Brought forward: the case's interest is the final notice's plus the days between them.
        handed = datetime.fromisoformat(case["at"].replace("Z", "+00:00")).date()
        noticed = datetime.fromisoformat(final["at"].replace("Z", "+00:00")).date()
        extra = Decimal(case["charges"]) - Decimal(final["charges"])
        days = (handed - noticed).days
        assert abs(extra - Decimal("2.06") * days) <= Decimal("0.02") * max(days, 1)


def test_an_account_paused_before_its_first_reminder_never_gets_a_final_warning_first() -> None:
    # The measured go-live case: paused before the first reminder, resumed long after; it got the final
    # notice first and a hand-off 15 days later.
    with world(date(2026, 1, 5)) as w:
        w.invoices(
            invoice_row("A-1", amount="500.00", currency="EUR", due_on="2026-01-10", issued_on="2025-12-10")
        )
        w.action("ACME", "pause", date(2026, 1, 5), until="2026-03-20")
        w.run_through(date(2026, 4, 30))

        stages = [stage for stage, _ in w.notices("ACME")]
        assert stages[0] == "demand_letter"
        assert stages == ["demand_letter", "final_notice"]
        letter, final = (datetime.fromisoformat(at) for _, at in w.notices("ACME"))
        assert final - letter >= timedelta(days=14), "the final warning waits for the letter's deadline"


def test_a_uk_consumer_gets_a_letter_of_claim_and_30_days_before_the_legal_team() -> None:
    with world(date(2026, 1, 5)) as w:
        w.invoices(
            invoice_row(
                "C-1", amount="300.00", currency="GBP", due_on="2026-01-10", issued_on="2025-12-10",
                customer_type="consumer", country="GB", timezone="Europe/London",
            )
        )  # fmt: skip
        w.run_through(date(2026, 5, 1))

        letter = next(e for e in w.events("ACME", "notice_sent") if e["stage"] == "demand_letter")
        [case] = w.events("ACME", "case_opened")
        sent_on = date.fromisoformat(letter["at"][:10])
        handed_on = date.fromisoformat(case["at"][:10])
        assert (handed_on - sent_on).days > 30, "the hand-off waits out the 30 days to reply"
        assert case["charges"] == "0.00", "no statutory charges for a consumer"


def test_a_debt_from_2020_is_chased_with_its_interest_never_a_crash() -> None:
    # Due before 2022 raised MissingReferenceRate: 77 workflow_failed and never chased.
    with world(date(2026, 1, 5), policy=CHARGES) as w:
        w.invoices(
            invoice_row("OLD", amount="1000.00", currency="EUR", due_on="2020-09-30", issued_on="2020-09-01")
        )
        w.run_through(date(2026, 1, 20))

        assert not w.events("ACME", "workflow_failed")
        assert not w.events("ACME", "charges_incomplete")
        letter = w.events("ACME", "notice_sent")[0]
        assert letter["stage"] == "demand_letter"
        # Over five years of interest at the ECB rates of each half-year + 8 points, plus EUR 40 and fees.
        assert Decimal(letter["charges"]) > Decimal("400.00")
