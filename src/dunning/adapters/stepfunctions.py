"""Step Functions as the scan's and escalate's view of executions."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


class StepFunctions:
    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self._sfn = sfn
        self._arn = state_machine_arn

    def _execution_arn(self, name: str) -> str:
        # Executions are named after the state machine alone, whether they were started through an alias
        # (arn:...:stateMachine:NAME:live), a version (NAME:3) or the state machine itself.
        prefix, qualified = self._arn.rsplit(":stateMachine:", 1)
        machine = qualified.split(":", 1)[0]
        return f"{prefix}:execution:{machine}:{name}"

    def _status(self, name: str) -> str | None:
        try:
            status: str = self._sfn.describe_execution(executionArn=self._execution_arn(name))["status"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
        return status

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        """Start `name` unless an execution of that name exists (running or ended): names are the
        idempotency key, so a repeated scan or a retried task starts nothing twice."""
        if self._status(name) is not None:
            return False
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(payload))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return False
            raise
        return True

    def is_running(self, name: str) -> bool:
        return self._status(name) == "RUNNING"


class Continuations:
    """Starts the successor execution of a long-running account (escalate's continue step)."""

    def __init__(self, sfn: Any) -> None:
        self._sfn = sfn

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> None:
        StepFunctions(self._sfn, state_machine_arn).start(name, payload)
