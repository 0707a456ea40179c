"""What an execution of the collections state machine is given: its input, and its instants in the form
Step Functions' TimestampPath reads. The scan and the steps both start executions (services.scan,
services.stepping); this module is light enough for the scan to import."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def timestamp(at: datetime) -> str:
    """The form Step Functions' TimestampPath accepts."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def step_input(account_id: str, currency: str, at: datetime, function: str) -> dict[str, Any]:
    """An execution's input: wait until `at`, then `function` (an alias ARN) takes the ladder's step."""
    return {
        "account_id": account_id,
        "currency": currency,
        "round": 0,
        "at": timestamp(at),
        "function": function,
    }
