"""Daily scan Lambda. Invoked by EventBridge Scheduler, it plans the day's scan: one page per shard of the
wake index onto the scan queue (in batches of ten messages). Invoked by that queue with up to ten pages, it
scans each: one collections execution per ladder that needs a look before the next scan, and the shard's
next page queued if it has more; a page that fails is reported back alone (ReportBatchItemFailures)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from dunning.domain.clock import current_clock
from dunning.runtime.settings import ScanSettings
from dunning.runtime.tracing import lambda_tracer
from dunning.runtime.wiring import runtime
from dunning.services.scan import ShardPage, plan_scan, scan_page

logger = Logger()
tracer = lambda_tracer()
metrics = Metrics(namespace="Dunning")


@logger.inject_lambda_context(log_event=False, correlation_id_path="id")
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = runtime(ScanSettings)
    if "Records" not in event:
        plan = plan_scan(env.books.ladders, env.scan_pages, env.policy, current_clock())
        metrics.add_metric(name="scan_pages_planned", unit=MetricUnit.Count, value=plan.pages)
        return dataclasses.asdict(plan)
    # Up to ten pages a batch, one after the other; a page that fails is reported on its own (the queue
    # gives it again, then dead-letters it, where the ScanFailed alarm sees it), the others are done.
    clock = current_clock()
    step_function = env.settings.step_function_arn
    pages, failures = [], []
    for record in event["Records"]:
        try:
            page = ShardPage.parse(json.loads(record["body"]))
            pages.append(
                scan_page(env.books.ladders, env.workflows, env.scan_pages, page, clock, step_function)
            )
        except Exception:
            logger.exception("Scan page failed", extra={"message_id": record["messageId"]})
            failures.append({"itemIdentifier": record["messageId"]})
    metrics.add_metric(name="scan_items_read", unit=MetricUnit.Count, value=sum(p.items_read for p in pages))
    metrics.add_metric(
        name="executions_started", unit=MetricUnit.Count, value=sum(len(p.started) for p in pages)
    )
    return {"pages": [dataclasses.asdict(page) for page in pages], "batchItemFailures": failures}
