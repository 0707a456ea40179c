"""A Lambda handler called in this process, as Lambda would call it: its context, and which function and
account the current invocation is for (the embedded IAM reads it)."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

REGION = "eu-west-1"
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Invocation:
    function: str  # the function's name, e.g. dunning-escalate
    account_id: str  # the account the event is about, where it names one


_invocation: ContextVar[Invocation | None] = ContextVar("dunning_invocation", default=None)


def current_invocation() -> Invocation | None:
    return _invocation.get()


def invoke_handler(handler: Any, event: dict[str, Any], function_name: str) -> Any:
    """Call a Lambda handler in this process, as Lambda would: the handler's runtime is its function's own
    (see `FunctionContainers`)."""
    from aws_lambda_powertools import Metrics

    account_id = str(event.get("account_id", "")) if isinstance(event, dict) else ""
    token = _invocation.set(Invocation(function_name, account_id))
    try:
        return handler(event, LocalContext(function_name))
    finally:
        _invocation.reset(token)
        # Metrics are disabled locally, but Powertools still collects them (and prints them once 100 pile
        # up); every invocation here is a fresh "container", so start each with none.
        Metrics(namespace="Dunning").clear_metrics()


@dataclass
class LocalContext:
    """What Powertools reads from a Lambda context, for handlers invoked in-process."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000
