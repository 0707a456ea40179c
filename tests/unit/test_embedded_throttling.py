"""The embedded AWS under load, as AWS behaves (issue 12): Lambda's concurrency limit throttles a task's
invocation, SES's maximum send rate refuses a send, and a Retry's back-off passes on the simulated clock,
so the state machine's Retry on Lambda.TooManyRequestsException and SendThrottled is what gets a burst
through. Each is off unless asked for: then the embedded AWS behaves as before."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from dunning.adapters.mailer import NO_RETRIES, SesMailer, classify
from dunning.local import moto_internals
from dunning.local.embedded_ses import SendRate, embedded_ses, recipient_count
from dunning.local.embedded_sfn import (
    LambdaConcurrency,
    Scheduler,
    SimulatedClock,
    function_arn,
    simulated_step_functions,
)
from dunning.ports import SendThrottled

REGION = "eu-west-1"
ACCOUNT = "123456789012"
T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
SENDER = "billing@example.com"
CONFIGURATION_SET = "notices"


def _task(function: str, retry: list[dict[str, Any]], after: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn(function), "Payload.$": "$"},
        "ResultPath": None,
        "Retry": retry,
    }
    state.update({"Next": after} if after else {"End": True})
    return state


# The collections state machine's Retry of Lambda's own errors, and of SendThrottled (without jitter here, so
# that a test can name the instant of each attempt; jitter has its own test).
LAMBDA_RETRY = {
    "ErrorEquals": ["Lambda.TooManyRequestsException"],
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "MaxDelaySeconds": 120,
}
SEND_RETRY = {"ErrorEquals": ["SendThrottled"], "IntervalSeconds": 5, "MaxAttempts": 8, "BackoffRate": 2}


@dataclass
class Harness:
    sfn: Any
    scheduler: Scheduler
    calls: list[tuple[str, str, datetime]] = field(default_factory=list)  # (function, execution, at)

    def machine(self, states: dict[str, Any], name: str = "m") -> str:
        definition = {"StartAt": next(iter(states)), "States": states}
        arn: str = self.sfn.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/r"
        )["stateMachineArn"]
        return arn

    def start(self, machine: str, *accounts: str) -> None:
        """Start one execution per account, from the driving thread: each runs until it waits or ends."""
        for account in accounts:
            self.sfn.start_execution(
                stateMachineArn=machine, name=account, input=json.dumps({"account_id": account})
            )

    def statuses(self, machine: str) -> dict[str, str]:
        found = self.sfn.list_executions(stateMachineArn=machine)["executions"]
        return {execution["name"]: execution["status"] for execution in found}

    def recorder(self, function: str, then: Callable[[dict[str, Any]], Any] = lambda event: {}) -> Any:
        def handler(event: dict[str, Any], _context: Any) -> Any:
            self.calls.append((function, str(event.get("account_id")), self.scheduler.clock.now()))
            return then(event)

        return handler


@contextmanager
def harness(
    handlers: Callable[[Harness], dict[str, Any]],
    *,
    concurrency: LambdaConcurrency | None = None,
    retry_backoff: bool = False,
    max_send_rate: float | None = None,
) -> Iterator[Harness]:
    """moto with the simulated Step Functions (and the embedded SES) around the handlers the test gives."""
    from moto import mock_aws

    config: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    scheduler = Scheduler(SimulatedClock(T0))
    with mock_aws(config=config):
        h = Harness(boto3.client("stepfunctions", region_name=REGION), scheduler)
        with (
            simulated_step_functions(
                scheduler, handlers(h), concurrency=concurrency, retry_backoff=retry_backoff
            ),
            embedded_ses(REGION, ACCOUNT, max_send_rate=max_send_rate, clock=scheduler.clock.now),
        ):
            yield h


ACCOUNTS = ("A1", "A2", "A3", "A4", "A5")


def _two_tasks(h: Harness) -> str:
    return h.machine(
        {"First": _task("first", [LAMBDA_RETRY], "Second"), "Second": _task("second", [LAMBDA_RETRY])}
    )


def _handlers(h: Harness) -> dict[str, Any]:
    return {"first": h.recorder("first"), "second": h.recorder("second")}


# --- Lambda concurrency ---------------------------------------------------------------------------------


def test_over_the_concurrency_an_invocation_is_throttled_retried_later_and_every_execution_succeeds() -> None:
    concurrency = LambdaConcurrency(2)
    with harness(_handlers, concurrency=concurrency, retry_backoff=True) as h:
        machine = _two_tasks(h)

        h.start(machine, *ACCOUNTS)  # five executions whose first task is due at the same instant
        assert [at for _, _, at in h.calls] == [T0, T0], "two slots: two invocations run, three are throttled"
        h.scheduler.run_until(T0 + timedelta(minutes=10))

        assert h.statuses(machine) == dict.fromkeys(ACCOUNTS, "SUCCEEDED")
    assert concurrency.throttled >= 3 and concurrency.peak == 2
    assert concurrency.invocations == 2 * len(ACCOUNTS)
    for account in ACCOUNTS:
        (first,) = [at for function, name, at in h.calls if (function, name) == ("first", account)]
        (second,) = [at for function, name, at in h.calls if (function, name) == ("second", account)]
        assert second >= first + SECOND, "the next state starts when the invocation has ended"
    starts = sorted(at for _, _, at in h.calls)
    assert all(starts[i + 2] >= starts[i] + SECOND for i in range(len(starts) - 2)), (
        "never more than two invocations within one invocation's duration"
    )
    assert h.scheduler.retry_intervals and max(starts) > T0 + 2 * SECOND, "retried later in simulated time"


def test_a_throttled_task_fails_with_the_error_the_asl_retries_on() -> None:
    """Lambda answers Invoke with TooManyRequestsException (HTTP 429); moto's Lambda task names it
    Lambda.TooManyRequestsException, as Step Functions does: without a Retry, the execution fails with it."""
    with harness(_handlers, concurrency=LambdaConcurrency(1)) as h:
        machine = h.machine({"First": _task("first", [])})

        h.start(machine, "A1", "A2")
        h.scheduler.run_until(T0 + timedelta(minutes=1))

        assert h.statuses(machine) == {"A1": "SUCCEEDED", "A2": "FAILED"}
        executions = h.sfn.list_executions(stateMachineArn=machine)["executions"]
        failed = next(execution for execution in executions if execution["name"] == "A2")
        described = h.sfn.describe_execution(executionArn=failed["executionArn"])
    assert described["error"] == "Lambda.TooManyRequestsException"
    assert "Rate Exceeded." in described["cause"] and "Status Code: 429" in described["cause"]


def test_a_functions_own_duration_holds_its_slot_that_long() -> None:
    with harness(_handlers, concurrency=LambdaConcurrency(1, {"first": 30.0}, default_duration=2.0)) as h:
        machine = _two_tasks(h)

        h.start(machine, "A1")
        h.scheduler.run_until(T0 + timedelta(minutes=1))

        assert h.statuses(machine) == {"A1": "SUCCEEDED"}
    assert [(function, at) for function, _, at in h.calls] == [("first", T0), ("second", T0 + 30 * SECOND)]


def test_without_a_limit_every_invocation_runs_at_once_as_before() -> None:
    with harness(_handlers) as h:
        machine = _two_tasks(h)

        h.start(machine, *ACCOUNTS)

        assert h.statuses(machine) == dict.fromkeys(ACCOUNTS, "SUCCEEDED")
    assert [at for _, _, at in h.calls] == [T0] * 2 * len(ACCOUNTS)
    assert h.scheduler.waiting == 0 and h.scheduler.retry_intervals == []


def test_the_limit_is_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LambdaConcurrency(0)
    with pytest.raises(ValueError, match="must be positive"):
        LambdaConcurrency(3, {"first": 0.0})


# --- the retry's back-off ---------------------------------------------------------------------------------


def _fails_first(times: int) -> Callable[[dict[str, Any]], Any]:
    seen: dict[str, int] = {}

    def then(event: dict[str, Any]) -> Any:
        account = str(event["account_id"])
        seen[account] = seen.get(account, 0) + 1
        if seen[account] <= times:
            raise SendThrottled("busy")
        return {}

    return then


@pytest.mark.parametrize("backoff", [True, False])
def test_a_retry_waits_its_back_off_on_the_simulated_clock_only_when_asked(backoff: bool) -> None:
    with harness(lambda h: {"send": h.recorder("send", _fails_first(2))}, retry_backoff=backoff) as h:
        machine = h.machine({"Send": _task("send", [SEND_RETRY])})

        h.start(machine, "A1")
        h.scheduler.run_until(T0 + timedelta(minutes=1))

        assert h.statuses(machine) == {"A1": "SUCCEEDED"}
    assert h.scheduler.retry_intervals == [5, 10]
    expected = [T0, T0 + 5 * SECOND, T0 + 15 * SECOND] if backoff else [T0, T0, T0]
    assert [at for _, _, at in h.calls] == expected


def _jittered_attempts() -> list[datetime]:
    with harness(lambda h: {"send": h.recorder("send", _fails_first(3))}, retry_backoff=True) as h:
        machine = h.machine({"Send": _task("send", [{**SEND_RETRY, "JitterStrategy": "FULL"}])})
        h.start(machine, "A1")
        h.scheduler.run_until(T0 + timedelta(minutes=5))
        assert h.statuses(machine) == {"A1": "SUCCEEDED"}
    return [at for _, _, at in h.calls]


def test_a_jittered_back_off_repeats_exactly() -> None:
    """moto draws FULL jitter from the process's `random`; here each draw is seeded by the retry it is for,
    so a run that retries repeats to the microsecond whatever else used `random`."""
    random.seed(1)
    first = _jittered_attempts()
    random.seed(2)
    again = _jittered_attempts()

    assert first == again
    assert len(set(first)) == 4 and first[0] == T0
    gaps = [later - earlier for earlier, later in itertools.pairwise(first)]
    assert all(gap <= bound * SECOND for gap, bound in zip(gaps, (5, 10, 20), strict=True)), "FULL jitter"


# --- SES's maximum send rate ---------------------------------------------------------------------------


@dataclass
class _Sender:
    """A function that sends one message per account through the real mailer, and notes what SES took."""

    harness: Harness | None = None
    accepted: list[tuple[str, datetime, str]] = field(default_factory=list)  # (account, at, message id)

    def __call__(self, event: dict[str, Any]) -> Any:
        assert self.harness is not None
        mailer = SesMailer(boto3.client("sesv2", region_name=REGION, config=NO_RETRIES), CONFIGURATION_SET)
        account = str(event["account_id"])
        to = f"{account.lower()}@customer.example"
        raw = f"From: {SENDER}\r\nTo: {to}\r\nSubject: {account}\r\n\r\nPlease pay.\r\n".encode()
        message_id = mailer.send(SENDER, [to], raw, account)  # SendThrottled: the Retry sends it later
        self.accepted.append((account, self.harness.scheduler.clock.now(), message_id))
        return {}


def _ses_resources() -> None:
    sesv2 = boto3.client("sesv2", region_name=REGION)
    sesv2.create_email_identity(EmailIdentity="example.com")
    sesv2.create_configuration_set(ConfigurationSetName=CONFIGURATION_SET)


def test_over_the_send_rate_a_send_is_throttled_retried_and_all_are_delivered_in_time_order() -> None:
    sender = _Sender()

    def handlers(h: Harness) -> dict[str, Any]:
        sender.harness = h
        return {"send": h.recorder("send", sender)}

    with harness(handlers, retry_backoff=True, max_send_rate=1.0) as h:
        _ses_resources()
        machine = h.machine({"Send": _task("send", [{**SEND_RETRY, "IntervalSeconds": 1}])})

        h.start(machine, "A1", "A2", "A3")  # three sends at one instant, at one a second
        h.scheduler.run_until(T0 + timedelta(minutes=1))

        assert h.statuses(machine) == dict.fromkeys(("A1", "A2", "A3"), "SUCCEEDED")
        sent = [message.id for message in moto_internals.ses_backend(ACCOUNT, REGION).sent_messages]
    times = [at for _, at, _ in sender.accepted]
    assert len(times) == 3 and times[0] == T0
    assert all(later - earlier >= SECOND for earlier, later in itertools.pairwise(times)), times
    assert len(h.calls) > 3, "sends were throttled, and retried"
    assert sent == [message_id for _, _, message_id in sender.accepted], "SES took them in that order"


def test_a_send_over_the_rate_gets_the_error_ses_returns_and_the_mailer_retries_it_later() -> None:
    from moto import mock_aws

    clock = SimulatedClock(T0)
    with mock_aws(), embedded_ses(REGION, ACCOUNT, max_send_rate=1.0, clock=clock.now) as ses:
        _ses_resources()
        client = boto3.client("sesv2", region_name=REGION, config=NO_RETRIES)
        request = {
            "FromEmailAddress": SENDER,
            "Destination": {"ToAddresses": ["anna@customer.example"]},
            "Content": {"Raw": {"Data": b"From: billing@example.com\r\nSubject: x\r\n\r\nx\r\n"}},
            "ConfigurationSetName": CONFIGURATION_SET,
        }
        assert client.send_email(**request)["MessageId"]
        with pytest.raises(ClientError) as caught:
            client.send_email(**request)
        error = caught.value.response
        assert error["Error"]["Code"] == "TooManyRequestsException"
        assert error["Error"]["Message"] == "Maximum sending rate exceeded."
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert isinstance(classify(caught.value), SendThrottled), "nothing was accepted: send it later"

        refused = {**request, "ConfigurationSetName": "nope"}
        with pytest.raises(client.exceptions.NotFoundException):  # refused for itself, not for the rate
            client.send_email(**refused)

        clock.advance_to(T0 + SECOND)
        assert client.send_email(**request)["MessageId"]
        assert ses.throttled == 1 and ses.rate is not None and ses.rate.accepted == 2


def test_the_rate_allows_one_seconds_worth_at_once_then_refills() -> None:
    clock = SimulatedClock(T0)
    rate = SendRate(14, clock.now)

    assert [rate.admit(1) for _ in range(15)] == [True] * 14 + [False]
    clock.advance_to(T0 + timedelta(seconds=1 / 14))
    assert [rate.admit(1), rate.admit(1)] == [True, False]
    clock.advance_to(T0 + timedelta(seconds=100))
    assert sum(rate.admit(1) for _ in range(30)) == 14, "a quiet minute does not save up more than a second"
    assert (rate.accepted, rate.throttled) == (29, 18)


def test_the_rate_counts_recipients_and_a_message_to_many_overdraws_it() -> None:
    clock = SimulatedClock(T0)
    rate = SendRate(1, clock.now)

    assert rate.admit(5) is True, "SES lets a message to several recipients through ..."
    for seconds in (1, 2, 3, 4):
        clock.advance_to(T0 + seconds * SECOND)
        assert rate.admit(1) is False, f"... then refuses everything until they are paid back ({seconds} s)"
    clock.advance_to(T0 + 5 * SECOND)
    assert rate.admit(1) is True

    to_three = {
        "Destination": {"ToAddresses": ["a@x.example", "b@x.example"], "CcAddresses": ["c@x.example"]}
    }
    assert recipient_count(to_three) == 3
    raw = b"From: billing@example.com\r\nTo: a@x.example, b@x.example\r\nSubject: x\r\n\r\nx\r\n"
    assert recipient_count({"Content": {"Raw": {"Data": raw}}}) == 2


def test_the_rate_is_checked() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        SendRate(0, SimulatedClock(T0).now)


def test_without_a_rate_ses_never_throttles() -> None:
    from moto import mock_aws

    with mock_aws(), embedded_ses(REGION, ACCOUNT) as ses:
        _ses_resources()
        client = boto3.client("sesv2", region_name=REGION, config=NO_RETRIES)
        request = {
            "FromEmailAddress": SENDER,
            "Destination": {"ToAddresses": ["anna@customer.example"]},
            "Content": {"Raw": {"Data": b"From: billing@example.com\r\nSubject: x\r\n\r\nx\r\n"}},
            "ConfigurationSetName": CONFIGURATION_SET,
        }
        for _ in range(50):
            client.send_email(**request)
        assert ses.rate is None and ses.throttled == 0
