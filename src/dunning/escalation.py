"""What the escalate function does for the state machine: decide, hand off, continue, record a failure.

Each step takes the ledger, the policy and a clock; the Lambda handler only parses and wires.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from dunning import legal, metrics, workflow
from dunning.calendar import local_date
from dunning.clock import Clock
from dunning.events import EventType
from dunning.ladder import Decision, LogEntry, decide
from dunning.ledger import Ledger, account_pk, invoice_sk
from dunning.legal import LegalDesk
from dunning.money import format_amount
from dunning.policy import Policy
from dunning.sending import notice_charges

# An execution keeps well below Step Functions' 25,000-event history: each decide/wait/send round adds
# about a dozen events, so after this many rounds it hands over to a fresh execution.
MAX_ROUNDS = 150


class Executions(Protocol):
    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class StepRequest:
    account_id: str
    execution: str
    round: int = 0


def timestamp(at: datetime) -> str:
    """The form Step Functions' TimestampPath accepts."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decide_step(ledger: Ledger, policy: Policy, clock: Clock, request: StepRequest) -> dict[str, Any]:
    now = clock.now()
    snapshot = workflow.load(ledger, request.account_id)
    if snapshot.state.status != "legal" and not workflow.claim(
        ledger, request.account_id, request.execution, now
    ):
        return _state(request, {"action": "done", "reason": "owned_by_another_execution"})
    decision = decide(snapshot, policy, now)
    workflow.log(ledger, request.account_id, now, decision.log)
    if decision.action == "done":
        if decision.reason != "legal":
            workflow.release(
                ledger, request.account_id, request.execution, settled=decision.reason == "settled"
            )
        return _state(request, {"action": "done", "reason": decision.reason})
    if request.round >= MAX_ROUNDS:
        return _state(request, {"action": "continue", "reason": decision.reason})
    return _state(request, _decision_json(decision, snapshot.state.episode))


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
    return {"account_id": request.account_id, "round": request.round + 1, "decision": decision}


def case_id_for(account_id: str, episode: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", account_id).strip("-")[:40] or "account"
    digest = hashlib.sha256(account_id.encode()).hexdigest()[:6]
    return f"CASE-{slug}-{digest}-{episode}"


def handoff_step(
    ledger: Ledger, policy: Policy, clock: Clock, request: StepRequest, desk: LegalDesk | None = None
) -> dict[str, Any]:
    """The last rung: the account goes to the legal team and gets no more automated notices."""
    now = clock.now()
    snapshot = workflow.load(ledger, request.account_id)
    decision = decide(snapshot, policy, now)
    if decision.next != "handoff":
        return {"handed_off": False, "reason": decision.reason}  # paid, paused... since the wait began
    case_id = case_id_for(request.account_id, snapshot.state.episode)
    if workflow.mark_legal(ledger, request.account_id, request.execution, case_id, now):
        for invoice in snapshot.open_invoices():
            item = ledger.get(account_pk(request.account_id), invoice_sk(invoice.invoice_id))
            if item is not None:
                ledger.drop_from_due_index(request.account_id, invoice.invoice_id, row_hash=item["row_hash"])
    currency = decision.invoices[0].currency if decision.invoices else snapshot.open_invoices()[0].currency
    owed = sum((i.outstanding for i in snapshot.open_invoices() if i.currency == currency), Decimal(0))
    entry = LogEntry(
        EventType.CASE_OPENED,
        case_id,
        {
            "case_id": case_id,
            "packet": f"{case_id}.zip",
            "amount_due": format_amount(owed, currency),
            "currency": currency,
        },
    )
    workflow.log(ledger, request.account_id, now, [entry])
    if desk is not None:
        charges = notice_charges(
            snapshot,
            snapshot.open_invoices(),
            "legal_handoff",
            local_date(now, snapshot.timezone),
            snapshot.state.episode,
            policy,
        )
        legal.open_case(desk, snapshot, case_id, charges, now)
    return {"handed_off": True, "case_id": case_id}


def continue_step(
    ledger: Ledger, executions: Executions, clock: Clock, request: StepRequest, state_machine_arn: str
) -> dict[str, Any]:
    """Hand the account over to a fresh execution (same episode, same ladder position)."""
    match = re.fullmatch(r"(.*)-c(\d+)", request.execution)
    base, number = (match.group(1), int(match.group(2))) if match else (request.execution[:74], 0)
    successor = f"{base}-c{number + 1}"
    ledger.update(
        (account_pk(request.account_id), workflow.STATE_SK),
        condition="#owner = :me",
        UpdateExpression="SET #owner = :next",
        ExpressionAttributeNames={"#owner": "owner"},
        ExpressionAttributeValues={":me": request.execution, ":next": successor},
    )
    executions.start(state_machine_arn, successor, {"account_id": request.account_id, "round": 0})
    return {"continued_as": successor}


def fail_step(ledger: Ledger, clock: Clock, request: StepRequest, error: str, cause: str) -> dict[str, Any]:
    """Record an execution that could not go on, and free the account for tomorrow's scan."""
    now = clock.now()
    entry = LogEntry(
        "workflow_failed",
        f"{request.execution}#{timestamp(now)}",
        {"execution": request.execution, "error": error[:200], "cause": cause[:1000]},
    )
    workflow.log(ledger, request.account_id, now, [entry])
    workflow.release(ledger, request.account_id, request.execution, settled=False)
    metrics.count(metrics.WORKFLOW_FAILED)
    return {"recorded": True}
