"""The domain model says what is wrong in a bookkeeper's words and keeps money exact."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from dunning.domain.models import Action, Invoice, Payment, Problem, problems_from

VALID: dict[str, Any] = {
    "account_id": "ACME",
    "invoice_id": "INV-1",
    "currency": "EUR",
    "amount": "100.00",
    "issued_on": "2027-01-01",
    "due_on": "2027-01-31",
}


def _problems(model: Any, **changes: Any) -> list[Problem]:
    data = {**VALID, **changes}
    with pytest.raises(ValidationError) as caught:
        model.model_validate({k: v for k, v in data.items() if v is not None})
    return problems_from(caught.value, model)


@pytest.mark.parametrize(
    ("currency", "amount", "stored"),
    [("EUR", "10.5", "10.50"), ("JPY", "1500", "1500"), ("BHD", "1.234", "1.234"), ("EUR", "7.500", "7.50")],
)
def test_amounts_are_stored_at_the_currency_precision(currency: str, amount: str, stored: str) -> None:
    invoice = Invoice.model_validate({**VALID, "currency": currency, "amount": amount})
    assert isinstance(invoice.amount, Decimal) and str(invoice.amount) == stored


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"currency": "XYZ"}, "currency", "not an ISO 4217 currency code"),
        ({"currency": "JPY", "amount": "10.5"}, "amount", "JPY amounts have no decimals"),
        ({"currency": "BHD", "amount": "1.2345"}, "amount", "at most 3 decimals"),
        ({"amount": "1e3"}, "amount", "plain number"),
        ({"amount": "NaN"}, "amount", "plain number"),
        ({"amount": "-1"}, "amount", "more than zero"),
        ({"amount_paid": "-1"}, "amount_paid", "cannot be negative"),
        ({"issued_on": "2027-13-01"}, "issued_on", "not a real calendar date"),
        ({"due_on": "31.01.2027"}, "due_on", "YYYY-MM-DD"),
        ({"due_on": "2026-12-31"}, "due_on", "before the issue date 2027-01-01"),
        ({"invoice_id": None}, "invoice_id", "is required but empty"),
        ({"invoice_id": "A\r\nBcc: x@evil.example"}, "invoice_id", "line break"),
        ({"status": "overdue"}, "status", "must be one of"),
    ],
)
def test_invoice_problems_name_the_field_and_say_why(changes: dict[str, Any], field: str, words: str) -> None:
    problems = _problems(Invoice, **changes)
    assert [p.field for p in problems] == [field]
    assert words in problems[0].message


def test_payment_in_a_named_currency_is_checked_against_its_precision() -> None:
    payment = Payment.model_validate(
        {"account_id": "A", "invoice_id": "I", "amount": "3", "paid_on": "2027-01-02", "currency": "EUR"}
    )
    assert str(payment.amount) == "3.00" and payment.paid_on == date(2027, 1, 2)
    with pytest.raises(ValidationError):
        Payment.model_validate({"account_id": "A", "invoice_id": "I", "amount": "0", "paid_on": "2027-01-02"})


def test_actions_require_what_each_kind_needs() -> None:
    with pytest.raises(ValidationError) as caught:
        Action.model_validate({"account_id": "A", "action": "promise", "on": "2027-01-02"})
    assert problems_from(caught.value, Action) == [
        Problem("until", "a promise needs the date the customer promised to pay by")
    ]
    pause = Action.model_validate({"account_id": "A", "action": "pause", "on": "2027-01-02"})
    assert pause.until is None
