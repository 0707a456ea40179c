"""What the escalate function does for the state machine: decide, hand off, continue, record a failure.

Each step takes the books (dunning.ports), the policy and a clock; the Lambda handler only parses and wires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dunning.domain.account import AccountSnapshot
from dunning.domain.agreements import HELD_BY_AGREEMENT
from dunning.domain.calendar import local_date
from dunning.domain.clock import Clock
from dunning.domain.events import EventType
from dunning.domain.ladder import Decision, LogEntry, decide, scan_after
from dunning.domain.money import format_amount
from dunning.domain.naming import case_id_for
from dunning.domain.notices import SENDING
from dunning.domain.owed import Owed, owed
from dunning.domain.policy import Policy
from dunning.ports import WORKFLOW_FAILED, Books, Executions, Handoff
from dunning.services.executions import timestamp
from dunning.services.sending import SEND_TOLERANCE, report_missing_rates
from dunning.services.tasks import open_task, pass_over_rejected

if TYPE_CHECKING:
    from dunning.services.legal import LegalDesk

# An execution keeps well below Step Functions' 25,000-event history: each decide/wait/send round adds
# about a dozen events, so after this many rounds it hands over to a fresh execution.
MAX_ROUNDS = 150
LEASE_ENDS_BEFORE_SCAN = timedelta(minutes=1)


@dataclass(frozen=True)
class StepRequest:
    account_id: str
    execution: str
    currency: str
    round: int = 0


def decide_step(books: Books, policy: Policy, clock: Clock, request: StepRequest) -> dict[str, Any]:
    """Decide what the ladder does next. What falls before the next daily scan the execution waits for;
    anything later, the ladder sleeps in the wake index and the execution ends (executions last at most a
    day, so open executions follow the accounts acting that day, not all on the ladder)."""
    now = clock.now()
    snapshot = books.ladders.load(request.account_id, request.currency)
    state = snapshot.state
    if state.settled_by == request.execution and state.owner is None:
        # This execution already ended the episode settled; the answer was lost and Step Functions retried.
        return _state(request, {"action": "done", "reason": "settled"})
    # The lease runs out just before the next scan: an execution that dies without letting go is taken over
    # by the next day's, and one that is alive has finished the day's work by then (it waits only for what
    # falls before the next scan; past its lease it keeps the ladder until another execution claims it).
    next_scan = scan_after(policy, now)
    lease_until = next_scan - LEASE_ENDS_BEFORE_SCAN
    if state.status == "legal":
        return _legal(books, request, now, lease_until)
    if not books.ladders.claim(
        request.account_id, request.currency, request.execution, now, state.episode, lease_until
    ):
        return _state(request, {"action": "done", "reason": "owned_by_another_execution"})
    unfinished = [n.stage for n in snapshot.notices_in(state.episode) if n.status == SENDING]
    if unfinished:
        # An attempt died between reserving a notice and acknowledging it (the step is being retried, or
        # its execution died): the send step finds out what became of it, and never sends it twice.
        repair = {"action": "wait", "reason": "unfinished_send", "next": "send", "at": timestamp(now)}
        return _state(request, repair | {"stage": unfinished[0], "episode": state.episode})
    decision = decide(snapshot, policy, now)
    # A retried Decide decides again at a later instant: what the first attempt logged stays logged once.
    fresh = [entry for entry in decision.log if not snapshot.has_logged(entry.type, entry.identity)]
    books.log.log(request.account_id, now, fresh)
    due_now = decision.at is not None and decision.at <= now + SEND_TOLERANCE
    if decision.next in ("task", "approval", "skip") and due_now:
        assert decision.stage is not None
        if decision.next == "skip":
            # Its approval was rejected: the notice never goes out, the ladder goes on.
            pass_over_rejected(books, snapshot, decision.stage, now)
            return _again(request, now, "rejected")
        # A rung for a person (a call, a letter to post): its task opens now and the rung is done; the
        # ladder goes on at once (a task never stalls it). An approval task holds its notice back instead.
        open_task(
            books, policy, snapshot, decision.stage, now, "approval" if decision.next == "approval" else None
        )
        return _again(request, now, "task_opened")
    if decision.action == "done":
        settled = decision.reason == "settled"
        # A new debt that arrived with the settling payment is the next episode's: the next scan starts it.
        more = settled and bool(snapshot.open_invoices())
        if not books.ladders.release(
            request.account_id,
            request.currency,
            request.execution,
            settled=settled,
            touched=state.touched,
            look_again=more,
        ):
            return _again(request, now)
        return _state(request, {"action": "done", "reason": decision.reason})
    if request.round >= MAX_ROUNDS:
        return _state(request, {"action": "continue", "reason": decision.reason})
    assert decision.at is not None
    if decision.at >= next_scan:
        holding = decision.reason if decision.reason in HELD_BY_AGREEMENT else None
        if not books.ladders.sleep(
            request.account_id, request.currency, request.execution, decision.at, state.touched, holding
        ):
            return _again(request, now)
        return _state(request, {"action": "done", "reason": "asleep", "wake_at": timestamp(decision.at)})
    return _state(request, _decision_json(decision, state.episode))


def _legal(books: Books, request: StepRequest, now: datetime, lease_until: datetime) -> dict[str, Any]:
    """A ladder with the legal team: finish its hand-off if that is unfinished and nobody (alive) is on it;
    otherwise there is nothing to do, and nothing to wake for."""
    progress = books.ladders.handoff(request.account_id, request.currency)
    if progress is not None and progress.open:
        if books.ladders.claim_handoff(
            request.account_id, request.currency, request.execution, now, lease_until
        ):
            return _state(request, {"action": "wait", "next": "handoff", "at": timestamp(now)})
        return _state(request, {"action": "done", "reason": "owned_by_another_execution"})
    books.ladders.rest_with_legal(request.account_id, request.currency)
    return _state(request, {"action": "done", "reason": "legal"})


def _again(request: StepRequest, now: datetime, reason: str = "changed") -> dict[str, Any]:
    """Decide again, on what is stored now: an upload changed the ladder while this step decided (or another
    execution took it over), or the step did what was due (opened a task)."""
    return _state(request, {"action": "wait", "reason": reason, "next": "decide", "at": timestamp(now)})


def _decision_json(decision: Decision, episode: int) -> dict[str, Any]:
    assert decision.at is not None
    return {
        "action": decision.action,
        "reason": decision.reason,
        "next": decision.next,
        "at": timestamp(decision.at),
        "stage": decision.stage.name if decision.stage else None,
        "episode": episode,
    }


def _state(request: StepRequest, decision: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": request.account_id,
        "currency": request.currency,
        "round": request.round + 1,
        "decision": decision,
    }


def handoff_step(
    books: Books, policy: Policy, clock: Clock, request: StepRequest, desk: LegalDesk | None = None
) -> dict[str, Any]:
    """The last rung: the account goes to the legal team and gets no more automated notices.

    Resumable: the account is marked `legal` first (with the case id and the hand-off instant), then each
    part is done unless a previous attempt did it: the packet and the case record (open_case), then
    case_opened, logged only once the case is stored and dated by the hand-off instant, so that every retry
    writes the same event. A retry, or an execution the scan starts for a hand-off whose execution died,
    finishes what is missing; the legal team's email is the next state (notify_legal_step)."""
    now = clock.now()
    snapshot = books.ladders.load(request.account_id, request.currency)
    if snapshot.state.status != "legal":
        decision = decide(snapshot, policy, now)
        if decision.next != "handoff":
            return {"handed_off": False, "reason": decision.reason}  # paid, paused... since the wait began
        case_id = case_id_for(request.account_id, request.currency, snapshot.state.episode)
        books.ladders.mark_legal(request.account_id, request.currency, request.execution, case_id, now)
    progress = books.ladders.handoff(request.account_id, request.currency)
    if progress is None or (progress.open and progress.owner != request.execution):
        return {"handed_off": False, "reason": "owned_by_another_execution"}
    if progress.open:
        _open_case(books, policy, request, progress, desk)
    return {"handed_off": True, "case_id": progress.case_id}


def case_claim(snapshot: AccountSnapshot, policy: Policy, at: datetime) -> Owed:
    """What a case claims: the account's debt in the view's currency on the hand-off day, with the charges
    the final notice demanded brought forward to that day (CONTRACT 6)."""
    assert snapshot.currency is not None
    ladder = policy.ladder_for(snapshot.segment)
    on = local_date(at, snapshot.timezone)
    # Only what is due: an invoice that falls due after the hand-off is not part of the claim.
    due = [invoice.invoice_id for invoice in snapshot.open_invoices() if invoice.due_on < on]
    return owed(
        snapshot, snapshot.currency, on=on, policy=policy, stage=ladder.stages[-1].name, invoice_ids=due
    )


def _open_case(
    books: Books, policy: Policy, request: StepRequest, progress: Handoff, desk: LegalDesk | None
) -> None:
    # The legal desk (packets, PDFs) is loaded by the hand-off that needs it, not by every step that decides.
    from dunning.services import legal

    snapshot = books.ladders.load(request.account_id, request.currency)
    data: dict[str, Any] = {"case_id": progress.case_id, "packet": f"{progress.case_id}.zip"}
    case = legal.get_case(books.cases, progress.case_id) if desk is not None else None
    if case is not None:  # a retry: the case record says what was claimed
        amount_due, charges, currency = case.amount_due, case.charges, case.currency
    else:
        claim = case_claim(snapshot, policy, progress.at)
        amount_due, charges, currency = claim.amount_due, claim.charges_total, claim.currency
        report_missing_rates(books, request.account_id, progress.at, claim, "legal_handoff")
        if desk is not None:
            legal.open_case(desk, snapshot, progress.case_id, claim, progress.at)
    data |= {
        "amount_due": format_amount(amount_due, currency),
        "currency": currency,
        "charges": format_amount(charges, currency),
        "total_due": format_amount(amount_due + charges, currency),
    }
    entry = LogEntry(EventType.CASE_OPENED, progress.case_id, data)
    books.log.log(request.account_id, progress.at, [entry])


def notify_legal_step(
    books: Books, clock: Clock, request: StepRequest, desk: LegalDesk | None = None
) -> dict[str, Any]:
    """Tell the legal team about the case the hand-off opened (at most once), then close the hand-off:
    the account leaves the daily scan. SendThrottled propagates for the state machine to retry; a case
    whose email SES refused, or whose retries ran out, stays open and the next day's scan comes back."""
    progress = books.ladders.handoff(request.account_id, request.currency)
    if progress is None or not progress.open:
        return {"notified": False, "reason": "no_open_case"}
    if progress.owner != request.execution:
        return {"notified": False, "reason": "owned_by_another_execution"}
    if desk is None:
        outcome: dict[str, Any] = {"notified": False, "reason": "no_legal_desk", "settled": True}
    else:
        from dunning.services import legal

        snapshot = books.ladders.load(request.account_id, request.currency)
        outcome = legal.notify_opened(desk, snapshot, progress.case_id, clock.now())
    if outcome["settled"]:
        _finish_handoff(books, request, progress)
    return outcome


def _finish_handoff(books: Books, request: StepRequest, progress: Handoff) -> None:
    # `done` last, once the account is out of the due index: until then the hand-off reads as unfinished
    # and this step's retry comes back to it (the scan no longer sees the account once the index is empty).
    books.ladders.leave_due_index(request.account_id, request.currency)
    books.ladders.finish_handoff(request.account_id, request.currency, request.execution, progress.case_id)


def hand_off_step(
    books: Books, policy: Policy, clock: Clock, request: StepRequest, desk: LegalDesk | None = None
) -> dict[str, Any]:
    """The hand-off and the legal team's email, as one step (services.stepping): a retry finds what the
    first attempt did (both parts are resumable) and finishes the rest."""
    outcome = handoff_step(books, policy, clock, request, desk)
    if outcome["handed_off"]:
        outcome["notified"] = notify_legal_step(books, clock, request, desk)
    return outcome


def successor_name(execution: str) -> str:
    """The execution that carries on after `execution`: its name, numbered, within Step Functions' 80
    characters (a retried step that starts it again is refused the second time)."""
    match = re.fullmatch(r"(.*)-c(\d+)", execution)
    base, number = (match.group(1), int(match.group(2))) if match else (execution[:74], 0)
    return f"{base}-c{number + 1}"


def continue_step(
    books: Books, executions: Executions, clock: Clock, request: StepRequest, state_machine_arn: str
) -> dict[str, Any]:
    """Hand the account over to a fresh execution (same episode, same ladder position): the step of
    executions started before one execution took one step (services.stepping)."""
    successor = successor_name(request.execution)
    books.ladders.pass_on(request.account_id, request.currency, request.execution, successor)
    payload = {"account_id": request.account_id, "currency": request.currency, "round": 0}
    executions.start(state_machine_arn, successor, payload)
    return {"continued_as": successor}


def fail_step(books: Books, clock: Clock, request: StepRequest, error: str, cause: str) -> dict[str, Any]:
    """Record an execution that could not go on, and free the ladder for the next scan to try again."""
    now = clock.now()
    entry = LogEntry(
        EventType.WORKFLOW_FAILED,
        f"{request.execution}#{timestamp(now)}",
        {"execution": request.execution, "error": error[:200], "cause": cause[:1000]},
    )
    books.log.log(request.account_id, now, [entry])
    books.ladders.release(
        request.account_id, request.currency, request.execution, settled=False, touched=None, look_again=True
    )
    books.counter.count(WORKFLOW_FAILED)
    return {"recorded": True}
