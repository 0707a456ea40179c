"""Payments on account (CONTRACT 4.3): a payment row without invoice_id is allocated at ingest to the
account's open invoices of its currency, oldest due date first; what is left is a credit."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from dunning.adapters.ledger import Ledger
from dunning.local.embedded_aws import EmbeddedAws, LocalContext
from functions.ingest import app
from tests.conftest import UPLOADED_AT
from tests.support.collections import world
from tests.support.files import csv_bytes, invoice_row, invoices_csv, reject_report
from tests.support.ingested import due_index, every_item, owed

HEADER = ["account_id", "invoice_id", "amount", "paid_on", "currency", "reference", "payment_id", "type"]


@pytest.fixture
def invoices(aws: EmbeddedAws) -> None:
    body = invoices_csv(
        # Due dates, not ids, decide the order: A-2 is the oldest, then A-1 and A-3 (tie: by id).
        invoice_row("A-1", amount="100.00", due_on="2027-01-31"),
        invoice_row("A-2", amount="50.00", due_on="2027-01-20"),
        invoice_row("A-3", amount="30.00", due_on="2027-01-31"),
        invoice_row("V-1", amount="10.00", due_on="2027-01-01", status="void"),
        invoice_row("E-1", account_id="MIXED", amount="40.00", currency="EUR"),
        invoice_row("U-1", account_id="MIXED", amount="60.00", currency="USD", due_on="2027-01-10"),
    )
    aws.upload("invoices", "invoices.csv", body, UPLOADED_AT)


def _upload(aws: EmbeddedAws, name: str, *rows: list[str], hours: int = 1) -> dict[str, Any]:
    result = aws.upload("payments", name, csv_bytes(HEADER, rows), UPLOADED_AT + timedelta(hours=hours))
    assert aws.failed_uploads == []
    summary: dict[str, Any] = result["imports"][0]
    return summary


def _logged(ledger: Ledger, account: str = "ACME") -> list[tuple[str, str, str]]:
    types = ("payment_applied", "credit_recorded", "payment_corrected", "payment_reversed")
    return [(e["type"], e["invoice_id"], e["amount"]) for e in ledger.events(account) if e["type"] in types]


@pytest.mark.usefixtures("invoices")
def test_a_payment_on_account_pays_the_oldest_open_invoices_first(aws: EmbeddedAws, ledger: Ledger) -> None:
    summary = _upload(aws, "on-account.csv", ["ACME", "", "120.00", "2027-01-25", "", "", "", ""])

    assert (summary["imported"], summary["rejected"]) == (1, 0)
    # A-2 (due 20 Jan) first, then A-1 (due 31 Jan, before A-3 by id); the void invoice gets nothing.
    assert [owed(ledger, i) for i in ("A-2", "A-1", "A-3")] == [
        Decimal(0),
        Decimal("30.00"),
        Decimal("30.00"),
    ]
    assert _logged(ledger) == [("payment_applied", "A-2", "50.00"), ("payment_applied", "A-1", "70.00")]
    applied = [e for e in ledger.events("ACME") if e["type"] == "payment_applied"]
    assert {(e["currency"], e["paid_on"], e.get("on_account")) for e in applied} == {
        ("EUR", "2027-01-25", True)
    }
    assert due_index(aws) == ["A-1", "A-3", "E-1", "U-1"], "the paid-off invoice leaves the due index"


@pytest.mark.usefixtures("invoices")
def test_an_invoice_paid_earlier_in_the_file_gets_nothing_more(aws: EmbeddedAws, ledger: Ledger) -> None:
    _upload(
        aws,
        "mixed.csv",
        ["ACME", "A-2", "50.00", "2027-01-25", "", "", "", ""],
        ["ACME", "", "40.00", "2027-01-25", "EUR", "", "", ""],
    )

    assert [owed(ledger, i) for i in ("A-2", "A-1", "A-3")] == [
        Decimal(0),
        Decimal("60.00"),
        Decimal("30.00"),
    ]


@pytest.mark.usefixtures("invoices")
def test_what_is_left_after_every_open_invoice_is_a_credit(aws: EmbeddedAws, ledger: Ledger) -> None:
    _upload(aws, "over.csv", ["ACME", "", "200.00", "2027-01-25", "EUR", "", "", ""])

    assert [owed(ledger, i) for i in ("A-2", "A-1", "A-3")] == [Decimal(0)] * 3
    assert _logged(ledger) == [
        ("payment_applied", "A-2", "50.00"),
        ("payment_applied", "A-1", "100.00"),
        ("payment_applied", "A-3", "50.00"),
        ("credit_recorded", "A-3", "20.00"),
    ]
    assert due_index(aws) == ["E-1", "U-1"]

    # Nothing left open: a later payment on account is all credit, on the newest invoice.
    _upload(aws, "more.csv", ["ACME", "", "5.00", "2027-01-26", "", "", "", ""], hours=2)
    assert _logged(ledger)[-2:] == [("payment_applied", "A-3", "5.00"), ("credit_recorded", "A-3", "5.00")]


@pytest.mark.usefixtures("invoices")
def test_ambiguous_currency_and_an_account_without_invoices_are_rejected(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    summary = _upload(
        aws,
        "bad.csv",
        ["MIXED", "", "10.00", "2027-01-25", "", "", "", ""],
        ["GHOST", "", "10.00", "2027-01-25", "EUR", "", "", ""],
        ["ACME", "", "10.00", "2027-01-25", "USD", "", "", ""],
        ["ACME", "", "10.001", "2027-01-25", "", "", "", ""],
        ["MIXED", "", "10.00", "2027-01-25", "USD", "", "", ""],
    )

    assert (summary["imported"], summary["rejected"]) == (1, 4)
    report = {r["row"]: r for r in reject_report(aws, "bad.csv")}
    assert report["2"]["field"] == "currency"
    assert "ambiguous currency" in report["2"]["error"] and "EUR, USD" in report["2"]["error"]
    assert (
        "GHOST has no invoices" in report["3"]["error"] and "nothing to be allocated" in report["3"]["error"]
    )
    assert report["4"]["field"] == "currency" and "no invoices in USD" in report["4"]["error"]
    assert report["5"]["field"] == "amount"
    assert "6" not in report
    assert (owed(ledger, "U-1", "MIXED"), owed(ledger, "E-1", "MIXED")) == (
        Decimal("50.00"),
        Decimal("40.00"),
    )
    rejected = [e for e in ledger.events("MIXED") if e["type"] == "row_rejected"]
    assert [(e["row"], e["error"].split(":")[0]) for e in rejected] == [(2, "currency")]


@pytest.mark.usefixtures("invoices")
def test_redelivery_and_an_overlapping_export_allocate_nothing_twice(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    rows = [["ACME", "", "80.00", "2027-01-25", "", "bank 1", "", ""], ["ACME", "", "80.00", "2027-01-25"]]
    rows[1] += ["", "bank 1", "", ""]
    _upload(aws, "pay.csv", *rows)
    before = every_item(aws)
    owing = [owed(ledger, i) for i in ("A-2", "A-1", "A-3")]
    assert owing == [Decimal(0), Decimal(0), Decimal("20.00")], "two identical rows are two payments"

    # The same S3 event again: already processed.
    result = app.handler(
        aws.upload_event("incoming/payments/pay.csv", UPLOADED_AT + timedelta(hours=1)),
        LocalContext("ingest"),
    )
    assert result["imports"][0]["already_processed"] is True
    assert every_item(aws) == before

    # A crash after one part was written and before the receipt: the redelivery writes only the rest.
    table = aws.dynamodb.Table(aws.table_name)
    receipt = next(item for item in before if item["PK"].startswith("FILE#incoming/payments/"))
    table.delete_item(Key={"PK": receipt["PK"], "SK": receipt["SK"]})
    parts = [i for i in before if i.get("kind") == "payment" and i.get("allocation_id")]
    assert len(parts) == 4 and len({i["allocation_id"] for i in parts}) == 2
    lost = next(i for i in parts if i["invoice_id"] == "A-3")
    table.delete_item(Key={"PK": lost["PK"], "SK": lost["SK"]})
    result = app.handler(
        aws.upload_event("incoming/payments/pay.csv", UPLOADED_AT + timedelta(hours=1)),
        LocalContext("ingest"),
    )
    assert (result["imports"][0]["imported"], result["imports"][0]["unchanged"]) == (1, 1)
    after = [i for i in every_item(aws) if not i["PK"].startswith("FILE#")]
    assert after == [i for i in before if not i["PK"].startswith("FILE#")]

    # The rows again in another file (an overlapping bank export): recognised, not applied again.
    summary = _upload(aws, "overlap.csv", *rows, hours=5)
    assert (summary["imported"], summary["unchanged"]) == (0, 2)
    assert [owed(ledger, i) for i in ("A-2", "A-1", "A-3")] == owing


@pytest.mark.usefixtures("invoices")
def test_a_payment_on_account_with_a_payment_id_is_corrected_and_reversed_by_it(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    _upload(aws, "p1.csv", ["ACME", "", "60.00", "2027-01-25", "", "", "P-9", ""])
    assert [owed(ledger, i) for i in ("A-2", "A-1")] == [Decimal(0), Decimal("90.00")]

    assert (
        _upload(aws, "p1-again.csv", ["ACME", "", "60.00", "2027-01-25", "", "", "P-9", ""], hours=2)[
            "unchanged"
        ]
        == 1
    )
    # Corrected: the payment was 170, not 60; it is allocated afresh, the 60 no longer counting.
    summary = _upload(aws, "p2.csv", ["ACME", "", "170.00", "2027-01-25", "", "", "P-9", ""], hours=3)
    assert summary["updated"] == 1
    assert [owed(ledger, i) for i in ("A-2", "A-1", "A-3")] == [Decimal(0), Decimal(0), Decimal("10.00")]
    assert due_index(aws) == ["A-3", "E-1", "U-1"]

    summary = _upload(aws, "rev.csv", ["ACME", "", "", "", "", "", "P-9", "reversal"], hours=4)
    assert summary["updated"] == 1
    assert [owed(ledger, i) for i in ("A-2", "A-1", "A-3")] == [
        Decimal("50.00"),
        Decimal("100.00"),
        Decimal("30.00"),
    ]
    assert due_index(aws) == ["A-1", "A-2", "A-3", "E-1", "U-1"], "re-opened invoices are chased again"
    assert _logged(ledger) == [
        ("payment_applied", "A-2", "50.00"),
        ("payment_applied", "A-1", "10.00"),
        ("payment_corrected", "A-2", "50.00"),
        ("payment_corrected", "A-1", "100.00"),
        ("payment_corrected", "A-3", "20.00"),
        ("payment_reversed", "A-2", "50.00"),
        ("payment_reversed", "A-1", "100.00"),
        ("payment_reversed", "A-3", "20.00"),
    ]


@pytest.mark.usefixtures("invoices")
def test_a_payment_on_account_is_reversed_by_its_content(aws: EmbeddedAws, ledger: Ledger) -> None:
    _upload(aws, "p1.csv", ["ACME", "", "80.00", "2027-01-25", "", "r1", "", ""])
    summary = _upload(aws, "rev.csv", ["ACME", "", "-80.00", "2027-01-25", "", "r1", "", "reversal"], hours=2)

    assert summary["updated"] == 1
    assert [owed(ledger, i) for i in ("A-2", "A-1")] == [Decimal("50.00"), Decimal("100.00")]
    assert _logged(ledger)[-2:] == [
        ("payment_reversed", "A-2", "50.00"),
        ("payment_reversed", "A-1", "30.00"),
    ]
    again = _upload(aws, "rev2.csv", ["ACME", "", "80.00", "2027-01-25", "", "r2", "", "reversal"], hours=3)
    assert again["rejected"] == 1
    assert "no payment on account of 80.00" in reject_report(aws, "rev2.csv")[0]["error"]


def test_a_payment_on_account_that_settles_the_account_ends_the_ladder() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(
            invoice_row("A-1", amount="100.00", due_on="2027-02-10"),
            invoice_row("B-1", amount="50.00", due_on="2027-02-12"),
        )
        w.payment("ACME", "", "150.00", date(2027, 2, 20))
        w.run_through(date(2027, 4, 20))

        sent = w.events("ACME", "notice_sent")
        assert sent, "the ladder ran before the payment"
        assert all(e["at"] < "2027-02-20" for e in sent), "nothing is sent after the payment on account"
        applied = w.events("ACME", "payment_applied")
        assert [(e["invoice_id"], e["amount"]) for e in applied] == [("A-1", "100.00"), ("B-1", "50.00")]
        assert len(w.events("ACME", "account_settled")) == 1
        assert not w.events("ACME", "case_opened")


@pytest.mark.usefixtures("invoices")
def test_an_empty_invoice_id_cell_is_on_account_but_a_cut_row_is_rejected(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    header = ["account_id", "amount", "paid_on", "invoice_id"]
    rows = [["ACME", "10.00", "2027-01-25"], ["ACME", "10.00", "2027-01-25", ""]]
    result = aws.upload("payments", "cut.csv", csv_bytes(header, rows), UPLOADED_AT)
    summary = result["imports"][0]

    assert (summary["imported"], summary["rejected"]) == (1, 1)
    (problem,) = reject_report(aws, "cut.csv")
    assert (problem["row"], problem["field"]) == ("2", "invoice_id")
    assert "ends before the invoice_id column" in problem["error"]
    assert owed(ledger, "A-2") == Decimal("40.00")
