"""S3 delivers events at least once and accountants re-upload files: neither may change anything twice."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from dunning.adapters.ledger import Ledger
from dunning.local.embedded_aws import EmbeddedAws, LocalContext
from functions.ingest import app
from tests.conftest import UPLOADED_AT
from tests.support.files import csv_bytes, invoice_row, invoices_csv, s3_notification
from tests.support.ingested import every_item


def test_the_same_event_delivered_twice_changes_nothing(aws: EmbeddedAws, ledger: Ledger) -> None:
    body = invoices_csv(invoice_row("A-1"), invoice_row("A-2"), invoice_row("BAD", amount="x"))
    aws.upload("invoices", "jan.csv", body, UPLOADED_AT)
    aws.upload(
        "payments",
        "pay.csv",
        csv_bytes(
            ["account_id", "invoice_id", "amount", "paid_on"], [["ACME", "A-1", "40.00", "2027-01-10"]]
        ),
        UPLOADED_AT,
    )
    before = every_item(aws)

    for key in ("incoming/invoices/jan.csv", "incoming/payments/pay.csv"):
        event = aws.upload_event(key, UPLOADED_AT)
        result = app.handler(event, LocalContext("ingest"))
        assert result["imports"][0]["already_processed"] is True

    assert every_item(aws) == before


def test_a_redelivery_after_a_crash_mid_file_writes_no_duplicates(aws: EmbeddedAws, ledger: Ledger) -> None:
    body = invoices_csv(invoice_row("A-1"), invoice_row("A-2"))
    aws.upload("invoices", "jan.csv", body, UPLOADED_AT)
    before = every_item(aws)
    # The crash happened before the receipt was written: drop it and deliver the event again.
    receipt = next(item for item in before if item["PK"].startswith("FILE#"))
    aws.dynamodb.Table(aws.table_name).delete_item(Key={"PK": receipt["PK"], "SK": receipt["SK"]})

    result = app.handler(aws.upload_event("incoming/invoices/jan.csv", UPLOADED_AT), LocalContext("ingest"))

    assert (result["imports"][0]["imported"], result["imports"][0]["unchanged"]) == (0, 2)
    ledger_items = [item for item in every_item(aws) if not item["PK"].startswith("FILE#")]
    assert ledger_items == [item for item in before if not item["PK"].startswith("FILE#")]


def test_uploading_the_same_content_again_changes_nothing(aws: EmbeddedAws, ledger: Ledger) -> None:
    body = invoices_csv(invoice_row("A-1"), invoice_row("A-2"))
    payments = csv_bytes(
        ["account_id", "invoice_id", "amount", "paid_on"], [["ACME", "A-1", "40.00", "2027-01-10"]]
    )
    aws.upload("invoices", "jan.csv", body, UPLOADED_AT)
    aws.upload("payments", "pay.csv", payments, UPLOADED_AT)
    events_before = ledger.events("ACME")
    invoices_before = [i for i in ledger.account_items("ACME") if i["kind"] in ("invoice", "payment")]

    later = UPLOADED_AT + timedelta(days=1)
    again = aws.upload("invoices", "jan-copy.csv", body, later)["imports"][0]
    again_pay = aws.upload("payments", "pay-again.csv", payments, later)["imports"][0]

    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert (again_pay["imported"], again_pay["unchanged"]) == (0, 1)
    assert ledger.events("ACME") == events_before
    assert [i for i in ledger.account_items("ACME") if i["kind"] in ("invoice", "payment")] == invoices_before


def test_a_corrected_row_updates_the_invoice(aws: EmbeddedAws, ledger: Ledger) -> None:
    aws.upload("invoices", "jan.csv", invoices_csv(invoice_row("A-1", amount="100.00")), UPLOADED_AT)
    later = UPLOADED_AT + timedelta(hours=2)

    summary = aws.upload("invoices", "jan.csv", invoices_csv(invoice_row("A-1", amount="120.00")), later)[
        "imports"
    ][0]

    assert (summary["imported"], summary["updated"]) == (0, 1)
    invoices = [i for i in ledger.account_items("ACME") if i["kind"] == "invoice"]
    assert len(invoices) == 1 and invoices[0]["amount"] == Decimal("120.00")
    imported = [e for e in ledger.events("ACME") if e["type"] == "invoice_imported"]
    assert imported[-1] == {
        "at": "2027-01-15T10:00:00Z",
        "type": "invoice_imported",
        "account_id": "ACME",
        "invoice_id": "A-1",
        "updated": True,
    }


def test_a_correction_keeps_payments_already_applied(aws: EmbeddedAws, ledger: Ledger) -> None:
    aws.upload("invoices", "jan.csv", invoices_csv(invoice_row("A-1", amount="100.00")), UPLOADED_AT)
    aws.upload(
        "payments",
        "pay.csv",
        csv_bytes(
            ["account_id", "invoice_id", "amount", "paid_on"], [["ACME", "A-1", "100.00", "2027-01-10"]]
        ),
        UPLOADED_AT,
    )
    # The export lags behind: the same invoice, still unpaid there, with a corrected reference.
    aws.upload(
        "invoices", "jan.csv", invoices_csv(invoice_row("A-1", reference="PO-9")), UPLOADED_AT + timedelta(1)
    )

    indexed = aws.dynamodb.Table(aws.table_name).scan(IndexName="due")["Items"]
    assert indexed == [], "an invoice settled by payments stays out of the due index after a re-import"
    payments = [i for i in ledger.account_items("ACME") if i["kind"] == "payment"]
    assert [p["amount"] for p in payments] == [Decimal("100.00")]


def test_the_same_invoice_twice_in_one_file_keeps_the_later_row(aws: EmbeddedAws, ledger: Ledger) -> None:
    body = invoices_csv(invoice_row("A-1", amount="10.00"), invoice_row("A-1", amount="15.00"))
    aws.upload("invoices", "dup.csv", body, UPLOADED_AT)

    invoices = [i for i in ledger.account_items("ACME") if i["kind"] == "invoice"]
    assert [i["amount"] for i in invoices] == [Decimal("15.00")]


def test_s3_notification_events_with_encoded_keys_reach_the_file(aws: EmbeddedAws, ledger: Ledger) -> None:
    key = "incoming/invoices/March 2027 (final).csv"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=invoices_csv(invoice_row("M-1")))
    event = s3_notification(aws.bucket, "incoming/invoices/March+2027+%28final%29.csv")

    result = app.handler(event, LocalContext("ingest"))

    assert result["imports"][0]["imported"] == 1
    assert ledger.get("ACCOUNT#ACME", "INVOICE#M-1") is not None
