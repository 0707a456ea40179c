"""Escalate Lambda: the legal hand-off's step (services.stepping), and a failed execution recorded. The ops
decide, handoff, notify_legal and continue are the steps of executions started before one execution took
one step; they finish within a day of an upgrade."""

from __future__ import annotations

from typing import Any, Literal

# Loaded at init rather than by the first invocation, which would pay the same: the ladder's decisions count
# business days, and dunning.domain.calendar imports holidays on first use (for the functions that never do).
import holidays  # noqa: F401
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from dunning.domain.clock import current_clock
from dunning.runtime.settings import EscalateSettings
from dunning.runtime.tracing import lambda_tracer
from dunning.runtime.wiring import runtime
from dunning.services import escalation, stepping
from dunning.services.sending import ladder_currency

logger = Logger()
tracer = lambda_tracer()
metrics = Metrics(namespace="Dunning")


class EscalateEvent(BaseModel):
    op: Literal["step", "decide", "handoff", "notify_legal", "continue", "fail"]
    account_id: str
    execution: str
    round: int = 0
    # The ladder's currency; executions started before ladders were per currency send none.
    currency: str | None = None
    state_machine: str | None = None
    error: dict[str, Any] | None = None
    # op step: the functions that take a ladder's steps (alias ARNs, from the state machine's definition).
    functions: dict[str, str] | None = None


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_parser(model=EscalateEvent)
def handler(event: EscalateEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(account_id=event.account_id)
    logger.set_correlation_id(event.execution)
    metrics.add_metric(name=f"escalate_{event.op}", unit=MetricUnit.Count, value=1)
    env = runtime(EscalateSettings)
    currency = ladder_currency(env.books.ladders, event.account_id, event.currency)
    request = escalation.StepRequest(event.account_id, event.execution, currency, event.round)
    clock = current_clock()
    if event.op == "step":
        successors = stepping.Successors(env.workflows, event.functions or {})

        def hand_off(step: escalation.StepRequest) -> dict[str, Any]:
            return escalation.hand_off_step(env.books, env.policy, clock, step, env.legal_desk())

        abilities = stepping.Abilities(hand_off=hand_off)
        return stepping.take_step(env.books, env.policy, clock, request, abilities, successors)
    if event.op == "decide":
        return escalation.decide_step(env.books, env.policy, clock, request)
    if event.op == "handoff":
        return escalation.handoff_step(env.books, env.policy, clock, request, env.legal_desk())
    if event.op == "notify_legal":
        return escalation.notify_legal_step(env.books, clock, request, env.legal_desk())
    if event.op == "continue":
        # The successor starts on the state machine's `live` alias (STATE_MACHINE_ARN), so it runs the newest
        # version even when this execution runs an older one.
        state_machine = env.settings.state_machine_arn
        return escalation.continue_step(env.books, env.executions, clock, request, state_machine)
    error = event.error or {}
    return escalation.fail_step(
        env.books, clock, request, str(error.get("Error", "")), str(error.get("Cause", ""))
    )
