"""Simulate throughput: `make bench` (`BENCH_QUICK=1 make bench`: less).

The daily scan's cost is measured by bench/scale.py (calls per acting account, its memory, the model at
scale); this measures the simulator: a few hundred accounts with 1-3 invoices each, payments and a few
promises and a dispute uploaded on the days they are dated, run through `Simulation` for months of
simulated days: accounts x days per second. It runs in a fresh process. Results are printed and written
to bench/results.json under "simulate" (the other benches' keys are kept); besides checking that the data
came out as generated, nothing here asserts.
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
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from importlib import metadata
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from dunning.adapters.ledger import Ledger
from dunning.domain.events import EventType
from dunning.domain.policy import DEFAULT_POLICY, Policy
from dunning.ingest.formats import INVOICE_REQUIRED
from dunning.local.embedded_aws import EmbeddedAws, embedded_aws
from dunning.local.simulator import Simulation, Upload
from tests.support.files import csv_bytes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
CURRENCIES = ("EUR", "GBP", "USD")
INVOICE_HEADER = (*INVOICE_REQUIRED, "amount_paid", "status", "segment")
PAYMENT_HEADER = ("account_id", "invoice_id", "amount", "paid_on", "currency")
ACTION_HEADER = ("account_id", "action", "on", "until", "invoice_id", "note")
SIMULATE_FULL = (1000, 120)  # accounts, days: issue 12's target size (at most 3 minutes)
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


def simulate_table(case: SimulateCase) -> str:
    columns = ("accounts", "days", "seconds", "account-days/s", "invoices", "executions", "notices sent")
    cells = [(f"{case.accounts:,}", f"{case.days}", f"{case.seconds:.1f}",
              f"{case.account_days_per_second:,.1f}", f"{case.invoices:,}", f"{case.executions:,}",
              f"{case.notices_sent:,}")]  # fmt: skip
    return render(columns, cells)


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m bench.scan_simulate", description=description)
    parser.add_argument("--quick", action="store_true", help="a small simulation")
    parser.add_argument("--accounts", type=int, help="accounts simulated (default: the size's)")
    parser.add_argument("--days", type=int, help="days simulated (default: the size's)")
    args = parser.parse_args(argv)
    accounts, days = SIMULATE_QUICK if args.quick else SIMULATE_FULL
    accounts, days = args.accounts or accounts, args.days or days
    print("Simulate benchmark", flush=True)
    simulate = isolated(simulate_case, accounts, days)
    print()
    print("Simulate (the whole system on the embedded AWS, simulated days)")
    print(simulate_table(simulate))
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results["simulate"] = {
        "benchmark": "scan_simulate",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "moto": metadata.version("moto"),
        "boto3": metadata.version("boto3"),
        **asdict(simulate),
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
