"""Issue 10: balances count money once (CONTRACT 4.2, 4.3). The accounting export's figure covers the money
the accounting system knew when it exported; feed payments it could not have known are added on top; an
overpayment is a credit that reduces the account's other open invoices of its currency; Xero's
InvoiceAmountDue and credit notes count. The due index, the snapshot's balance and the `credit_recorded`
events come from one computation (dunning.domain.balances), through the real ingest handler."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from dunning.adapters.ledger import Ledger
from dunning.domain import balances
from dunning.domain.account import AccountSnapshot, credit_note
from dunning.local.embedded_aws import EmbeddedAws
from tests.conftest import UPLOADED_AT
from tests.support.files import csv_bytes, invoice_row, invoices_csv

PAYMENT_HEADER = [
    "account_id",
    "invoice_id",
    "amount",
    "paid_on",
    "currency",
    "reference",
    "payment_id",
    "type",
]
XERO_HEADER = [
    "*ContactName",
    "EmailAddress",
    "*InvoiceNumber",
    "Reference",
    "*InvoiceDate",
    "*DueDate",
    "Total",
    "InvoiceAmountPaid",
    "InvoiceAmountDue",
    "*Description",
    "Currency",
    "Type",
    "Status",
]


def _xero(
    number: str,
    total: str,
    paid: str,
    due: str,
    *,
    contact: str = "Thames Joinery",
    issued: str = "04/11/2026",
    due_on: str = "04/12/2026",
    reference: str = "",
    currency: str = "GBP",
    type_: str = "ACCREC",
    status: str = "Awaiting Payment",
    email: str = "ap@thames.example.com",
) -> list[str]:
    return [
        contact,
        email,
        number,
        reference,
        issued,
        due_on,
        total,
        paid,
        due,
        "Work",
        currency,
        type_,
        status,
    ]


def _at(hours: int) -> datetime:
    return UPLOADED_AT + timedelta(hours=hours)


def _upload(aws: EmbeddedAws, kind: str, name: str, body: bytes, hours: int) -> dict[str, Any]:
    result = aws.upload(kind, name, body, _at(hours))
    assert aws.failed_uploads == []
    summary: dict[str, Any] = result["imports"][0]
    return summary


def _pay(aws: EmbeddedAws, name: str, *rows: list[str], hours: int) -> dict[str, Any]:
    padded = [row + [""] * (len(PAYMENT_HEADER) - len(row)) for row in rows]
    return _upload(aws, "payments", name, csv_bytes(PAYMENT_HEADER, padded), hours)


def _snapshot(ledger: Ledger, account: str) -> AccountSnapshot:
    return AccountSnapshot.from_items(account, ledger.account_items(account))


def _owed(ledger: Ledger, account: str) -> dict[str, Decimal]:
    """What the account owes per invoice, as every notice, case and report sees it."""
    return {invoice.invoice_id: invoice.outstanding for invoice in _snapshot(ledger, account).invoices}


def _due_index(aws: EmbeddedAws, account: str | None = None) -> list[str]:
    items = aws.dynamodb.Table(aws.table_name).scan(IndexName="due")["Items"]
    return sorted(i["invoice_id"] for i in items if account is None or i["account_id"] == account)


def _credits(ledger: Ledger, account: str) -> list[tuple[str, str, str]]:
    """(invoice or credit note, amount, currency) of each credit_recorded event, in log order."""
    return [
        (e.get("invoice_id") or e.get("credit_note_id", ""), e["amount"], e["currency"])
        for e in ledger.events(account)
        if e["type"] == "credit_recorded"
    ]


def _account_credits(ledger: Ledger, account: str) -> balances.AccountCredits:
    items = ledger.account_items(account)
    notes = [credit_note(item) for item in items if item.get("kind") == "credit_note"]
    return balances.allocate_credits(AccountSnapshot.from_items(account, items).invoices, notes)


def _logged_credit(ledger: Ledger, account: str) -> dict[str, Decimal]:
    logged: dict[str, Decimal] = defaultdict(Decimal)
    for _, amount, currency in _credits(ledger, account):
        logged[currency] += Decimal(amount)
    return {currency: amount for currency, amount in logged.items() if amount}


def test_a_feed_payment_after_the_export_is_added_to_what_the_export_reported(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    """Xero reports 100 of 480 paid; a 400 payment arrives in the feed: the invoice is settled, 20 is a
    credit that reduces the account's other open invoice, and nothing is chased on the settled one."""
    export = [_xero("X-1", "3600.00", "0.00", "3600.00"), _xero("X-2", "480.00", "100.00", "380.00")]
    _upload(aws, "invoices", "xero.csv", csv_bytes(XERO_HEADER, export), 0)
    _pay(aws, "bank.csv", ["Thames Joinery", "X-2", "400.00", "2026-12-28", "GBP", "BACS"], hours=1)

    assert _owed(ledger, "Thames Joinery") == {"X-1": Decimal("3580.00"), "X-2": Decimal("0.00")}
    assert _credits(ledger, "Thames Joinery") == [("X-2", "20.00", "GBP")]
    assert _due_index(aws) == ["X-1"]
    x2 = next(i for i in _snapshot(ledger, "Thames Joinery").invoices if i.invoice_id == "X-2")
    assert x2.paid == Decimal("480.00")
    assert x2.reductions() == ((None, Decimal("100.00")), (date(2026, 12, 28), Decimal("380.00")))
    x1 = next(i for i in _snapshot(ledger, "Thames Joinery").invoices if i.invoice_id == "X-1")
    assert x1.reductions() == ((date(2026, 12, 28), Decimal("20.00")),), "the credit, dated by its payment"

    # The same export again, with another change (an email), still reporting 100: the feed payment is
    # not forgotten.
    again = [export[0], _xero("X-2", "480.00", "100.00", "380.00", email="pay@thames.example.com")]
    summary = _upload(aws, "invoices", "xero.csv", csv_bytes(XERO_HEADER, again), 2)
    assert summary["updated"] == 1
    assert _owed(ledger, "Thames Joinery") == {"X-1": Decimal("3580.00"), "X-2": Decimal("0.00")}

    # Xero catches up with the payment (Paid, nothing due): the same money, not more, and the
    # overpayment stays a credit.
    caught_up = [export[0], _xero("X-2", "480.00", "480.00", "0.00", status="Paid")]
    _upload(aws, "invoices", "xero-2.csv", csv_bytes(XERO_HEADER, caught_up), 3)
    assert _owed(ledger, "Thames Joinery") == {"X-1": Decimal("3580.00"), "X-2": Decimal("0.00")}
    assert _credits(ledger, "Thames Joinery") == [("X-2", "20.00", "GBP")]


def test_the_due_index_the_balance_and_the_credits_are_one_computation(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    """Export 60 paid of 100, then a 40 feed payment: settled everywhere at once. The other way round (the
    feed first, then an export that reports 60, which may include those 40): 40 still owed, everywhere."""
    body = invoices_csv(
        invoice_row("A-1", account_id="EXPORT-FIRST", amount="100.00", amount_paid="60.00"),
        invoice_row("B-1", account_id="FEED-FIRST", amount="100.00"),
    )
    _upload(aws, "invoices", "invoices.csv", body, 0)
    _pay(
        aws,
        "feed.csv",
        ["EXPORT-FIRST", "A-1", "40.00", "2027-01-20", "EUR"],
        ["FEED-FIRST", "B-1", "40.00", "2027-01-20", "EUR"],
        hours=1,
    )
    corrected = invoices_csv(
        invoice_row("A-1", account_id="EXPORT-FIRST", amount="100.00", amount_paid="60.00"),
        invoice_row("B-1", account_id="FEED-FIRST", amount="100.00", amount_paid="60.00"),
    )
    _upload(aws, "invoices", "invoices.csv", corrected, 2)

    assert _owed(ledger, "EXPORT-FIRST") == {"A-1": Decimal("0.00")}
    assert _owed(ledger, "FEED-FIRST") == {"B-1": Decimal("40.00")}
    assert _due_index(aws) == ["B-1"]
    assert _credits(ledger, "EXPORT-FIRST") == _credits(ledger, "FEED-FIRST") == []
    b1 = _snapshot(ledger, "FEED-FIRST").invoices[0]
    assert b1.reductions() == ((None, Decimal("20.00")), (date(2027, 1, 20), Decimal("40.00")))


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_credit_events_and_the_due_index_agree_with_the_balance_in_random_timelines(
    aws: EmbeddedAws, ledger: Ledger, seed: int
) -> None:
    """Random timelines of export figures, payments (partial, full, over, on account), corrections of the
    export and reversals: after every upload, the credit_recorded events of each account and currency
    sum to the credit the balance holds, and the due index holds exactly the invoices that owe by their
    own figures (never leaving out one the account owes)."""
    rng = random.Random(seed)  # a reproducible timeline
    accounts = [f"R{n}" for n in range(8)]
    invoices: dict[tuple[str, str], dict[str, str]] = {}
    for account in accounts:
        for number in range(rng.randint(1, 3)):
            currency = rng.choice(["EUR", "EUR", "JPY"])
            amount = rng.randint(5, 50) * (100 if currency == "EUR" else 1000)
            due = (date(2027, 1, 10) + timedelta(days=rng.randint(0, 30))).isoformat()
            invoices[(account, f"{account}-{number}")] = invoice_row(
                f"{account}-{number}",
                account_id=account,
                amount=_money(amount, currency),
                currency=currency,
                due_on=due,
                amount_paid="0",
            )
    _upload(aws, "invoices", "invoices.csv", invoices_csv(*invoices.values()), 0)
    applied: list[list[str]] = []
    for step in range(1, 17):
        if step % 4 == 0:
            # The export reports another paid figure for some invoices (catching up, or not).
            for key in rng.sample(sorted(invoices), 4):
                row = invoices[key]
                total = _minor(row["amount"], row["currency"])
                row["amount_paid"] = _money(rng.choice([0, total // 2, total]), row["currency"])
            _upload(aws, "invoices", f"invoices-{step}.csv", invoices_csv(*invoices.values()), step)
        else:
            rows = [_random_payment(rng, invoices, step) for _ in range(rng.randint(1, 4))]
            if applied and rng.random() < 0.5:
                reversed_row = rng.choice(applied)
                applied.remove(reversed_row)
                rows.append([*reversed_row[:7], "reversal"])
            applied += [row for row in rows if row[-1] != "reversal" and row[1]]
            _pay(aws, f"payments-{step}.csv", *rows, hours=step)
        for account in accounts:
            credits = _account_credits(ledger, account)
            assert _logged_credit(ledger, account) == credits.total, (step, account)
            states = _snapshot(ledger, account).invoices
            owing = sorted(i.invoice_id for i in states if i.own.outstanding > 0)
            assert _due_index(aws, account) == owing, (step, account)
            assert {i.invoice_id for i in states if i.outstanding > 0} <= set(owing)


def _minor(text: str, currency: str) -> int:
    return int(Decimal(text) * (100 if currency == "EUR" else 1))


def _money(minor: int, currency: str) -> str:
    return f"{Decimal(minor) / 100:.2f}" if currency == "EUR" else str(minor)


def _random_payment(
    rng: random.Random, invoices: dict[tuple[str, str], dict[str, str]], step: int
) -> list[str]:
    account, invoice_id = rng.choice(sorted(invoices))
    row = invoices[(account, invoice_id)]
    total = _minor(row["amount"], row["currency"])
    minor = rng.choice([total // 3, total, total + total // 5, rng.randint(1, total)])
    on_account = rng.random() < 0.25
    paid_on = (date(2027, 1, 1) + timedelta(days=step)).isoformat()
    invoice = "" if on_account else invoice_id
    reference = f"r{rng.randint(0, 10**6)}"
    return [account, invoice, _money(minor, row["currency"]), paid_on, row["currency"], reference, "", ""]


def test_xero_amount_due_is_authoritative_and_credit_notes_reduce_what_is_owed(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    """A credit note allocated in Xero shows in InvoiceAmountDue; one not yet allocated is applied here:
    to the invoice its reference names, else to the oldest open invoice of its currency, else kept as a
    credit on the account."""
    export = [
        # 600, of which 120 credited in Xero: 480 due, nothing paid.
        _xero("X-5", "600.00", "0.00", "480.00", due_on="10/12/2026"),
        _xero("X-6", "200.00", "0.00", "200.00", due_on="20/12/2026"),
        _xero("X-7", "300.00", "0.00", "300.00", due_on="01/12/2026"),
        # Not yet allocated in Xero, naming X-6 (negative, as some exports write credit notes).
        _xero("CN-1", "-50.00", "0.00", "-50.00", reference="Credit for X-6", type_="Sales credit note"),
        # Naming no invoice: the account's oldest due open invoice first.
        _xero("CN-2", "30.00", "0.00", "30.00", reference="goodwill", type_="ACCRECCREDIT"),
        # Fully allocated in Xero already (its invoice's InvoiceAmountDue counts it): nothing more.
        _xero("CN-3", "120.00", "120.00", "0.00", reference="X-5", type_="ACCRECCREDIT", status="Paid"),
        # In a currency the account owes nothing in: a credit on the account.
        _xero("CN-4", "25.00", "0.00", "25.00", currency="EUR", type_="ACCRECCREDIT"),
    ]
    summary = _upload(aws, "invoices", "xero.csv", csv_bytes(XERO_HEADER, export), 0)

    assert (summary["imported"], summary["rejected"], summary["skipped"]) == (7, 0, 0)
    assert _owed(ledger, "Thames Joinery") == {
        "X-5": Decimal("480.00"),
        "X-6": Decimal("150.00"),
        "X-7": Decimal("270.00"),
    }
    assert _credits(ledger, "Thames Joinery") == [
        ("CN-1", "50.00", "GBP"),
        ("CN-2", "30.00", "GBP"),
        ("CN-4", "25.00", "EUR"),
    ]
    assert _account_credits(ledger, "Thames Joinery").left == {"EUR": Decimal("25.00")}
    assert _due_index(aws) == ["X-5", "X-6", "X-7"], "credited, not settled: still chased"

    # Xero allocates CN-1 to X-6: X-6's due drops by 50 and CN-1 has nothing left; the same 50, once.
    export[1] = _xero("X-6", "200.00", "0.00", "150.00", due_on="20/12/2026")
    export[3] = _xero(
        "CN-1", "-50.00", "-50.00", "0.00", reference="X-6", type_="Sales credit note", status="Paid"
    )
    _upload(aws, "invoices", "xero-2.csv", csv_bytes(XERO_HEADER, export), 1)

    assert _owed(ledger, "Thames Joinery")["X-6"] == Decimal("150.00")
    assert _credits(ledger, "Thames Joinery")[-1] == ("CN-1", "-50.00", "GBP")
    assert _logged_credit(ledger, "Thames Joinery") == _account_credits(ledger, "Thames Joinery").total


def test_an_overpayment_reduces_the_other_open_invoices_of_its_currency(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    """A 500 RON payment reduces the balance by 500 (not 500 - the 200.50 the export already reported);
    an overpayment's excess pays the account's other open RON invoices, oldest due first, and what is left
    stays a credit; the EUR invoice is not touched."""
    body = invoices_csv(
        invoice_row(
            "INV-1",
            account_id="ACME-RO",
            amount="4850.00",
            currency="RON",
            due_on="2026-12-02",
            issued_on="2026-11-02",
        ),
        invoice_row(
            "INV-2",
            account_id="ACME-RO",
            amount="1200.50",
            currency="RON",
            due_on="2026-12-10",
            issued_on="2026-11-10",
            amount_paid="200.50",
        ),
        invoice_row(
            "INV-3",
            account_id="ACME-RO",
            amount="100.00",
            currency="EUR",
            due_on="2026-11-01",
            issued_on="2026-10-01",
        ),
    )
    _upload(aws, "invoices", "invoices.csv", body, 0)
    _pay(aws, "p1.csv", ["ACME-RO", "INV-2", "500.00", "2026-12-15", "RON", "OP 4471"], hours=1)

    assert _owed(ledger, "ACME-RO") == {
        "INV-1": Decimal("4850.00"),
        "INV-2": Decimal("500.00"),
        "INV-3": Decimal("100.00"),
    }
    inv2 = next(i for i in _snapshot(ledger, "ACME-RO").invoices if i.invoice_id == "INV-2")
    assert inv2.reductions() == ((None, Decimal("200.50")), (date(2026, 12, 15), Decimal("500.00")))

    _pay(aws, "p2.csv", ["ACME-RO", "INV-2", "1500.00", "2026-12-20", "RON", "OP 4480"], hours=2)
    assert _owed(ledger, "ACME-RO") == {
        "INV-1": Decimal("3850.00"),
        "INV-2": Decimal("0.00"),
        "INV-3": Decimal("100.00"),
    }
    assert _credits(ledger, "ACME-RO") == [("INV-2", "1000.00", "RON")]
    assert _due_index(aws) == ["INV-1", "INV-3"]

    _pay(aws, "p3.csv", ["ACME-RO", "INV-1", "5000.00", "2026-12-21", "RON", "OP 4490"], hours=3)
    assert _owed(ledger, "ACME-RO") == {
        "INV-1": Decimal("0.00"),
        "INV-2": Decimal("0.00"),
        "INV-3": Decimal("100.00"),
    }
    assert _credits(ledger, "ACME-RO") == [("INV-2", "1000.00", "RON"), ("INV-1", "150.00", "RON")]
    assert _account_credits(ledger, "ACME-RO").left == {"RON": Decimal("1150.00")}
    assert _due_index(aws) == ["INV-3"]


def test_the_rule_in_numbers() -> None:
    """balances.received, the one place the rule is computed: the export's figure changes (T) and feed
    payments recorded (R) around them."""

    def t(hour: int) -> datetime:
        return _at(hour)

    def feed(*payments: tuple[str, int]) -> list[balances.FeedPayment]:
        return [
            balances.FeedPayment(date(2027, 1, 20), Decimal(amount), t(hour)) for amount, hour in payments
        ]

    def export(*figures: tuple[str, int]) -> list[balances.Reported]:
        return [balances.Reported(t(hour), Decimal(paid)) for paid, hour in figures]

    # Recorded after the figure: on top. Before it: the larger of the two.
    assert balances.received(export(("100", 0)), feed(("400", 1))) == Decimal(500)
    assert balances.received(export(("60", 1)), feed(("40", 0))) == Decimal(60)
    # The figure catches up with the feed (100 + 400 known as 480 on a 480 invoice): still 500.
    assert balances.received(export(("100", 0), ("480", 2)), feed(("400", 1))) == Decimal(500)
    # The figure goes down by 100: that much less, never below the feed itself.
    assert balances.received(export(("100", 0), ("0", 2)), feed(("50", 1))) == Decimal(50)
    assert balances.received(export(("100", 0), ("20", 2)), feed(("50", 1))) == Decimal(70)
    # Times not known (a state built from totals): the larger of the two, as before issue 10.
    assert balances.outstanding(Decimal(100), Decimal(60), Decimal(40), "open") == Decimal(40)
