"""The deployed state machine, executed by moto in-process on simulated time.

moto runs ASL (`execute_state_machine`), but out of the box its Lambda tasks need Docker and its Wait
states really sleep. Here, for the tests and `dunning simulate`:
- Lambda tasks are dispatched to our real handlers in this process;
- Wait states block until the *simulated* clock reaches their timestamp, and the Scheduler moves that
  clock, waking one execution at a time in timestamp order (account id breaking ties), so a run is
  deterministic;
- retry back-off intervals are recorded, and (`retry_backoff`) slept on the simulated clock as a Wait is;
  their FULL jitter is seeded by the retry it is for, so they repeat exactly;
- optionally (`LambdaConcurrency`), the account's Lambda concurrency: each task invocation holds one of
  N slots for a simulated duration, and one that finds every slot busy is throttled as Lambda throttles.

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
import random
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from dunning.local import moto_internals
from dunning.local.lambda_context import REGION, invoke_handler

Handler = Callable[[dict[str, Any], Any], Any]
ACCOUNT = "123456789012"
SETTLE_TIMEOUT_SECONDS = 120
# A real account's execution waits a handful of times a day (the scan, a send, the decision after it). A
# Wait that keeps ending at the instant it starts (a decision that answers "now" again and again) never
# blocks, so the settle timeout cannot catch it: this bound on wakes per account and day does.
MAX_WAKES_PER_ACCOUNT_DAY = 100
# How long a task's invocation holds its concurrency slot unless told otherwise: a handler's real elapsed time
# would make a run depend on the machine, and the functions' sends and decisions take about this deployed.
DEFAULT_LAMBDA_DURATION_SECONDS = 1.0


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
    # Only Wait states count towards MAX_WAKES_PER_ACCOUNT_DAY: a retry's back-off is bounded by its
    # MaxAttempts and an invocation's duration moves the clock on, so neither can spin in place.
    counted: bool = field(default=True, compare=False)


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

    def sleep_until(self, wake_at: datetime, label: str, *, counted: bool = True) -> None:
        sleeper = _Sleeper(
            wake_at.astimezone(UTC), (label, next(self._tiebreak)), threading.Event(), counted=counted
        )
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
                if self._sleepers[0].counted:
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


@dataclass
class LambdaConcurrency:
    """The account's Lambda concurrency on the simulated clock: `limit` slots (its unreserved concurrency, all
    its functions sharing it); a task's invocation holds one from its start for its function's duration
    (`durations`, else `default_duration` seconds). An invocation that finds every slot busy is throttled,
    as Lambda answers Invoke then: TooManyRequestsException, HTTP 429, nothing run."""

    limit: int
    durations: Mapping[str, float] = field(default_factory=dict)
    default_duration: float = DEFAULT_LAMBDA_DURATION_SECONDS
    invocations: int = 0
    throttled: int = 0
    peak: int = 0  # the most slots ever busy at one instant
    _busy_until: list[datetime] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"Lambda concurrency must be at least 1, not {self.limit}")
        durations = [self.default_duration, *self.durations.values()]
        if min(durations) <= 0:
            # A slot released the instant it is taken would never be busy: no limit at all.
            raise ValueError(f"an invocation's simulated duration must be positive, not {min(durations)}")

    def duration(self, function: str) -> float:
        return self.durations.get(function, self.default_duration)

    def acquire(self, function: str, now: datetime) -> datetime | None:
        """A slot for an invocation of `function` starting `now`: when it is released, or None (throttled)."""
        with self._lock:
            while self._busy_until and self._busy_until[0] <= now:
                heapq.heappop(self._busy_until)
            if len(self._busy_until) >= self.limit:
                self.throttled += 1
                return None
            released = now + timedelta(seconds=self.duration(function))
            heapq.heappush(self._busy_until, released)
            self.invocations += 1
            self.peak = max(self.peak, len(self._busy_until))
            return released


def _too_many_requests(throttle: int) -> ClientError:
    """Lambda's answer to an Invoke over the account's concurrency. moto's Lambda task turns a ClientError
    from its client into the States error `Lambda.<Error.Code>`, which the ASL's Retry matches."""
    return ClientError(
        {
            "Error": {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."},
            "Reason": "ConcurrentInvocationLimitExceeded",
            "Type": "User",
            "ResponseMetadata": {"HTTPStatusCode": 429, "RequestId": f"embedded-throttle-{throttle}"},
        },
        "Invoke",
    )


class _InProcessLambda:
    """Stands in for the Lambda client a Task state uses: invokes our handler in this process."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        scheduler: Scheduler,
        concurrency: LambdaConcurrency | None = None,
    ) -> None:
        self._handlers = handlers
        self._scheduler = scheduler
        self._concurrency = concurrency

    def invoke(self, FunctionName: str, Payload: bytes | str | None = None, **_: Any) -> dict[str, Any]:
        name = FunctionName.rsplit(":function:", 1)[-1].split(":", 1)[0]
        handler = self._handlers[name]
        event = json.loads(Payload or "{}")
        if self._concurrency is None:
            return self._run(handler, event, name)
        released = self._concurrency.acquire(name, self._scheduler.clock.now())
        if released is None:
            raise _too_many_requests(self._concurrency.throttled)
        response = self._run(handler, event, name)
        # The handler's effects happen at the invocation's start; the task (and the execution) goes on only
        # when the invocation ends, so the slot is busy meanwhile and the next state starts after it.
        self._scheduler.sleep_until(released, str(event.get("account_id", "")), counted=False)
        return response

    def _run(self, handler: Handler, event: dict[str, Any], name: str) -> dict[str, Any]:
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


# The environment of the execution whose state is being retried in this thread: a Retrier's back-off and
# its jitter are told only numbers, and this is how they learn which execution (and attempt) they serve.
_retrying = threading.local()


def _retrying_env() -> Any:
    return getattr(_retrying, "env", None)


def _attempt(env: Any) -> str:
    """The retry being made: execution, state, how many retries of it so far; the empty string outside one."""
    try:
        context = env.states.context_object.context_object_data
        return f"{context['Execution']['Name']}|{context['State']['Name']}|{context['State']['RetryCount']}"
    except (AttributeError, KeyError, TypeError):
        return ""


class _SeededJitter:
    """What moto's JitterStrategy FULL draws from, in place of the process-wide `random`: unseeded, it would
    give a retry a different simulated time on every run. Each draw is seeded by the retry it is for (the
    execution, its state, the retry's number, the simulated instant), so it depends on nothing else that
    happened in the run, and executions throttled together spread apart as on AWS."""

    def __init__(self, clock: SimulatedClock) -> None:
        self._clock = clock

    def uniform(self, low: float, high: float) -> float:
        seed = f"{_attempt(_retrying_env())}|{self._clock.now().isoformat()}"
        return random.Random(seed).uniform(low, high)  # noqa: S311 - a simulation's jitter, nothing secret


@contextmanager
def simulated_step_functions(
    scheduler: Scheduler,
    handlers: Mapping[str, Handler],
    *,
    concurrency: LambdaConcurrency | None = None,
    retry_backoff: bool = False,
) -> Iterator[None]:
    """Patch moto's ASL interpreter as described in the module docstring (inside mock_aws). Every moto
    internal used here is listed, with the parameters relied on, in `dunning.local.moto_internals`.
    `concurrency`: Lambda's concurrency limit (none: every invocation runs, instantly). `retry_backoff`: a
    Retry waits out its interval on the simulated clock (else it retries at the same instant)."""
    original_start: Any = moto_internals.EXECUTION_START.get()
    original_logic: Any = moto_internals.EXECUTION_LOGIC.get()
    original_client: Any = moto_internals.LAMBDA_CLIENT.get()
    client_signature = inspect.signature(original_client)
    timestamp: Any = moto_internals.TIMESTAMP.get()
    parse_timestamp: Any = moto_internals.TIMESTAMP_PARSE.get()
    original_handle_retry: Any = moto_internals.HANDLE_RETRY.get()
    fake_lambda = _InProcessLambda(handlers, scheduler, concurrency)

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

    def handle_retry(state: Any, env: Any, failure_event: Any) -> Any:
        _retrying.env = env
        try:
            return original_handle_retry(state, env, failure_event)
        finally:
            _retrying.env = None

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

    class _RetryBackoff:
        @staticmethod
        def sleep(seconds: float) -> None:
            scheduler.retry_intervals.append(seconds)
            if retry_backoff:
                wake_at = scheduler.clock.now() + timedelta(seconds=seconds)
                scheduler.sleep_until(wake_at, _execution_label(_retrying_env()), counted=False)

    with moto_internals.patched(
        (moto_internals.EXECUTION_START, start),
        (moto_internals.EXECUTION_LOGIC, execution_logic),
        (moto_internals.WAIT_EVAL_BODY, wait),
        (moto_internals.LAMBDA_CLIENT, client_for),
        (moto_internals.HANDLE_RETRY, handle_retry),
        (moto_internals.RETRY_TIME, _RetryBackoff),
        (moto_internals.RETRY_JITTER_RANDOM, _SeededJitter(scheduler.clock)),
    ):
        yield


def load_definition(path: Any, substitutions: Mapping[str, str]) -> str:
    """The ASL file with SAM's DefinitionSubstitutions applied, as the deployed stack has it."""
    text = path.read_text(encoding="utf-8")
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    json.loads(text)  # fail here, clearly, on a broken definition
    return str(text)
