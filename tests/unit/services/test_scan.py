"""The daily scan (services.scan), on the fakes: one execution per ladder with something due, restarts only
for ladders whose execution ended without finishing."""

from __future__ import annotations

from datetime import date

from dunning.services.scan import run_scan
from tests.support.given import ACCOUNT, FixedClock, World, at, customer, invoice


def _scan(world: World, day: date) -> tuple[list[str], int, int]:
    summary = run_scan(world.books.ladders, world.workflows, world.policy, FixedClock(at(day, 7)))
    return summary.started, summary.already_running, summary.left_alone


def test_one_execution_per_account_and_currency_and_none_twice() -> None:
    world = World().given(
        customer(),
        invoice("A-1", "100.00", date(2027, 2, 10)),
        invoice("A-2", "50.00", date(2027, 2, 20)),
        invoice("G-1", "70.00", date(2027, 2, 12), currency="GBP"),
        customer("LATER"),
        invoice("L-1", "10.00", date(2027, 6, 1), account_id="LATER"),
    )

    started, _, _ = _scan(world, date(2027, 2, 15))
    again = _scan(world, date(2027, 2, 16))

    assert sorted(name.split("-")[1] for name in started) == ["EUR", "GBP"], "not LATER: nothing due yet"
    assert all(name.startswith("ACME-") for name in started)
    assert again == ([], 2, 0)
    assert world.workflows.started[started[0]]["account_id"] == ACCOUNT


def test_a_ladder_whose_execution_died_is_restarted_and_freed() -> None:
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)))
    [first], _, _ = _scan(world, date(2027, 2, 15))
    world.books.ladders.claim(ACCOUNT, "EUR", first, at(date(2027, 2, 15), 8))
    world.workflows.end(first)  # failed without releasing the account

    started, _, _ = _scan(world, date(2027, 2, 16))

    assert started == [f"{first[:68]}-r20270216"]
    assert world.books.ladders.load(ACCOUNT, "EUR").state.owner is None, "freed for the restart to claim"


def _handed_to_legal(*, finished: bool) -> tuple[World, str]:
    """An account whose execution marked it legal (and, `finished`, completed the hand-off), then ended."""
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)))
    [first], _, _ = _scan(world, date(2027, 2, 15))
    ladders = world.books.ladders
    ladders.claim(ACCOUNT, "EUR", first, at(date(2027, 4, 15)))
    ladders.mark_legal(ACCOUNT, "EUR", first, "CASE-1", at(date(2027, 4, 15)))
    if finished:  # the invoices left in the due index on purpose: a crash just before that
        ladders.finish_handoff(ACCOUNT, "EUR", first, "CASE-1")
    world.workflows.end(first)
    return world, first


def test_an_unfinished_hand_off_is_resumed_at_the_hand_off() -> None:
    world, _ = _handed_to_legal(finished=False)

    [restart], _, _ = _scan(world, date(2027, 4, 16))

    assert world.workflows.started[restart]["resume"] == "handoff"
    handoff = world.books.ladders.handoff(ACCOUNT, "EUR")
    assert handoff is not None and handoff.owner == restart


def test_a_finished_hand_off_is_left_alone() -> None:
    world, _ = _handed_to_legal(finished=True)

    assert _scan(world, date(2027, 4, 16)) == ([], 0, 1)
