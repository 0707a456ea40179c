"""Send-notice Lambda: a ladder's step (decide, send what is due now, decide again: services.stepping); each
notice re-checked, rendered and sent through SES exactly once."""

from __future__ import annotations

from typing import Any, Literal

# Loaded at init rather than by the first invocation, which would pay the same: every send counts business
# days (holidays) and renders templates (Jinja), which the modules that use them import on first use.
import holidays  # noqa: F401
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

import dunning.notices.templating  # noqa: F401 - Jinja, at init (see holidays above)
from dunning.domain.clock import current_clock
from dunning.runtime.settings import SendNoticeSettings
from dunning.runtime.tracing import lambda_tracer
from dunning.runtime.wiring import runtime
from dunning.services.escalation import StepRequest
from dunning.services.sending import Collaborators, SendRequest, ladder_currency, send_notice
from dunning.services.stepping import Abilities, Successors, take_step

logger = Logger()
tracer = lambda_tracer()
metrics = Metrics(namespace="Dunning")


class StepEvent(BaseModel):
    op: Literal["step"]
    account_id: str
    currency: str
    execution: str
    round: int = 0
    # The functions that take a ladder's steps (alias ARNs, from the state machine's definition).
    functions: dict[str, str]


class SendEvent(BaseModel):
    """One notice: the step of executions started before one execution took one step."""

    account_id: str
    episode: int
    stage: str
    execution: str
    # The ladder's currency; executions started before ladders were per currency send none.
    currency: str | None = None


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = runtime(SendNoticeSettings)
    deps = Collaborators(
        books=env.books,
        mailer=env.mailer,
        archive=env.archive,
        documents=env.documents,
        policy=env.policy,
        clock=current_clock(),
        template_dirs=env.template_dirs(),
        pacer=env.pacer,
    )
    if event.get("op") != "step":
        return _send(parse(event=event, model=SendEvent), deps)
    step = parse(event=event, model=StepEvent)
    logger.append_keys(account_id=step.account_id)
    logger.set_correlation_id(step.execution)
    request = StepRequest(step.account_id, step.execution, step.currency, step.round)
    successors = Successors(env.workflows, step.functions)
    abilities = Abilities(send=lambda sending: _counted(send_notice(sending, deps)))
    return take_step(env.books, deps.policy, deps.clock, request, abilities, successors)


def _send(event: SendEvent, deps: Collaborators) -> dict[str, Any]:
    logger.append_keys(account_id=event.account_id, stage=event.stage)
    logger.set_correlation_id(event.execution)
    currency = ladder_currency(deps.books.ladders, event.account_id, event.currency)
    request = SendRequest(event.account_id, event.episode, event.stage, event.execution, currency)
    return _counted(send_notice(request, deps))


def _counted(outcome: dict[str, Any]) -> dict[str, Any]:
    # A refused notice is counted once, as NoticeFailed (dunning.adapters.metrics: the alarm's metric).
    if not outcome.get("failed"):
        metrics.add_metric(
            name="notices_sent" if outcome["sent"] else "notices_skipped", unit=MetricUnit.Count, value=1
        )
    return outcome
