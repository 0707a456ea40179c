"""report.html's collector figures (issue 13): each checked against small numbers computed by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from dunning.local.report import describe, render_report
from dunning.local.report_metrics import (
    Balances,
    InvoiceLine,
    aging_at,
    month_ends,
    period_figures,
    plans,
    promises,
)

HOSTILE = "<script>alert(1)</script>"


def _line(invoice_id: str, amount: str, issued_on: date, due_on: date, **changes: Any) -> InvoiceLine:
    values: dict[str, Any] = {
        "account_id": "ACME",
        "customer_name": "Acme Ltd",
        "invoice_id": invoice_id,
        "currency": "EUR",
        "amount": Decimal(amount),
        "due_on": due_on,
        "outstanding": Decimal(amount),
        "status": "open",
        "issued_on": issued_on,
        **changes,
    }
    return InvoiceLine(**values)


def _event(at: str, type_: str, account: str = "ACME", **keys: Any) -> dict[str, Any]:
    return {"at": at, "type": type_, "account_id": account, **keys}


def _paid(day: str, invoice_id: str, amount: str, currency: str = "EUR") -> dict[str, Any]:
    return _event(
        f"{day}T00:00:00Z",
        "payment_applied",
        invoice_id=invoice_id,
        amount=amount,
        currency=currency,
        paid_on=day,
    )


# --- month-end aging --------------------------------------------------------------------------------------


def test_month_ends_of_the_period_and_its_last_day() -> None:
    assert month_ends(date(2027, 1, 15), date(2027, 3, 10)) == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 10),
    ]
    assert month_ends(date(2027, 1, 1), date(2027, 1, 31)) == [date(2027, 1, 31)]
    assert month_ends(date(2026, 12, 5), date(2027, 1, 3)) == [date(2026, 12, 31), date(2027, 1, 3)]


def test_an_invoice_partly_paid_before_a_month_end_ages_with_what_was_left_that_day() -> None:
    # 100.00 due 15 Jan: 30.00 paid on 20 Jan, the other 70.00 on 10 Feb.
    invoice = _line(
        "A-1",
        "100.00",
        date(2027, 1, 1),
        date(2027, 1, 15),
        outstanding=Decimal(0),
        reductions=((date(2027, 1, 20), Decimal("30.00")), (date(2027, 2, 10), Decimal("70.00"))),
    )
    balances = Balances([invoice], [])
    assert balances.outstanding_on(invoice, date(2026, 12, 31)) == 0  # not issued yet
    assert balances.outstanding_on(invoice, date(2027, 1, 20)) == Decimal("70.00")
    assert balances.outstanding_on(invoice, date(2027, 2, 28)) == 0
    worklists = {
        date(2027, 1, 31): [{"currency": "EUR", "priority": "42", "days_overdue": "16"}],
        date(2027, 2, 28): [{"currency": "JPY", "priority": "99", "days_overdue": "44"}],
    }
    days = month_ends(date(2027, 1, 1), date(2027, 3, 10))
    [row_jan, row_feb, row_end] = aging_at(balances, days, worklists)["EUR"]
    # 31 Jan: 70.00 left, 16 days past due; the EUR task of that day (16 days overdue) is in the same bucket.
    assert [(cell.count, cell.amount, cell.top_priority) for cell in row_jan.cells] == [
        (0, 0, None),
        (1, Decimal("70.00"), 42),
        (0, 0, None),
        (0, 0, None),
        (0, 0, None),
    ]
    # Paid in full by 28 Feb; the JPY task of that day is not this currency's.
    assert row_feb.count == 0 and row_feb.amount == 0
    assert all(cell.top_priority is None for cell in row_feb.cells)
    assert row_end.as_of == date(2027, 3, 10) and row_end.amount == 0


def test_without_dated_reductions_the_payments_after_the_day_are_added_back() -> None:
    # 100.00 with 40.00 left at the end; 25.00 of what was paid came on 10 Feb, after the January month end.
    invoice = _line("A-2", "100.00", date(2026, 12, 1), date(2026, 12, 31), outstanding=Decimal("40.00"))
    balances = Balances([invoice], [_paid("2027-02-10", "A-2", "25.00")])
    assert balances.outstanding_on(invoice, date(2027, 1, 31)) == Decimal("65.00")
    assert balances.outstanding_on(invoice, date(2027, 2, 10)) == Decimal("40.00")
    [row] = aging_at(balances, [date(2027, 1, 31)])["EUR"]
    assert [cell.amount for cell in row.cells] == [0, 0, Decimal("65.00"), 0, 0]  # 31 days past due: 31-60


def test_void_and_draft_invoices_are_never_outstanding() -> None:
    void = _line("V-1", "10.00", date(2027, 1, 1), date(2027, 1, 2), status="void")
    assert Balances([void], []).outstanding_on(void, date(2027, 3, 1)) == 0
    assert aging_at(Balances([void], []), [date(2027, 3, 1)]) == {}


# --- DSO, CEI, realization --------------------------------------------------------------------------------

START, END = date(2027, 1, 1), date(2027, 1, 31)  # 31 days

# EUR: 1000.00 billed in December (owed at the start), 400.00 of it paid on 10 Jan; 500.00 billed on 5 Jan,
# due 4 Feb (current at the end), unpaid.
EUR_INVOICES = [
    _line("E-1", "1000.00", date(2026, 12, 1), date(2026, 12, 31), outstanding=Decimal("600.00")),
    _line("E-2", "500.00", date(2027, 1, 5), date(2027, 2, 4)),
]
# JPY: 3000 billed in December, all paid on 20 Jan: nothing billed in the period.
JPY_INVOICES = [
    _line(
        "J-1",
        "3000",
        date(2026, 12, 1),
        date(2026, 12, 31),
        currency="JPY",
        outstanding=Decimal(0),
        status="paid",
        reductions=((date(2027, 1, 20), Decimal(3000)),),
    )
]
PAYMENTS = [_paid("2027-01-10", "E-1", "400.00"), _paid("2027-01-20", "J-1", "3000", "JPY")]


def test_dso_cei_and_realization_per_currency_from_hand_computed_figures() -> None:
    figures = {
        f.currency: f
        for f in period_figures(Balances(EUR_INVOICES + JPY_INVOICES, PAYMENTS), PAYMENTS, START, END)
    }
    eur = figures["EUR"]
    assert (eur.beginning, eur.billed, eur.collected, eur.ending, eur.ending_current) == (
        Decimal("1000.00"),
        Decimal("500.00"),
        Decimal("400.00"),
        Decimal("1100.00"),
        Decimal("500.00"),
    )
    # DSO = 1100 / 500 x 31 = 68.2 days
    assert eur.dso.value == Decimal("68.2")
    # CEI = (1000 + 500 - 1100) / (1000 + 500 - 500) x 100 = 400 / 1000 x 100 = 40.0
    assert eur.cei.value == Decimal("40.0")
    # Realization = 400 / 500 = 80.0 %
    assert eur.realization.value == Decimal("80.0")

    jpy = figures["JPY"]
    assert (jpy.beginning, jpy.billed, jpy.collected, jpy.ending) == (
        Decimal(3000),
        Decimal(0),
        Decimal(3000),
        Decimal(0),
    )
    # Nothing billed: DSO and realization have no denominator; CEI = (3000 + 0 - 0) / (3000 + 0 - 0) = 100.
    assert jpy.dso.value is None and "billed = 0" in jpy.dso.reason
    assert jpy.realization.value is None and "billed = 0" in jpy.realization.reason
    assert jpy.cei.value == Decimal("100.0")


def test_cei_is_not_available_when_nothing_was_collectible() -> None:
    # Only an invoice issued and still current at the end: start 0 + billed 50 - current 50 = 0.
    current = [_line("C-1", "50.00", date(2027, 1, 10), date(2027, 2, 10))]
    [eur] = period_figures(Balances(current, []), [], START, END)
    assert eur.cei.value is None and "= 0" in eur.cei.reason
    assert eur.dso.value == Decimal("31.0")  # 50 / 50 x 31
    assert eur.realization.value == Decimal("0.0")


# --- promises ---------------------------------------------------------------------------------------------


def test_the_kept_rate_is_kept_over_kept_plus_broken() -> None:
    events = [
        _event("2027-01-02T09:00:00Z", "promise_recorded", "A", until="2027-01-20"),
        _event("2027-01-15T07:00:00Z", "promise_kept", "A", until="2027-01-20", currency="EUR"),
        _event("2027-01-02T09:00:00Z", "promise_recorded", "B", until="2027-01-25", amount="10.00"),
        _event("2027-01-26T07:00:00Z", "promise_broken", "B", until="2027-01-25", currency="EUR"),
        _event("2027-01-03T09:00:00Z", "promise_recorded", "C", until="2027-01-05"),
        _event("2027-01-04T09:00:00Z", "promise_recorded", "C", until="2027-01-15"),
        _event("2027-01-12T07:00:00Z", "promise_kept", "C", until="2027-01-15", currency="EUR"),
        _event("2027-01-05T09:00:00Z", "promise_recorded", "D", until="2027-01-10"),
        _event("2027-01-09T07:00:00Z", "promise_kept", "D", until="2027-01-10", currency="EUR"),
        _event("2027-01-30T09:00:00Z", "promise_recorded", "E", until="2027-02-10"),
    ]
    result = promises(events)
    assert (result.recorded, result.kept, result.broken, result.open, result.replaced) == (6, 3, 1, 1, 1)
    assert result.kept_rate.value == Decimal("75.0")  # 3 / (3 + 1)
    outcomes = {(line.account_id, line.until): line.outcome for line in result.lines}
    assert outcomes[("C", "2027-01-05")] == "replaced" and outcomes[("E", "2027-02-10")] == "open"
    assert promises([events[-1]]).kept_rate.value is None


# --- payment plans ----------------------------------------------------------------------------------------

PLAN_EVENTS = [
    _event(
        "2027-01-05T10:00:00Z",
        "plan_agreed",
        "A",
        plan_id="P-1",
        currency="EUR",
        total="200.00",
        instalments=[
            {"due_on": "2027-02-01", "amount": "100.00"},
            {"due_on": "2027-03-01", "amount": "100.00"},
        ],
    ),
    _event(
        "2027-02-01T00:00:00Z",
        "instalment_paid",
        "A",
        plan_id="P-1",
        due_on="2027-02-01",
        amount="100.00",
        currency="EUR",
    ),
    _event(
        "2027-03-01T00:00:00Z",
        "instalment_paid",
        "A",
        plan_id="P-1",
        due_on="2027-03-01",
        amount="100.00",
        currency="EUR",
    ),
    _event("2027-03-01T00:00:01Z", "plan_completed", "A", plan_id="P-1", currency="EUR"),
    _event(
        "2027-01-06T10:00:00Z",
        "plan_agreed",
        HOSTILE,
        plan_id="P-2",
        currency="EUR",
        total="150.00",
        instalments=[{"due_on": f"2027-0{month}-01", "amount": "50.00"} for month in (2, 3, 4)],
    ),
    _event(
        "2027-02-01T00:00:00Z",
        "instalment_paid",
        HOSTILE,
        plan_id="P-2",
        due_on="2027-02-01",
        amount="50.00",
        currency="EUR",
    ),
    _event(
        "2027-03-01T00:00:00Z",
        "instalment_paid",
        HOSTILE,
        plan_id="P-2",
        due_on="2027-03-01",
        amount="20.00",
        currency="EUR",
    ),
    _event(
        "2027-03-06T07:00:00Z",
        "plan_broken",
        HOSTILE,
        plan_id="P-2",
        due_on="2027-03-01",
        short="30.00",
        currency="EUR",
    ),
    _event(
        "2027-01-07T10:00:00Z",
        "plan_agreed",
        "C",
        plan_id="P-3",
        currency="JPY",
        total="9000",
        instalments=[{"due_on": "2027-04-01", "amount": "9000"}],
    ),
]


def test_plan_statuses_and_instalments_from_the_events() -> None:
    by_id = {plan.plan_id: plan for plan in plans(PLAN_EVENTS)}
    assert {plan_id: plan.status for plan_id, plan in by_id.items()} == {
        "P-1": "completed",
        "P-2": "broken",
        "P-3": "running",
    }
    assert all(instalment.settled for instalment in by_id["P-1"].instalments)
    assert [(i.amount, i.paid) for i in by_id["P-2"].instalments] == [
        (Decimal("50.00"), Decimal("50.00")),
        (Decimal("50.00"), Decimal("20.00")),
        (Decimal("50.00"), Decimal(0)),
    ]
    assert by_id["P-2"].broken_on == "2027-03-01" and by_id["P-2"].short == Decimal("30.00")
    assert by_id["P-3"].total == Decimal(9000) and by_id["P-3"].currency == "JPY"


# --- on the page ------------------------------------------------------------------------------------------


def test_the_page_shows_the_collector_sections_with_their_formulas() -> None:
    worklist_row = {
        "due_on": "2027-01-30",
        "priority": "57",
        "account_id": "ACME",
        "customer_name": HOSTILE,
        "kind": "call",
        "stage": "call",
        "amount_due": "600.00",
        "currency": "EUR",
        "days_overdue": "31",
        "phone": "+40 21 555 0101",
        "owner": "collections@example.com",
        "task_id": "T-call-0123456789ab",
        "overdue": "",
        "script": "scripts/T-call-0123456789ab.txt",
    }
    events = [
        *PAYMENTS,
        *PLAN_EVENTS,
        _event("2027-01-05T10:00:01Z", "notice_sent", "A", stage="agreement_confirmation", currency="EUR"),
    ]
    html = render_report(
        events=events,
        invoices=EUR_INVOICES + JPY_INVOICES,
        start=START,
        end=END,
        worklists={END: [worklist_row]},
    )
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<a href="scripts/T-call-0123456789ab.txt">T-call-0123456789ab</a>' in html
    assert "68.2 days" in html and "40.0%" in html and "80.0%" in html
    assert 'n/a<span class="muted reason">billed = 0</span>' in html
    assert "receivables at the end / billed in the period &times; days in the period" in html
    assert "Kept rate = kept / (kept + broken) &times; 100" in html
    assert 'Notices sent: agreement_confirmation</th><td class="num">1</td>' in html
    assert "broken (instalment of 2027-03-01, 30.00 EUR short)" in html
    assert "<td>part paid: 20.00</td>" in html
    assert '<table id="aging-month-ends-EUR" class="months">' in html and "aging-month-ends-JPY" not in html
    # JPY was all paid by the only month end (31 Jan): no table of zeros.


def test_plan_events_read_as_short_lines_on_the_account_timeline() -> None:
    lines = [describe(event) for event in PLAN_EVENTS if event["account_id"] == HOSTILE]
    assert lines == [
        "plan P-2 — 150.00 EUR in 3 instalments",
        "plan P-2 — 50.00 EUR toward the instalment of 2027-02-01",
        "plan P-2 — 20.00 EUR toward the instalment of 2027-03-01",
        "plan P-2 broken — instalment of 2027-03-01 — 30.00 EUR short",
    ]
