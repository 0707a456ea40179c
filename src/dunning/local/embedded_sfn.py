"""The deployed state machine, executed by moto in-process on simulated time.

moto runs ASL (`execute_state_machine`), but out of the box its Lambda tasks need Docker and its Wait
states really sleep. Here, for the tests and `dunning simulate`:
- Lambda tasks are dispatched to our real handlers in this process;
- Wait states block until the *simulated* clock reaches their timestamp, and the Scheduler moves that
  clock, waking one execution at a time in timestamp order (account id breaking ties), so a run is
  deterministic;
- retry back-off intervals are recorded instead of slept.

This leans on moto internals (ExecutionWorker, WaitFunction, the Lambda task's boto client), which is
why moto is pinned to one version in pyproject.toml; each is listed in `dunning.local.moto_internals`, and
tests/unit/test_moto_guard.py checks them against the installed moto.
"""

from __future__ import annotations

import heapq
import inspect
import io
import itertools
import json
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dunning.local import moto_internals
from dunning.local.lambda_context import REGION, invoke_handler

Handler = Callable[[dict[str, Any], Any], Any]
ACCOUNT = "123456789012"
SETTLE_TIMEOUT_SECONDS = 120
# A real account's execution waits a handful of times a day (the scan, a send, the decision after it). A
# Wait that keeps ending at the instant it starts (a decision that answers "now" again and again) never
# blocks, so the settle timeout cannot catch it: this bound on wakes per account and day does.
MAX_WAKES_PER_ACCOUNT_DAY = 100


class SimulationStuck(RuntimeError):
    """An execution neither reached a Wait state nor finished in time (a bug, or a real sleep), or kept
    waking at once (a runaway loop that would never let the simulated clock move on)."""


class SimulatedClock:
    def __init__(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def advance_to(self, at: datetime) -> None:
        with self._lock:
            self._at = max(self._at, at.astimezone(UTC))


@dataclass(order=True)
class _Sleeper:
    wake_at: datetime
    order: tuple[str, int]
    wake: threading.Event = field(compare=False)


class Scheduler:
    """Moves the simulated clock and lets executions run one at a time until each blocks or ends."""

    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        self._condition = threading.Condition()
        self._running = 0
        self._sleepers: list[_Sleeper] = []
        self._tiebreak = itertools.count()
        self._label = threading.local()
        self._wakes: dict[str, int] = {}
        self._wakes_on: date | None = None
        self.retry_intervals: list[float] = []
        self.failures: list[str] = []

    # --- called from execution threads ---------------------------------------------------------------

    def execution_started(self) -> None:
        with self._condition:
            self._running += 1

    def execution_finished(self) -> None:
        with self._condition:
            self._running -= 1
            self._condition.notify_all()

    def sleep_until(self, wake_at: datetime, label: str) -> None:
        sleeper = _Sleeper(wake_at.astimezone(UTC), (label, next(self._tiebreak)), threading.Event())
        with self._condition:
            heapq.heappush(self._sleepers, sleeper)
            self._running -= 1
            self._condition.notify_all()
        sleeper.wake.wait()

    # --- called from the driving (main) thread -------------------------------------------------------

    def settle(self) -> None:
        """Block until every execution is waiting in a Wait state or has finished."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._running == 0, timeout=SETTLE_TIMEOUT_SECONDS):
                raise SimulationStuck(
                    f"{self._running} execution(s) still running after {SETTLE_TIMEOUT_SECONDS}s"
                )

    def next_wake(self) -> datetime | None:
        with self._condition:
            return self._sleepers[0].wake_at if self._sleepers else None

    def run_until(self, until: datetime, *, inclusive: bool = True) -> None:
        """Advance the clock to `until`, waking each waiting execution at its own time, in order.

        `inclusive=False` leaves the executions due at `until` itself asleep, with the clock at `until`: the
        simulator puts a day's uploads in at that instant first, so a notice due then sees them."""
        while True:
            with self._condition:
                if not self._sleepers:
                    break
                wake_at = self._sleepers[0].wake_at
                if wake_at > until or (wake_at == until and not inclusive):
                    break
                self._count_wake(self._sleepers[0])
                sleeper = heapq.heappop(self._sleepers)
                self._running += 1
            self.clock.advance_to(sleeper.wake_at)
            sleeper.wake.set()
            self.settle()
        self.clock.advance_to(until)

    def _count_wake(self, sleeper: _Sleeper) -> None:
        day = sleeper.wake_at.date()
        if day != self._wakes_on:  # wakes come in time order: only the current day needs counting
            self._wakes, self._wakes_on = {}, day
        label = sleeper.order[0]
        self._wakes[label] = self._wakes.get(label, 0) + 1
        if self._wakes[label] > MAX_WAKES_PER_ACCOUNT_DAY:
            raise SimulationStuck(
                f"the execution for account {label or '(unknown)'} woke more than "
                f"{MAX_WAKES_PER_ACCOUNT_DAY} times on {day} (UTC), last at {sleeper.wake_at.isoformat()}: "
                "a Wait that keeps ending at once"
            )

    @property
    def waiting(self) -> int:
        with self._condition:
            return len(self._sleepers)


def _execution_label(env: Any) -> str:
    try:
        return str(env.states.context_object.context_object_data["Execution"]["Input"]["account_id"])
    except (AttributeError, KeyError, TypeError):
        return ""


class _InProcessLambda:
    """Stands in for the Lambda client a Task state uses: invokes our handler in this process."""

    def __init__(self, handlers: Mapping[str, Handler], scheduler: Scheduler) -> None:
        self._handlers = handlers
        self._scheduler = scheduler

    def invoke(self, FunctionName: str, Payload: bytes | str | None = None, **_: Any) -> dict[str, Any]:
        name = FunctionName.rsplit(":function:", 1)[-1].split(":", 1)[0]
        handler = self._handlers[name]
        event = json.loads(Payload or "{}")
        try:
            result = invoke_handler(handler, event, name)
        except Exception as exc:  # what Lambda reports as a function error, with the type as errorType
            self._scheduler.failures.append(f"{name}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            body = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": io.BytesIO(json.dumps(body).encode()),
            }
        return {
            "StatusCode": 200,
            "ExecutedVersion": "$LATEST",
            "Payload": io.BytesIO(json.dumps(result).encode()),
        }


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


@contextmanager
def simulated_step_functions(scheduler: Scheduler, handlers: Mapping[str, Handler]) -> Iterator[None]:
    """Patch moto's ASL interpreter as described in the module docstring (inside mock_aws). Every moto
    internal used here is listed, with the parameters relied on, in `dunning.local.moto_internals`."""
    original_start: Any = moto_internals.EXECUTION_START.get()
    original_logic: Any = moto_internals.EXECUTION_LOGIC.get()
    original_client: Any = moto_internals.LAMBDA_CLIENT.get()
    client_signature = inspect.signature(original_client)
    timestamp: Any = moto_internals.TIMESTAMP.get()
    parse_timestamp: Any = moto_internals.TIMESTAMP_PARSE.get()
    fake_lambda = _InProcessLambda(handlers, scheduler)

    def start(worker: Any) -> None:
        scheduler.execution_started()
        original_start(worker)
        if threading.current_thread() is threading.main_thread():
            scheduler.settle()

    def execution_logic(worker: Any) -> None:
        try:
            original_logic(worker)
        finally:
            scheduler.execution_finished()

    def wait(function: Any, env: Any) -> None:
        if isinstance(function, timestamp):
            function.string.eval(env=env)
            stamp = env.stack.pop()
            parsed = parse_timestamp(stamp)
            if parsed is None:
                function._get_wait_seconds(env)  # raises moto's own States.Runtime failure
            wake_at = parsed.replace(tzinfo=UTC) if parsed else scheduler.clock.now()
        else:
            wake_at = scheduler.clock.now() + timedelta(seconds=function._get_wait_seconds(env=env))
        scheduler.sleep_until(wake_at, _execution_label(env))

    def client_for(*args: Any, **kwargs: Any) -> Any:
        # boto_client_for(region, service, state_credentials=None): bound by name, however it is called.
        if client_signature.bind(*args, **kwargs).arguments.get("service") == "lambda":
            return fake_lambda
        return original_client(*args, **kwargs)

    class _NoSleep:
        @staticmethod
        def sleep(seconds: float) -> None:
            scheduler.retry_intervals.append(seconds)

    with moto_internals.patched(
        (moto_internals.EXECUTION_START, start),
        (moto_internals.EXECUTION_LOGIC, execution_logic),
        (moto_internals.WAIT_EVAL_BODY, wait),
        (moto_internals.LAMBDA_CLIENT, client_for),
        (moto_internals.RETRY_TIME, _NoSleep),
    ):
        yield


def load_definition(path: Any, substitutions: Mapping[str, str]) -> str:
    """The ASL file with SAM's DefinitionSubstitutions applied, as the deployed stack has it."""
    text = path.read_text(encoding="utf-8")
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    json.loads(text)  # fail here, clearly, on a broken definition
    return str(text)
