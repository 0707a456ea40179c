"""Invoices uploaded to incoming/invoices/ (our format and Xero's export) land in the ledger exactly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dunning.adapters.ledger import Ledger
from dunning.local.embedded_aws import EmbeddedAws
from tests.conftest import UPLOADED_AT
from tests.support.files import csv_bytes, invoice_row, invoices_csv, reject_report


def _invoice(ledger: Ledger, account: str, invoice: str) -> dict[str, Any]:
    item = ledger.get(f"ACCOUNT#{account}", f"INVOICE#{invoice}")
    assert item is not None, f"{account}/{invoice} was not imported"
    return item


def test_our_format_imports_amounts_in_the_currency_minor_units(aws: EmbeddedAws, ledger: Ledger) -> None:
    body = invoices_csv(
        invoice_row(
            "E-1",
            "EU",
            "1234.5",
            "EUR",
            amount_paid="34.50",
            locale="ro",
            timezone="Europe/Bucharest",
            country="ro",
            customer_type="consumer",
            segment="Key_Account",
            reference="PO 7",
        ),
        invoice_row("J-1", "JP", "128000", "JPY"),
        invoice_row("B-1", "BH", "12.345", "BHD", status="paid"),
    )

    result = aws.upload("invoices", "january.csv", body, UPLOADED_AT)

    summary = result["imports"][0]
    assert (summary["format"], summary["rows"], summary["imported"], summary["rejected"]) == (
        "dunning",
        3,
        3,
        0,
    )
    # Exact values, compared as numbers: DynamoDB trims trailing zeros ("1234.50" reads back as 1234.5),
    # so a stored amount's text is never what a notice prints (format_amount gives the minor units).
    eur = _invoice(ledger, "EU", "E-1")
    assert eur["amount"] == Decimal("1234.50") and eur["amount_paid"] == Decimal("34.50")
    assert _invoice(ledger, "JP", "J-1")["amount"] == Decimal("128000")
    assert _invoice(ledger, "BH", "B-1")["amount"] == Decimal("12.345")
    profile = ledger.get("ACCOUNT#EU", "PROFILE")
    assert profile is not None
    assert (profile["locale"], profile["timezone"], profile["country"]) == ("ro", "Europe/Bucharest", "RO")
    assert (profile["customer_type"], profile["segment"]) == ("consumer", "key_account")
    assert profile["emails"] == ["ap@eu.example.com"]


def test_defaults_come_from_the_policy(aws: EmbeddedAws, ledger: Ledger) -> None:
    aws.upload("invoices", "plain.csv", invoices_csv(invoice_row()), UPLOADED_AT)

    profile = ledger.get("ACCOUNT#ACME", "PROFILE")
    invoice = _invoice(ledger, "ACME", "INV-1")
    assert profile is not None
    assert (profile["locale"], profile["timezone"], profile["customer_type"], profile["segment"]) == (
        "en",
        "UTC",
        "business",
        "default",
    )
    assert (invoice["status"], invoice["amount_paid"]) == ("open", Decimal("0.00"))


def test_only_open_unpaid_invoices_are_in_the_due_index(aws: EmbeddedAws, ledger: Ledger) -> None:
    body = invoices_csv(
        invoice_row("OPEN", "A"),
        invoice_row("PART", "A", amount_paid="40.00"),
        invoice_row("FULL", "A", amount_paid="100.00"),
        invoice_row("PAID", "A", status="paid"),
        invoice_row("VOID", "A", status="void"),
    )
    aws.upload("invoices", "mixed.csv", body, UPLOADED_AT)

    indexed = aws.dynamodb.Table(aws.table_name).scan(IndexName="due")["Items"]
    assert sorted(item["invoice_id"] for item in indexed) == ["OPEN", "PART"]


def test_multiple_emails_are_split_and_validated(aws: EmbeddedAws, ledger: Ledger) -> None:
    body = invoices_csv(invoice_row(customer_email="a@x.example.com; b@x.example.com ;"))
    aws.upload("invoices", "emails.csv", body, UPLOADED_AT)

    profile = ledger.get("ACCOUNT#ACME", "PROFILE")
    assert profile is not None and profile["emails"] == ["a@x.example.com", "b@x.example.com"]


XERO_HEADER = (
    "*ContactName",
    "EmailAddress",
    "POCountry",
    "*InvoiceNumber",
    "Reference",
    "*InvoiceDate",
    "*DueDate",
    "Total",
    "InvoiceAmountPaid",
    "InvoiceAmountDue",
    "*Description",
    "*Quantity",
    "*UnitAmount",
    "LineAmount",
    "Currency",
    "Type",
    "Sent",
    "Status",
)


def _xero(
    contact: str,
    number: str,
    issued: str,
    due: str,
    total: str,
    paid: str,
    description: str,
    line_amount: str,
    status: str = "Awaiting Payment",
    type_: str = "ACCREC",
) -> list[str]:
    due_amount = str(Decimal(total) - Decimal(paid))
    return [
        contact,
        f"ap@{contact.split()[0].lower()}.example.com",
        "United Kingdom",
        number,
        "ref",
        issued,
        due,
        total,
        paid,
        due_amount,
        description,
        "1",
        line_amount,
        line_amount,
        "GBP",
        type_,
        "Sent",
        status,
    ]


def test_xero_export_one_invoice_per_invoice_number_with_day_first_dates(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    rows = [
        _xero("Thames Joinery", "X-1", "04/11/2026", "04/12/2026", "3600.00", "0.00", "Cabinets", "2400.00"),
        _xero("Thames Joinery", "X-1", "04/11/2026", "04/12/2026", "3600.00", "0.00", "Worktops", "1200.00"),
        _xero("Thames Joinery", "X-2", "18/11/2026", "18/12/2026", "480.00", "100.00", "Repairs", "480.00"),
        _xero(
            "Bristol Bakes",
            "X-3",
            "01/10/2026",
            "31/10/2026",
            "240.00",
            "240.00",
            "Catering",
            "240.00",
            "Paid",
        ),
        _xero(
            "Bristol Bakes", "X-4", "01/10/2026", "31/10/2026", "90.00", "0.00", "Cakes", "90.00", "Voided"
        ),
        _xero("Bristol Bakes", "X-5", "01/10/2026", "31/10/2026", "90.00", "0.00", "Cakes", "90.00", "Draft"),
        _xero(
            "Paper Co",
            "BILL-1",
            "02/11/2026",
            "02/12/2026",
            "75.00",
            "0.00",
            "Paper",
            "75.00",
            type_="ACCPAY",
        ),
    ]
    result = aws.upload("invoices", "xero.csv", csv_bytes(XERO_HEADER, rows), UPLOADED_AT)

    summary = result["imports"][0]
    assert (summary["format"], summary["rows"], summary["imported"], summary["skipped"]) == ("xero", 7, 5, 1)
    x1 = _invoice(ledger, "Thames Joinery", "X-1")
    assert (x1["amount"], x1["issued_on"], x1["due_on"]) == (Decimal("3600.00"), "2026-11-04", "2026-12-04")
    x2 = _invoice(ledger, "Thames Joinery", "X-2")
    assert x2["amount_paid"] == Decimal("100.00")
    statuses = {i: _invoice(ledger, "Bristol Bakes", i)["status"] for i in ("X-3", "X-4", "X-5")}
    assert statuses == {"X-3": "paid", "X-4": "void", "X-5": "draft"}
    assert ledger.get("ACCOUNT#Paper Co", "INVOICE#BILL-1") is None
    profile = ledger.get("ACCOUNT#Thames Joinery", "PROFILE")
    assert profile is not None and profile["country"] == "GB"
    indexed = aws.dynamodb.Table(aws.table_name).scan(IndexName="due")["Items"]
    assert sorted(item["invoice_id"] for item in indexed) == ["X-1", "X-2"], (
        "paid, void and draft are not chased"
    )


def test_xero_month_first_dates_when_the_policy_says_so(aws: EmbeddedAws, ledger: Ledger) -> None:
    aws.use_policy(b"imports:\n  xero_date_format: MM/DD/YYYY\n")
    rows = [_xero("US Corp", "U-1", "11/04/2026", "12/04/2026", "10.00", "0.00", "Item", "10.00")]
    aws.upload("invoices", "xero-us.csv", csv_bytes(XERO_HEADER, rows), UPLOADED_AT)

    invoice = _invoice(ledger, "US Corp", "U-1")
    assert (invoice["issued_on"], invoice["due_on"]) == ("2026-11-04", "2026-12-04")


def test_xero_impossible_date_rejects_the_invoice_and_its_other_lines(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    rows = [
        _xero("Thames Joinery", "X-9", "04/11/2026", "31/11/2026", "20.00", "0.00", "A", "10.00"),
        _xero("Thames Joinery", "X-9", "04/11/2026", "31/11/2026", "20.00", "0.00", "B", "10.00"),
        _xero("Thames Joinery", "X-10", "04/11/2026", "30/11/2026", "20.00", "0.00", "C", "20.00"),
    ]
    result = aws.upload("invoices", "xero-bad.csv", csv_bytes(XERO_HEADER, rows), UPLOADED_AT)

    assert result["imports"][0]["imported"] == 1
    assert ledger.get("ACCOUNT#Thames Joinery", "INVOICE#X-9") is None
    report = reject_report(aws, "xero-bad.csv")
    assert [(r["row"], r["field"]) for r in report] == [("2", "DueDate"), ("3", "InvoiceNumber")]
    assert "not a real calendar date" in report[0]["error"]
    assert "see line 2" in report[1]["error"]


def test_xero_lines_that_disagree_on_the_total_reject_the_invoice(aws: EmbeddedAws, ledger: Ledger) -> None:
    rows = [
        _xero("Thames Joinery", "X-7", "04/11/2026", "30/11/2026", "20.00", "0.00", "A", "10.00"),
        _xero("Thames Joinery", "X-7", "04/11/2026", "30/11/2026", "25.00", "0.00", "B", "15.00"),
    ]
    aws.upload("invoices", "xero-mismatch.csv", csv_bytes(XERO_HEADER, rows), UPLOADED_AT)

    assert ledger.get("ACCOUNT#Thames Joinery", "INVOICE#X-7") is None
    report = reject_report(aws, "xero-mismatch.csv")
    assert ("3", "Total") in [(r["row"], r["field"]) for r in report]
