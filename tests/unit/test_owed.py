"""dunning.domain.owed: the one computation of what an account owes, per currency (CONTRACT 13).

Each case is worked by hand in its comment; the snapshot is built from ledger items as the workflow reads
them, so what is tested is what the notice, the case and the report see.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from dunning.domain.account import AccountSnapshot
from dunning.domain.owed import charge_from_json, charge_to_json, owed
from dunning.domain.policy import DEFAULT_POLICY, Policy


def _policy(**charges: Any) -> Policy:
    return DEFAULT_POLICY.model_copy(
        update={"charges": DEFAULT_POLICY.charges.model_validate({**charges})}, deep=True
    )


def _invoice(invoice_id: str, currency: str, amount: str, due_on: str, paid: str = "0") -> dict[str, Any]:
    return {
        "kind": "invoice",
        "invoice_id": invoice_id,
        "currency": currency,
        "amount": amount,
        "amount_paid": paid,
        "status": "open",
        "issued_on": "2026-01-01",
        "due_on": due_on,
    }


def _payment(invoice_id: str, amount: str, paid_on: str) -> dict[str, Any]:
    return {"kind": "payment", "invoice_id": invoice_id, "amount": amount, "paid_on": paid_on}


def _notice(
    currency: str, stage: str, at: str, lines: list[dict[str, Any]], status: str = "sent"
) -> dict[str, Any]:
    return {
        "kind": "notice",
        "SK": f"NOTICE#{currency}#00000#{stage}",
        "currency": currency,
        "episode": 0,
        "stage": stage,
        "status": status,
        "started_at": at,
        "notice": {"stage": stage, "currency": currency, "charge_lines": lines},
    }


def _dispute(invoice_id: str, on: str) -> dict[str, Any]:
    return {"kind": "action", "SK": f"ACTION#{on}#1", "action": "dispute", "on": on, "invoice_id": invoice_id}


def _view(items: list[dict[str, Any]], currency: str) -> AccountSnapshot:
    profile = {"kind": "account", "customer_type": "business", "timezone": "Europe/London"}
    return AccountSnapshot.from_items("ACME", [profile, *items], currency)


def test_a_disputed_invoice_is_in_no_figure_and_each_currency_stands_alone() -> None:
    # The measured defect: EUR 100 disputed + GBP 70 open; the case claimed EUR 100.
    items = [
        _invoice("E1", "EUR", "100.00", "2026-03-01"),
        _invoice("G1", "GBP", "70.00", "2026-03-02"),
        _dispute("E1", "2026-03-05"),
    ]
    eur = owed(_view(items, "EUR"), "EUR", on=date(2026, 4, 1), policy=DEFAULT_POLICY)
    gbp = owed(_view(items, "GBP"), "GBP", on=date(2026, 4, 1), policy=DEFAULT_POLICY)

    assert (eur.amount_due, eur.invoice_ids) == (Decimal(0), [])
    assert (gbp.amount_due, gbp.currency, gbp.invoice_ids) == (Decimal("70.00"), "GBP", ["G1"])


def test_invoice_lines_show_total_paid_and_outstanding() -> None:
    # 480.00 of which the export says 100.00 was paid: 380.00 outstanding.
    items = [_invoice("I1", "GBP", "480.00", "2026-03-01", paid="100.00")]
    due = owed(_view(items, "GBP"), "GBP", on=date(2026, 3, 10), policy=DEFAULT_POLICY, with_charges=False)

    line = due.invoices[0]
    assert (line.amount, line.paid, line.outstanding) == (
        Decimal("480.00"),
        Decimal("100.00"),
        Decimal("380.00"),
    )
    assert due.total_due == Decimal("380.00")


def test_a_percentage_fee_once_demanded_is_not_lowered_by_a_later_part_payment() -> None:
    # Demand letter fee 2 % of 8,400.00 = 168.00, demanded on 2 May. 2,000.00 paid on 5 May; recomputed on
    # 20 May the fee would be 2 % of 6,400.00 = 128.00 (the measured defect): it stays 168.00.
    policy = _policy(late_fees=[{"stage": "demand_letter", "percent": "2"}])
    demanded = {
        "kind": "late_fee",
        "invoice_id": "I1",
        "amount": "168.00",
        "currency": "USD",
        "details": [["stage", "demand_letter"], ["rate", "2"], ["of", "8,400.00"]],
    }
    items = [
        _invoice("I1", "USD", "8400.00", "2026-04-01"),
        _payment("I1", "2000.00", "2026-05-05"),
        _notice("USD", "demand_letter", "2026-05-02T09:00:00+00:00", [demanded]),
    ]
    due = owed(_view(items, "USD"), "USD", on=date(2026, 5, 20), policy=policy, stage="final_notice")

    assert due.amount_due == Decimal("6400.00")
    assert [(line.kind, line.amount) for line in due.charges] == [("late_fee", Decimal("168.00"))]
    assert due.total_due == Decimal("6568.00")


def test_interest_is_brought_forward_and_keeps_running_at_a_stated_daily_amount() -> None:
    # EUR 10,000.00 due 31 December 2025, statutory charges on: ECB rate 2.15 % (in force 1 January 2026)
    # + 8 = 10.15 % a year. To 31 January (31 days): 10,000 x 10.15 % x 31 / 365 = 86.205... -> 86.21, plus
    # EUR 40.
    # Per day after that: 10,000 x 10.15 % / 365 = 2.7808... -> 2.78.
    policy = _policy(statutory_interest="on")
    items = [_invoice("I1", "EUR", "10000.00", "2025-12-31")]
    due = owed(_view(items, "EUR"), "EUR", on=date(2026, 1, 31), policy=policy, stage="legal_handoff")

    kinds = {line.kind: line.amount for line in due.charges}
    assert kinds["fixed_compensation"] == Decimal("40.00")
    assert kinds["statutory_interest"] == Decimal("86.21")
    assert due.daily_interest == Decimal("2.78")
    assert due.total_due == Decimal("10126.21")


def test_charges_demanded_on_an_invoice_paid_since_are_still_claimed_unless_waived() -> None:
    # I1 was demanded with a flat fee of 25.00; I1 is then paid in full; I2 (500.00) is still open.
    fee = {
        "kind": "late_fee",
        "invoice_id": "I1",
        "amount": "25.00",
        "currency": "GBP",
        "details": [["stage", "firm_notice"]],
    }
    items = [
        _invoice("I1", "GBP", "100.00", "2026-03-01"),
        _payment("I1", "100.00", "2026-03-20"),
        _invoice("I2", "GBP", "500.00", "2026-03-05"),
        _notice("GBP", "firm_notice", "2026-03-15T09:00:00+00:00", [fee]),
    ]
    kept = owed(_view(items, "GBP"), "GBP", on=date(2026, 4, 1), policy=_policy(), stage="demand_letter")
    waived = owed(
        _view(items, "GBP"),
        "GBP",
        on=date(2026, 4, 1),
        policy=_policy(waive_when_paid=True),
        stage="demand_letter",
    )

    assert (kept.amount_due, kept.charges_total, kept.total_due) == (
        Decimal("500.00"),
        Decimal("25.00"),
        Decimal("525.00"),
    )
    assert (waived.charges_total, waived.total_due) == (Decimal(0), Decimal("500.00"))


def test_a_stored_charge_line_reads_back_as_it_was_shown() -> None:
    policy = _policy(statutory_interest="on")
    items = [_invoice("I1", "GBP", "1000.00", "2026-01-10")]
    due = owed(_view(items, "GBP"), "GBP", on=date(2026, 3, 1), policy=policy, stage="firm_notice")

    assert due.charges
    assert [charge_from_json(charge_to_json(line)) for line in due.charges] == list(due.charges)
