"""Issue 9: ingest never loses a good row. Each broken cell, row or encoding costs that row only: it is
reported with its line number, every other row goes in, and nothing raises (no failed upload)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dunning.adapters.ledger import Ledger
from dunning.local.embedded_aws import EmbeddedAws
from tests.conftest import UPLOADED_AT
from tests.support.files import INVOICE_HEADER, csv_bytes, invoice_row, invoices_csv, reject_report

PAYMENT_HEADER = ["account_id", "invoice_id", "amount", "paid_on"]
XERO_HEADER = [
    "ContactName",
    "EmailAddress",
    "InvoiceNumber",
    "InvoiceDate",
    "DueDate",
    "Total",
    "Currency",
    "Type",
    "Status",
]


def _invoices(ledger: Ledger, account: str = "ACME") -> list[str]:
    return sorted(item["invoice_id"] for item in ledger.account_items(account) if item["kind"] == "invoice")


def _line(invoice_id: str, amount: str = "10.00", email: str = "ap@acme.example.com") -> bytes:
    return f"{invoice_id},ACME,Acme Ltd,{email},EUR,{amount},2027-01-01,2027-01-31\n".encode()


HEADER = (",".join(INVOICE_HEADER) + "\n").encode()


def _upload(aws: EmbeddedAws, name: str, body: bytes, kind: str = "invoices") -> dict[str, int]:
    result = aws.upload(kind, name, body, UPLOADED_AT)
    assert aws.failed_uploads == [], aws.failed_uploads
    summary: dict[str, int] = result["imports"][0]
    return summary


def _report(aws: EmbeddedAws, name: str) -> dict[str, dict[str, str]]:
    return {row["row"]: row for row in reject_report(aws, name)}


@pytest.mark.parametrize(
    ("amount", "column"),
    [("1" + "0" * 40, "amount"), ("9" * 29 + ".5", "amount"), ("1" + "0" * 30, "amount_paid")],
)
def test_an_amount_too_large_for_decimal_rejects_its_row_only(
    aws: EmbeddedAws, ledger: Ledger, amount: str, column: str
) -> None:
    extra = {column: amount} if column == "amount_paid" else {"amount": amount}
    body = invoices_csv(invoice_row("OK-1"), invoice_row("HUGE", **extra), invoice_row("OK-2"))

    summary = _upload(aws, "huge.csv", body)

    assert (summary["imported"], summary["rejected"]) == (2, 1)
    assert _invoices(ledger) == ["OK-1", "OK-2"]
    (row,) = reject_report(aws, "huge.csv")
    assert (row["row"], row["field"], row["value"]) == ("3", column, amount)
    assert "too large" in row["error"]


def test_a_huge_payment_amount_rejects_its_row_only(aws: EmbeddedAws, ledger: Ledger) -> None:
    _upload(aws, "inv.csv", invoices_csv(invoice_row("A-1")))
    rows = [["ACME", "A-1", "1" + "0" * 40, "2027-01-10"], ["ACME", "A-1", "5.00", "2027-01-10"]]

    summary = _upload(aws, "pay.csv", csv_bytes(PAYMENT_HEADER, rows), kind="payments")

    assert (summary["imported"], summary["rejected"]) == (1, 1)
    assert ledger.payments_total("ACME", "A-1") == Decimal("5.00")
    assert _report(aws, "pay.csv")["2"]["field"] == "amount"


def test_a_value_over_the_field_limit_rejects_its_row_and_keeps_its_neighbours(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    long_line = _line("LONG").replace(b"Acme Ltd", b'"' + b"x" * 100_001 + b'"')
    body = HEADER + _line("BEFORE") + long_line + _line("AFTER")

    summary = _upload(aws, "long.csv", body)

    assert _invoices(ledger) == ["AFTER", "BEFORE"]
    assert (summary["rows"], summary["imported"], summary["rejected"]) == (3, 2, 1)
    report = _report(aws, "long.csv")
    assert list(report) == ["3"] and "longer than 100,000 characters" in report["3"]["error"]


def test_an_unterminated_quote_costs_only_its_row(aws: EmbeddedAws, ledger: Ledger) -> None:
    broken = b'BROKEN,ACME,"Acme Ltd,ap@acme.example.com,EUR,10.00,2027-01-01,2027-01-31\n'
    body = HEADER + _line("G-1") + broken + _line("G-2") + _line("G-3") + broken + _line("G-4")

    summary = _upload(aws, "quote.csv", body)

    assert _invoices(ledger) == ["G-1", "G-2", "G-3", "G-4"]
    assert summary["rejected"] == 2
    report = _report(aws, "quote.csv")
    assert list(report) == ["3", "6"]
    assert "quoted value is not closed" in report["3"]["error"]
    assert report["3"]["value"].startswith("BROKEN,ACME")


def test_a_quote_left_open_at_the_end_of_the_file_costs_only_its_row(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    body = HEADER + _line("G-1") + b'LAST,ACME,"Acme\n'

    _upload(aws, "tail.csv", body)

    assert _invoices(ledger) == ["G-1"]
    assert list(_report(aws, "tail.csv")) == ["3"]


def test_repeated_and_mid_file_byte_order_marks_are_dropped(aws: EmbeddedAws, ledger: Ledger) -> None:
    bom = "\ufeff".encode()
    # Two exports concatenated: a second BOM (and a second header row, rejected) in the middle.
    body = bom + bom + HEADER + _line("G-1") + bom + HEADER + bom + _line("G-2")

    summary = _upload(aws, "boms.csv", body)

    assert _invoices(ledger) == ["G-1", "G-2"]
    assert summary["rejected"] == 1
    assert list(_report(aws, "boms.csv")) == ["3"]


def test_nul_bytes_and_bad_utf8_reject_only_their_rows(aws: EmbeddedAws, ledger: Ledger) -> None:
    body = (
        HEADER
        + _line("G-1")
        + _line("NUL").replace(b"Acme Ltd", b"Acme\x00Ltd")
        + _line("AMOUNT", amount="1\x000")
        + _line("LATIN").replace(b"Acme Ltd", "Café".encode("latin-1"))
        + b"\x00\x00\x00\n"
        + _line("G-2")
    )

    summary = _upload(aws, "nul.csv", body)

    assert _invoices(ledger) == ["G-1", "G-2"]
    assert summary["rejected"] == 4
    report = _report(aws, "nul.csv")
    assert (report["3"]["field"], report["4"]["field"], report["5"]["field"]) == (
        "customer_name",
        "amount",
        "customer_name",
    )
    assert "NUL" in report["3"]["error"] and "UTF-8" in report["5"]["error"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("account_id,invoice_id\nÉ,1\n".encode("utf-16"), "UTF-16"),
        ("account_id,invoice_id\nÉ,1\n".encode("utf-16-le"), "UTF-16"),
        ("Numéro,Société\nÉtienne,1\n".encode("latin-1"), "not UTF-8"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 4, "not UTF-8"),
    ],
)
def test_a_file_in_the_wrong_encoding_gets_one_row_zero_error(
    aws: EmbeddedAws, body: bytes, words: str
) -> None:
    summary = _upload(aws, "encoding.csv", body)

    assert summary["rejected"] == 1
    (row,) = reject_report(aws, "encoding.csv")
    assert row["row"] == "0" and words in row["error"]


@pytest.mark.parametrize(
    "emails",
    [
        "jürgen@example.de",
        "ap@acme.example.com; 李@example.cn",
        "ap@acme.example.com;ar@acme.example.com;ｊｏｈｎ@example.com",
    ],
)
def test_a_non_ascii_local_part_is_rejected_in_both_invoice_formats(aws: EmbeddedAws, emails: str) -> None:
    _upload(aws, "ours.csv", invoices_csv(invoice_row("A-1", customer_email=emails)))
    xero = [["Acme", emails, "INV-1", "01/01/2027", "31/01/2027", "10.00", "EUR", "ACCREC", "AUTHORISED"]]
    _upload(aws, "xero.csv", csv_bytes(XERO_HEADER, xero))

    ours = reject_report(aws, "ours.csv")
    theirs = reject_report(aws, "xero.csv")
    assert [(r["row"], r["field"]) for r in ours] == [("2", "customer_email")]
    assert [(r["row"], r["field"]) for r in theirs] == [("2", "EmailAddress")]
    assert all("non-ASCII address (local part)" in r["error"] for r in ours + theirs)


def test_more_than_50_recipients_are_rejected_at_ingest(aws: EmbeddedAws, ledger: Ledger) -> None:
    fifty = ";".join(f"ap{n}@acme.example.com" for n in range(50))
    fifty_one = ";".join(f"ap{n}@acme.example.com" for n in range(51))
    # Duplicates are one recipient: 60 cells naming 50 addresses are fine.
    repeated = fifty + ";" + ";".join(f"AP{n}@ACME.example.com".lower() for n in range(10))
    body = invoices_csv(
        invoice_row("FIFTY", customer_email=fifty),
        invoice_row("MANY", customer_email=fifty_one),
        invoice_row("REPEATED", customer_email=repeated),
    )
    xero = [["Acme", fifty_one, "INV-9", "01/01/2027", "31/01/2027", "10.00", "EUR", "ACCREC", "AUTHORISED"]]

    _upload(aws, "many.csv", body)
    _upload(aws, "many-xero.csv", csv_bytes(XERO_HEADER, xero))

    assert _invoices(ledger) == ["FIFTY", "REPEATED"]
    (row,) = reject_report(aws, "many.csv")
    assert (row["row"], row["field"]) == ("3", "customer_email")
    assert "51 addresses" in row["error"] and "at most 50" in row["error"]
    (xero_row,) = reject_report(aws, "many-xero.csv")
    assert xero_row["field"] == "EmailAddress" and "at most 50" in xero_row["error"]
