"""Send-notice Lambda: re-check the account, render the stage's notice, send it through SES exactly once."""

from __future__ import annotations

from typing import Any

# Loaded at init rather than by the first invocation, which would pay the same: every send counts business
# days (holidays) and renders templates (Jinja), which the modules that use them import on first use.
import holidays  # noqa: F401
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

import dunning.notices.templating  # noqa: F401 - Jinja, at init (see holidays above)
from dunning.domain.clock import current_clock
from dunning.runtime.settings import SendNoticeSettings
from dunning.runtime.tracing import lambda_tracer
from dunning.runtime.wiring import runtime
from dunning.services.sending import Collaborators, SendRequest, ladder_currency, send_notice

logger = Logger()
tracer = lambda_tracer()
metrics = Metrics(namespace="Dunning")


class SendEvent(BaseModel):
    account_id: str
    episode: int
    stage: str
    execution: str
    # The ladder's currency; executions started before ladders were per currency send none.
    currency: str | None = None


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_parser(model=SendEvent)
def handler(event: SendEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(account_id=event.account_id, stage=event.stage)
    logger.set_correlation_id(event.execution)
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
    currency = ladder_currency(env.books.ladders, event.account_id, event.currency)
    request = SendRequest(event.account_id, event.episode, event.stage, event.execution, currency)
    outcome = send_notice(request, deps)
    # A refused notice is counted once, as NoticeFailed (dunning.adapters.metrics: the alarm's metric).
    if not outcome.get("failed"):
        metrics.add_metric(
            name="notices_sent" if outcome["sent"] else "notices_skipped", unit=MetricUnit.Count, value=1
        )
    return outcome
