"""Collector tasks, the model and the priority (domain.tasks, CONTRACT 9): what a collector's worklist is made
of and the order it is worked in."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dunning.domain.tasks import CALL_OUTCOMES, Standing, Task, priority, task_id_for, worklist_order

DUE = date(2027, 2, 20)


def _call(account: str = "ACME", due_on: date = DUE) -> Task:
    return Task(
        task_id_for(account, "EUR", 0, "call", "call"), "call", account, "EUR", "call", due_on, "ar@x.io"
    )


def test_a_task_has_one_id_per_ladder_episode_stage_and_kind() -> None:
    first = task_id_for("ACME", "EUR", 0, "call", "call")

    assert first == task_id_for("ACME", "EUR", 0, "call", "call"), "created again: the same task"
    others = {
        task_id_for("ACME", "GBP", 0, "call", "call"),
        task_id_for("ACME", "EUR", 1, "call", "call"),
        task_id_for("ACME", "EUR", 0, "firm_call", "call"),
        task_id_for("ACME", "EUR", 0, "call", "letter"),
        task_id_for("ACMEX", "EUR", 0, "call", "call"),
    }
    assert first not in others and len(others) == 5
    with pytest.raises(ValueError, match="unknown task kind"):
        task_id_for("ACME", "EUR", 0, "call", "visit")


def test_a_call_ends_with_one_of_the_call_outcomes() -> None:
    call = _call()

    assert call.done("reached").status == "done" and call.done("reached").outcome == "reached"
    assert set(CALL_OUTCOMES) == {"reached", "no_answer", "voicemail", "wrong_number"}
    with pytest.raises(ValueError, match="a call's outcome"):
        call.done("left a message")


def test_an_open_task_is_overdue_after_the_overdue_days_and_a_done_one_never() -> None:
    call = _call()

    assert not call.is_overdue(date(2027, 2, 22))
    assert call.is_overdue(date(2027, 2, 23)), "three days after it fell due"
    assert not call.done("no_answer").is_overdue(date(2027, 3, 30))


@pytest.mark.parametrize(
    ("amount", "points"), [("0", 0), ("100", 3), ("1000", 10), ("10000", 20), ("100000", 30), ("1e9", 40)]
)
def test_the_amount_counts_by_its_order_of_magnitude(amount: str, points: int) -> None:
    assert priority(Standing(Decimal(amount), "EUR", 0, 0)) == points


def test_age_broken_promises_and_segment_raise_the_priority_each_within_its_cap() -> None:
    base = Standing(Decimal("1000"), "EUR", days_overdue=0, broken_promises=0)

    assert priority(base) == 10
    assert priority(Standing(Decimal("1000"), "EUR", 30, 0)) == 20
    assert priority(Standing(Decimal("1000"), "EUR", 400, 0)) == 40, "age counts at most 30"
    assert priority(Standing(Decimal("1000"), "EUR", 0, 1)) == 25
    assert priority(Standing(Decimal("1000"), "EUR", 0, 5)) == 40, "broken promises count at most 30"
    assert priority(Standing(Decimal("1000"), "EUR", 0, 0, "key_account")) == 20


def test_amounts_in_other_currencies_are_ranked_on_one_scale_when_the_business_gives_rates() -> None:
    yen = Standing(Decimal("150000"), "JPY", 0, 0)

    assert priority(yen) == 32, "no rate: at face value"
    assert priority(yen, {"JPY": Decimal("0.0062")}) == 10, "about 930 in the ranking currency"


def test_the_worklist_is_open_tasks_by_priority_then_the_longest_due() -> None:
    early, late, other = _call("EARLY", date(2027, 2, 1)), _call("LATE", date(2027, 2, 10)), _call("OTHER")
    finished = _call("DONE").done("reached")

    ordered = worklist_order([(late, 20), (finished, 90), (other, 35), (early, 20)])

    assert [(task.account_id, score) for task, score in ordered] == [
        ("OTHER", 35),
        ("EARLY", 20),
        ("LATE", 20),
    ]
