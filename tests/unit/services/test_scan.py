"""The daily scan (services.scan), on the fakes: one execution per ladder that wakes before the next scan,
none twice in a day, and a ladder whose execution died taken over the next day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from dunning.services import escalation
from dunning.services.escalation import StepRequest
from dunning.services.scan import PAGE_SIZE, PageSummary, ScanPlan, ShardPage, plan_scan, scan_page
from tests.support.fakes import FakeScanPages
from tests.support.given import ACCOUNT, FixedClock, World, at, customer, invoice

SCAN_HOUR = 7  # after the default policy's scan time (06:00 UTC): a scan that ran
STEP = "arn:aws:lambda:eu-west-1:123456789012:function:send-notice:live"


@dataclass
class Scanned:
    plan: ScanPlan
    pages: list[PageSummary]

    @property
    def started(self) -> list[str]:
        return [name for page in self.pages for name in page.started]

    @property
    def already_started(self) -> int:
        return sum(page.already_started for page in self.pages)


def _scan(world: World, day: date, page_size: int = PAGE_SIZE) -> Scanned:
    """The schedule's invocation, then every page it (and each page) queued, as the queue delivers them."""
    queue = FakeScanPages()
    clock = FixedClock(at(day, SCAN_HOUR))
    plan = plan_scan(world.books.ladders, queue, world.policy, clock)
    pages = []
    while queue.sent:
        page = ShardPage.parse(queue.sent.pop(0))
        pages.append(scan_page(world.books.ladders, world.workflows, queue, page, clock, STEP, page_size))
    return Scanned(plan, pages)


def _run(world: World, execution: str, day: date, hour: int = SCAN_HOUR) -> dict[str, Any]:
    """The decision the execution's step starts with (services.stepping), at `hour`."""
    payload = world.workflows.started[execution]
    request = StepRequest(payload["account_id"], execution, payload["currency"])
    decision: dict[str, Any] = escalation.decide_step(
        world.books, world.policy, FixedClock(at(day, hour)), request
    )["decision"]
    return decision


def test_each_ladder_an_upload_woke_is_started_once_that_day() -> None:
    world = World().given(
        customer(),
        invoice("A-1", "100.00", date(2027, 2, 10)),
        invoice("A-2", "50.00", date(2027, 2, 20)),
        invoice("G-1", "70.00", date(2027, 2, 12), currency="GBP"),
        customer("LATER"),
        invoice("L-1", "10.00", date(2027, 6, 1), account_id="LATER"),
    )

    first = _scan(world, date(2027, 2, 15))
    again = _scan(world, date(2027, 2, 15))

    assert sorted(name.split("-")[:2] for name in first.started) == [
        ["ACME", "EUR"],
        ["ACME", "GBP"],
        ["LATER", "EUR"],
    ]
    assert all("-d20270215-" in name for name in first.started)
    assert (again.started, again.already_started) == ([], 3)


def test_a_ladder_asleep_until_a_later_day_is_left_alone_until_the_scan_before_it() -> None:
    world = World().given(customer("LATER"), invoice("L-1", "10.00", date(2027, 6, 1), account_id="LATER"))
    [execution] = _scan(world, date(2027, 2, 15)).started

    decision = _run(world, execution, date(2027, 2, 15))

    assert decision["reason"] == "asleep", "its first notice is months away: the execution ends"
    wake_at = decision["wake_at"]
    days = [date(2027, 2, 16) + timedelta(days=n) for n in range(150)]
    first_started = next(day for day in days if _scan(world, day).started)
    assert first_started.isoformat() < wake_at[:10] or first_started.isoformat() == wake_at[:10]
    assert (date.fromisoformat(wake_at[:10]) - first_started).days <= 1, "the scan before its instant"


def test_each_execution_waits_until_its_ladders_wake_instant_then_send_notice_takes_the_step() -> None:
    world = World().given(customer("LATER"), invoice("L-1", "10.00", date(2027, 6, 1), account_id="LATER"))
    [woken] = _scan(world, date(2027, 2, 15)).started
    wake_at = _run(world, woken, date(2027, 2, 15))["wake_at"]
    day = date.fromisoformat(wake_at[:10])

    [execution] = _scan(world, day).started

    assert world.workflows.started[woken] | {"at": "", "function": ""} == {
        "account_id": "LATER",
        "currency": "EUR",
        "round": 0,
        "at": "",
        "function": "",
    }
    assert world.workflows.started[woken]["at"] == "2027-02-15T07:00:00Z", "an upload woke it: at once"
    assert world.workflows.started[execution]["at"] == wake_at, "the instant it went to sleep for"
    assert world.workflows.started[execution]["function"] == STEP


def test_a_ladder_whose_execution_died_is_taken_over_by_the_next_days() -> None:
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)))
    [first] = _scan(world, date(2027, 2, 15)).started
    assert _run(world, first, date(2027, 2, 15))["action"] == "wait"  # then it died, holding the ladder

    [second] = _scan(world, date(2027, 2, 16)).started
    decision = _run(world, second, date(2027, 2, 16))

    assert decision["action"] == "wait" and decision["next"] == "send"
    assert world.books.ladders.load(ACCOUNT, "EUR").state.owner == second


def test_an_execution_still_within_its_lease_keeps_the_ladder() -> None:
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)))
    [first] = _scan(world, date(2027, 2, 15)).started
    _run(world, first, date(2027, 2, 15))
    world.workflows.started["intruder"] = world.workflows.started[first]

    assert _run(world, "intruder", date(2027, 2, 15), hour=12) == {
        "action": "done",
        "reason": "owned_by_another_execution",
    }


def _handed_to_legal(*, finished: bool) -> tuple[World, str]:
    """A ladder whose execution marked it legal (and, `finished`, completed the hand-off), then died."""
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)))
    [first] = _scan(world, date(2027, 4, 15)).started
    ladders = world.books.ladders
    ladders.claim(ACCOUNT, "EUR", first, at(date(2027, 4, 15)), 0, at(date(2027, 4, 16), 6))
    ladders.mark_legal(ACCOUNT, "EUR", first, "CASE-1", at(date(2027, 4, 15)))
    if finished:  # the invoices left in the due index on purpose: a crash just before that
        ladders.finish_handoff(ACCOUNT, "EUR", first, "CASE-1")
    return world, first


def test_an_unfinished_hand_off_is_finished_by_the_next_days_execution() -> None:
    world, _ = _handed_to_legal(finished=False)

    [restart] = _scan(world, date(2027, 4, 16)).started
    decision = _run(world, restart, date(2027, 4, 16))

    assert (decision["action"], decision["next"]) == ("wait", "handoff")
    handoff = world.books.ladders.handoff(ACCOUNT, "EUR")
    assert handoff is not None and handoff.owner == restart


def test_a_finished_hand_off_is_not_woken() -> None:
    world, _ = _handed_to_legal(finished=True)

    assert _scan(world, date(2027, 4, 16)).started == []


def test_a_stack_from_before_the_wake_index_builds_it_once_from_the_due_index() -> None:
    world = World()
    records = world.books.ladders.records  # type: ignore[attr-defined]
    records.items.clear()  # no marker: deployed before the wake index
    for item in (
        customer(),
        invoice("A-1", "100.00", date(2027, 2, 10)),
        invoice("F-1", "9.00", date(2027, 9, 1)),
    ):
        records.put(item)

    first = _scan(world, date(2027, 2, 15))
    second = _scan(world, date(2027, 2, 16))

    assert first.plan.indexed == 1 and len(first.started) == 1, "what is due (not F-1, months away)"
    assert second.plan.indexed == 0 and world.books.ladders.wake_index_built()


def test_a_shard_with_more_ladders_than_a_page_is_scanned_page_by_page() -> None:
    world = World()
    for n in range(7):
        world.given(customer(f"C{n}"), invoice(f"I-{n}", "10.00", date(2027, 2, 10), account_id=f"C{n}"))

    scanned = _scan(world, date(2027, 2, 15), page_size=2)

    assert len(scanned.started) == 7 and len(set(scanned.started)) == 7
    assert scanned.plan.pages == 16 and any(page.more for page in scanned.pages)
    assert max(page.items_read for page in scanned.pages) <= 2, "no page holds more than its size"
