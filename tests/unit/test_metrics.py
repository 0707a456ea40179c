"""The custom metrics the alarms watch are emitted where the events they stand for happen."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from dunning.adapters import metrics, workflow
from dunning.domain.charges import MissingReferenceRate, rate_in_force
from dunning.services import escalation


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
    assert metrics.MISSING_REFERENCE_RATE not in emitted


def test_interest_left_out_for_a_missing_rate_counts_the_alarm_metric(emitted: dict[str, Any]) -> None:
    from dunning.domain.charges import MissingRate
    from dunning.domain.owed import Owed
    from dunning.services.sending import report_missing_rates

    class _Ledger:
        def append_events(self, events: object) -> None:
            pass

    gaps = (
        MissingRate("eu", date(2031, 1, 1), date(2031, 1, 31)),
        MissingRate("uk", date(2031, 1, 1), date(2031, 1, 2)),
    )
    due = Owed("ACME", "EUR", date(2031, 2, 1), (), missing_rates=gaps)
    report_missing_rates(_Ledger(), "ACME", datetime(2031, 2, 1, 9, tzinfo=UTC), due, "firm_notice")  # type: ignore[arg-type]
    assert _count(emitted, metrics.MISSING_REFERENCE_RATE) == 2
    assert emitted[metrics.MISSING_REFERENCE_RATE]["Unit"] == "Count"


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
