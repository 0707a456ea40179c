"""Executions started on the state machine's `live` alias are looked up by the state machine's name."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from dunning.adapters.stepfunctions import StepFunctions

MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:dunning-collections"


class _FakeSfn:
    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.described: list[str] = []

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.described.append(executionArn)
        raise ClientError({"Error": {"Code": "ExecutionDoesNotExist", "Message": ""}}, "DescribeExecution")

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        return {}


@pytest.mark.parametrize("arn", [MACHINE, f"{MACHINE}:live", f"{MACHINE}:7"])
def test_an_execution_is_started_on_the_given_arn_and_described_by_the_machines_name(arn: str) -> None:
    sfn = _FakeSfn()

    assert StepFunctions(sfn, arn).start("ACME-2027-02-10", {"account_id": "ACME", "round": 0})

    assert sfn.described == [
        "arn:aws:states:eu-west-1:123456789012:execution:dunning-collections:ACME-2027-02-10"
    ]
    assert [call["stateMachineArn"] for call in sfn.started] == [arn]
