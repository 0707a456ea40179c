"""Payments reduce balances exactly once; actions are recorded for the ladder; PDFs are kept for notices."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from dunning.adapters.ledger import Ledger
from dunning.local.embedded_aws import EmbeddedAws
from tests.conftest import UPLOADED_AT
from tests.support.files import csv_bytes, invoice_row, invoices_csv, reject_report
from tests.support.ingested import due_index, owed

PAYMENT_HEADER = ["account_id", "invoice_id", "amount", "paid_on", "currency", "reference"]
ACTION_HEADER = ["account_id", "action", "on", "until", "invoice_id", "note"]


@pytest.fixture
def invoices(aws: EmbeddedAws) -> None:
    body = invoices_csv(
        invoice_row("A-1", amount="100.00"),
        invoice_row("A-2", amount="50.00"),
        invoice_row("V-1", amount="10.00", status="void"),
        invoice_row("J-1", account_id="JP", amount="5000", currency="JPY"),
    )
    aws.upload("invoices", "invoices.csv", body, UPLOADED_AT)


@pytest.mark.usefixtures("invoices")
def test_partial_then_full_payment(aws: EmbeddedAws, ledger: Ledger) -> None:
    aws.upload(
        "payments",
        "p1.csv",
        csv_bytes(PAYMENT_HEADER, [["ACME", "A-1", "30.00", "2027-01-10", "", ""]]),
        UPLOADED_AT,
    )
    assert owed(ledger, "A-1") == Decimal("70.00")
    assert "A-1" in due_index(aws)

    aws.upload(
        "payments",
        "p2.csv",
        csv_bytes(PAYMENT_HEADER, [["ACME", "A-1", "70", "2027-01-12", "EUR", "r2"]]),
        UPLOADED_AT + timedelta(days=2),
    )

    assert owed(ledger, "A-1") == Decimal("0")
    assert due_index(aws) == ["A-2", "J-1"], "a settled invoice leaves the due index"
    applied = [e for e in ledger.events("ACME") if e["type"] == "payment_applied"]
    assert [(e["invoice_id"], e["amount"], e["currency"]) for e in applied] == [
        ("A-1", "30.00", "EUR"),
        ("A-1", "70.00", "EUR"),
    ]


@pytest.mark.usefixtures("invoices")
def test_overpayment_settles_the_invoice_and_records_a_credit(aws: EmbeddedAws, ledger: Ledger) -> None:
    aws.upload(
        "payments",
        "over.csv",
        csv_bytes(PAYMENT_HEADER, [["ACME", "A-2", "65.50", "2027-01-10", "", ""]]),
        UPLOADED_AT,
    )

    assert owed(ledger, "A-2") == Decimal("0")
    events = [e for e in ledger.events("ACME") if e["type"] in ("payment_applied", "credit_recorded")]
    assert [(e["type"], e["amount"]) for e in events] == [
        ("payment_applied", "65.50"),
        ("credit_recorded", "15.50"),
    ]
    assert "A-2" not in due_index(aws)


@pytest.mark.usefixtures("invoices")
def test_bad_payments_are_rejected_and_good_ones_applied(aws: EmbeddedAws, ledger: Ledger) -> None:
    rows = [
        ["ACME", "A-1", "10.00", "2027-01-10", "", ""],
        ["ACME", "NOPE", "10.00", "2027-01-10", "", ""],
        ["ACME", "A-2", "10.00", "2027-01-10", "USD", ""],
        ["ACME", "V-1", "10.00", "2027-01-10", "", ""],
        ["JP", "J-1", "10.5", "2027-01-10", "", ""],
        ["ACME", "A-2", "-3", "2027-01-10", "", ""],
        ["ACME", "A-2", "3", "10/01/2027", "", ""],
    ]
    summary = aws.upload("payments", "mixed.csv", csv_bytes(PAYMENT_HEADER, rows), UPLOADED_AT)["imports"][0]

    assert (summary["imported"], summary["rejected"]) == (1, 6)
    report = {r["row"]: r for r in reject_report(aws, "mixed.csv")}
    assert "has no invoice NOPE" in report["3"]["error"]
    assert report["4"]["field"] == "currency" and "USD but invoice A-2 is in EUR" in report["4"]["error"]
    assert "is void" in report["5"]["error"]
    assert "more decimals than JPY allows" in report["6"]["error"]
    assert "more than zero" in report["7"]["error"]
    assert report["8"]["field"] == "paid_on"
    assert owed(ledger, "A-1") == Decimal("90.00")
    assert owed(ledger, "A-2") == Decimal("50.00")


@pytest.mark.usefixtures("invoices")
def test_two_identical_payments_in_one_file_are_both_applied(aws: EmbeddedAws, ledger: Ledger) -> None:
    row = ["ACME", "A-1", "25.00", "2027-01-10", "", "INV A-1"]
    aws.upload("payments", "twice.csv", csv_bytes(PAYMENT_HEADER, [row, row]), UPLOADED_AT)

    assert owed(ledger, "A-1") == Decimal("50.00")


@pytest.mark.usefixtures("invoices")
def test_export_paid_amount_and_payment_feed_are_not_double_counted(aws: EmbeddedAws, ledger: Ledger) -> None:
    aws.upload(
        "payments",
        "feed.csv",
        csv_bytes(PAYMENT_HEADER, [["ACME", "A-1", "40.00", "2027-01-10", "", ""]]),
        UPLOADED_AT,
    )
    # The next export from the accounting system includes that same payment.
    aws.upload(
        "invoices",
        "export2.csv",
        invoices_csv(invoice_row("A-1", amount="100.00", amount_paid="40.00")),
        UPLOADED_AT,
    )

    assert owed(ledger, "A-1") == Decimal("60.00")


@pytest.mark.usefixtures("invoices")
def test_actions_are_recorded_and_logged(aws: EmbeddedAws, ledger: Ledger) -> None:
    rows = [
        ["ACME", "promise", "2027-01-16", "2027-01-30", "", "by phone"],
        ["ACME", "dispute", "2027-01-16", "", "A-2", "damaged goods"],
        ["ACME", "resolve", "2027-01-20", "", "A-2", ""],
        ["ACME", "PAUSE", "2027-01-16", "2027-02-01", "", ""],
        ["ACME", "resume", "2027-01-18", "", "", ""],
        ["ACME", "promise", "2027-01-16", "", "", "no date"],
        ["ACME", "dispute", "2027-01-16", "", "", "which invoice?"],
        ["ACME", "dispute", "2027-01-16", "", "NOPE", ""],
        ["GHOST", "pause", "2027-01-16", "", "", ""],
        ["ACME", "forgive", "2027-01-16", "", "", ""],
        ["ACME", "pause", "2027-01-16", "2027-01-01", "", ""],
        ["ACME", "posted", "2027-01-16", "", "", "no letter task"],
    ]
    summary = aws.upload("actions", "actions.csv", csv_bytes(ACTION_HEADER, rows), UPLOADED_AT)["imports"][0]

    assert (summary["imported"], summary["rejected"]) == (5, 7)
    logged = [
        (e["type"], e.get("until"), e.get("invoice_id"))
        for e in ledger.events("ACME")
        if e["type"] not in ("invoice_imported", "row_rejected")
    ]
    assert logged == [
        ("promise_recorded", "2027-01-30", None),
        ("dispute_opened", None, "A-2"),
        ("dispute_resolved", None, "A-2"),
        ("account_paused", "2027-02-01", None),
        ("account_resumed", None, None),
    ]
    report = {r["row"]: r for r in reject_report(aws, "actions.csv")}
    assert report["7"]["field"] == "until" and "promised to pay by" in report["7"]["error"]
    assert report["8"]["field"] == "invoice_id"
    assert "has no invoice NOPE" in report["9"]["error"]
    assert "no account with this id" in report["10"]["error"]
    assert (
        "must be one of: 'promise', 'dispute', 'resolve', 'pause', 'resume', 'opt_out', 'opt_in', 'call', "
        "'plan', 'approve', 'reject' or 'posted'" in report["11"]["error"]
    )
    assert "before the action date" in report["12"]["error"]
    assert (report["13"]["field"], report["13"]["error"]) == ("task_id", "no letter to post")
    assert len([i for i in ledger.account_items("ACME") if i["kind"] == "action"]) == 5


MINIMAL_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def test_invoice_pdfs_are_recorded_and_other_files_rejected(aws: EmbeddedAws, ledger: Ledger) -> None:
    aws.upload("documents", "INV-1.pdf", MINIMAL_PDF, UPLOADED_AT)
    result = aws.upload("documents", "notes.pdf", b"hello, not a pdf", UPLOADED_AT)

    document = ledger.get("DOCUMENT#INV-1.pdf", "DOCUMENT")
    assert document is not None
    assert (document["key"], document["bytes"]) == ("incoming/documents/INV-1.pdf", len(MINIMAL_PDF))
    assert result["imports"][0]["rejected"] == 1
    assert ledger.get("DOCUMENT#notes.pdf", "DOCUMENT") is None
    assert "not a PDF" in reject_report(aws, "notes.pdf")[0]["error"]
