"""Correcting and reversing payments (issue 9): a payment_id seen before replaces that payment, a
`type` reversal row undoes one, and a reversal that re-opens an invoice puts it back in the due index."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from dunning.adapters.ledger import Ledger
from dunning.local.embedded_aws import EmbeddedAws
from tests.conftest import UPLOADED_AT
from tests.support.files import csv_bytes, invoice_row, invoices_csv, reject_report
from tests.support.ingested import due_index, owed

HEADER = ["account_id", "invoice_id", "amount", "paid_on", "reference", "payment_id", "type"]


@pytest.fixture(autouse=True)
def invoices(aws: EmbeddedAws) -> None:
    body = invoices_csv(invoice_row("A-1", amount="100.00"), invoice_row("A-2", amount="50.00"))
    aws.upload("invoices", "invoices.csv", body, UPLOADED_AT)


class Uploads:
    def __init__(self, aws: EmbeddedAws) -> None:
        self.aws = aws
        self.count = 0

    def __call__(self, name: str, *rows: list[str]) -> dict[str, Any]:
        self.count += 1
        at = UPLOADED_AT + timedelta(hours=self.count)
        result = self.aws.upload("payments", name, csv_bytes(HEADER, rows), at)
        assert self.aws.failed_uploads == []
        summary: dict[str, Any] = result["imports"][0]
        return summary


@pytest.fixture
def upload(aws: EmbeddedAws) -> Uploads:
    return Uploads(aws)


def _events(ledger: Ledger, *types: str) -> list[tuple[str, ...]]:
    return [
        (e["type"], e["invoice_id"], e["amount"])
        for e in ledger.events("ACME")
        if e["type"] in (types or ("payment_applied", "payment_corrected", "payment_reversed"))
    ]


def test_a_payment_id_seen_before_replaces_that_payment(
    aws: EmbeddedAws, ledger: Ledger, upload: Uploads
) -> None:
    first = upload("bank.csv", ["ACME", "A-1", "30.00", "2027-01-10", "", "TX-1", ""])
    corrected = upload("bank.csv", ["ACME", "A-1", "40.00", "2027-01-11", "", "TX-1", ""])

    assert (first["imported"], corrected["imported"], corrected["updated"]) == (1, 0, 1)
    assert owed(ledger, "A-1") == Decimal("60.00"), "replaced, not added"

    # Booked to the wrong invoice: the correction moves it.
    upload("bank-fix.csv", ["ACME", "A-2", "50.00", "2027-01-11", "", "TX-1", ""])

    assert (owed(ledger, "A-1"), owed(ledger, "A-2")) == (Decimal("100.00"), Decimal("0"))
    assert due_index(aws) == ["A-1"]
    assert _events(ledger) == [
        ("payment_applied", "A-1", "30.00"),
        ("payment_corrected", "A-1", "40.00"),
        ("payment_corrected", "A-2", "50.00"),
    ]
    last = [e for e in ledger.events("ACME") if e["type"] == "payment_corrected"][-1]
    assert (last["payment_id"], last["previous_invoice_id"], last["previous_amount"]) == (
        "TX-1",
        "A-1",
        "40.00",
    )


def test_the_same_file_with_payment_ids_delivered_again_changes_nothing(
    ledger: Ledger, upload: Uploads
) -> None:
    rows = [
        ["ACME", "A-1", "30.00", "2027-01-10", "", "TX-1", ""],
        ["ACME", "A-1", "5.00", "2027-01-10", "", "TX-2", ""],
    ]
    upload("bank.csv", *rows)
    again = upload("bank-copy.csv", *rows)

    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert owed(ledger, "A-1") == Decimal("65.00")


def test_payments_without_payment_id_keep_their_identity(ledger: Ledger, upload: Uploads) -> None:
    row = ["ACME", "A-1", "25.00", "2027-01-10", "r1", "", ""]
    upload("jan.csv", row, row)
    overlap = upload("jan-and-feb.csv", row, row, ["ACME", "A-1", "5.00", "2027-02-01", "", "", ""])

    assert (overlap["imported"], overlap["unchanged"]) == (1, 2)
    assert owed(ledger, "A-1") == Decimal("45.00")


def test_a_reversal_reopens_a_settled_invoice_and_the_ladder_chases_it_again(
    aws: EmbeddedAws, ledger: Ledger, upload: Uploads
) -> None:
    payment = ["ACME", "A-1", "100.00", "2027-01-10", "chq 7", "", ""]
    upload("jan.csv", payment)
    assert owed(ledger, "A-1") == 0 and due_index(aws) == ["A-2"]

    # The cheque bounced: the bank's reversal names the payment as it was recorded (a minus is allowed).
    reversed_ = upload("returns.csv", ["ACME", "A-1", "-100.00", "2027-01-10", "chq 7", "", "reversal"])

    assert reversed_["updated"] == 1
    assert owed(ledger, "A-1") == Decimal("100.00")
    assert due_index(aws) == ["A-1", "A-2"], "back in the due index: the daily scan chases it again"
    assert _events(ledger)[-1] == ("payment_reversed", "A-1", "100.00")

    # An overlapping export that lists the bounced cheque again does not pay the invoice again, and the
    # same reversal delivered again undoes nothing more.
    assert upload("jan-again.csv", payment)["unchanged"] == 1
    assert (
        upload("returns-again.csv", ["ACME", "A-1", "100.00", "2027-01-10", "chq 7", "", "reversal"])[
            "unchanged"
        ]
        == 1
    )
    assert owed(ledger, "A-1") == Decimal("100.00")
    items = [i for i in ledger.account_items("ACME") if i["SK"].startswith("PAYMENT#A-1#")]
    assert [(i["kind"], i["amount"], i["reversed_amount"]) for i in items] == [
        ("reversed_payment", 0, Decimal("100.00"))
    ]


def test_a_reversal_by_payment_id(aws: EmbeddedAws, ledger: Ledger, upload: Uploads) -> None:
    upload("bank.csv", ["ACME", "A-2", "50.00", "2027-01-10", "", "TX-9", ""])
    assert due_index(aws) == ["A-1"]

    result = upload(
        "returns.csv",
        ["ACME", "", "", "", "", "TX-9", "reversal"],
        ["ACME", "", "", "", "", "TX-9", "Reversal"],
        ["ACME", "", "", "", "", "TX-404", "reversal"],
        ["ACME", "A-2", "50.00", "2027-01-10", "", "", "refund"],
    )

    assert (result["updated"], result["unchanged"], result["rejected"]) == (1, 1, 2)
    assert owed(ledger, "A-2") == Decimal("50.00")
    assert due_index(aws) == ["A-1", "A-2"]
    report = {r["row"]: r for r in reject_report(aws, "returns.csv")}
    assert report["4"]["field"] == "payment_id" and "no payment with this payment_id" in report["4"]["error"]
    assert report["5"]["field"] == "type" and "reversal" in report["5"]["error"]
    reversed_event = [e for e in ledger.events("ACME") if e["type"] == "payment_reversed"]
    assert [(e["invoice_id"], e["amount"], e["payment_id"]) for e in reversed_event] == [
        ("A-2", "50.00", "TX-9")
    ]

    # The same id sent again with new content brings the payment back (a correction of a reversal).
    again = upload("bank-2.csv", ["ACME", "A-2", "20.00", "2027-01-20", "", "TX-9", ""])
    assert again["updated"] == 1 and owed(ledger, "A-2") == Decimal("30.00")


def test_a_reversal_of_an_unknown_payment_is_rejected_with_the_reason(
    aws: EmbeddedAws, ledger: Ledger, upload: Uploads
) -> None:
    upload("bank.csv", ["ACME", "A-1", "10.00", "2027-01-10", "", "", ""])
    result = upload("returns.csv", ["ACME", "A-1", "10.00", "2027-01-11", "", "", "reversal"])

    assert result["rejected"] == 1
    (row,) = reject_report(aws, "returns.csv")
    assert row["row"] == "2" and "no payment of 10.00 EUR on 2027-01-11" in row["error"]
    assert owed(ledger, "A-1") == Decimal("90.00")
