"""The embedded Step Functions parse a state machine's definition once (`parsed_once_per_definition` in
dunning.local.embedded_aws), not at every StartExecution as moto does, and every execution still runs on its
own: the parsed program is shared, the executions' state is not. The moto internals this relies on are
guarded here, with behaviour."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from dunning.local import moto_internals
from dunning.local.embedded_aws import (
    PARSED_PROGRAMS,
    ParsedPrograms,
    embedded_aws,
    parsed_once_per_definition,
    program_nodes,
)
from dunning.local.embedded_sfn import Scheduler, SimulatedClock, function_arn, simulated_step_functions

REGION = "eu-west-1"
ACCOUNT = "123456789012"
T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)

RELIED_ON = (
    moto_internals.EVALUATION_ENTRYPOINT,
    moto_internals.EVALUATION_DETAILS,
    moto_internals.STATE_MACHINE_DETAILS,
    moto_internals.STATE_MACHINE_DEFINITION,
    moto_internals.ASL_PARSE,
    moto_internals.EVAL_COMPONENT,
    moto_internals.EVAL_COMPONENT_HEAP_KEY,
    moto_internals.ENVIRONMENT_HEAP,
)


class Flaky(Exception):
    """A handler's error the state machine retries (its class name is the error name, as on Lambda)."""


# Pass (a Result object) -> Choice -> Wait (the slow one only) -> Task (fails once, retried once) -> Pass
# (writes into the Pass's result): had the Result object, the retry count or anything else of one
# execution stayed with the program, the next execution would go to Leaked, or run out of retries.
STATES: dict[str, Any] = {
    "Prepare": {
        "Type": "Pass",
        "Result": {"greeting": "hello", "tags": ["a"]},
        "ResultPath": "$.fixed",
        "Next": "Route",
    },
    "Route": {
        "Type": "Choice",
        "Choices": [
            {"Variable": "$.fixed.mark", "IsPresent": True, "Next": "Leaked"},
            {"Variable": "$.kind", "StringEquals": "slow", "Next": "Pause"},
        ],
        "Default": "Work",
    },
    "Pause": {"Type": "Wait", "Seconds": 60, "Next": "Work"},
    "Work": {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn("work"), "Payload.$": "$"},
        "ResultSelector": {"out.$": "$.Payload"},
        "ResultPath": "$.work",
        "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 1, "BackoffRate": 2}],
        "Next": "Mark",
    },
    "Mark": {
        "Type": "Pass",
        "Parameters": {"by.$": "$.account_id"},
        "ResultPath": "$.fixed.mark",
        "End": True,
    },
    "Leaked": {"Type": "Fail", "Error": "Leaked", "Cause": "an execution saw another one's mark"},
}
DEFINITION = json.dumps({"Comment": "test_moto_asl_cache", "StartAt": "Prepare", "States": STATES})


@dataclass
class Harness:
    sfn: Any
    scheduler: Scheduler
    programs: ParsedPrograms
    parsed: list[str]  # every definition moto's parser was given, CreateStateMachine's check included
    attempts: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, int, datetime]] = field(default_factory=list)

    def machine(self, definition: str = DEFINITION, name: str = "m") -> str:
        arn: str = self.sfn.create_state_machine(
            name=name, definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/r"
        )["stateMachineArn"]
        return arn

    def start(self, machine: str, account: str, kind: str) -> str:
        arn: str = self.sfn.start_execution(
            stateMachineArn=machine, name=account, input=json.dumps({"account_id": account, "kind": kind})
        )["executionArn"]
        return arn

    def described(self, execution: str) -> dict[str, Any]:
        found: dict[str, Any] = self.sfn.describe_execution(executionArn=execution)
        return found

    def work(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        account = str(event["account_id"])
        attempt = self.attempts[account] = self.attempts.get(account, 0) + 1
        self.calls.append((account, attempt, self.scheduler.clock.now()))
        if attempt == 1:
            raise Flaky(f"first attempt of {account}")
        return {"account": account, "attempt": attempt}


@contextmanager
def harness(*, cached: bool = True) -> Iterator[Harness]:
    """moto with the simulated Step Functions, each definition parsed once (`cached`) into a cache of the
    test's own, and every call of moto's ASL parser recorded."""
    from moto import mock_aws

    parse: Any = moto_internals.ASL_PARSE.get()
    parsed: list[str] = []

    def counting(definition: str) -> Any:
        parsed.append(definition)
        return parse(definition)

    config: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    scheduler = Scheduler(SimulatedClock(T0))
    programs = ParsedPrograms()
    with mock_aws(config=config), moto_internals.patched((moto_internals.ASL_PARSE, counting)):
        h = Harness(boto3.client("stepfunctions", region_name=REGION), scheduler, programs, parsed)
        with simulated_step_functions(scheduler, {"work": h.work}):
            if cached:
                with parsed_once_per_definition(programs):
                    yield h
            else:
                yield h


def _snapshot(program: Any) -> str:
    """Everything the program's nodes hold (moto's Component.__repr__ lists each node's attributes)."""
    return repr(program)


# --- the guard ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("internal", RELIED_ON, ids=lambda internal: internal.path)
def test_each_internal_the_cache_relies_on_is_listed_and_still_as_we_rely_on_it(
    internal: moto_internals.MotoInternal,
) -> None:
    assert internal in moto_internals.ALL
    assert internal.problem() is None, f"{internal.problem()} (used for: {internal.purpose})"


def test_the_replaced_entrypoint_and_the_parser_keep_their_signatures() -> None:
    assert moto_internals.EVALUATION_ENTRYPOINT.parameters == ("self",)
    assert moto_internals.ASL_PARSE.parameters == ("definition",)


def test_motos_entrypoint_parses_the_definition_it_reads_where_the_cache_reads_its_key() -> None:
    """moto's own entrypoint, on a worker holding only what the cache reads (worker._evaluation_details
    .state_machine_details.definition), parses that definition, once, into a program of EvalComponents."""
    entrypoint: Any = moto_internals.EVALUATION_ENTRYPOINT.get()
    parse: Any = moto_internals.ASL_PARSE.get()
    parsed: list[str] = []

    def counting(definition: str) -> Any:
        parsed.append(definition)
        return parse(definition)

    details = SimpleNamespace(state_machine_details=SimpleNamespace(definition=DEFINITION))
    worker = SimpleNamespace(_evaluation_details=details)
    with moto_internals.patched((moto_internals.ASL_PARSE, counting)):
        program = entrypoint(worker)
    assert parsed == [DEFINITION]
    assert isinstance(program, moto_internals.EVAL_COMPONENT.get())


def test_a_program_holds_no_execution_state_of_its_own() -> None:
    """Every node of a parsed program, once its heap key is drawn, is left as it is by executions (moto keeps
    an execution's state in its Environment): two executions, one of them interrupted by a Wait while the
    other ran, leave the shared program exactly as parsed."""
    with harness() as h:
        machine = h.machine()
        h.start(machine, "A", "fast")
        program = h.programs.cached(DEFINITION)
        assert program is not None
        before = _snapshot(program)
        h.start(machine, "B", "slow")
        h.start(machine, "C", "fast")
        h.scheduler.run_until(T0 + timedelta(minutes=5))
        assert _snapshot(program) == before


# --- behaviour ------------------------------------------------------------------------------------------


def test_two_executions_of_one_machine_parse_it_once_and_run_independently() -> None:
    with harness() as h:
        machine = h.machine()
        assert h.parsed == [DEFINITION], "CreateStateMachine checks the definition (moto's own parse)"
        h.parsed.clear()

        slow = h.start(machine, "A", "slow")  # waits in Pause, holding the program
        fast = h.start(machine, "B", "fast")  # runs to its end meanwhile, with the same program
        assert h.described(slow)["status"] == "RUNNING"
        assert h.described(fast)["status"] == "SUCCEEDED"
        h.scheduler.run_until(T0 + timedelta(minutes=5))

        assert h.parsed == [DEFINITION], "parsed for the first execution only"
        assert h.programs.parses == 1
        outputs = {}
        for name, execution in (("A", slow), ("B", fast)):
            described = h.described(execution)
            assert described["status"] == "SUCCEEDED", described
            outputs[name] = json.loads(described["output"])
    for name, kind in (("A", "slow"), ("B", "fast")):
        assert outputs[name] == {
            "account_id": name,
            "kind": kind,
            "fixed": {"greeting": "hello", "tags": ["a"], "mark": {"by": name}},
            "work": {"out": {"account": name, "attempt": 2}},
        }
    # Each was retried once, on its own count (MaxAttempts 1): a count carried over would have failed B.
    after_the_wait = T0 + timedelta(seconds=60)
    assert sorted(h.calls) == [("A", 1, after_the_wait), ("A", 2, after_the_wait), ("B", 1, T0), ("B", 2, T0)]


def test_the_cache_is_keyed_by_the_definition() -> None:
    other = json.dumps({"StartAt": "Only", "States": {"Only": {"Type": "Pass", "End": True}}})
    with harness() as h:
        first = h.machine(name="first")
        same = h.machine(name="same")  # another state machine, the same definition
        different = h.machine(other, name="different")
        h.parsed.clear()

        executions = [
            h.start(first, "A", "fast"),
            h.start(same, "B", "fast"),
            h.start(different, "C", "fast"),
            h.start(different, "D", "fast"),
        ]

        assert h.parsed == [DEFINITION, other]
        assert [h.described(execution)["status"] for execution in executions] == ["SUCCEEDED"] * 4


def test_without_the_cache_moto_parses_at_every_start() -> None:
    """The cost this removes: moto's entrypoint parses the definition again for each execution."""
    with harness(cached=False) as h:
        machine = h.machine()
        h.parsed.clear()
        h.start(machine, "A", "fast")
        h.start(machine, "B", "fast")
        assert h.parsed == [DEFINITION, DEFINITION]


def test_every_node_has_its_heap_key_before_executions_share_it() -> None:
    parse: Any = moto_internals.ASL_PARSE.get()
    programs = ParsedPrograms()
    program = programs.program(DEFINITION, lambda: parse(DEFINITION)[0])

    nodes = program_nodes(program)
    keys = [node.__dict__.get("_EvalComponent__heap_key") for node in nodes]
    assert len(nodes) > 20 and all(keys), "each node's key drawn (moto stores it as a private attribute)"
    assert len(set(keys)) == len(keys)
    assert [node.heap_key for node in nodes] == keys, "and kept: reading it draws nothing new"
    assert programs.program(DEFINITION, _never) is program


def _never() -> Any:
    raise AssertionError("parsed again")


def test_executions_starting_at_once_parse_a_definition_once() -> None:
    programs = ParsedPrograms()
    parses: list[int] = []
    parse: Any = moto_internals.ASL_PARSE.get()

    def slow_parse() -> Any:
        parses.append(1)
        time.sleep(0.05)
        return parse(DEFINITION)[0]

    found: list[Any] = []
    threads = [
        threading.Thread(target=lambda: found.append(programs.program(DEFINITION, slow_parse)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(parses) == 1 and len(found) == 4 and all(program is found[0] for program in found)


def test_a_definition_that_fails_to_parse_is_not_kept() -> None:
    programs = ParsedPrograms()

    def broken() -> Any:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        programs.program("{}", broken)
    assert programs.cached("{}") is None and programs.parses == 0


def test_the_least_recently_used_program_goes_first_when_full() -> None:
    programs = ParsedPrograms(maxsize=2)
    a = programs.program("a", object)
    programs.program("b", object)
    assert programs.program("a", _never) is a  # "a" used last: "b" goes
    programs.program("c", object)
    assert programs.cached("b") is None and programs.cached("a") is a and programs.cached("c") is not None


# --- wiring ---------------------------------------------------------------------------------------------


def test_the_embedded_aws_parses_each_definition_once() -> None:
    original: Any = moto_internals.EVALUATION_ENTRYPOINT.get()
    with embedded_aws():
        installed: Any = moto_internals.EVALUATION_ENTRYPOINT.get()
        assert installed is not original
    assert moto_internals.EVALUATION_ENTRYPOINT.get() is original
    assert isinstance(PARSED_PROGRAMS, ParsedPrograms)
