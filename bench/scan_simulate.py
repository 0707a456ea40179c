"""Read cost of the daily scan, and simulate throughput: `make bench` (`BENCH_QUICK=1 make bench`: less).

(a) The scan. A ledger of 10,000 and one of 100,000 invoices are built through the real ingest path
(invoice and payment files uploaded to the embedded AWS and imported by the deployed ingest handler), so
the sparse `due` index holds exactly what production would write. Exactly 2% of the invoices are due for
action on the scan date (open, something outstanding, due on or before the scan date plus the policy's
longest pre-due lead); the rest are a realistic mix: most paid (by the export's status, its amount_paid
column, or a payments file) or void and due in the past, the others open but due after the horizon.
`run_scan` is then timed with a stand-in for Step Functions that accepts every start without running
anything, so only the read side is measured. Its `items_read` divided by the invoices due for action is
the read amplification (ideal 1.0); the invoices it got from the index are checked against the generated
ones. Beside it, in the same table and run, a naive full-table Scan filtered to open, not fully paid
invoices due by the same date: its ScannedCount is what it reads, the whole table (invoices, profiles,
payments, the contact log, import receipts), and it also matches the invoices paid by a payments file.

(b) The simulator. A few hundred accounts with 1-3 invoices each, payments and a few promises and a
dispute uploaded on the days they are dated, run through `Simulation` for months of simulated days:
accounts x days per second.

Each case runs in a fresh process. Times are those of moto in-process, not of DynamoDB (moto answers a
Query by sorting every item of the table, and a Scan does so for every page), so only the item counts
carry over to production. Results are printed and written to bench/results.json; besides checking that
the data came out as generated, nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import random
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from importlib import metadata
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from boto3.dynamodb.conditions import Attr

from dunning.adapters.ledger import DUE_INDEX, Item, Ledger
from dunning.domain.clock import FixedClock
from dunning.domain.events import EventType
from dunning.domain.policy import DEFAULT_POLICY, Policy
from dunning.ingest.formats import INVOICE_REQUIRED
from dunning.local.embedded_aws import REGION, EmbeddedAws, embedded_aws
from dunning.local.simulator import Simulation, Upload
from tests.support.files import csv_bytes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
SCAN_SIZES = (10_000, 100_000)
SCAN_DAY = date(2027, 6, 15)
DUE_PERCENT = 2
INVOICES_PER_ACCOUNT = 10
CURRENCIES = ("EUR", "GBP", "USD")
INVOICE_HEADER = (*INVOICE_REQUIRED, "amount_paid", "status", "segment")
PAYMENT_HEADER = ("account_id", "invoice_id", "amount", "paid_on", "currency")
ACTION_HEADER = ("account_id", "action", "on", "until", "invoice_id", "note")
SIMULATE_FULL = (200, 120)  # accounts, days
SIMULATE_QUICK = (40, 60)
SIMULATE_FIRST_DAY = date(2027, 3, 1)


# --- shared ------------------------------------------------------------------------------------------


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def local_instant(day: date, at: clock_time, policy: Policy) -> datetime:
    """`day` at local `at` in the business time zone, as a UTC instant."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(policy.business_timezone)).astimezone(UTC)


def account_columns(account: int) -> tuple[str, str, str, str]:
    """account_id, customer_name, customer_email, currency of account number `account`."""
    return (
        f"ACC-{account:05d}",
        f"Customer {account:05d} Ltd",
        f"ap@customer-{account:05d}.example.com",
        CURRENCIES[account % len(CURRENCIES)],
    )


P = ParamSpec("P")
T = TypeVar("T")


def isolated(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run one case in a fresh interpreter, so that no case runs in what an earlier one left behind (run in
    one process after the 100,000-invoice case, the simulation was seen to take three times as long)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()


def quiet() -> None:
    """Handlers that record no metric make Powertools warn on every cold start; nothing is published here."""
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def upload(aws: EmbeddedAws, kind: str, name: str, body: bytes, at: datetime) -> dict[str, Any]:
    """Upload through the real ingest handler; fail unless every row was taken."""
    imports = aws.upload(kind, name, body, at)["imports"]
    if len(imports) != 1 or imports[0]["rejected"] or imports[0]["imported"] != imports[0]["rows"]:
        raise RuntimeError(f"the ingest of {name} did not import every row: {imports}")
    summary: dict[str, Any] = imports[0]
    return summary


# --- (a) the scan ------------------------------------------------------------------------------------

# Shares of the invoices that are not due for action, per mille of all invoices; what is left over after
# these and DUE_PERCENT is open and due after the scan's horizon. Few are paid by a payments file: moto
# answers each payment's Query by sorting the whole table, so they are imported (with their invoices)
# before the bulk of the ledger, as an earlier month's export and bank file would have been.
OTHER_PER_MILLE = {
    "paid_status": 550,  # status=paid in the export, due in the past
    "paid_amount": 125,  # status open but amount_paid = amount, due in the past
    "paid_by_payment": 2,  # open in an earlier export, then paid in full by a payments file
    "void": 20,  # void, due in the past
}


@dataclass
class LedgerPlan:
    """The generated files (in upload order) and what the ledger should look like once imported."""

    files: list[tuple[str, str, bytes]] = field(default_factory=list)  # kind, name, body
    accounts: set[str] = field(default_factory=set)
    due_for_action: set[str] = field(default_factory=set)
    due_accounts: set[str] = field(default_factory=set)
    categories: Counter[str] = field(default_factory=Counter)

    @property
    def index_entries(self) -> int:
        """Invoices the sparse index must hold: open with something outstanding, whatever the due date."""
        return self.categories["due_for_action"] + self.categories["open_later"]


def plan_categories(invoices: int, rng: random.Random) -> list[str]:
    counts = {"due_for_action": invoices * DUE_PERCENT // 100}
    counts.update({name: invoices * share // 1000 for name, share in OTHER_PER_MILLE.items()})
    counts["open_later"] = invoices - sum(counts.values())
    categories = [name for name, count in counts.items() for _ in range(count)]
    rng.shuffle(categories)
    return categories


def plan_ledger(invoices: int, scan_day: date, lead: int, seed: int = 11) -> LedgerPlan:
    """Invoice files of `invoices` rows in all (and a payments file) with exactly DUE_PERCENT% due for
    action on `scan_day`; the boundary dates (scan day + lead, + lead + 1) are always present."""
    rng = random.Random(seed)
    accounts = max(1, invoices // INVOICES_PER_ACCOUNT)
    early_rows: list[tuple[str, ...]] = []
    invoice_rows: list[tuple[str, ...]] = []
    payment_rows: list[tuple[str, ...]] = []
    plan = LedgerPlan()
    for number, category in enumerate(plan_categories(invoices, rng), 1):
        account_id, name, email, currency = account_columns(rng.randrange(accounts))
        invoice_id = f"INV-{number:07d}"
        cents = rng.randint(1_000, 5_000_000)
        paid_cents, status, rows = 0, "open", invoice_rows
        first = category not in plan.categories
        plan.accounts.add(account_id)
        if category == "due_for_action":
            due = scan_day + timedelta(days=lead if first else rng.randint(-90, lead))
            paid_cents = cents // 2 if rng.random() < 0.25 else 0  # some partly paid
            plan.due_for_action.add(invoice_id)
            plan.due_accounts.add(account_id)
        elif category == "open_later":
            due = scan_day + timedelta(days=lead + 1 if first else rng.randint(lead + 1, 90))
        else:
            due = scan_day - timedelta(days=rng.randint(1, 365))
            if category == "paid_status":
                status = "paid"
            elif category == "void":
                status = "void"
            elif category == "paid_amount":
                paid_cents = cents
            else:  # paid_by_payment
                rows = early_rows
                paid_on = min(due + timedelta(days=rng.randint(0, 20)), scan_day - timedelta(days=1))
                payment_rows.append((account_id, invoice_id, money(cents), paid_on.isoformat(), currency))
        issued = due - timedelta(days=rng.choice((14, 30, 45, 60)))
        rows.append((
            invoice_id, account_id, name, email, currency, money(cents), issued.isoformat(), due.isoformat(),
            money(paid_cents), status, "default",
        ))  # fmt: skip
        plan.categories[category] += 1
    if payment_rows:
        plan.files.append(("invoices", f"earlier-{invoices}.csv", csv_bytes(INVOICE_HEADER, early_rows)))
        plan.files.append(("payments", f"payments-{invoices}.csv", csv_bytes(PAYMENT_HEADER, payment_rows)))
    plan.files.append(("invoices", f"ledger-{invoices}.csv", csv_bytes(INVOICE_HEADER, invoice_rows)))
    return plan


@dataclass
class RecordingWorkflows:
    """Step Functions for the scan, minus the executions: every start is accepted and only recorded."""

    started: list[str] = field(default_factory=list)

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        self.started.append(name)
        return True

    def is_running(self, name: str) -> bool:
        return False


class RecordingLedger(Ledger):
    """The ledger, noting the invoices the `due` index queries return (checked after the timing)."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        super().__init__(dynamodb, table_name)
        self.returned: list[str] = []

    def query_index(self, shard: str, up_to: str) -> Iterator[Item]:
        for item in super().query_index(shard, up_to):
            self.returned.append(item["invoice_id"])
            yield item


@dataclass(frozen=True)
class NaiveResult:
    items_read: int
    matched: int
    seconds: float


def naive_scan(aws: EmbeddedAws, through: date) -> NaiveResult:
    """A full-table Scan filtered to open invoices, not fully paid, due by `through`, page by page."""
    table = aws.dynamodb.Table(aws.table_name)
    condition = (
        Attr("kind").eq("invoice")
        & Attr("status").eq("open")
        & Attr("due_on").lte(through.isoformat())
        & Attr("amount_paid").lt(Attr("amount"))
    )
    kwargs: dict[str, Any] = {"FilterExpression": condition}
    read = matched = 0
    started = time.perf_counter()
    while True:
        page = table.scan(**kwargs)
        read += page["ScannedCount"]
        matched += page["Count"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return NaiveResult(read, matched, time.perf_counter() - started)


def index_size(aws: EmbeddedAws) -> int:
    """Every entry of the sparse `due` index, whatever its due date (a Scan of the index)."""
    table = aws.dynamodb.Table(aws.table_name)
    kwargs: dict[str, Any] = {"IndexName": DUE_INDEX, "Select": "COUNT"}
    count = 0
    while True:
        page = table.scan(**kwargs)
        count += int(page["Count"])
        if "LastEvaluatedKey" not in page:
            return count
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def items_by_kind(aws: EmbeddedAws) -> Counter[str]:
    """The table's items by their `kind`, counted in moto's store (a Scan would take minutes in moto)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(aws.table_name)
    kinds: Counter[str] = Counter()
    for partition in table.items.values():
        for item in partition.values():
            kind = item.attrs.get("kind")
            kinds[str(kind.value) if kind is not None else "?"] += 1
    return kinds


@dataclass(frozen=True)
class ScanCase:
    invoices: int
    due_for_action: int
    items_read: int
    read_amplification: float
    naive_items_read: int
    naive_read_amplification: float
    seconds: float
    naive_seconds: float
    # extras
    scan_day: str
    scanned_through: str
    accounts: int
    accounts_due: int
    executions_requested: int
    index_entries: int
    naive_matched: int
    table_items: int
    table_items_by_kind: dict[str, int]
    ingest_seconds: float


def scan_case(invoices: int, policy: Policy = DEFAULT_POLICY) -> ScanCase:
    quiet()
    lead = policy.longest_lead_days
    plan = plan_ledger(invoices, SCAN_DAY, lead)
    print(f"  {invoices:,} invoices: importing through the ingest handler ...", flush=True)
    uploaded_at = local_instant(SCAN_DAY, clock_time(0), policy)
    with embedded_aws(uploaded_at) as aws:
        # Imported once the embedded AWS has set POWERTOOLS_LOG_LEVEL: Powertools fixes a module logger's
        # level when the module is first imported, and the scan's INFO line would otherwise be printed.
        from dunning.adapters.ladders import DynamoLadders
        from dunning.services.scan import run_scan

        started = time.perf_counter()
        for kind, name, body in plan.files:
            upload(aws, kind, name, body, uploaded_at)
        ingest_seconds = time.perf_counter() - started
        ledger = RecordingLedger(aws.dynamodb, aws.table_name)
        clock = FixedClock(local_instant(SCAN_DAY, policy.scan_time, policy))
        through = SCAN_DAY + timedelta(days=lead)
        print(f"  {invoices:,} invoices: imported in {ingest_seconds:.0f} s; scanning ...", flush=True)

        workflows = RecordingWorkflows()
        started = time.perf_counter()
        summary = run_scan(DynamoLadders(ledger), workflows, policy, clock)
        seconds = time.perf_counter() - started
        print(f"  {invoices:,} invoices: scanned in {seconds:.1f} s; naive Scan ...", flush=True)
        naive = naive_scan(aws, through)

        entries = index_size(aws)
        kinds = items_by_kind(aws)
        table_items = aws.dynamodb.meta.client.describe_table(TableName=aws.table_name)["Table"]["ItemCount"]
    problems = []
    if summary.scanned_through != through.isoformat():
        problems.append(f"the scan read through {summary.scanned_through}, not {through}")
    returned = set(ledger.returned)
    if len(ledger.returned) != len(returned) or returned != plan.due_for_action:
        problems.append(
            f"the scan returned {len(ledger.returned)} index entries, {len(returned - plan.due_for_action)}"
            f" of them not due; {len(plan.due_for_action - returned)} due invoices were missed"
        )
    if len(workflows.started) != len(plan.due_accounts):
        problems.append(
            f"{len(workflows.started)} executions requested for {len(plan.due_accounts)} accounts"
        )
    if entries != plan.index_entries:
        problems.append(f"the due index holds {entries} entries, expected {plan.index_entries}")
    if not naive.items_read == table_items == kinds.total():
        problems.append(f"the naive scan read {naive.items_read} of {table_items} ({kinds.total()}) items")
    if problems:
        raise RuntimeError(f"{invoices:,} invoices: " + "; ".join(problems))
    due = len(plan.due_for_action)
    return ScanCase(
        invoices=invoices,
        due_for_action=due,
        items_read=summary.items_read,
        read_amplification=round(summary.items_read / due, 3),
        naive_items_read=naive.items_read,
        naive_read_amplification=round(naive.items_read / due, 1),
        seconds=round(seconds, 3),
        naive_seconds=round(naive.seconds, 3),
        scan_day=SCAN_DAY.isoformat(),
        scanned_through=summary.scanned_through,
        accounts=len(plan.accounts),
        accounts_due=summary.accounts,
        executions_requested=len(workflows.started),
        index_entries=entries,
        naive_matched=naive.matched,
        table_items=table_items,
        table_items_by_kind=dict(sorted(kinds.items())),
        ingest_seconds=round(ingest_seconds, 1),
    )


# --- (b) the simulator -------------------------------------------------------------------------------


@dataclass
class SimulationPlan:
    invoices_csv: bytes
    invoices: int = 0
    payments: dict[date, list[tuple[str, ...]]] = field(default_factory=lambda: defaultdict(list))
    actions: dict[date, list[tuple[str, ...]]] = field(default_factory=lambda: defaultdict(list))

    def payment_rows(self) -> int:
        return sum(map(len, self.payments.values()))

    def action_rows(self) -> int:
        return sum(map(len, self.actions.values()))


SEGMENTS = ("default",) * 7 + ("new_customer",) * 2 + ("key_account",)


def plan_simulation(accounts: int, first: date, days: int, seed: int = 5) -> SimulationPlan:
    """1-3 invoices an account due from 30 days before `first` to 60 after; about 40% of the invoices
    paid in full and 10% in part on some day of the run; two or more promises and a dispute (on invoices
    due within 10 days of `first`, so that they fall inside even a short run)."""
    rng = random.Random(seed)
    last = first + timedelta(days=days - 1)
    rows: list[tuple[str, ...]] = []
    plan = SimulationPlan(b"")
    promises = max(2, accounts // 40)
    for account in range(accounts):
        account_id, name, email, currency = account_columns(account)
        segment = rng.choice(SEGMENTS)
        for number in range(1, rng.randint(1, 3) + 1):
            invoice_id = f"{account_id}-{number}"
            cents = rng.randint(5_000, 2_000_000)
            acting = account <= promises and number == 1  # a promise or the dispute, early in the run
            due = first + timedelta(days=rng.randint(-10, 10) if acting else rng.randint(-30, 60))
            issued = due - timedelta(days=30)
            rows.append((
                invoice_id, account_id, name, email, currency, money(cents), issued.isoformat(),
                due.isoformat(), "0.00", "open", segment,
            ))  # fmt: skip
            luck = rng.random()
            paid = cents if luck < 0.4 else cents // 3 if luck < 0.5 else 0
            paid_on = max(first, due + timedelta(days=rng.randint(-5, 40)))
            if paid and paid_on <= last:
                plan.payments[paid_on].append(
                    (account_id, invoice_id, money(paid), paid_on.isoformat(), currency)
                )
            if not acting:
                continue
            on = max(first, due + timedelta(days=rng.randint(2, 10)))
            if account < promises:
                until = on + timedelta(days=7)
                plan.actions[on].append((account_id, "promise", on.isoformat(), until.isoformat(), "", ""))
            else:
                plan.actions[on].append((account_id, "dispute", on.isoformat(), "", invoice_id, "damaged"))
                resolved = on + timedelta(days=14)
                plan.actions[resolved].append(
                    (account_id, "resolve", resolved.isoformat(), "", invoice_id, "")
                )
    for day in [day for day in plan.actions if day > last]:
        del plan.actions[day]  # past the end of the run: never uploaded
    plan.invoices_csv = csv_bytes(INVOICE_HEADER, rows)
    plan.invoices = len(rows)
    return plan


@dataclass(frozen=True)
class SimulateCase:
    accounts: int
    days: int
    seconds: float
    account_days_per_second: float
    # extras
    first_day: str
    invoices: int
    payment_rows: int
    action_rows: int
    executions: int
    notices_sent: int
    events_by_type: dict[str, int]


def any_rejected(result: dict[str, object]) -> bool:
    imports = result.get("imports")
    return isinstance(imports, list) and any(summary.get("rejected") for summary in imports)


def simulate_case(accounts: int, days: int, policy: Policy = DEFAULT_POLICY) -> SimulateCase:
    quiet()
    first = SIMULATE_FIRST_DAY
    plan = plan_simulation(accounts, first, days)
    print(f"  simulate: {accounts} accounts ({plan.invoices} invoices) for {days} days ...", flush=True)
    with embedded_aws(local_instant(first, clock_time(0), policy)) as aws:
        simulation = Simulation(aws, policy)
        simulation.schedule(first, Upload("invoices", "invoices.csv", plan.invoices_csv))
        for day, payment_rows in plan.payments.items():
            simulation.schedule(
                day, Upload("payments", f"payments-{day}.csv", csv_bytes(PAYMENT_HEADER, payment_rows))
            )
        for day, action_rows in plan.actions.items():
            simulation.schedule(
                day, Upload("actions", f"actions-{day}.csv", csv_bytes(ACTION_HEADER, action_rows))
            )
        started = time.perf_counter()
        simulation.run(first, days)
        seconds = time.perf_counter() - started
        events = Counter(str(event["type"]) for event in Ledger(aws.dynamodb, aws.table_name).all_events())
        executions = len(aws.executions())
    rejected = [result for result in simulation.import_results if any_rejected(result)]
    if rejected:
        raise RuntimeError(f"the simulation's uploads had rejected rows: {rejected}")
    if events[EventType.NOTICE_SENT] == 0:
        raise RuntimeError(f"the simulation sent no notices; events: {dict(events)}")
    return SimulateCase(
        accounts=accounts,
        days=days,
        seconds=round(seconds, 2),
        account_days_per_second=round(accounts * days / seconds, 1),
        first_day=first.isoformat(),
        invoices=plan.invoices,
        payment_rows=plan.payment_rows(),
        action_rows=plan.action_rows(),
        executions=executions,
        notices_sent=events[EventType.NOTICE_SENT],
        events_by_type=dict(sorted(events.items())),
    )


# --- report ------------------------------------------------------------------------------------------


def render(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.rjust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def scan_table(cases: Sequence[ScanCase]) -> str:
    columns = ("invoices", "due", "read", "amplification", "naive read", "naive ampl.", "scan s",
               "naive s", "index entries", "table items")  # fmt: skip
    cells = [
        (f"{c.invoices:,}", f"{c.due_for_action:,}", f"{c.items_read:,}", f"{c.read_amplification:.3f}",
         f"{c.naive_items_read:,}", f"{c.naive_read_amplification:.1f}", f"{c.seconds:.2f}",
         f"{c.naive_seconds:.2f}", f"{c.index_entries:,}", f"{c.table_items:,}")
        for c in cases
    ]  # fmt: skip
    return render(columns, cells)


def simulate_table(case: SimulateCase) -> str:
    columns = ("accounts", "days", "seconds", "account-days/s", "invoices", "executions", "notices sent")
    cells = [(f"{case.accounts:,}", f"{case.days}", f"{case.seconds:.1f}",
              f"{case.account_days_per_second:,.1f}", f"{case.invoices:,}", f"{case.executions:,}",
              f"{case.notices_sent:,}")]  # fmt: skip
    return render(columns, cells)


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m bench.scan_simulate", description=description)
    parser.add_argument(
        "--quick", action="store_true", help=f"only the {SCAN_SIZES[0]:,}-invoice scan and a small simulation"
    )
    args = parser.parse_args(argv)
    sizes = SCAN_SIZES[:1] if args.quick else SCAN_SIZES
    accounts, days = SIMULATE_QUICK if args.quick else SIMULATE_FULL
    print(
        f"Scan benchmark: {', '.join(f'{size:,}' for size in sizes)} invoices, {DUE_PERCENT}% due", flush=True
    )
    scans = [isolated(scan_case, size) for size in sizes]
    print("Simulate benchmark", flush=True)
    simulate = isolated(simulate_case, accounts, days)
    print()
    print(
        f"Daily scan on {SCAN_DAY} (items read / invoices due for action; naive = filtered full-table Scan)"
    )
    print(scan_table(scans))
    print()
    print("Simulate (the whole system on the embedded AWS, simulated days)")
    print(simulate_table(simulate))
    report = {
        "benchmark": "scan_simulate",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "moto": metadata.version("moto"),
        "boto3": metadata.version("boto3"),
        "note": (
            "read_amplification = items the scan read / invoices due for action (ideal 1.0); the naive "
            "figure is a filtered full-table Scan's ScannedCount over the same. seconds are moto "
            "in-process, not DynamoDB: moto answers an index Query by visiting every item of the table."
        ),
        "scan": [asdict(case) for case in scans],
        "simulate": asdict(simulate),
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
