"""One execution, one step (services.stepping), on the fakes: a step decides, does what is due now, decides
again, and either lets the ladder sleep, ends it, or starts the successor execution that waits for what is
due later today (on the function that can do it). The deployed state machine runs the same steps in
tests/integration (test_collections, test_legal_handoff)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from dunning.domain.notices import SENDING, SENT, NoticeId
from dunning.notices.render import shipped_template_dir
from dunning.services.escalation import StepRequest, hand_off_step
from dunning.services.sending import Collaborators, SendRequest, send_notice
from dunning.services.stepping import HANDOFF, SEND, STEPS_AT_ONCE, Abilities, Successors, take_step
from tests.support.fakes import FakeWorkflows
from tests.support.given import ACCOUNT, FixedClock, World, at, customer, invoice, payment

EXEC = "ACME-EUR-d20270211-abc"
FUNCTIONS = {SEND: "arn:send-notice:live", HANDOFF: "arn:escalate:live"}


def _step(
    world: World, when: datetime, *, can_send: bool = True, can_hand_off: bool = False, execution: str = EXEC
) -> tuple[dict[str, Any], FakeWorkflows]:
    clock = FixedClock(when)
    outside = (world.mailer, world.archive, world.documents)
    deps = Collaborators(world.books, *outside, world.policy, clock, [shipped_template_dir()])

    def send(request: SendRequest) -> dict[str, Any]:
        return send_notice(request, deps)

    def hand_off(request: StepRequest) -> dict[str, Any]:
        return hand_off_step(world.books, world.policy, clock, request)

    abilities = Abilities(send=send if can_send else None, hand_off=hand_off if can_hand_off else None)
    workflows = FakeWorkflows()
    request = StepRequest(ACCOUNT, execution, "EUR")
    result = take_step(world.books, world.policy, clock, request, abilities, Successors(workflows, FUNCTIONS))
    return result, workflows


def _overdue() -> World:
    return World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)))


def test_a_step_at_the_send_moment_sends_then_sleeps_until_the_next_notice() -> None:
    world = _overdue()

    result, workflows = _step(world, at(date(2027, 2, 11), 10))

    assert [outcome["sent"] for outcome in result["outcomes"]] == [True]
    assert [event["stage"] for event in world.events("notice_sent")] == ["reminder"]
    assert (result["decision"]["action"], result["decision"]["reason"]) == ("done", "asleep")
    assert workflows.started == {}, "nothing later today: no successor"
    state = world.books.ladders.load(ACCOUNT, "EUR").state
    assert state.owner is None, "asleep in the wake index, held by nobody"


def test_a_step_before_the_send_moment_starts_the_successor_that_waits_for_it() -> None:
    world = _overdue()

    result, workflows = _step(world, at(date(2027, 2, 11), 7))

    assert result["outcomes"] == [] and world.mailer.sent == []
    [(name, payload)] = workflows.started.items()
    assert name == f"{EXEC}-c1" and result["successor"] == name
    assert payload == {
        "account_id": ACCOUNT,
        "currency": "EUR",
        "round": 0,
        "at": result["decision"]["at"],
        "function": FUNCTIONS[SEND],
    }
    assert world.books.ladders.load(ACCOUNT, "EUR").state.owner == name, "the successor holds the ladder"


def test_the_successor_sends_at_its_moment() -> None:
    world = _overdue()
    first, workflows = _step(world, at(date(2027, 2, 11), 7))
    [successor] = workflows.started

    result, _ = _step(world, datetime.fromisoformat(first["decision"]["at"]), execution=successor)

    assert [outcome["sent"] for outcome in result["outcomes"]] == [True]
    assert len(world.mailer.sent) == 1
    assert result["decision"]["reason"] == "asleep"


def test_a_paid_account_is_released_without_a_send() -> None:
    world = _overdue().given(payment("A-1", "100.00", date(2027, 2, 11)))

    result, workflows = _step(world, at(date(2027, 2, 11), 10))

    assert result["decision"] == {"action": "done", "reason": "settled"}
    assert world.mailer.sent == [] and workflows.started == {}


def test_a_hand_off_due_on_send_notice_goes_to_a_successor_on_escalate() -> None:
    world = _overdue()
    day = date(2027, 2, 11)
    while True:  # the ladder walked day by day, each notice sent at its moment, until the hand-off is due
        result, workflows = _step(world, at(day, 16))
        if result["decision"].get("next") == HANDOFF:
            break
        assert day < date(2027, 6, 1), "the ladder reaches the hand-off"
        day += timedelta(days=1)

    assert result["decision"]["next"] == HANDOFF and result["outcomes"] == []
    [payload] = workflows.started.values()
    assert payload["function"] == FUNCTIONS[HANDOFF]

    successor = result["successor"]
    handed, _ = _step(world, at(day, 16), can_send=False, can_hand_off=True, execution=successor)
    [outcome] = handed["outcomes"]
    assert outcome["handed_off"] and world.events("case_opened")


def test_a_retried_step_settles_an_unfinished_send_before_anything_else_and_never_sends_it_twice() -> None:
    world = _overdue()
    notice = NoticeId(ACCOUNT, "EUR", 0, "reminder")
    _step(world, at(date(2027, 2, 11), 7))  # claims; the successor would send at the slot
    successor = f"{EXEC}-c1"
    # The successor's first attempt reserved the reminder and died before SES answered.
    world.books.ladders.begin_send(notice, at(date(2027, 2, 11), 9), archive_key="notices/x.eml")
    assert (world.books.ladders.notice_status(notice) or {})["status"] == SENDING

    result, _ = _step(world, at(date(2027, 2, 11), 10), execution=successor)

    assert result["outcomes"][0] == {"sent": False, "reason": "unconfirmed"}
    assert world.mailer.sent == [], "nobody knows whether SES got it: never sent again"
    assert [e["stage"] for e in world.events("notice_unconfirmed")] == ["reminder"]


def test_a_step_that_keeps_finding_work_hands_over_after_a_few() -> None:
    world = _overdue()
    # Every decision is "decide again now" (an upload changing the ladder each time, say).
    calls = []

    def never_settles(request: SendRequest) -> dict[str, Any]:
        calls.append(request.stage)
        return {"sent": False, "reason": "retry"}

    workflows = FakeWorkflows()
    clock = FixedClock(at(date(2027, 2, 11), 10))
    result = take_step(
        world.books,
        world.policy,
        clock,
        StepRequest(ACCOUNT, EXEC, "EUR"),
        Abilities(send=never_settles),
        Successors(workflows, FUNCTIONS),
    )

    assert len(calls) == STEPS_AT_ONCE
    assert result["decision"] == {"action": "continue", "reason": "steps_at_once"}
    assert list(workflows.started) == [f"{EXEC}-c1"]
    assert (world.books.ladders.notice_status(NoticeId(ACCOUNT, "EUR", 0, "reminder")) or {}).get(
        "status"
    ) != SENT


def test_a_step_retried_after_giving_the_ladder_to_a_successor_it_never_started_starts_it() -> None:
    world = _overdue()
    # The first attempt passed the ladder on; its StartExecution never reached Step Functions (each _step
    # has its own, forgotten, executions).
    _step(world, at(date(2027, 2, 11), 7))

    result, retried = _step(world, at(date(2027, 2, 11), 8))

    assert result["decision"]["reason"] == "owned_by_another_execution"
    assert list(retried.started) == [f"{EXEC}-c1"], "the retry starts the successor"
    assert retried.started[f"{EXEC}-c1"]["function"] == FUNCTIONS[SEND]


def test_a_step_of_another_execution_leaves_a_held_ladder_alone() -> None:
    world = _overdue()
    _step(world, at(date(2027, 2, 11), 7))

    result, others = _step(world, at(date(2027, 2, 11), 8), execution="ACME-EUR-d20270211-abc-c7")

    assert result["decision"]["reason"] == "owned_by_another_execution" and others.started == {}
