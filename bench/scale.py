"""Scale: AWS calls per acting account, the scan's memory, a quota model, a send burst and the cost of one
account walked to the legal hand-off: `python -m bench.scale [--quick]` (`make bench`).

(1) The daily run. ACTING accounts act on the measured day. RESTING accounts are on the ladder and do not
act that day. Their invoices go through the real ingest path: one invoice file is uploaded to the embedded AWS
and imported by the deployed ingest handler. `Simulation` then runs the days up to the measured one. On the
upload day every ladder gets its second reminder, since an account imported that late starts at the stage its
age gives. An acting account's firm notice then falls due on the measured day. A resting account's falls due
four days later, so it sleeps in the wake index through the measured day. Every AWS API call made from the
measured day's scan to the next scan is counted by service:operation (botocore's
`BaseClient._make_api_call`) and attributed to the function whose invocation made it. The harness's own
calls, which stand in for AWS itself (the scan queue drained as Lambda's SQS event source would), are counted
apart. Lambda invocations are counted by function, at the in-process dispatch of `embedded_sfn` and
`EmbeddedAws.scan`. Step Functions state transitions come from moto's execution histories: states entered plus
task retries, as AWS bills them. The run is made twice, with two sizes of the resting population, each in a
fresh process. If the resting accounts cost nothing, the two days' counts are equal.

(2) The scan's memory. Just before the measured day's real scan, the same scan (the schedule's invocation and
every page) runs once with a stand-in for StartExecution that starts nothing, under tracemalloc. The peak of
each invocation is taken from its own start. moto answers in-process, so the figure includes moto's side of
the calls: it is an upper bound on the function's own.

(3) The model. `model()` is a pure function of the per-acting-account counts of (1) and of stated
assumptions. It extrapolates to 50,000 accounts acting a day out of 2,000,000 on the ladder and compares the
result with each quota in docs/scale.md. Its inputs and outputs are all in the JSON.

(4) The burst. BURST ladders all fall due on one day (invoices due a week before, uploaded that morning), so
the scan wakes them at once and their sends fall within one hour (SendSpreadMinutes=60). Sends are paced at 14
a second by the stack (SesMaxSendRate) and refused over 14 a second by the embedded SES. Lambda has 10
concurrent executions, and each invocation holds one for a simulated second. The bench counts workflow_failed,
notices sent, throttles by kind, and the simulated minutes from the first send to the last. The STORM case
runs the same at concurrency 1: per slot, that is the load of ten times as many accounts at concurrency 10.

(5) The cost of one account walked all the way to the legal hand-off. A few accounts go from the upload of
one invoice to the hand-off. Everything their executions did, and the scan's StartExecution for each, is
counted and priced at the list prices in docs/scale.md. The scan's fixed daily part (its plan, and its pages'
Query and SendMessage) is shared by every account acting that day and is left out.

The embedded AWS parses the state machine's ASL once per definition (moto re-parses it at every
StartExecution; embedded_aws.parsed_once_per_definition). Even so, an execution-day costs CPU here (moto's
serialising of DynamoDB answers, then the handlers), so the default sizes are a tenth of a 10,000-account day.
The counts are per account and do not depend on the size, apart from the scan's page count and the functions'
policy cache (see docs/scale.md). Every case runs in a fresh process. The times printed are moto's in-process
times, not AWS's: only the counts carry over to production.
"""

from __future__ import annotations

import argparse
import contextvars
import gc
import json
import math
import multiprocessing
import platform
import statistics
import sys
import threading
import time
import tracemalloc
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from importlib import metadata
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from dunning.domain.policy import DEFAULT_POLICY, Policy
from dunning.ingest.formats import INVOICE_REQUIRED
from dunning.local.embedded_aws import REGION, EmbeddedAws, embedded_aws, load_template
from dunning.local.simulator import Simulation, Upload
from tests.support.files import csv_bytes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
HARNESS = "harness"  # calls made outside any function's invocation: the harness standing in for AWS
INVOICE_HEADER = (*INVOICE_REQUIRED, "amount_paid", "status", "segment")

# The measured day is a Thursday. The upload day is the Monday before it, so every send before the measured
# day falls on a business day.
MEASURED_DAY = date(2027, 6, 17)
UPLOAD_DAY = MEASURED_DAY - timedelta(days=3)
# Due dates that make the default ladder act on the measured day (firm_notice, day 14) or not (it falls due
# on Saturday, so Monday).
ACTING_DUE = MEASURED_DAY - timedelta(days=14)
RESTING_DUE = MEASURED_DAY - timedelta(days=12)


@dataclass(frozen=True)
class Sizes:
    acting: int  # accounts acting on the measured day
    resting: tuple[int, int]  # the two sizes of the population on the ladder not acting that day
    burst: int  # sends due within the hour, Lambda concurrency 10
    # Sends due within the hour with Lambda concurrency 1: the same load on the pool, per slot, as ten times
    # as many at concurrency 10 (every invocation holds its slot 1 s).
    storm: int
    escalated: int  # accounts walked to the legal hand-off


FULL = Sizes(acting=1_000, resting=(1_000, 2_000), burst=1_000, storm=1_000, escalated=5)
QUICK = Sizes(acting=200, resting=(200, 400), burst=200, storm=200, escalated=2)

P = ParamSpec("P")
T = TypeVar("T")


# --- shared ------------------------------------------------------------------------------------------


def local_instant(day: date, at: clock_time, policy: Policy = DEFAULT_POLICY) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(policy.business_timezone)).astimezone(UTC)


def invoice_rows(first: int, count: int, due: date, prefix: str) -> list[tuple[str, ...]]:
    """One open invoice per account, default segment, business customers in the business's time zone."""
    rows: list[tuple[str, ...]] = []
    for number in range(first, first + count):
        account = f"{prefix}-{number:06d}"
        rows.append((
            f"{account}-1", account, f"Customer {account} Ltd", f"ap@{account.lower()}.example.com", "EUR",
            "1250.00", (due - timedelta(days=30)).isoformat(), due.isoformat(), "0.00", "open", "default",
        ))  # fmt: skip
    return rows


def isolated(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Each case in a fresh interpreter: moto's state and the patches of one case never leak into another."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()


def quiet() -> None:
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


# --- counting ----------------------------------------------------------------------------------------

_DYNAMO_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
_INDEX_KEYS = {"wake": ("wake_pk", "wake_sk"), "due": ("due_pk", "due_sk")}


def _plain(value: Any) -> Any:
    """A key attribute as the resource layer gives it or as the client does ({"S": ...})."""
    return value["S"] if isinstance(value, dict) and "S" in value else value


@dataclass
class Footprint:
    """An item as DynamoDB bills it: its size and the index entries it has."""

    size: int
    index_keys: dict[str, tuple[Any, Any]]


@dataclass
class Meter:
    """Everything counted while `counting` is on. Calls are keyed by origin (the function whose invocation
    made them, or HARNESS) and service:operation. DynamoDB capacity units are estimated from the items' sizes
    in moto: a write is max(size before, after) rounded up to 1 KB, plus 1 per index entry written or removed
    (2 when its key moved); failed conditional writes are billed too; a read is rounded up to 4 KB, per
    request for Query and per item otherwise, half for eventually consistent reads."""

    clock: Callable[[], datetime]
    counting: bool = False
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    invocations: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # handler exceptions, by function:type
    handler_seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    read_units: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    write_units: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    send_times: list[datetime] = field(default_factory=list)
    trace_memory: bool = False
    memory: list[tuple[str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def product_calls(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (origin, api), n in self.calls.items():
            if origin != HARNESS:
                counts[api] += n
        return counts

    def harness_calls(self) -> Counter[str]:
        return Counter({api: n for (origin, api), n in self.calls.items() if origin == HARNESS})

    def add_call(self, origin: str, api: str, error: str | None, units: tuple[float, float]) -> None:
        with self._lock:
            self.calls[origin, api] += 1
            if error:
                self.errors[api, error] += 1
            self.read_units[origin] += units[0]
            self.write_units[origin] += units[1]
            if api == "sesv2:SendEmail" and error is None:
                self.send_times.append(self.clock())

    def add_invocation(self, kind: str, function: str, seconds: float, failure: str | None) -> None:
        with self._lock:
            self.invocations[kind] += 1
            self.handler_seconds[function].append(seconds)
            if failure:
                self.failures[f"{kind}:{failure}"] += 1


def _moto_table(name: str) -> Any:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(name)


def _footprint(table: Any, key: Mapping[str, Any]) -> Footprint | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    item = table.get_item(
        DynamoType({"S": str(_plain(key["PK"]))}), DynamoType({"S": str(_plain(key["SK"]))})
    )
    if item is None:
        return None
    keys = {}
    for index, (pk, sk) in _INDEX_KEYS.items():
        if pk in item.attrs:
            keys[index] = (item.attrs[pk].value, item.attrs[sk].value if sk in item.attrs else None)
    return Footprint(item.size(), keys)


def _write_units(before: Footprint | None, after: Footprint | None) -> int:
    size = max(before.size if before else 0, after.size if after else 0)
    units = max(1, math.ceil(size / 1024))
    if before is None and after is None:
        return units
    for index in _INDEX_KEYS:
        old = before.index_keys.get(index) if before else None
        new = after.index_keys.get(index) if after else None
        if old is None and new is None:
            continue
        if old is not None and new is not None and old != new:
            units += 2  # the entry moved: a delete and a put on the index
        elif old != new or (before and after and before.size != after.size):
            units += 1
    return units


def _read_units(sizes: Sequence[int], consistent: bool, per_item: bool) -> float:
    factor = 1.0 if consistent else 0.5
    if per_item:
        return sum(max(1, math.ceil(size / 4096)) * factor for size in sizes) or factor
    return max(1, math.ceil(sum(sizes) / 4096)) * factor


class _DynamoCapacity:
    """The capacity a DynamoDB call uses: item footprints read from moto before and after the call."""

    def __init__(self, operation: str, params: Mapping[str, Any]) -> None:
        self.operation = operation
        self.params = params
        self.before: list[Footprint | None] = []
        self.keys: list[tuple[str, Mapping[str, Any]]] = []
        if operation in _DYNAMO_WRITES:
            key = params.get("Key") or {name: params["Item"][name] for name in ("PK", "SK")}
            self.keys = [(params["TableName"], key)]
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        self.keys.append((table, {"PK": item["PK"], "SK": item["SK"]}))
                    else:
                        self.keys.append((table, request["DeleteRequest"]["Key"]))
        self.before = [_footprint(_moto_table(table), key) for table, key in self.keys]

    def units(self, response: Mapping[str, Any] | None) -> tuple[float, float]:
        """(read units, write units)."""
        if self.keys:
            if self.operation == "BatchWriteItem" and response is not None:
                unprocessed = sum(len(v) for v in response.get("UnprocessedItems", {}).values())
                if unprocessed:
                    raise RuntimeError("BatchWriteItem left items unprocessed: not modelled")
            after = [_footprint(_moto_table(table), key) for table, key in self.keys]
            return 0.0, float(sum(_write_units(b, a) for b, a in zip(self.before, after, strict=True)))
        if response is None:
            return 0.0, 0.0
        consistent = bool(self.params.get("ConsistentRead"))
        if self.operation == "GetItem":
            item = response.get("Item")
            found = _footprint(_moto_table(self.params["TableName"]), item) if item else None
            return _read_units([found.size if found else 0], consistent, per_item=True), 0.0
        if self.operation == "Query":
            table = _moto_table(self.params["TableName"])
            sizes = [getattr(_footprint(table, item), "size", 0) for item in response.get("Items", [])]
            return _read_units(sizes, consistent, per_item=False), 0.0
        if self.operation == "BatchGetItem":
            units = 0.0
            for name, items in response.get("Responses", {}).items():
                table = _moto_table(name)
                consistent = bool(self.params["RequestItems"][name].get("ConsistentRead"))
                sizes = [getattr(_footprint(table, item), "size", 0) for item in items]
                units += _read_units(sizes, consistent, per_item=True) if sizes else 0.0
            return units, 0.0
        return 0.0, 0.0


def _kind(event: Any, function_name: str) -> str:
    """An invocation's kind: the function and its op (step, fail; decide, handoff... of earlier versions)."""
    return f"{function_name}:{event['op']}" if isinstance(event, dict) and "op" in event else function_name


@contextmanager
def metered(meter: Meter) -> Iterator[Meter]:
    """Count every API call and every handler invocation into `meter` while `meter.counting` is on."""
    import botocore.client
    from botocore.exceptions import ClientError

    from dunning.local import embedded_aws as aws_module
    from dunning.local import embedded_sfn as sfn_module
    from dunning.local.lambda_context import current_invocation

    original_call = botocore.client.BaseClient._make_api_call

    def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if not meter.counting:
            return original_call(client, operation, params)
        invocation = current_invocation()
        service = client.meta.service_model.service_name
        capacity = _DynamoCapacity(operation, params) if service == "dynamodb" else None
        response, error = None, None
        try:
            response = original_call(client, operation, params)
        except ClientError as exc:
            error = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            raise
        finally:
            units = capacity.units(response) if capacity is not None else (0.0, 0.0)
            origin = invocation.function if invocation else HARNESS
            meter.add_call(origin, f"{service}:{operation}", error, units)
        return response

    def invoking(original: Callable[..., Any]) -> Callable[..., Any]:
        def invoke_handler(handler: Any, event: dict[str, Any], function_name: str) -> Any:
            if not meter.counting and not meter.trace_memory:
                return original(handler, event, function_name)
            tracing = meter.trace_memory and function_name == "dunning-scan"
            baseline = _peak_from_here() if tracing else 0
            started, failure = time.perf_counter(), None
            try:
                return original(handler, event, function_name)
            except Exception as exc:
                failure = type(exc).__name__
                raise
            finally:
                if tracing:
                    meter.memory.append(("page" if "Records" in event else "plan", _peak_since(baseline)))
                if meter.counting:
                    seconds = time.perf_counter() - started
                    meter.add_invocation(_kind(event, function_name), function_name, seconds, failure)

        return invoke_handler

    # Both modules call the handler through their own global name for it: each is wrapped where it is used.
    modules = (sfn_module, aws_module)
    saved = [module.__dict__["invoke_handler"] for module in modules]
    botocore.client.BaseClient._make_api_call = make_api_call
    for module, original in zip(modules, saved, strict=True):
        module.__dict__["invoke_handler"] = invoking(original)
    try:
        with tasks_in_submitters_context():
            yield meter
    finally:
        botocore.client.BaseClient._make_api_call = original_call
        for module, original in zip(modules, saved, strict=True):
            module.__dict__["invoke_handler"] = original


@contextmanager
def tasks_in_submitters_context() -> Iterator[None]:
    """A thread pool's task runs in a fresh context, which loses the invocation it was submitted from: the
    case packet's upload (upload_fileobj, on s3transfer's threads) was counted as the harness's. Meanwhile
    each task runs in a copy of its submitter's context."""
    original: Any = ThreadPoolExecutor.submit

    def submit(pool: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return original(pool, contextvars.copy_context().run, fn, *args, **kwargs)

    ThreadPoolExecutor.submit = submit  # type: ignore[assignment]
    try:
        yield
    finally:
        ThreadPoolExecutor.submit = original  # type: ignore[method-assign]


def _peak_from_here() -> int:
    # Collected first: otherwise whether the cyclic collector happens to run inside the invocation decides
    # how much garbage its peak holds (seen: the same page at 1.2 MB and at 0.6 MB).
    gc.collect()
    tracemalloc.reset_peak()
    return tracemalloc.get_traced_memory()[0]


def _peak_since(baseline: int) -> int:
    return tracemalloc.get_traced_memory()[1] - baseline


@dataclass(frozen=True)
class Transitions:
    executions: int
    state_transitions: int  # states entered + task retries
    # Up to the first Wait state entered (inclusive): what an execution does as soon as the scan starts it.
    at_start: int
    states_entered: dict[str, int]
    retries: int
    statuses: dict[str, int]


def transitions(aws: EmbeddedAws, keep: Callable[[str], bool] = lambda name: True) -> Transitions:
    """State transitions of the executions whose name `keep`s, from their histories (harness calls)."""
    entered: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    retries = executions = at_start = 0
    for execution in aws.executions():
        if not keep(execution["name"]):
            continue
        executions += 1
        statuses[execution["status"]] += 1
        events = aws.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)[
            "events"
        ]
        scheduled = tasks = 0
        waited = False
        for event in events:
            kind = event["type"]
            if kind.endswith("StateEntered"):
                entered[event["stateEnteredEventDetails"]["name"]] += 1
                at_start += not waited
                waited = waited or kind == "WaitStateEntered"
                tasks += kind == "TaskStateEntered"
            elif kind in ("TaskScheduled", "LambdaFunctionScheduled"):
                scheduled += 1
        retries += scheduled - tasks
    return Transitions(
        executions=executions,
        state_transitions=entered.total() + retries,
        at_start=at_start,
        states_entered=dict(sorted(entered.items())),
        retries=retries,
        statuses=dict(statuses),
    )


def per(counts: Mapping[str, float], accounts: int, digits: int = 4) -> dict[str, float]:
    return {key: round(value / accounts, digits) for key, value in sorted(counts.items())}


# --- (1) and (2): the daily run, the scan's memory ----------------------------------------------------


@dataclass(frozen=True)
class DailyRun:
    acting: int
    resting: int
    due_invoices: int
    # the measured day
    product_calls: dict[str, int]
    harness_calls: dict[str, int]
    calls_by_function: dict[str, dict[str, int]]
    errors: dict[str, int]
    invocations: dict[str, int]
    handler_failures: dict[str, int]
    transitions: dict[str, Any]
    read_units: float
    write_units: float
    # what the scan's invocations (and any escalate invocation of the executions they start, before the scan
    # ends) did
    at_start: dict[str, float]
    ses_sends: int
    scan: dict[str, Any]
    starts_plus_describes: int
    # the scan's memory (stand-in StartExecution)
    scan_memory_plan_bytes: int
    scan_memory_page_peak_bytes: int
    scan_memory_pages: int
    scan_memory_ladders_read: int
    # extras
    handler_seconds_median: dict[str, float]
    warmup_seconds: float
    measured_day_seconds: float
    failures: list[str]


def daily_run(acting: int, resting: int) -> DailyRun:
    quiet()
    rows = invoice_rows(0, acting, ACTING_DUE, "ACT") + invoice_rows(0, resting, RESTING_DUE, "RST")
    body = csv_bytes(INVOICE_HEADER, rows)
    print(f"  daily run: {acting:,} acting + {resting:,} resting accounts ...", flush=True)
    started = time.perf_counter()
    with embedded_aws(local_instant(UPLOAD_DAY, clock_time(0))) as aws:
        meter = Meter(aws.now)
        with metered(meter):
            simulation = Simulation(aws, DEFAULT_POLICY)
            simulation.schedule(UPLOAD_DAY, Upload("invoices", "invoices.csv", body))
            day = UPLOAD_DAY
            while day < MEASURED_DAY:
                simulation.run_day(day)
                day += timedelta(days=1)
            imports = [summary for result in simulation.import_results for summary in result["imports"]]
            if sum(summary["imported"] for summary in imports) != len(rows) or aws.failed_uploads:
                raise RuntimeError(f"the upload did not import every row: {imports} {aws.failed_uploads}")
            warmup = time.perf_counter() - started
            print(f"  daily run: warmed up in {warmup:.0f} s; the measured day ...", flush=True)

            simulation.run_until_day(MEASURED_DAY)
            scan_at = simulation.at(MEASURED_DAY, aws.scan_time)
            aws.run_until(scan_at)
            memory = scan_memory(aws, meter)

            started = time.perf_counter()
            meter.counting = True
            summary = aws.scan()
            at_start = {
                "decides": escalate_decisions(meter.invocations),
                "read_units": sum(meter.read_units.values()),
                "write_units": sum(meter.write_units.values()),
            }
            next_scan = simulation.at(MEASURED_DAY + timedelta(days=1), aws.scan_time)
            aws.scheduler.run_until(next_scan, inclusive=False)
            meter.counting = False
            seconds = time.perf_counter() - started
        tag = f"-d{MEASURED_DAY.strftime('%Y%m%d')}-"
        counted = transitions(aws, lambda name: tag in name)
        failures = list(aws.scheduler.failures)
    product = meter.product_calls()
    by_function: dict[str, dict[str, int]] = defaultdict(dict)
    for (origin, api), count in sorted(meter.calls.items()):
        by_function[origin][api] = count
    if len(summary["started"]) != acting or counted.executions != acting:
        raise RuntimeError(
            f"{len(summary['started'])} executions started, {counted.executions} found, for {acting} acting"
        )
    return DailyRun(
        acting=acting,
        resting=resting,
        due_invoices=len(rows),
        product_calls=dict(sorted(product.items())),
        harness_calls=dict(sorted(meter.harness_calls().items())),
        calls_by_function=dict(by_function),
        errors={f"{api} {code}": n for (api, code), n in sorted(meter.errors.items())},
        invocations=dict(sorted(meter.invocations.items())),
        handler_failures=dict(meter.failures),
        transitions=asdict(counted),
        read_units=round(sum(meter.read_units.values()), 1),
        write_units=round(sum(meter.write_units.values()), 1),
        at_start={key: round(value, 1) for key, value in at_start.items()},
        ses_sends=len(meter.send_times),
        scan={key: summary[key] for key in ("pages", "pages_scanned", "items_read", "already_started")}
        | {"started": len(summary["started"])},
        starts_plus_describes=product["stepfunctions:StartExecution"]
        + product["stepfunctions:DescribeExecution"],
        scan_memory_plan_bytes=memory["plan"],
        scan_memory_page_peak_bytes=memory["page"],
        scan_memory_pages=memory["pages"],
        scan_memory_ladders_read=memory["ladders"],
        handler_seconds_median={
            name: round(statistics.median(values), 4)
            for name, values in sorted(meter.handler_seconds.items())
        },
        warmup_seconds=round(warmup, 1),
        measured_day_seconds=round(seconds, 1),
        failures=failures[:5],
    )


@contextmanager
def untracked_moto_instances() -> Iterator[None]:
    """moto keeps every model instance it ever creates in a list (`InstanceTrackerMeta`), the copies of the
    items each Query reads included. That list's growth is moto's, not the function's, and one of its resizes
    (800 KB at once) landing in one page made that page's peak twice the others'. Not tracked meanwhile."""
    from moto.core.common_models import BaseModel

    original = BaseModel.__dict__["__new__"]

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(new)  # type: ignore[method-assign]
    try:
        yield
    finally:
        BaseModel.__new__ = original  # type: ignore[method-assign]


def scan_memory(aws: EmbeddedAws, meter: Meter) -> dict[str, int]:
    """The scan's plan and pages under tracemalloc, with a StartExecution that starts nothing (the same scan
    runs for real just after: names are the idempotency key, and nothing was started)."""
    from dunning.adapters.stepfunctions import StepFunctions

    requested: list[str] = []

    def start(self: StepFunctions, name: str, payload: dict[str, Any]) -> bool:
        requested.append(name)
        return True

    original = StepFunctions.start
    StepFunctions.start = start  # type: ignore[method-assign]
    meter.trace_memory, meter.memory = True, []
    tracemalloc.start()
    try:
        with untracked_moto_instances():
            summary = aws.scan()
    finally:
        tracemalloc.stop()
        meter.trace_memory = False
        StepFunctions.start = original  # type: ignore[method-assign]
    pages = [peak for kind, peak in meter.memory if kind == "page"]
    plans = [peak for kind, peak in meter.memory if kind == "plan"]
    return {
        "plan": max(plans),
        "page": max(pages),
        "pages": len(pages),
        "ladders": int(summary["items_read"]),
    }


# --- (3) the model ------------------------------------------------------------------------------------

# docs/scale.md, "AWS quotas this design runs against": (name, limit, unit).
QUOTAS: tuple[tuple[str, float, str], ...] = (
    ("StartExecution refill, us-east-1/us-west-2/eu-west-1", 300, "per s"),
    ("StartExecution refill, other Regions", 150, "per s"),
    ("DescribeExecution refill, us-east-1/us-west-2/eu-west-1", 15, "per s"),
    ("StateTransition refill, us-east-1/us-west-2/eu-west-1", 5_000, "per s"),
    ("StateTransition refill, other Regions", 800, "per s"),
    ("Lambda concurrency, default", 1_000, "executions"),
    ("Lambda concurrency, new account", 10, "executions"),
    ("SES maximum send rate (SesMaxSendRate default)", 14, "per s"),
    ("DynamoDB on-demand write units, table", 40_000, "per s"),
    ("DynamoDB on-demand read units, table", 40_000, "per s"),
    ("DynamoDB write units, one partition (the SES pacer's)", 1_000, "per s"),
    ("Open executions", 1_000_000, "executions"),
    ("SQS in-flight messages, standard queue", 120_000, "messages"),
)


def model(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The daily run at `inputs["accounts_acting"]` accounts acting a day, from per-acting-account counts
    (measured) and assumptions (stated), against each quota. Pure: everything it uses is in `inputs`.

    Two phases, which do not overlap. The scan, at the schedule's time: its pages start the executions,
    `scan_max_concurrency` pages at a time, each start taking `start_latency_ms`, and each execution runs its
    first Decide at once, then waits. The sends: spread evenly over `send_spread_minutes` from the window's
    opening, or paced at the SES rate when that is slower. The accounts on the ladder that do not act enter
    nowhere: they cost nothing a day (measured, `resting_costs_nothing`)."""
    acting = int(inputs["accounts_acting"])
    per_account = inputs["per_acting_account"]
    per_page = inputs["scan_calls_per_page"]
    durations = inputs["lambda_seconds"]
    shards, page_size, concurrency = inputs["shards"], inputs["page_size"], inputs["scan_max_concurrency"]
    latency = inputs["start_latency_ms"] / 1000

    # The scan: pages of up to page_size ladders per shard (ladders hash evenly over the shards).
    pages = shards * max(1, math.ceil(acting / shards / page_size))
    scan_seconds = (acting * latency + pages * inputs["page_overhead_seconds"]) / concurrency
    start_rate = min(concurrency / latency, acting / scan_seconds) if acting else 0.0
    scan_phase = {
        "StartExecution": start_rate,
        "DescribeExecution": start_rate
        * per_account["describe_executions"]
        / per_account["start_executions"],
        "StateTransition": start_rate * per_account["transitions_at_start"],
        "Lambda concurrency": concurrency
        + start_rate * per_account["decides_at_start"] * durations["escalate"],
        "write units": start_rate * per_account["write_units_at_start"],
        "read units": start_rate * per_account["read_units_at_start"],
        "pacer partition write units": 0.0,
        "SES sends": 0.0,
    }
    # The sends: spread over SendSpreadMinutes, unless the SES rate is slower.
    sends = acting * per_account["sends"]
    spread_seconds = inputs["send_spread_minutes"] * 60
    send_seconds = max(spread_seconds, sends / inputs["ses_max_send_rate"])
    send_rate = sends / send_seconds if send_seconds else float(sends)
    per_send = {
        key: per_account[key] / per_account["sends"] for key in per_account if key.endswith("_after_start")
    }
    send_phase = {
        "StartExecution": 0.0,
        "DescribeExecution": 0.0,
        "StateTransition": send_rate * per_send["transitions_after_start"],
        "Lambda concurrency": send_rate
        * (durations["send_notice"] + per_send["decides_after_start"] * durations["escalate"]),
        "write units": send_rate * per_send["write_units_after_start"],
        "read units": send_rate * per_send["read_units_after_start"],
        "pacer partition write units": send_rate,
        "SES sends": send_rate,
    }
    peak = {name: max(scan_phase[name], send_phase[name]) for name in scan_phase}
    phase_of = {name: "scan" if scan_phase[name] >= send_phase[name] else "sends" for name in scan_phase}
    in_flight = concurrency  # pages being scanned; the rest of the day's pages wait, not in flight
    demand = {
        "StartExecution": peak["StartExecution"],
        "DescribeExecution": peak["DescribeExecution"],
        "StateTransition": peak["StateTransition"],
        "Lambda concurrency": peak["Lambda concurrency"],
        "SES": peak["SES sends"],
        "DynamoDB on-demand write units, table": peak["write units"],
        "DynamoDB on-demand read units, table": peak["read units"],
        "pacer": peak["pacer partition write units"],
        "Open executions": float(acting),  # each lives at most a day: the day's acting accounts
        "SQS": float(in_flight),
    }
    rows = []
    for name, limit, unit in QUOTAS:
        key = next(k for k in demand if name.startswith(k) or k in name)
        metric = {
            "SES": "SES sends",
            "pacer": "pacer partition write units",
            "DynamoDB on-demand write units, table": "write units",
            "DynamoDB on-demand read units, table": "read units",
        }.get(key, key)
        rows.append({
            "quota": name,
            "limit": limit,
            "unit": unit,
            "peak": round(demand[key], 2),
            "fraction": round(demand[key] / limit, 4),
            "when": phase_of.get(metric, "all day"),
        })  # fmt: skip
    binding = max(rows, key=lambda row: row["fraction"])
    return {
        "scan_pages": pages,
        "scan_minutes": round(scan_seconds / 60, 2),
        "send_minutes": round(send_seconds / 60, 1),
        "start_rate_per_second": round(start_rate, 1),
        "send_rate_per_second": round(send_rate, 2),
        # The longest StartExecution latency that keeps the scan inside `daily_run_target_minutes`.
        "start_latency_ms_for_target": round(
            (inputs["daily_run_target_minutes"] * 60 * concurrency - pages * inputs["page_overhead_seconds"])
            / acting
            * 1000,
            1,
        )
        if acting
        else None,
        "daily_calls": {
            api: round(per_account["calls"].get(api, 0) * acting + per_page.get(api, 0) * pages)
            for api in sorted({*per_account["calls"], *per_page})
        },
        "quotas": rows,
        "binding_first": binding["quota"],
        "over_half": [row["quota"] for row in rows if row["fraction"] >= 0.5],
    }


# --- (4) the burst ------------------------------------------------------------------------------------

BURST_DAY = MEASURED_DAY
BURST_PARAMETERS = {"SendSpreadMinutes": "60", "SesMaxSendRate": "14"}
BURST_LAMBDA_CONCURRENCY = 10
BURST_SES_RATE = 14


@dataclass(frozen=True)
class Burst:
    accounts: int
    parameters: dict[str, str]
    lambda_concurrency: int
    ses_max_send_rate: int
    lambda_durations: str
    workflow_failed: int
    notices_sent: int
    throttles: dict[str, int]
    first_to_last_send_minutes: float
    first_send: str | None
    last_send: str | None
    lambda_concurrency_peak: int
    invocations: dict[str, int]
    handler_failures: dict[str, int]
    transitions: dict[str, Any]
    seconds: float
    failures: list[str]


def burst(accounts: int, concurrency: int = BURST_LAMBDA_CONCURRENCY) -> Burst:
    """`accounts` ladders whose second reminder falls due on BURST_DAY (invoices due a week before, uploaded
    that morning): the scan wakes them all at once and their sends fall in the first SendSpreadMinutes of the
    window, with Lambda's concurrency, the stack's pacer and the embedded SES's rate all limited."""
    quiet()
    rows = invoice_rows(0, accounts, BURST_DAY - timedelta(days=7), "BST")
    print(
        f"  burst: {accounts:,} sends due within the hour, Lambda concurrency {concurrency} ...", flush=True
    )
    started = time.perf_counter()
    start = local_instant(BURST_DAY, clock_time(0))
    limited = embedded_aws(
        start,
        parameters=BURST_PARAMETERS,
        lambda_concurrency=concurrency,
        ses_max_send_rate=BURST_SES_RATE,
    )
    with limited as aws:
        meter = Meter(aws.now)
        with metered(meter):
            simulation = Simulation(aws, DEFAULT_POLICY)
            simulation.run_until_day(BURST_DAY)
            result = aws.upload("invoices", "invoices.csv", csv_bytes(INVOICE_HEADER, rows), aws.now())
            if sum(summary["imported"] for summary in result["imports"]) != accounts:
                raise RuntimeError(f"the upload did not import every row: {result}")
            aws.run_until(simulation.at(BURST_DAY, aws.scan_time))
            meter.counting = True
            aws.scan()
            aws.scheduler.run_until(
                simulation.at(BURST_DAY + timedelta(days=1), aws.scan_time), inclusive=False
            )
            meter.counting = False
        counted = transitions(aws)
        throttles = dict(aws.throttles)
        peak = aws.lambda_concurrency.peak if aws.lambda_concurrency else 0
        failures = list(aws.scheduler.failures)
    throttles["send_throttled (stack pacer)"] = sum(
        n for kind, n in meter.failures.items() if kind.endswith(":SendThrottled")
    )
    sends = sorted(meter.send_times)
    return Burst(
        accounts=accounts,
        parameters=BURST_PARAMETERS,
        lambda_concurrency=concurrency,
        ses_max_send_rate=BURST_SES_RATE,
        lambda_durations="the embedded default, 1 s an invocation",
        workflow_failed=meter.invocations["dunning-escalate:fail"],
        notices_sent=meter.calls["dunning-send-notice", "sesv2:SendEmail"]
        - sum(n for (api, _), n in meter.errors.items() if api == "sesv2:SendEmail"),
        throttles=throttles,
        first_to_last_send_minutes=round((sends[-1] - sends[0]).total_seconds() / 60, 1) if sends else 0.0,
        first_send=sends[0].isoformat() if sends else None,
        last_send=sends[-1].isoformat() if sends else None,
        lambda_concurrency_peak=peak,
        invocations=dict(sorted(meter.invocations.items())),
        handler_failures=dict(meter.failures),
        transitions=asdict(counted),
        seconds=round(time.perf_counter() - started, 1),
        failures=[failure.splitlines()[0] for failure in failures[:5]],
    )


# --- (5) the cost of one account walked to the legal hand-off -----------------------------------------

# docs/scale.md, "Prices (list, us-east-1)", USD.
PRICES = {
    "state_transition": 0.025 / 1_000,
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_request": 0.20 / 1_000_000,
    "ses_message": 0.10 / 1_000,
    "dynamodb_write_unit": 0.625 / 1_000_000,
    "dynamodb_read_unit": 0.125 / 1_000_000,
    "s3_put_copy_post_list": 0.005 / 1_000,
    "s3_get": 0.0004 / 1_000,
}
# Assumed: StartExecution's latency as a scan page sees it (the page's function is billed for it).
START_LATENCY_MS = 30.0
# Assumed billed duration of one invocation (moto's in-process times are no guide to Lambda's): a decision
# is a few DynamoDB calls; a send renders the notice (PDFs for letters and invoice copies), archives it and
# calls SES; a hand-off builds the case packet; the scan's page waits on each StartExecution.
LAMBDA_SECONDS = {"escalate": 0.2, "send_notice": 1.0, "scan_per_start": START_LATENCY_MS / 1000}
ESCALATED_FIRST_DAY = date(2027, 3, 1)  # a Monday
ESCALATED_DAYS = 100
S3_PUTS = {"PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "ListObjectsV2", "ListObjects"}
S3_GETS = {"GetObject", "HeadObject"}


@dataclass(frozen=True)
class EscalationCost:
    accounts: int
    days: int
    handed_off: int
    notices_sent: int
    per_account: dict[str, float]
    cost_per_account: dict[str, float]
    total_per_account: float
    calls_per_account: dict[str, float]
    invocations_per_account: dict[str, float]
    transitions: dict[str, Any]
    scan_fixed_calls_per_day: dict[str, float]
    seconds: float
    failures: list[str]


def memory_gb(function_logical_id: str) -> float:
    template = load_template()
    own = template["Resources"][function_logical_id]["Properties"].get("MemorySize")
    return float(own or template["Globals"]["Function"]["MemorySize"]) / 1024


def price(per_account: Mapping[str, float]) -> dict[str, float]:
    """Dollars an account, by item, at list prices (pure)."""
    return {
        "step_functions": per_account["state_transitions"] * PRICES["state_transition"],
        "lambda_requests": per_account["lambda_invocations"] * PRICES["lambda_request"],
        "lambda_duration": per_account["lambda_gb_seconds"] * PRICES["lambda_gb_second_arm64"],
        "ses": per_account["ses_messages"] * PRICES["ses_message"],
        "dynamodb_writes": per_account["dynamodb_write_units"] * PRICES["dynamodb_write_unit"],
        "dynamodb_reads": per_account["dynamodb_read_units"] * PRICES["dynamodb_read_unit"],
        "s3_put_list": per_account["s3_put_list_requests"] * PRICES["s3_put_copy_post_list"],
        "s3_get": per_account["s3_get_requests"] * PRICES["s3_get"],
    }


def escalation_cost(accounts: int) -> EscalationCost:
    """`accounts` accounts with one invoice each, uploaded five days before it falls due and never paid,
    walked up the default ladder to the legal hand-off; everything their executions did, per account."""
    from dunning.adapters.ledger import Ledger
    from dunning.domain.events import EventType

    quiet()
    due = ESCALATED_FIRST_DAY + timedelta(days=5)
    rows = invoice_rows(0, accounts, due, "ESC")
    print(f"  cost: {accounts} accounts walked to the legal hand-off ({ESCALATED_DAYS} days) ...", flush=True)
    started = time.perf_counter()
    with embedded_aws(local_instant(ESCALATED_FIRST_DAY, clock_time(0))) as aws:
        meter = Meter(aws.now)
        with metered(meter):
            result = aws.upload("invoices", "invoices.csv", csv_bytes(INVOICE_HEADER, rows), aws.now())
            if sum(summary["imported"] for summary in result["imports"]) != accounts:
                raise RuntimeError(f"the upload did not import every row: {result}")
            meter.counting = True
            Simulation(aws, DEFAULT_POLICY).run(ESCALATED_FIRST_DAY, ESCALATED_DAYS)
            meter.counting = False
        counted = transitions(aws)
        events = Counter(str(event["type"]) for event in Ledger(aws.dynamodb, aws.table_name).all_events())
        failures = list(aws.scheduler.failures)
    handed_off = events[EventType.CASE_OPENED]
    if handed_off != accounts:
        raise RuntimeError(f"{handed_off} of {accounts} accounts were handed off; events: {dict(events)}")
    # What each account's walk did: its executions' functions, and the scan's StartExecution for it. The
    # scan's own plan and pages are the same every day whoever acts, so they are left out.
    walk = ("dunning-escalate", "dunning-send-notice")
    calls: Counter[str] = Counter()
    for (origin, api), n in meter.calls.items():
        if origin in walk or (origin == "dunning-scan" and api == "stepfunctions:StartExecution"):
            calls[api] += n
    scan_fixed = Counter(
        {
            api: n
            for (origin, api), n in meter.calls.items()
            if origin == "dunning-scan" and api != "stepfunctions:StartExecution"
        }
    )
    invocations = Counter({kind: n for kind, n in meter.invocations.items() if kind.startswith(walk)})
    escalate = sum(n for kind, n in invocations.items() if kind.startswith("dunning-escalate"))
    sends = sum(n for kind, n in invocations.items() if kind.startswith("dunning-send-notice"))
    starts = calls["stepfunctions:StartExecution"]
    gb_seconds = (
        escalate * LAMBDA_SECONDS["escalate"] * memory_gb("EscalateFunction")
        + sends * LAMBDA_SECONDS["send_notice"] * memory_gb("SendNoticeFunction")
        + starts * LAMBDA_SECONDS["scan_per_start"] * memory_gb("ScanOverdueFunction")
    )
    s3 = {api.split(":", 1)[1]: n for api, n in calls.items() if api.startswith("s3:")}
    totals = {
        "state_transitions": counted.state_transitions,
        "lambda_invocations": escalate + sends,
        "lambda_gb_seconds": gb_seconds,
        "ses_messages": calls["sesv2:SendEmail"],
        "dynamodb_write_units": sum(meter.write_units[origin] for origin in walk),
        "dynamodb_read_units": sum(meter.read_units[origin] for origin in walk),
        "s3_put_list_requests": sum(n for op, n in s3.items() if op in S3_PUTS),
        "s3_get_requests": sum(n for op, n in s3.items() if op in S3_GETS),
    }
    per_account = {key: round(value / accounts, 3) for key, value in totals.items()}
    cost = price(per_account)
    return EscalationCost(
        accounts=accounts,
        days=ESCALATED_DAYS,
        handed_off=handed_off,
        notices_sent=events[EventType.NOTICE_SENT],
        per_account=per_account,
        cost_per_account={key: round(value, 7) for key, value in cost.items()},
        total_per_account=round(sum(cost.values()), 6),
        calls_per_account=per(calls, accounts, 2),
        invocations_per_account=per(invocations, accounts, 2),
        transitions=asdict(counted),
        scan_fixed_calls_per_day=per(scan_fixed, ESCALATED_DAYS, 2),
        seconds=round(time.perf_counter() - started, 1),
        failures=[failure.splitlines()[0] for failure in failures[:5]],
    )


# --- report ------------------------------------------------------------------------------------------


def render(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.rjust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def scan_own_calls(run: DailyRun) -> dict[str, int]:
    """The scan function's calls other than its starts: its plan and its pages, the same every day for a
    given number of pages, whoever acts."""
    calls = run.calls_by_function.get("dunning-scan", {})
    return {api: n for api, n in calls.items() if api != "stepfunctions:StartExecution"}


def escalate_decisions(invocations: Mapping[str, int]) -> int:
    """The escalate function's invocations on the ladder's way (not a failure recorded): its steps (the
    legal hand-off), and the decide ops of earlier versions. A day's send is send_notice's step."""
    return sum(
        n
        for kind, n in invocations.items()
        if kind.startswith("dunning-escalate") and kind != "dunning-escalate:fail"
    )


def per_acting_account(run: DailyRun) -> dict[str, Any]:
    """The measured day divided by the accounts acting on it (the scan's own calls by its pages instead):
    the model's counts."""
    acting = run.acting
    scan_own = scan_own_calls(run)
    walk = {api: n - scan_own.get(api, 0) for api, n in run.product_calls.items() if n > scan_own.get(api, 0)}
    decides = escalate_decisions(run.invocations)
    pages = run.scan["pages_scanned"]
    return {
        "calls": per(walk, acting),
        "calls_total": round(sum(walk.values()) / acting, 3),
        "scan_calls_per_page": per(scan_own, pages),
        "scan_invocations_per_page": round(run.invocations.get("dunning-scan", 0) / pages, 4),
        "harness_calls_per_page": per(run.harness_calls, pages),
        "invocations": per({k: n for k, n in run.invocations.items() if k != "dunning-scan"}, acting),
        "start_executions": run.product_calls.get("stepfunctions:StartExecution", 0) / acting,
        "describe_executions": run.product_calls.get("stepfunctions:DescribeExecution", 0) / acting,
        "starts_plus_describes": round(run.starts_plus_describes / acting, 4),
        "sends": run.ses_sends / acting,
        "state_transitions": round(run.transitions["state_transitions"] / acting, 3),
        "transitions_at_start": round(run.transitions["at_start"] / acting, 3),
        "transitions_after_start": round(
            (run.transitions["state_transitions"] - run.transitions["at_start"]) / acting, 3
        ),
        "decides_at_start": round(run.at_start["decides"] / acting, 3),
        "decides_after_start": round((decides - run.at_start["decides"]) / acting, 3),
        "read_units": round(run.read_units / acting, 2),
        "write_units": round(run.write_units / acting, 2),
        "read_units_at_start": round(run.at_start["read_units"] / acting, 2),
        "write_units_at_start": round(run.at_start["write_units"] / acting, 2),
        "read_units_after_start": round((run.read_units - run.at_start["read_units"]) / acting, 2),
        "write_units_after_start": round((run.write_units - run.at_start["write_units"]) / acting, 2),
    }


def compare_days(runs: Sequence[DailyRun]) -> dict[str, Any]:
    """The measured day's counts at each size of the resting population: equal when resting costs nothing."""
    keys = ("product_calls", "invocations", "read_units", "write_units", "ses_sends", "scan")
    seen = [{key: getattr(run, key) for key in keys} | {"transitions": run.transitions["state_transitions"]}
            for run in runs]  # fmt: skip
    differences = {
        key: [day[key] for day in seen] for key in seen[0] if any(day[key] != seen[0][key] for day in seen)
    }
    return {
        "acting": runs[0].acting,
        "resting_sizes": [run.resting for run in runs],
        "equal": not differences,
        "differences": differences,
    }


def stack_inputs() -> dict[str, Any]:
    """What the model takes from the product itself: the scan's page size and shards, the queue's
    MaximumConcurrency, the stack's SendSpreadMinutes and SesMaxSendRate defaults."""
    from dunning.adapters.keys import DUE_SHARDS
    from dunning.services.scan import PAGE_SIZE

    template = load_template()
    events = template["Resources"]["ScanOverdueFunction"]["Properties"]["Events"]
    parameters = template["Parameters"]
    return {
        "shards": DUE_SHARDS,
        "page_size": PAGE_SIZE,
        "scan_max_concurrency": int(events["ScanPages"]["Properties"]["ScalingConfig"]["MaximumConcurrency"]),
        "send_spread_minutes": int(parameters["SendSpreadMinutes"]["Default"]),
        "ses_max_send_rate": float(parameters["SesMaxSendRate"]["Default"]),
    }


def model_inputs(per_account: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "calls", "start_executions", "describe_executions", "sends", "transitions_at_start",
        "transitions_after_start", "decides_at_start", "decides_after_start", "read_units_at_start",
        "write_units_at_start", "read_units_after_start", "write_units_after_start",
    )  # fmt: skip
    return {
        "accounts_acting": 50_000,
        "accounts_on_ladder": 2_000_000,  # enters nothing: the resting accounts cost nothing a day
        "per_acting_account": {key: per_account[key] for key in keys},
        "scan_calls_per_page": per_account["scan_calls_per_page"],
        # Assumed: StartExecution's latency as a page sees it, and a page's own work (its Query, the next
        # page's SendMessage, the invocation) besides its starts.
        "start_latency_ms": START_LATENCY_MS,
        "page_overhead_seconds": 0.5,
        "lambda_seconds": {
            "escalate": LAMBDA_SECONDS["escalate"],
            "send_notice": LAMBDA_SECONDS["send_notice"],
        },
        "daily_run_target_minutes": 15,
        **stack_inputs(),
    }


def daily_table(runs: Sequence[dict[str, Any]]) -> str:
    """The measured day at each resting size: per acting account, and the scan's own calls per day."""
    walks = [per_acting_account(DailyRun(**run)) for run in runs]
    cells: list[tuple[str, ...]] = []
    for api in sorted(set().union(*(walk["calls"] for walk in walks))):
        cells.append((api, *(f"{walk['calls'].get(api, 0):.3f}" for walk in walks)))
    cells.append(("all calls", *(f"{walk['calls_total']:.3f}" for walk in walks)))
    for kind in sorted(set().union(*(walk["invocations"] for walk in walks))):
        cells.append((f"invocations {kind}", *(f"{walk['invocations'].get(kind, 0):.3f}" for walk in walks)))
    cells.append(("state transitions", *(f"{walk['state_transitions']:.3f}" for walk in walks)))
    cells.append(("DynamoDB write units (est.)", *(f"{walk['write_units']:.2f}" for walk in walks)))
    cells.append(("DynamoDB read units (est.)", *(f"{walk['read_units']:.2f}" for walk in walks)))
    day: list[tuple[str, ...]] = [("pages", *(str(run["scan"]["pages_scanned"]) for run in runs))]
    own = [scan_own_calls(DailyRun(**run)) for run in runs]
    for api in sorted(set().union(*own)):
        day.append((f"scan's own {api}", *(str(calls.get(api, 0)) for calls in own)))
    day.append(("scan invocations", *(str(run["invocations"].get("dunning-scan", 0)) for run in runs)))
    for api in sorted(set().union(*(run["harness_calls"] for run in runs))):
        day.append((f"harness {api}", *(str(run["harness_calls"].get(api, 0)) for run in runs)))
    columns = ("per acting account", *(f"resting {run['resting']:,}" for run in runs))
    return render(columns, cells) + "\n" + render(("per day (not per account)", *columns[1:]), day)


def report_tables(result: dict[str, Any]) -> str:
    lines: list[str] = []
    runs = result["daily_runs"]
    per_account = result["per_acting_account"]
    resting = ", ".join(f"{run['resting']:,}" for run in runs)
    lines.append(f"(1) Daily run on {MEASURED_DAY}: {runs[0]['acting']:,} acting; resting {resting}")
    lines.append(daily_table(runs))
    same = result["resting_costs_nothing"]
    lines.append(
        f"StartExecution+DescribeExecution per acting account: {per_account['starts_plus_describes']:.3f}"
        f" (target <= 1.1); the day's counts equal at both resting sizes: {same['equal']}"
        + ("" if same["equal"] else f" {same['differences']}")
    )
    memory = result["scan_memory"]
    lines.append("")
    lines.append("(2) Scan peak memory (tracemalloc, includes moto's side), per invocation")
    cells: list[tuple[str, ...]] = [
        (f"{row['due_invoices']:,}", f"{row['resting']:,}", f"{row['ladders_read']:,}", f"{row['pages']}",
         f"{row['plan_kib']:.0f}", f"{row['page_peak_kib']:.0f}", f"{row['peak_kib_per_100k_due']:.0f}")
        for row in memory
    ]  # fmt: skip
    lines.append(render(("due invoices", "resting", "ladders read", "pages", "plan KiB", "page KiB",
                         "KiB per 100k due"), cells))  # fmt: skip
    out = result["model"]["outputs"]
    inputs = result["model"]["inputs"]
    lines.append("")
    acting, ladder = inputs["accounts_acting"], inputs["accounts_on_ladder"]
    lines.append(
        f"(3) Model: {acting:,} acting a day of {ladder:,} on the ladder; StartExecution"
        f" {inputs['start_latency_ms']:.0f} ms, {inputs['scan_max_concurrency']} pages at once"
    )
    target = inputs["daily_run_target_minutes"]
    lines.append(
        f"scan: {out['scan_pages']} pages, {out['scan_minutes']:.1f} min ({out['start_rate_per_second']}/s"
        f" starts; {out['start_latency_ms_for_target']} ms a start keeps it under {target} min);"
        f" sends: {out['send_minutes']:.0f} min at {out['send_rate_per_second']}/s"
    )
    cells = [
        (str(row["quota"]), f"{row['limit']:,}", f"{row['peak']:,}", f"{row['fraction']:.1%}", row["when"])
        for row in out["quotas"]
    ]
    lines.append(render(("quota", "limit", "peak", "of quota", "when"), cells))
    lines.append(f"binding first: {out['binding_first']}; at or over 50 %: {out['over_half'] or 'none'}")
    b = result["burst"]
    lines.append("")
    lines.append(
        f"(4) Burst: {b['accounts']:,} sends due within the hour, Lambda concurrency"
        f" {b['lambda_concurrency']} (peak {b['lambda_concurrency_peak']}), SES {b['ses_max_send_rate']}/s,"
        f" {b['parameters']}"
    )
    lines.append(
        f"workflow_failed {b['workflow_failed']} (target 0); notices sent {b['notices_sent']:,} of"
        f" {b['accounts']:,}; throttles {b['throttles']}; first to last send"
        f" {b['first_to_last_send_minutes']} min; task retries {b['transitions']['retries']:,}"
    )
    b = result["storm"]
    lines.append(
        f"    at Lambda concurrency 1, {b['accounts']:,} sends (as {10 * b['accounts']:,} at 10):"
        f" workflow_failed {b['workflow_failed']}; sent {b['notices_sent']:,}; throttles {b['throttles']};"
        f" first to last {b['first_to_last_send_minutes']} min; task retries {b['transitions']['retries']:,}"
    )
    c = result["escalation_cost"]
    lines.append("")
    lines.append(
        f"(5) Cost of one account walked to the legal hand-off ({c['accounts']} accounts, {c['notices_sent']}"
        f" notices, {c['handed_off']} cases): ${c['total_per_account']:.6f} (target <= $0.0015)"
    )
    cells = [
        (item, f"{c['per_account'][count]:,.3f}", f"${c['cost_per_account'][item]:.7f}")
        for item, count in (
            ("step_functions", "state_transitions"), ("lambda_requests", "lambda_invocations"),
            ("lambda_duration", "lambda_gb_seconds"), ("ses", "ses_messages"),
            ("dynamodb_writes", "dynamodb_write_units"), ("dynamodb_reads", "dynamodb_read_units"),
            ("s3_put_list", "s3_put_list_requests"), ("s3_get", "s3_get_requests"),
        )
    ]  # fmt: skip
    lines.append(render(("item", "count", "cost"), cells))
    return "\n".join(lines)


def scan_memory_rows(runs: Sequence[DailyRun]) -> list[dict[str, Any]]:
    return [
        {
            "resting": run.resting,
            "due_invoices": run.due_invoices,
            "ladders_read": run.scan_memory_ladders_read,
            "pages": run.scan_memory_pages,
            "plan_kib": round(run.scan_memory_plan_bytes / 1024, 1),
            "page_peak_kib": round(run.scan_memory_page_peak_bytes / 1024, 1),
            "peak_kib_per_100k_due": round(
                max(run.scan_memory_plan_bytes, run.scan_memory_page_peak_bytes)
                / 1024
                / run.due_invoices
                * 100_000,
                1,
            ),
        }
        for run in runs
    ]


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=description)
    parser.add_argument("--quick", action="store_true", help=f"smaller sizes: {QUICK} (else {FULL})")
    parser.add_argument("--acting", type=int, help="accounts acting on the measured day")
    parser.add_argument("--resting", type=int, nargs=2, help="the two sizes of the resting population")
    parser.add_argument("--burst", type=int, help="sends due within the hour")
    parser.add_argument("--storm", type=int, help="sends due within the hour at Lambda concurrency 1")
    parser.add_argument("--escalated", type=int, help="accounts walked to the legal hand-off")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        acting=args.acting or base.acting,
        resting=(args.resting[0], args.resting[1]) if args.resting else base.resting,
        burst=args.burst or base.burst,
        storm=args.storm or base.storm,
        escalated=args.escalated or base.escalated,
    )
    started = time.perf_counter()
    print(f"Scale benchmark ({'quick' if args.quick else 'full'}): {sizes}", flush=True)
    runs = [isolated(daily_run, sizes.acting, resting) for resting in sizes.resting]
    per_account = per_acting_account(runs[0])
    inputs = model_inputs(per_account)
    result: dict[str, Any] = {
        "benchmark": "scale",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "sizes": asdict(sizes),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "moto": metadata.version("moto"),
        "boto3": metadata.version("boto3"),
        "daily_runs": [asdict(run) for run in runs],
        "per_acting_account": per_account,
        "resting_costs_nothing": compare_days(runs),
        "scan_memory": scan_memory_rows(runs),
        "model": {"inputs": inputs, "outputs": model(inputs)},
    }
    result["burst"] = asdict(isolated(burst, sizes.burst))
    result["storm"] = asdict(isolated(burst, sizes.storm, 1))
    cost = isolated(escalation_cost, sizes.escalated)
    result["escalation_cost"] = asdict(cost) | {"prices": PRICES, "lambda_seconds_assumed": LAMBDA_SECONDS}
    result["seconds"] = round(time.perf_counter() - started)
    print()
    print(report_tables(result))
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results["scale"] = result
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)} (scale)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
