"""Bad input: each bad row is reported with its line number and reason, good rows still go in, the file
stays where it was uploaded, and nothing raises."""

from __future__ import annotations

import csv
import io

import pytest

from dunning.adapters.ledger import Ledger
from dunning.local.embedded_aws import EmbeddedAws
from tests.conftest import UPLOADED_AT
from tests.support.files import INVOICE_HEADER, csv_bytes, invoice_row, invoices_csv, reject_report


def _imported(ledger: Ledger, account: str = "ACME") -> list[str]:
    return sorted(item["invoice_id"] for item in ledger.account_items(account) if item["kind"] == "invoice")


def test_every_kind_of_bad_invoice_row_is_reported_and_good_rows_go_in(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    body = invoices_csv(
        invoice_row("GOOD-1"),
        invoice_row("BAD-CURRENCY", currency="EURO"),
        invoice_row("BAD-AMOUNT", amount="1,200.00"),
        invoice_row("ZERO", amount="0"),
        invoice_row("TOO-PRECISE", amount="10.001"),
        invoice_row("BAD-DATE", due_on="2027-02-30"),
        invoice_row("US-DATE", due_on="01/31/2027"),
        invoice_row("BACKWARDS", due_on="2026-12-01"),
        invoice_row("BAD-EMAIL", customer_email="accounts at acme"),
        invoice_row("BAD-TZ", timezone="Mars/Olympus"),
        invoice_row("BAD-STATUS", status="overdue"),
        invoice_row("BAD-COUNTRY", country="XX"),
        invoice_row("", customer_name=""),
        invoice_row("GOOD-2"),
    )
    result = aws.upload("invoices", "batch.csv", body, UPLOADED_AT)

    summary = result["imports"][0]
    assert (summary["rows"], summary["imported"], summary["rejected"]) == (14, 2, 12)
    assert _imported(ledger) == ["GOOD-1", "GOOD-2"]
    report = {(r["row"], r["field"]): r for r in reject_report(aws, "batch.csv")}
    expected = {
        ("3", "currency"): "not an ISO 4217 currency code",
        ("4", "amount"): "plain number",
        ("5", "amount"): "more than zero",
        ("6", "amount"): "more decimals than EUR allows",
        ("7", "due_on"): "not a real calendar date",
        ("8", "due_on"): "YYYY-MM-DD",
        ("9", "due_on"): "before the issue date",
        ("10", "customer_email"): "not a valid email address",
        ("11", "timezone"): "IANA time zone",
        ("12", "status"): "open, paid, void",
        ("13", "country"): "ISO 3166",
        ("14", "invoice_id"): "required",
        ("14", "customer_name"): "required",
    }
    for key, words in expected.items():
        assert key in report, f"no report line for row {key[0]} field {key[1]}"
        assert words in report[key]["error"], report[key]
    assert report[("4", "amount")]["value"] == "1,200.00"


def test_row_numbers_are_source_lines_even_with_quoted_line_breaks(aws: EmbeddedAws) -> None:
    header = ",".join(INVOICE_HEADER) + ",reference\n"
    body = (
        header
        + 'OK-1,ACME,"Acme\nLtd",ap@acme.example.com,EUR,10.00,2027-01-01,2027-01-31,"multi\nline"\n'
        + "BAD,ACME,Acme Ltd,ap@acme.example.com,EUR,-5,2027-01-01,2027-01-31,x\n"
    )
    aws.upload("invoices", "quoted.csv", body.encode(), UPLOADED_AT)

    report = reject_report(aws, "quoted.csv")
    # Line 2 holds the first record, which spans lines 2-4 (two quoted line breaks); the bad row is line 5.
    assert [(r["row"], r["field"]) for r in report] == [
        ("2", "customer_name"),
        ("2", "reference"),
        ("5", "amount"),
    ]
    assert "line break" in report[0]["error"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "empty"),
        (b"invoice_id,amount\nX,1\n", "lacks the column(s) account_id"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not UTF-8"),
        (b"just some text\n", "lacks the column(s)"),
    ],
)
def test_a_file_that_cannot_be_read_gets_one_row_zero_error(
    aws: EmbeddedAws, body: bytes, words: str
) -> None:
    result = aws.upload("invoices", "broken.csv", body, UPLOADED_AT)

    assert result["imports"][0]["rejected"] == 1
    report = reject_report(aws, "broken.csv")
    assert len(report) == 1 and report[0]["row"] == "0"
    assert words in report[0]["error"]


def test_badly_encoded_rows_are_rejected_alone(aws: EmbeddedAws, ledger: Ledger) -> None:
    good = invoices_csv(invoice_row("OK"))
    latin1 = "BAD,ACME,Café Ltd,ap@acme.example.com,EUR,10.00,2027-01-01,2027-01-31\n".encode("latin-1")
    aws.upload("invoices", "mixed-encoding.csv", good + latin1, UPLOADED_AT)

    assert _imported(ledger) == ["OK"]
    report = reject_report(aws, "mixed-encoding.csv")
    assert [(r["row"], r["field"]) for r in report] == [("3", "customer_name")]
    assert "UTF-8" in report[0]["error"]


def test_extra_values_in_a_row_reject_that_row(aws: EmbeddedAws, ledger: Ledger) -> None:
    body = (
        invoices_csv(invoice_row("OK"))
        + b"X,ACME,Acme, Ltd,ap@acme.example.com,EUR,10,2027-01-01,2027-01-31\n"
    )
    aws.upload("invoices", "unquoted.csv", body, UPLOADED_AT)

    report = reject_report(aws, "unquoted.csv")
    assert report[0]["row"] == "3" and "must be quoted" in report[0]["error"]


def test_the_original_upload_is_kept_and_rejections_are_logged(aws: EmbeddedAws, ledger: Ledger) -> None:
    body = invoices_csv(invoice_row("OK"), invoice_row("NO", amount="abc"))
    aws.upload("invoices", "keep.csv", body, UPLOADED_AT)

    kept = aws.s3.get_object(Bucket=aws.bucket, Key="incoming/invoices/keep.csv")["Body"].read()
    assert kept == body
    rejected = [e for e in ledger.events("ACME") if e["type"] == "row_rejected"]
    assert rejected == [
        {
            "at": "2027-01-15T08:00:00Z",
            "type": "row_rejected",
            "account_id": "ACME",
            "source": "keep.csv",
            "row": 3,
            "error": "amount: must be a plain number such as 1234.50 "
            "(no currency sign, no thousands separator, a dot for decimals)",
        },
    ]


def test_reject_report_cells_cannot_run_as_spreadsheet_formulas(aws: EmbeddedAws) -> None:
    body = invoices_csv(invoice_row("INV", amount='=HYPERLINK("http://evil.example","x")'))
    aws.upload("invoices", "formula.csv", body, UPLOADED_AT)

    raw = aws.s3.get_object(Bucket=aws.bucket, Key="rejected/formula.csv.errors.csv")["Body"].read().decode()
    cells = [cell for row in csv.reader(io.StringIO(raw)) for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    assert "'=HYPERLINK(" in raw


def test_a_corrected_upload_removes_the_stale_reject_report(aws: EmbeddedAws) -> None:
    aws.upload("invoices", "fixme.csv", invoices_csv(invoice_row(amount="x")), UPLOADED_AT)
    aws.upload("invoices", "fixme.csv", invoices_csv(invoice_row()), UPLOADED_AT)

    listed = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix="rejected/").get("Contents", [])
    assert listed == []


def test_unknown_upload_prefixes_are_ignored(aws: EmbeddedAws) -> None:
    aws.s3.put_object(Bucket=aws.bucket, Key="incoming/other/x.csv", Body=b"a,b\n")
    from dunning.local.embedded_aws import LocalContext
    from functions.ingest import app

    result = app.handler(aws.upload_event("incoming/other/x.csv", UPLOADED_AT), LocalContext("ingest"))
    assert result == {"imports": []}


def test_payment_and_action_header_errors_are_row_zero(aws: EmbeddedAws) -> None:
    aws.upload("payments", "p.csv", csv_bytes(["account", "amount"], [["A", "1"]]), UPLOADED_AT)
    aws.upload("actions", "a.csv", csv_bytes(["account_id", "what"], [["A", "pause"]]), UPLOADED_AT)

    assert reject_report(aws, "p.csv")[0]["row"] == "0"
    assert "lacks the column(s) account_id, invoice_id, paid_on" in reject_report(aws, "p.csv")[0]["error"]
    assert "action, on" in reject_report(aws, "a.csv")[0]["error"]
