"""Daily digest Lambda. Invoked every hour by EventBridge Scheduler (in the business time zone); the run
that is the day's first in the policy's sending window emails each task owner their day (services.digest):
tasks due and overdue, promises due and broken, replies, failures. Idempotent per owner per day."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from dunning.domain.clock import current_clock
from dunning.notices.render import shipped_template_dir
from dunning.runtime.settings import DigestSettings
from dunning.runtime.tracing import lambda_tracer
from dunning.runtime.wiring import runtime
from dunning.services.digest import daily_digest

logger = Logger()
tracer = lambda_tracer()
metrics = Metrics(namespace="Dunning")


def _scheduled(event: dict[str, Any], now: datetime) -> datetime:
    """The instant the schedule meant (a late or retried delivery is still that hour's run), else now."""
    try:
        return datetime.fromisoformat(str(event["scheduled_time"]))
    except (KeyError, ValueError):
        return now


@logger.inject_lambda_context(log_event=False, correlation_id_path="id")
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = runtime(DigestSettings)
    now = current_clock().now()
    reads = env.digest_reads()
    result = daily_digest(
        reads.events,
        reads.snapshot,
        policy=env.policy,
        scheduled=_scheduled(event, now),
        now=now,
        mailer=env.mailer,
        archive=env.archive,
        log=env.books.log,
        template_dirs=[shipped_template_dir()],
        force=bool(event.get("force")),
    )
    metrics.add_metric(name="digests_sent", unit=MetricUnit.Count, value=result["sent"] or 0)
    return result
