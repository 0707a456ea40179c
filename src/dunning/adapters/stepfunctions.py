"""Step Functions as the scan's and escalate's view of executions."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


class StepFunctions:
    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self._sfn = sfn
        self._arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        """Start `name` unless an execution of that name exists: names are the idempotency key, so a
        repeated scan or a retried task starts nothing twice. One StartExecution, no DescribeExecution:
        Step Functions refuses a name it has seen (or, for a running execution with the same input, answers
        as the first time did)."""
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(payload))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return False
            raise
        return True


class Continuations:
    """Starts the successor execution of a long-running account (escalate's continue step)."""

    def __init__(self, sfn: Any) -> None:
        self._sfn = sfn

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> None:
        StepFunctions(self._sfn, state_machine_arn).start(name, payload)
