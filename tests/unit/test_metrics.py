"""The custom metrics the alarms watch are emitted where the events they stand for happen."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from dunning.adapters import metrics
from dunning.adapters.metrics import PowertoolsCounter
from dunning.domain.charges import MissingReferenceRate, rate_in_force
from dunning.domain.clock import FixedClock
from dunning.ports import MISSING_REFERENCE_RATE, WORKFLOW_FAILED, Books
from dunning.services import escalation
from tests.support.fakes import fake_books


def _books() -> Books:
    """In-memory records, the deployed counter."""
    return dataclasses.replace(fake_books(), counter=PowertoolsCounter())


@pytest.fixture
def emitted() -> Iterator[dict[str, Any]]:
    """The metric set of the current "invocation" (Powertools shares one per namespace)."""
    shared = Metrics(namespace=metrics.NAMESPACE)
    shared.clear_metrics()
    yield shared.metric_set
    shared.clear_metrics()


def _count(emitted: dict[str, Any], name: str) -> float:
    return sum(float(value) for value in emitted.get(name, {}).get("Value", []))


def test_a_rate_lookup_counts_nothing(emitted: dict[str, Any]) -> None:
    # The domain computes and reports; only the send and the hand-off, which log charges_incomplete, count.
    rate_in_force("eu", date(2024, 7, 1))
    rate_in_force("eu", date(2031, 3, 1))
    with pytest.raises(MissingReferenceRate):
        rate_in_force("uk", date(1999, 1, 1))
    assert MISSING_REFERENCE_RATE not in emitted


def test_interest_left_out_for_a_missing_rate_counts_the_alarm_metric(emitted: dict[str, Any]) -> None:
    from dunning.domain.charges import MissingRate
    from dunning.domain.owed import Owed
    from dunning.services.sending import report_missing_rates

    gaps = (
        MissingRate("eu", date(2031, 1, 1), date(2031, 1, 31)),
        MissingRate("uk", date(2031, 1, 1), date(2031, 1, 2)),
    )
    due = Owed("ACME", "EUR", date(2031, 2, 1), (), missing_rates=gaps)
    books = _books()
    report_missing_rates(books, "ACME", datetime(2031, 2, 1, 9, tzinfo=UTC), due, "firm_notice")
    assert [event["type"] for event in books.log.events("ACME")] == ["charges_incomplete"]
    assert _count(emitted, MISSING_REFERENCE_RATE) == 2
    assert emitted[MISSING_REFERENCE_RATE]["Unit"] == "Count"


def test_a_recorded_workflow_failure_counts_workflow_failed(emitted: dict[str, Any]) -> None:
    books = _books()
    request = escalation.StepRequest("ACME", "exec-1", "EUR", 0)

    clock = FixedClock(datetime(2027, 2, 5, 9, tzinfo=UTC))

    result = escalation.fail_step(books, clock, request, "RuntimeError", "boom")

    assert result == {"recorded": True}
    assert [event["type"] for event in books.log.events("ACME")] == ["workflow_failed"]
    assert _count(emitted, WORKFLOW_FAILED) == 1


def test_the_alarmed_metrics_are_named_once() -> None:
    assert {"NoticeFailed", "NoticeUnconfirmed", "WorkflowFailed", "MissingReferenceRate"} == metrics.ALARMED
