"""The custom CloudWatch metrics the stack's alarms watch.

Emitted through Powertools in the Embedded Metric Format: namespace `Dunning`, dimension `service` =
`dunning` (the functions' POWERTOOLS_SERVICE_NAME). `infra/template.yaml` has one alarm per name in
`ALARMED`, and a test holds the two together, so renaming a metric here without its alarm fails the build.

Powertools keeps one metric set per process (every `Metrics` of a namespace shares it) and a handler's
`@metrics.log_metrics` writes it out when the invocation ends, so the domain can count an event where it
happens without a handle on the handler's `Metrics` (services are given a PowertoolsCounter). Outside
Lambda nothing is written: the simulator sets POWERTOOLS_METRICS_DISABLED and starts every invocation
with an empty set.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

# The names are part of the services' interface (dunning.ports); the alarms on them are this module's.
from dunning.ports import MISSING_REFERENCE_RATE, NOTICE_FAILED, NOTICE_UNCONFIRMED, WORKFLOW_FAILED

NAMESPACE = "Dunning"
SERVICE = "dunning"

ALARMED = frozenset({NOTICE_FAILED, NOTICE_UNCONFIRMED, WORKFLOW_FAILED, MISSING_REFERENCE_RATE})


def count(name: str, value: int = 1) -> None:
    """Add `value` to metric `name` for the current invocation."""
    Metrics(namespace=NAMESPACE).add_metric(name=name, unit=MetricUnit.Count, value=value)


class PowertoolsCounter:
    """ports.Counter over Powertools' per-process metric set."""

    def count(self, name: str, value: int = 1) -> None:
        count(name, value)
