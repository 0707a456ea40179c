"""Starting an execution is one StartExecution: its name is the idempotency key, so an execution of that
name that already exists (ran earlier that day, or is running) makes the start a no-op, with no
DescribeExecution per account (docs/scale.md)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from dunning.adapters.stepfunctions import StepFunctions

MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:dunning-collections"


class _FakeSfn:
    def __init__(self, refuse: str | None = None) -> None:
        self.started: list[dict[str, Any]] = []
        self.refuse = refuse

    def describe_execution(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("no DescribeExecution: the name decides")

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": ""}}, "StartExecution")
        return {}


@pytest.mark.parametrize("arn", [MACHINE, f"{MACHINE}:live", f"{MACHINE}:7"])
def test_an_execution_is_started_on_the_given_arn_with_one_call(arn: str) -> None:
    sfn = _FakeSfn()

    assert StepFunctions(sfn, arn).start("ACME-2027-02-10", {"account_id": "ACME", "round": 0})

    assert [(call["stateMachineArn"], call["name"]) for call in sfn.started] == [(arn, "ACME-2027-02-10")]


def test_a_name_that_exists_starts_nothing() -> None:
    sfn = _FakeSfn(refuse="ExecutionAlreadyExists")

    assert not StepFunctions(sfn, MACHINE).start("ACME-2027-02-10", {"account_id": "ACME"})


def test_any_other_refusal_is_raised() -> None:
    with pytest.raises(ClientError, match="ExecutionLimitExceeded"):
        StepFunctions(_FakeSfn(refuse="ExecutionLimitExceeded"), MACHINE).start("A", {})
