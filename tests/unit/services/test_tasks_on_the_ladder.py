"""Collector tasks on the ladder (CONTRACT 9), on the fakes: a policy that names a collector gets a call at
+10 on the shipped ladders; the step that reaches it opens the task once (`task_created`), the rung counts
as done, and the ladder goes on as if the call had been made: the firm notice at +14, not held back by the
call. The deployed state machine runs the same in tests/integration/test_collector_tasks.py."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from dunning.domain.account import TASK
from dunning.domain.notices import NoticeId
from dunning.domain.policy import DEFAULT_POLICY, Ladder, Stage
from dunning.notices.render import shipped_template_dir
from dunning.services.escalation import StepRequest
from dunning.services.sending import Collaborators, SendRequest, send_notice
from dunning.services.stepping import HANDOFF, SEND, Abilities, Successors, take_step
from tests.support.fakes import FakeWorkflows
from tests.support.given import ACCOUNT, FixedClock, World, action, at, customer, invoice
from tests.support.notices import pdf_text

COLLECTOR = "collections@example.com"
DUE = date(2027, 2, 10)  # a Wednesday: +10 is Saturday 20 February, so the call falls on Monday the 22nd


def _walk(world: World, through: date) -> list[dict[str, Any]]:
    """A step a day at 10:00 UTC (13:00 in Moscow, after every send slot), as the daily executions run."""
    results = []
    day = DUE - timedelta(days=5)
    while day <= through:
        clock = FixedClock(at(day, 10))
        outside = (world.mailer, world.archive, world.documents)
        deps = Collaborators(world.books, *outside, world.policy, clock, [shipped_template_dir()])

        def send(request: SendRequest, deps: Collaborators = deps) -> dict[str, Any]:
            return send_notice(request, deps)

        request = StepRequest(ACCOUNT, f"ACME-EUR-d{day:%Y%m%d}-x", "EUR")
        successors = Successors(FakeWorkflows(), {SEND: "arn:send", HANDOFF: "arn:escalate"})
        results.append(take_step(world.books, world.policy, clock, request, Abilities(send=send), successors))
        day += timedelta(days=1)
    return results


def _overdue(policy_changes: dict[str, Any]) -> World:
    world = World(policy=DEFAULT_POLICY.model_copy(update=policy_changes))
    return world.given(customer(locale="ru", timezone="Europe/Moscow"), invoice("A-1", "100.00", DUE))


def test_a_collector_gets_a_call_task_at_plus_ten_and_the_ladder_goes_on() -> None:
    world = _overdue({"collector": COLLECTOR})

    _walk(world, date(2027, 2, 26))

    [created] = world.events("task_created")
    assert created["kind"] == "call" and created["stage"] == "call" and created["owner"] == COLLECTOR
    assert created["due_on"] == "2027-02-22", "+10 is a Saturday: the next business day"
    assert created["currency"] == "EUR" and created["task_id"].startswith("T-call-")
    stages = [event["stage"] for event in world.events("notice_sent")]
    assert stages == ["pre_due", "reminder", "second_reminder", "firm_notice"], "the call sends no email"
    [firm] = [event for event in world.events("notice_sent") if event["stage"] == "firm_notice"]
    assert firm["at"][:10] == "2027-02-24", "+14, not held back three days by the call"
    rung = world.books.ladders.notice_status(NoticeId(ACCOUNT, "EUR", 0, "call")) or {}
    assert (rung["status"], rung["task_id"]) == (TASK, created["task_id"])


def test_a_step_run_again_opens_the_task_once() -> None:
    world = _overdue({"collector": COLLECTOR})
    _walk(world, date(2027, 2, 22))

    _walk(world, date(2027, 2, 22))  # every step again: retried, or the executions started twice

    assert len(world.events("task_created")) == 1


def test_without_a_collector_the_shipped_ladder_stays_email_only() -> None:
    world = _overdue({})

    _walk(world, date(2027, 2, 26))

    assert world.events("task_created") == []
    assert [event["stage"] for event in world.events("notice_sent")][-1] == "firm_notice"


LETTER_LADDER = (
    Stage(name="reminder", day=1),
    Stage(name="posted_demand", day=5, channel="letter", template="demand_letter"),
    Stage(name="firm_notice", day=14),
)
ADDRESS = {"line1": "12 Harbour Road", "city": "Bristol", "postal_code": "BS1 5TT"}


def test_a_letter_to_post_is_printed_with_the_address_and_opens_a_letter_task() -> None:
    world = World(policy=DEFAULT_POLICY.model_copy(update={"ladder": Ladder(stages=LETTER_LADDER)}))
    world.given(customer(address=ADDRESS), invoice("A-1", "100.00", DUE))

    _walk(world, date(2027, 2, 16))

    [created] = world.events("task_created")
    assert (created["kind"], created["stage"], created["owner"]) == ("letter", "posted_demand", None)
    assert created["due_on"] == "2027-02-15"
    assert created["letter"] == f"notices/letters/{created['task_id']}.pdf"
    assert (created["amount_due"], created["total_due"], created["invoice_ids"]) == (
        "100.00",
        "100.00",
        ["A-1"],
    )
    text = pdf_text(world.archive.objects[created["letter"]])
    for printed in ("Acme Ltd", "12 Harbour Road", "Bristol", "BS1 5TT", "A-1", "100.00"):
        assert printed in text
    assert [event["stage"] for event in world.events("notice_sent")] == ["reminder"], (
        "a letter is not emailed"
    )
    rung = world.books.ladders.notice_status(NoticeId(ACCOUNT, "EUR", 0, "posted_demand")) or {}
    assert (rung["status"], rung["task_id"]) == (TASK, created["task_id"])


def test_an_email_opt_out_does_not_stop_a_letter_to_post() -> None:
    world = World(policy=DEFAULT_POLICY.model_copy(update={"ladder": Ladder(stages=LETTER_LADDER)}))
    world.given(customer(), invoice("A-1", "100.00", DUE), action("opt_out", date(2027, 2, 1)))

    _walk(world, date(2027, 2, 16))

    assert [event["kind"] for event in world.events("task_created")] == ["letter"]
    assert world.events("notice_sent") == []


def test_a_stage_for_a_person_cannot_be_the_legal_hand_off() -> None:
    with pytest.raises(ValidationError, match="legal_handoff goes to the legal team"):
        Stage(name="legal_handoff", day=60, channel="call")
