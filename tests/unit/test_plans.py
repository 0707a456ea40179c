"""Payment plans, the model (domain.plans, CONTRACT 10): the instalments a customer agreed to, the payments
filling them in date order, the grace before a plan breaks, and the plan completed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dunning.domain.plans import Instalment, Plan, PlanError, parse_instalments

THREE = "2027-03-01=100.00;2027-04-01=100.00;2027-05-01=100.00"


def _plan(text: str = THREE, currency: str = "EUR") -> Plan:
    return Plan(date(2027, 2, 20), currency, parse_instalments(text, currency))


def test_instalments_are_read_in_date_order_at_the_currency_precision() -> None:
    parsed = parse_instalments("2027-04-01=50; 2027-03-01=25.5", "EUR")

    assert parsed == (
        Instalment(date(2027, 3, 1), Decimal("25.50")),
        Instalment(date(2027, 4, 1), Decimal("50.00")),
    )
    assert parse_instalments("2027-03-01=1500", "JPY") == (Instalment(date(2027, 3, 1), Decimal("1500")),)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "at least one instalment"),
        ("2027-03-01", "must be YYYY-MM-DD=amount"),
        ("01/03/2027=10", "is not a date"),
        ("2027-03-01=ten", "must be a plain number"),
        ("2027-03-01=10.001", "has more decimals than EUR allows"),
        ("2027-03-01=0", "more than zero"),
        ("2027-03-01=10;2027-03-01=20", "two instalments on one date"),
    ],
)
def test_a_cell_that_is_not_a_plan_says_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(PlanError, match=error):
        parse_instalments(text, "EUR")


def test_a_plan_adds_up_to_what_is_owed() -> None:
    _plan().check_covers(Decimal("300.00"))

    with pytest.raises(PlanError, match=r"add up to 300.00, but 350.00 EUR is owed"):
        _plan().check_covers(Decimal("350.00"))


def test_payments_fill_the_instalments_in_date_order() -> None:
    standing = _plan().standing([Decimal("60"), Decimal("90")], date(2027, 4, 2))

    assert [s.paid for s in standing.instalments] == [Decimal("100"), Decimal("50"), Decimal("0")]
    assert standing.status == "running" and standing.next_due == Instalment(
        date(2027, 4, 1), Decimal("100.00")
    )


def test_an_instalment_late_within_the_grace_keeps_the_plan_and_after_it_breaks_it() -> None:
    plan = _plan()
    paid_first = [Decimal("100")]

    assert plan.standing(paid_first, date(2027, 4, 6)).status == "running", "five days of grace"
    broken = plan.standing(paid_first, date(2027, 4, 7))
    assert broken.status == "broken" and broken.broken_by == Instalment(date(2027, 4, 1), Decimal("100.00"))
    assert plan.standing([Decimal("200")], date(2027, 4, 7)).status == "running", "paid late, within grace"


def test_every_instalment_paid_completes_the_plan_even_paid_early_in_one_go() -> None:
    standing = _plan().standing([Decimal("300.00")], date(2027, 3, 1))

    assert standing.status == "completed" and standing.next_due is None
