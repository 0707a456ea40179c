"""SES events Lambda: bounces, complaints and delivery delays of the notices (through EventBridge) ->
the suppression list and the account's contact log; SES's Send events confirm notices whose API answer was
lost (`notice_unconfirmed` -> `notice_sent`, `notice_confirmed`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from dunning.runtime.settings import SesEventsSettings
from dunning.runtime.tracing import lambda_tracer
from dunning.runtime.wiring import runtime
from dunning.services.suppression import SesNotification, record_ses_event

logger = Logger()
tracer = lambda_tracer()
metrics = Metrics(namespace="Dunning")


@logger.inject_lambda_context(log_event=False)  # the event names the recipients: kept out of the logs
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_parser(model=SesNotification)
def handler(event: SesNotification, context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(event.id)
    record = event.detail
    logger.append_keys(ses_event_type=record.event_type, message_id=record.mail.message_id)
    outcome = record_ses_event(runtime(SesEventsSettings).books, record)
    if outcome.confirmed:
        logger.info("A notice whose SES answer was lost is confirmed sent", extra=outcome.as_dict())
        metrics.add_metric(name="notices_confirmed", unit=MetricUnit.Count, value=1)
        return outcome.as_dict()
    if not outcome.reports:
        logger.info("Not a delivery problem; ignored", extra={"detail_type": event.detail_type})
        metrics.add_metric(name="ses_events_ignored", unit=MetricUnit.Count, value=1)
        return outcome.as_dict()
    if outcome.account_id is None:
        # Sent without our account tag (by hand, or before tagging): suppressed all the same, but there is
        # no account to log the failure on.
        logger.warning("SES event without an account_id tag; nothing logged for an account")
    metrics.add_metric(name="delivery_problems", unit=MetricUnit.Count, value=outcome.new_reports)
    metrics.add_metric(name="addresses_suppressed", unit=MetricUnit.Count, value=outcome.suppressed)
    logger.info("SES event recorded", extra=outcome.as_dict())
    return outcome.as_dict()
