"""Daily scan Lambda (EventBridge Scheduler): start one collections execution per account that needs one."""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from dunning.domain.clock import current_clock
from dunning.runtime.settings import ScanSettings
from dunning.runtime.wiring import runtime
from dunning.services.scan import run_scan

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Dunning")


@logger.inject_lambda_context(log_event=False, correlation_id_path="id")
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = runtime(ScanSettings)
    summary = run_scan(env.books.ladders, env.workflows, env.policy, current_clock())
    metrics.add_metric(name="scan_items_read", unit=MetricUnit.Count, value=summary.items_read)
    metrics.add_metric(name="executions_started", unit=MetricUnit.Count, value=len(summary.started))
    return dataclasses.asdict(summary)
