"""The escalate function's steps (decide, hand off, notify the legal team, continue, fail), on the fakes.

Given an account in the books, when a step runs, then the books, the mail and the executions say what a
person would see. The same steps run on moto under the real state machine in tests/integration.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from dunning.domain.notices import SENT, NoticeId
from dunning.ports import NOTICE_FAILED, WORKFLOW_FAILED
from dunning.services import escalation
from dunning.services.escalation import StepRequest
from dunning.services.legal import get_case
from tests.support.fakes import FakeExecutions
from tests.support.given import ACCOUNT, FixedClock, World, at, customer, invoice, payment

EXEC = "acme-exec-1"


def _decide(world: World, day: date, execution: str = EXEC, round: int = 0) -> dict[str, Any]:
    request = StepRequest(ACCOUNT, execution, "EUR", round)
    decision: dict[str, Any] = escalation.decide_step(
        world.books, world.policy, FixedClock(at(day)), request
    )["decision"]
    return decision


def test_an_overdue_account_is_claimed_and_waits_for_its_next_notice() -> None:
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)))

    decision = _decide(world, date(2027, 2, 11))

    assert (decision["action"], decision["next"], decision["stage"]) == ("wait", "send", "reminder")
    assert world.books.ladders.load(ACCOUNT, "EUR").state.owner == EXEC


def test_a_second_execution_leaves_a_claimed_account_alone() -> None:
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)))
    _decide(world, date(2027, 2, 11))

    decision = _decide(world, date(2027, 2, 11), execution="acme-exec-2")

    assert decision == {"action": "done", "reason": "owned_by_another_execution"}


def test_a_paid_account_ends_its_episode_once_even_when_the_answer_is_lost() -> None:
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)))
    _decide(world, date(2027, 2, 11))
    world.given(payment("A-1", "100.00", date(2027, 2, 12)))

    first = _decide(world, date(2027, 2, 13))
    retried = _decide(world, date(2027, 2, 13))

    assert first == retried == {"action": "done", "reason": "settled"}
    state = world.books.ladders.load(ACCOUNT, "EUR").state
    assert (state.episode, state.owner, state.status) == (1, None, "idle"), "the next episode starts once"


def test_a_long_walk_hands_over_to_a_fresh_execution() -> None:
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)))
    decision = _decide(world, date(2027, 2, 11), round=escalation.MAX_ROUNDS)
    assert decision["action"] == "continue"

    executions = FakeExecutions()
    request = StepRequest(ACCOUNT, EXEC, "EUR", escalation.MAX_ROUNDS)
    result = escalation.continue_step(
        world.books, executions, FixedClock(at(date(2027, 2, 11))), request, "arn:sm"
    )

    assert result == {"continued_as": f"{EXEC}-c1"}
    assert executions.started == [
        ("arn:sm", f"{EXEC}-c1", {"account_id": ACCOUNT, "currency": "EUR", "round": 0})
    ]
    assert world.books.ladders.load(ACCOUNT, "EUR").state.owner == f"{EXEC}-c1"


def test_a_failed_execution_is_logged_counted_and_frees_the_account() -> None:
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)))
    _decide(world, date(2027, 2, 11))

    request = StepRequest(ACCOUNT, EXEC, "EUR")
    escalation.fail_step(
        world.books, FixedClock(at(date(2027, 2, 11))), request, "States.Timeout", "took too long"
    )

    [failed] = world.events("workflow_failed")
    assert (failed["execution"], failed["error"]) == (EXEC, "States.Timeout")
    assert world.counted(WORKFLOW_FAILED) == 1
    assert world.books.ladders.load(ACCOUNT, "EUR").state.owner is None


def _handed_off(world: World) -> str:
    """Walk the account to the hand-off day with its final notice sent, then run the hand-off step."""
    for stage in ("demand_letter", "final_notice"):
        started = at(date(2027, 3, 27) if stage == "demand_letter" else date(2027, 4, 11))
        notice = NoticeId(ACCOUNT, "EUR", 0, stage)
        world.books.ladders.begin_send(notice, started, f"notices/{stage}.eml", {"to": ["x"]})
        world.books.ladders.finish_send(notice, SENT, message_id=f"m-{stage}")
    _decide(world, date(2027, 5, 12))
    request = StepRequest(ACCOUNT, EXEC, "EUR")
    result = escalation.handoff_step(
        world.books, world.policy, FixedClock(at(date(2027, 5, 12))), request, world.legal_desk()
    )
    assert result["handed_off"], result
    return str(result["case_id"])


def test_the_hand_off_stores_the_packet_records_the_case_and_logs_it_once() -> None:
    world = World().given(customer(), invoice("A-1", "1000.00", date(2027, 2, 25)))

    case_id = _handed_off(world)
    request = StepRequest(ACCOUNT, EXEC, "EUR")
    again = escalation.handoff_step(
        world.books, world.policy, FixedClock(at(date(2027, 5, 12))), request, world.legal_desk()
    )

    assert again == {"handed_off": True, "case_id": case_id}
    case = get_case(world.books.cases, case_id)
    assert case is not None and case.amount_due == 1000 and case.currency == "EUR"
    assert ("legal", f"cases/{case_id}.zip") in world.objects.objects
    assert [event["case_id"] for event in world.events("case_opened")] == [case_id]
    assert world.books.ladders.load(ACCOUNT, "EUR").state.status == "legal"


def test_the_legal_team_is_emailed_once_and_the_account_leaves_the_scan() -> None:
    world = World().given(customer(), invoice("A-1", "1000.00", date(2027, 2, 25)))
    _handed_off(world)
    request = StepRequest(ACCOUNT, EXEC, "EUR")
    clock = FixedClock(at(date(2027, 5, 12), 11))

    first = escalation.notify_legal_step(world.books, clock, request, world.legal_desk())
    again = escalation.notify_legal_step(world.books, clock, request, world.legal_desk())

    assert first["notified"] and again == {"notified": False, "reason": "no_open_case"}
    assert [to for _, to, _ in world.mailer.sent] == [("legal@example.com",)]
    assert len(world.events("legal_notified")) == 1
    assert list(world.books.ladders.due_through(date(2027, 12, 31))) == [], "out of the due index"


def test_a_refused_legal_email_keeps_the_hand_off_open_for_the_next_scan() -> None:
    world = World().given(customer(), invoice("A-1", "1000.00", date(2027, 2, 25)))
    _handed_off(world)
    world.mailer.refuse("Email address is not verified")

    request = StepRequest(ACCOUNT, EXEC, "EUR")
    outcome = escalation.notify_legal_step(
        world.books, FixedClock(at(date(2027, 5, 12))), request, world.legal_desk()
    )

    assert outcome["failed"] and not outcome["settled"]
    assert world.counted(NOTICE_FAILED) == 1
    handoff = world.books.ladders.handoff(ACCOUNT, "EUR")
    assert handoff is not None and handoff.open, "the next day's scan comes back to it"


def test_a_next_rung_after_the_next_scan_puts_the_ladder_to_sleep_and_ends_the_execution() -> None:
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 6, 1)))

    decision = _decide(world, date(2027, 2, 12))  # its first rung, the courtesy reminder, is months away

    assert (decision["action"], decision["reason"]) == ("done", "asleep")
    state = world.books.ladders.load(ACCOUNT, "EUR").state
    assert (state.owner, state.status) == (None, "active"), "let go of, still on the ladder"


def test_an_upload_while_deciding_makes_the_step_decide_again_on_what_it_brought() -> None:
    world = World().given(customer(), invoice("A-1", "100.00", date(2027, 6, 1)))
    ladders = world.books.ladders
    load = ladders.load

    def load_then_upload(*args: Any, **kwargs: Any) -> Any:
        snapshot = load(*args, **kwargs)
        ladders.wake_soon(ACCOUNT, "EUR")  # an invoice uploaded right after this step read the ladder
        return snapshot

    ladders.load = load_then_upload  # type: ignore[method-assign]
    decision = _decide(world, date(2027, 2, 12))

    assert (decision["action"], decision["next"], decision["reason"]) == ("wait", "decide", "changed")
    assert ladders.load is not load and load(ACCOUNT, "EUR").state.owner == EXEC, "still its to decide"
