"""The custom metrics the alarms watch are emitted where the events they stand for happen."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from dunning import escalation, metrics, workflow
from dunning.charges import MissingReferenceRate, rate_in_force


@pytest.fixture
def emitted() -> Iterator[dict[str, Any]]:
    """The metric set of the current "invocation" (Powertools shares one per namespace)."""
    shared = Metrics(namespace=metrics.NAMESPACE)
    shared.clear_metrics()
    yield shared.metric_set
    shared.clear_metrics()


def _count(emitted: dict[str, Any], name: str) -> float:
    return sum(float(value) for value in emitted.get(name, {}).get("Value", []))


def test_a_rate_in_force_counts_nothing(emitted: dict[str, Any]) -> None:
    rate_in_force("eu", date(2024, 7, 1))
    assert metrics.MISSING_REFERENCE_RATE not in emitted


def test_a_day_past_the_rate_table_counts_a_missing_reference_rate(emitted: dict[str, Any]) -> None:
    rate_in_force("eu", date(2031, 3, 1))
    assert _count(emitted, metrics.MISSING_REFERENCE_RATE) == 1
    assert emitted[metrics.MISSING_REFERENCE_RATE]["Unit"] == "Count"


def test_a_day_before_the_rate_table_counts_a_missing_reference_rate(emitted: dict[str, Any]) -> None:
    with pytest.raises(MissingReferenceRate):
        rate_in_force("uk", date(1999, 1, 1))
    assert _count(emitted, metrics.MISSING_REFERENCE_RATE) == 1


class _FixedClock:
    def now(self) -> datetime:
        return datetime(2027, 2, 5, 9, tzinfo=UTC)


def test_a_recorded_workflow_failure_counts_workflow_failed(
    emitted: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: list[Any] = []
    monkeypatch.setattr(workflow, "log", lambda *args: logged.append(args))
    monkeypatch.setattr(workflow, "release", lambda *args, **kwargs: None)
    request = escalation.StepRequest("ACME", "exec-1", "EUR", 0)

    result = escalation.fail_step(None, _FixedClock(), request, "RuntimeError", "boom")  # type: ignore[arg-type]

    assert result == {"recorded": True}
    assert [entry.type for (_, _, _, entries) in logged for entry in entries] == ["workflow_failed"]
    assert _count(emitted, metrics.WORKFLOW_FAILED) == 1


def test_the_alarmed_metrics_are_named_once() -> None:
    assert {"NoticeFailed", "NoticeUnconfirmed", "WorkflowFailed", "MissingReferenceRate"} == metrics.ALARMED
