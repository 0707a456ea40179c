"""Peak memory of ingesting big invoice files: `make bench` (`BENCH_QUICK=1 make bench`: the 10k case only).

The ingest streams an upload and writes it in chunks, so its memory should stay flat whatever the file's
size. This measures it: a moto server runs as a separate process on 127.0.0.1 (so the 100,000s of items
it stores are not counted), each file is generated on disk and uploaded to it, and each ingest runs in a
fresh child process that reports its RSS before ingesting (after imports and client set-up) and its peak
RSS while ingesting. The numbers are printed and written to bench/results-ingest.json; nothing here
asserts on time or memory, only that every row was imported.

On Linux the peak is the child's own high-water mark (VmHWM in /proc/self/status, reset just before the
ingest), not `ru_maxrss`: Linux carries the parent's high-water mark across fork and exec into the child's
`ru_maxrss`, so that figure is at least the parent's peak (it is recorded as well, for reference). Where
/proc is missing (macOS) `ru_maxrss` is all there is, and the peak includes the imports.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from dunning.adapters.ingest_ledger import DynamoIngestLedger
from dunning.adapters.ledger import Ledger
from dunning.adapters.storage import ObjectStore
from dunning.domain.policy import DEFAULT_POLICY
from dunning.ingest.service import Ingestor
from dunning.local.embedded_aws import load_template, table_definition

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results-ingest.json"
HOST = "127.0.0.1"
REGION = "eu-west-1"
BUCKET = "dunning-bench"
SIZES = (10_000, 100_000)
ACCOUNTS = 500
CURRENCIES = ("EUR", "GBP", "USD")
INVOICE_HEADER = (
    "invoice_id", "account_id", "customer_name", "customer_email",
    "currency", "amount", "issued_on", "due_on",
)  # fmt: skip
RESULT_MARKER = "BENCH-RESULT "
SERVER_START_SECONDS = 30.0
CHILD_TIMEOUT_SECONDS = 30 * 60
CLIENT_CONFIG = Config(region_name=REGION, retries={"max_attempts": 5, "mode": "standard"})


@dataclass(frozen=True)
class ChildResult:
    """What one ingest child process reports (memory in KiB)."""

    rows: int
    imported: int
    rejected: int
    seconds: float
    baseline_kib: int
    peak_kib: int
    end_kib: int
    ru_maxrss_kib: int
    method: str


@dataclass(frozen=True)
class Case:
    """One measured file size."""

    rows: int
    file_mib: float
    imported: int
    rejected: int
    seconds: float
    rows_per_second: float
    baseline_mib: float
    peak_mib: float
    growth_mib: float
    end_mib: float
    ru_maxrss_mib: float
    method: str


# --- shared ------------------------------------------------------------------------------------------


def environment() -> dict[str, str]:
    """The environment of the moto server and the children: dummy credentials, no proxy, no AWS config."""
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": HOST,
        "no_proxy": HOST,
        "POWERTOOLS_SERVICE_NAME": "dunning",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }


def session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)


def max_rss_kib() -> int:
    """This process's peak resident set size so far, in KiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


def proc_status_kib(name: str) -> int | None:
    """A `VmRSS:   1234 kB` style line of /proc/self/status, in KiB; None where there is no /proc."""
    try:
        text = PROC_STATUS.read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        field, _, value = line.partition(":")
        if field == name:
            return int(value.split()[0])
    return None


def reset_high_water_mark() -> bool:
    """Start VmHWM again from the current RSS (Linux 4.0+); False where that is not possible."""
    try:
        PROC_CLEAR_REFS.write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


# --- the child: one ingest, measured -----------------------------------------------------------------


def run_child(endpoint: str, bucket: str, key: str, table: str) -> ChildResult:
    boto = session()
    s3 = boto.client("s3", endpoint_url=endpoint, config=CLIENT_CONFIG)
    dynamodb = boto.resource("dynamodb", endpoint_url=endpoint, config=CLIENT_CONFIG)
    store = ObjectStore(s3)
    ingestor = Ingestor(DynamoIngestLedger(Ledger(dynamodb, table)), store, DEFAULT_POLICY)
    # One call on each client first, so the baseline includes botocore's lazily loaded models.
    dynamodb.meta.client.describe_table(TableName=table)
    source = store.describe(bucket, key)
    gc.collect()
    current = proc_status_kib("VmRSS")
    own = current is not None and reset_high_water_mark()
    baseline = current if own and current is not None else max_rss_kib()
    started = time.perf_counter()
    summary = ingestor.ingest(source)
    seconds = time.perf_counter() - started
    high_water = proc_status_kib("VmHWM") if own else None
    peak = high_water if high_water is not None else max_rss_kib()
    end = proc_status_kib("VmRSS") or peak
    method = "VmHWM, reset before the ingest" if high_water is not None else "ru_maxrss"
    if summary is None:
        raise RuntimeError(f"{key} is not under an upload prefix; nothing was ingested")
    return ChildResult(
        rows=summary.rows,
        imported=summary.imported,
        rejected=summary.rejected,
        seconds=round(seconds, 2),
        baseline_kib=baseline,
        peak_kib=peak,
        end_kib=end,
        ru_maxrss_kib=max_rss_kib(),
        method=method,
    )


# --- the parent: server, files, children, report -----------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until_listening(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the moto server exited with {process.returncode}:\n{tail(log_path)}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the moto server did not answer on {HOST}:{port} within {SERVER_START_SECONDS:.0f} s")


@contextmanager
def moto_server(tmp: Path) -> Iterator[str]:
    """A moto server in its own process on a free local port; its endpoint URL while the block runs."""
    port = free_port()
    log_path = tmp / "moto-server.log"
    command = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment(), cwd=tmp)
        try:
            wait_until_listening(process, port, log_path)
            yield f"http://{HOST}:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def write_invoices(path: Path, rows: int, seed: int = 7) -> None:
    """A valid invoice file of `rows` rows over ACCOUNTS accounts, written row by row."""
    rng = random.Random(seed)
    start = date(2027, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(INVOICE_HEADER)
        for number in range(1, rows + 1):
            account = rng.randrange(ACCOUNTS)
            cents = rng.randint(1_000, 5_000_000)
            issued = start + timedelta(days=rng.randrange(365))
            due = issued + timedelta(days=rng.choice((14, 30, 45, 60)))
            writer.writerow((
                f"INV-{rows}-{number:07d}", f"ACC-{account:04d}", f"Customer {account:04d} Ltd",
                f"ap@customer-{account:04d}.example.com", CURRENCIES[account % len(CURRENCIES)],
                f"{cents // 100}.{cents % 100:02d}", issued.isoformat(), due.isoformat(),
            ))  # fmt: skip


def ingest_in_child(endpoint: str, key: str, table: str) -> ChildResult:
    command = [sys.executable, "-m", "bench.ingest_memory", "--child",
               "--endpoint", endpoint, "--bucket", BUCKET, "--key", key, "--table", table]  # fmt: skip
    env = environment()
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not lines:
        output = f"{done.stdout[-2000:]}{done.stderr[-4000:]}"
        raise RuntimeError(f"the ingest child failed (exit status {done.returncode}):\n{output}")
    return ChildResult(**json.loads(lines[-1].removeprefix(RESULT_MARKER)))


def run_case(endpoint: str, template: dict[str, Any], rows: int, work_dir: Path) -> Case:
    boto = session()
    s3 = boto.client("s3", endpoint_url=endpoint, config=CLIENT_CONFIG)
    dynamodb = boto.client("dynamodb", endpoint_url=endpoint, config=CLIENT_CONFIG)
    table = f"dunning-bench-{rows}"
    dynamodb.create_table(**table_definition(template, "LedgerTable", table))
    dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    path = work_dir / f"bench-{rows}.csv"
    print(f"  {rows:,} rows: writing the file ...", flush=True)
    write_invoices(path, rows)
    file_mib = round(path.stat().st_size / 1024 / 1024, 1)
    key = f"incoming/invoices/bench-{rows}.csv"
    s3.upload_file(str(path), BUCKET, key)
    path.unlink()
    print(f"  {rows:,} rows: {file_mib} MiB uploaded; ingesting in a child process ...", flush=True)
    try:
        result = ingest_in_child(endpoint, key, table)
    finally:
        dynamodb.delete_table(TableName=table)  # frees the server's memory before the next case
        s3.delete_object(Bucket=BUCKET, Key=key)
    if result.imported != rows or result.rejected:
        raise RuntimeError(f"expected {rows} imported rows, got {result}")
    return Case(
        rows=result.rows,
        file_mib=file_mib,
        imported=result.imported,
        rejected=result.rejected,
        seconds=result.seconds,
        rows_per_second=round(result.rows / result.seconds) if result.seconds else 0.0,
        baseline_mib=mib(result.baseline_kib),
        peak_mib=mib(result.peak_kib),
        growth_mib=mib(result.peak_kib - result.baseline_kib),
        end_mib=mib(result.end_kib),
        ru_maxrss_mib=mib(result.ru_maxrss_kib),
        method=result.method,
    )


def table(cases: Sequence[Case]) -> str:
    columns = ("rows", "file MiB", "imported", "seconds", "rows/s", "baseline MiB", "peak MiB", "growth MiB")
    cells = [
        (f"{c.rows:,}", f"{c.file_mib:.1f}", f"{c.imported:,}", f"{c.seconds:.1f}",
         f"{c.rows_per_second:,.0f}", f"{c.baseline_mib:.1f}", f"{c.peak_mib:.1f}", f"{c.growth_mib:.1f}")
        for c in cases
    ]  # fmt: skip
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.rjust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def peak_ratio(cases: Sequence[Case]) -> float | None:
    by_rows = {case.rows: case for case in cases}
    small, large = by_rows.get(SIZES[0]), by_rows.get(SIZES[-1])
    if small is None or large is None or small is large:
        return None
    return round(large.peak_mib / small.peak_mib, 3)


def run_parent(quick: bool) -> int:
    sizes = SIZES[:1] if quick else SIZES
    template = load_template()
    cases: list[Case] = []
    print(f"Ingest memory benchmark: {', '.join(f'{size:,}' for size in sizes)} invoice rows", flush=True)
    with tempfile.TemporaryDirectory(prefix="dunning-bench-") as tmp, moto_server(Path(tmp)) as endpoint:
        print(f"  moto server at {endpoint}", flush=True)
        s3 = session().client("s3", endpoint_url=endpoint, config=CLIENT_CONFIG)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        for rows in sizes:
            cases.append(run_case(endpoint, template, rows, Path(tmp)))
    ratio = peak_ratio(cases)
    print()
    print(table(cases))
    print(
        f"(RSS of the ingest process; peak measured by {', '.join(sorted({case.method for case in cases}))})"
    )
    if ratio is not None:
        print(f"\npeak RSS {SIZES[-1]:,} rows / {SIZES[0]:,} rows: {ratio:.3f}")
    report = {
        "benchmark": "ingest_memory",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "moto": metadata.version("moto"),
        "boto3": metadata.version("boto3"),
        "note": (
            "RSS of the ingest process only (the moto server runs in its own process); MiB = 1024 KiB. "
            "baseline: RSS before the ingest; peak: highest RSS during it; growth: peak - baseline. "
            "ru_maxrss is the child's getrusage figure, which on Linux includes the parent's peak."
        ),
        "cases": [asdict(case) for case in cases],
        "peak_ratio_100k_to_10k": ratio,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_memory", description=description)
    parser.add_argument("--quick", action="store_true", help=f"only the {SIZES[0]:,}-row file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for option in ("--endpoint", "--bucket", "--key", "--table"):
        parser.add_argument(option, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = run_child(args.endpoint, args.bucket, args.key, args.table)
        print(RESULT_MARKER + json.dumps(asdict(result)), flush=True)
        return 0
    return run_parent(args.quick)


if __name__ == "__main__":
    sys.exit(main())
