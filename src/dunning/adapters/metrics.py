"""The custom CloudWatch metrics the stack's alarms watch.

Emitted through Powertools in the Embedded Metric Format: namespace `Dunning`, dimension `service` =
`dunning` (the functions' POWERTOOLS_SERVICE_NAME). `infra/template.yaml` has one alarm per name in
`ALARMED`, and a test holds the two together, so renaming a metric here without its alarm fails the build.

Powertools keeps one metric set per process (every `Metrics` of a namespace shares it) and a handler's
`@metrics.log_metrics` writes it out when the invocation ends, so the domain can count an event where it
happens without a handle on the handler's `Metrics`. Outside Lambda nothing is written: the simulator sets
POWERTOOLS_METRICS_DISABLED and starts every invocation with an empty set.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "Dunning"
SERVICE = "dunning"

# A notice that could not be sent: SES refused it (an unverified sender, sending paused, a rejected message).
NOTICE_FAILED = "NoticeFailed"
# SES may have accepted a notice whose answer was lost (or whose attempt died after reserving it): it is not
# sent again, and a person must check it (`notice_unconfirmed` in the contact log).
NOTICE_UNCONFIRMED = "NoticeUnconfirmed"
# An execution ended in RecordFailure: a step kept failing after its retries (the contact log has
# `workflow_failed`; the account is picked up again by the next day's scan).
WORKFLOW_FAILED = "WorkflowFailed"
# Statutory interest was due for days the reference-rate table has no rate for (before its first half-year
# or after its last): those days were left out of the notice or case (`charges_incomplete`), never guessed.
MISSING_REFERENCE_RATE = "MissingReferenceRate"

ALARMED = frozenset({NOTICE_FAILED, NOTICE_UNCONFIRMED, WORKFLOW_FAILED, MISSING_REFERENCE_RATE})


def count(name: str, value: int = 1) -> None:
    """Add `value` to metric `name` for the current invocation."""
    Metrics(namespace=NAMESPACE).add_metric(name=name, unit=MetricUnit.Count, value=value)
