"""The collector's worklist (services.worklist), on the fakes: the open tasks by priority with what a person
needs for the call, nobody listed who has paid, and every cell safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal

from dunning.domain.account import AccountSnapshot
from dunning.domain.events import EventType
from dunning.domain.ladder import LogEntry
from dunning.domain.policy import COLLECTOR_CALL, DEFAULT_POLICY, Policy
from dunning.services import worklist
from dunning.services.tasks import open_task
from tests.support.given import World, at, customer, invoice, payment

POLICY = DEFAULT_POLICY.model_copy(update={"collector": "collections@example.com"})
DAY = date(2027, 2, 22)


def _world() -> World:
    world = World(policy=POLICY).given(
        customer("ACME", phone="+44 20 7946 0958"),
        invoice("A-1", "1000.00", date(2027, 2, 10), account_id="ACME"),
        customer("BETA", customer_name='=HYPERLINK("http://x")'),
        invoice("B-1", "100.00", date(2027, 2, 10), account_id="BETA"),
        customer("PAID"),
        invoice("P-1", "500.00", date(2027, 2, 10), account_id="PAID"),
        payment("P-1", "500.00", date(2027, 2, 21), account_id="PAID"),
    )
    for account in ("BETA", "ACME", "PAID"):
        open_task(world.books, POLICY, world.books.ladders.load(account, "EUR"), COLLECTOR_CALL, at(DAY, 9))
    return world


def _items(world: World, on: date = DAY) -> list[worklist.WorkItem]:
    events = [event for account in ("ACME", "BETA", "PAID") for event in world.events(account_id=account)]
    end = worklist.local_day_end(on, POLICY)

    def snapshot_of(account_id: str, currency: str) -> AccountSnapshot:
        return world.books.ladders.load(account_id, currency)

    tasks = worklist.open_tasks(events, end)
    return worklist.worklist(tasks, snapshot_of, lambda account: 0, POLICY, on)


def test_open_tasks_by_priority_without_those_who_paid() -> None:
    items = _items(_world())

    assert [(item.task.account_id, item.priority) for item in items] == [("ACME", 14), ("BETA", 7)]
    acme = items[0].row("scripts/x.txt")
    assert (acme["amount_due"], acme["days_overdue"], acme["phone"]) == ("1000.00", "12", "+44 20 7946 0958")
    assert (acme["owner"], acme["kind"], acme["overdue"]) == ("collections@example.com", "call", "")


def test_a_task_done_leaves_the_list_and_one_left_undone_is_flagged_overdue() -> None:
    world = _world()
    [acme] = [item.task for item in _items(world) if item.task.account_id == "ACME"]
    done = LogEntry(EventType.TASK_DONE, acme.task_id, {"task_id": acme.task_id, "outcome": "reached"})
    world.books.log.log("ACME", at(DAY, 15), [done])

    later = _items(world, DAY + timedelta(days=3))

    assert [(item.task.account_id, item.overdue) for item in later] == [("BETA", True)]


def test_the_csv_has_the_contract_columns_and_no_cell_runs_as_a_formula() -> None:
    text = worklist.csv_text(_items(_world()), lambda item: f"scripts/{item.task.task_id}.txt")

    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[:12] == [
        "due_on", "priority", "account_id", "customer_name", "kind", "stage",
        "amount_due", "currency", "days_overdue", "phone", "owner", "task_id",
    ]  # fmt: skip
    assert rows[1]["customer_name"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["phone"] == "'+44 20 7946 0958", "a leading + is shown as text"
    assert worklist.open_tasks([], datetime(2027, 1, 1).astimezone()) == []


def test_debts_in_other_currencies_are_ranked_by_the_business_ranking_rates() -> None:
    policy = POLICY.model_copy(update={"ranking_rates": {"EUR": Decimal("1"), "JPY": Decimal("0.0062")}})
    world = World(policy=policy).given(
        customer("YEN"),
        invoice("Y-1", "150000", date(2027, 2, 10), account_id="YEN", currency="JPY"),
        customer("EURO"),
        invoice("E-1", "2300.00", date(2027, 2, 10), account_id="EURO"),
    )
    for account, currency in (("YEN", "JPY"), ("EURO", "EUR")):
        open_task(
            world.books, policy, world.books.ladders.load(account, currency), COLLECTOR_CALL, at(DAY, 9)
        )
    events = [event for account in ("YEN", "EURO") for event in world.events(account_id=account)]
    tasks = worklist.open_tasks(events, worklist.local_day_end(DAY, policy))

    def ranked(rules: Policy) -> list[str]:
        items = worklist.worklist(tasks, world.books.ladders.load, lambda account: 0, rules, DAY)
        return [item.task.account_id for item in items]

    assert ranked(policy) == ["EURO", "YEN"], "2,300 EUR before about 930 EUR's worth of yen"
    assert ranked(POLICY) == ["YEN", "EURO"], "without rates, 150,000 at face value"
