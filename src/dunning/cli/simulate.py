"""`dunning simulate`: the whole system on an embedded AWS, months of collections in minutes.

Invoices (and invoice PDFs found beside them) are uploaded at the start. Payments and actions are
uploaded on the day they are dated, at the start of that day in the business time zone, so they take
effect before anything is sent that day; rows dated before the start go in on the first day. To keep the
reject reports' row numbers those of the original file, each day's upload is the original file with the
rows of other days blanked out (blank lines are skipped by the reader but still counted).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from dunning.adapters import overrides
from dunning.adapters.keys import account_of
from dunning.adapters.ledger import Ledger
from dunning.cli import failures
from dunning.cli.inputs import invoice_documents
from dunning.cli.output import write_events
from dunning.domain.account import AccountSnapshot
from dunning.domain.events import EventType
from dunning.domain.owed import Owed, owed
from dunning.domain.policy import DEFAULT_POLICY, Policy, load_policy
from dunning.ingest.csvfile import UnreadableFile, normalize_header, read_records
from dunning.local.embedded_aws import EmbeddedAws, embedded_aws
from dunning.local.report import InvoiceLine, render_report
from dunning.local.simulator import Simulation, Upload
from dunning.notices.render import shipped_template_dir, template_problems
from dunning.notices.scripts import render_call_script
from dunning.services import worklist
from dunning.services.digest import DIGEST_ACCOUNT

DATE_COLUMN = {"payments": "paid_on", "actions": "on"}


@dataclass
class Outcome:
    events: list[dict[str, Any]]
    notices: int
    cases: int
    rejected_files: list[Path]
    dropped_rows: int
    failures: list[failures.Failure] = field(default_factory=list)


def split_by_day(body: bytes, kind: str, first: date, last: date) -> tuple[dict[date, bytes], int]:
    """Per-day copies of a payments or actions file (see the module docstring), and how many rows fall
    after the simulated period (they never take effect)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return {first: body}, 0  # ingest rejects the undecodable rows with their line numbers
    lines = list(io.StringIO(text, newline=""))
    records = list(_records(text))
    if not records:
        return {first: body}, 0
    header = [normalize_header(name) for name in records[0][1]]
    column = header.index(DATE_COLUMN[kind]) if DATE_COLUMN[kind] in header else None
    keep: dict[date, set[int]] = defaultdict(set)
    dropped = 0
    starts = [start for start, _ in records] + [len(lines) + 1]
    for (start, values), end in zip(records[1:], starts[2:], strict=True):
        day = _row_day(values, column, first)
        if day > last:
            dropped += 1
            continue
        keep[day].update(range(start, end))
    files = {
        day: "".join(
            line if number == 1 or number in wanted else "\n" for number, line in enumerate(lines, 1)
        ).encode("utf-8")
        for day, wanted in keep.items()
    }
    return files, dropped


def _records(text: str) -> list[tuple[int, list[str]]]:
    try:
        return [(record.line, record.values) for record in read_records(io.StringIO(text, newline=""))]
    except UnreadableFile:
        return []


def _row_day(values: list[str], column: int | None, first: date) -> date:
    """The day a row takes effect; rows with no usable date go in on the first day (and get rejected)."""
    if column is None or column >= len(values):
        return first
    try:
        return max(first, date.fromisoformat(values[column].strip()))
    except ValueError:
        return first


def run_simulate(args: argparse.Namespace, out: TextIO) -> int:
    policy = load_policy(args.policy) if args.policy else DEFAULT_POLICY
    first: date = args.start or datetime.now(UTC).date()
    last = first + timedelta(days=args.days - 1)
    start_instant = datetime.combine(first, datetime.min.time(), tzinfo=ZoneInfo(policy.business_timezone))
    verified = tuple(getattr(args, "ses_verified", None) or ())
    sandbox = bool(getattr(args, "ses_sandbox", False))
    with embedded_aws(start_instant.astimezone(UTC), ses_sandbox=sandbox, ses_verified=verified) as aws:
        if args.policy:
            aws.use_policy(args.policy.read_bytes())
        if args.templates:
            # The same place a business puts them in its bucket, so the send function finds them as deployed.
            for path in sorted(args.templates.rglob("*.j2")):
                key = f"{overrides.PREFIX}{path.relative_to(args.templates).as_posix()}"
                aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=path.read_bytes())
        # A template that does not compile is a failure of the run, not a crash (nor a silent fallback).
        template_failures = template_problems(args.templates) if args.templates else []
        simulation = Simulation(aws, policy)
        dropped = _schedule_uploads(simulation, args, first, last)
        progress = _progress_bar(sys.stderr) if sys.stderr.isatty() and not args.quiet else None
        worklists = Worklists(aws, policy, args.templates) if _has_tasks(policy) else None
        simulation.run(first, args.days, progress, worklists.day_ended if worklists else None)
        outcome = _write_outputs(
            aws, simulation, args.out, first, last, dropped, template_failures, policy, worklists
        )
    if worklists:
        worklists.write(args.out)
    else:  # no rung for a person: no worklist (nor one left from an earlier run into the same folder)
        (args.out / "worklist.csv").unlink(missing_ok=True)
    _print_summary(outcome, args, first, out)
    failures.print_failures(outcome.failures, out)
    return failures.EXIT_FAILURES if outcome.failures else 0


def _has_tasks(policy: Policy) -> bool:
    """Whether any ladder of the policy has a rung for a person (a collector named, or a task stage)."""
    ladders = (policy.ladder, *policy.segments.values())
    return bool(policy.collector) or any(stage.is_task for ladder in ladders for stage in ladder.stages)


@dataclass
class Worklists:
    """The collector's worklist at the end of each simulated day (OUT/worklist/<date>.csv), the last one as
    OUT/worklist.csv, each task's call script as of the day it first appears (OUT/scripts/), and each letter
    task's letter to print (OUT/letters/)."""

    aws: EmbeddedAws
    policy: Policy
    templates: Path | None
    days: dict[date, str] = field(default_factory=dict)
    scripts: dict[Path, str] = field(default_factory=dict)
    # Each letter task's printed letter (OUT/letters/), as archived when the task opened.
    letters: dict[Path, bytes] = field(default_factory=dict)
    # Each day's rows as well, for report.html (its worklist, and the task priorities at month ends).
    rows: dict[date, list[dict[str, str]]] = field(default_factory=dict)

    def day_ended(self, day: date) -> None:
        ledger = Ledger(self.aws.dynamodb, self.aws.table_name)
        events = ledger.all_events()
        end = worklist.local_day_end(day, self.policy)
        tasks = worklist.open_tasks(events, end)

        def snapshot_of(account_id: str, currency: str) -> AccountSnapshot:
            return AccountSnapshot.from_items(account_id, ledger.account_items(account_id), currency)

        def broken(account_id: str) -> int:
            return worklist.broken_in_a_row(events, account_id, end)

        items = worklist.worklist(tasks, snapshot_of, broken, self.policy, day)
        self.days[day] = worklist.csv_text(items, lambda item: self._script(item, day), self._letter)
        self.rows[day] = [item.row(self._script(item, day), self._letter(item)) for item in items]

    def _script(self, item: worklist.WorkItem, day: date) -> str:
        path = worklist.script_path(item.task)
        if path not in self.scripts:
            context = worklist.script_context(item, self.policy, day)
            self.scripts[path] = render_call_script(context, self._template_dirs())
        return path.as_posix()

    def _letter(self, item: worklist.WorkItem) -> str:
        path = worklist.letter_path(item.task)
        if path is None or item.task.letter is None:
            return ""
        if path not in self.letters:
            self.letters[path] = self.aws.s3.get_object(Bucket=self.aws.bucket, Key=item.task.letter)[
                "Body"
            ].read()
        return path.as_posix()

    def _template_dirs(self) -> list[Path]:
        return [directory for directory in (self.templates, shipped_template_dir()) if directory is not None]

    def write(self, out_dir: Path) -> None:
        folder = out_dir / "worklist"
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.csv"):
            old.unlink()
        for day, text in self.days.items():
            (folder / f"{day.isoformat()}.csv").write_text(text, encoding="utf-8")
        if self.days:
            (out_dir / "worklist.csv").write_text(self.days[max(self.days)], encoding="utf-8")
        for path, text in self.scripts.items():
            (out_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (out_dir / path).write_text(text, encoding="utf-8")
        for old_letter in (out_dir / "letters").glob("*.pdf"):
            old_letter.unlink()
        for path, pdf in self.letters.items():
            (out_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (out_dir / path).write_bytes(pdf)


def _schedule_uploads(simulation: Simulation, args: argparse.Namespace, first: date, last: date) -> int:
    for pdf in invoice_documents(args.invoices, args.documents):
        simulation.schedule(first, Upload("documents", pdf.name, pdf.read_bytes()))
    for path in args.invoices:
        simulation.schedule(first, Upload("invoices", path.name, path.read_bytes()))
    dropped = 0
    for kind in ("payments", "actions"):
        for path in getattr(args, kind):
            by_day, after = split_by_day(path.read_bytes(), kind, first, last)
            dropped += after
            for day, body in sorted(by_day.items()):
                simulation.schedule(day, Upload(kind, path.name, body))
    return dropped


def _write_outputs(
    aws: EmbeddedAws,
    simulation: Simulation,
    out_dir: Path,
    first: date,
    end: date,
    dropped: int,
    template_failures: Sequence[tuple[str, str]] = (),
    policy: Policy = DEFAULT_POLICY,
    worklists: Worklists | None = None,
) -> Outcome:
    ledger = Ledger(aws.dynamodb, aws.table_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    events = ledger.all_events()
    write_events(events, out_dir / "events.jsonl")
    outbox = out_dir / "outbox"
    outbox.mkdir(exist_ok=True)
    for old in outbox.glob("*.eml"):
        old.unlink()
    # Every message handed to SES, an unconfirmed one too (SES may have sent it: README, Exactly once).
    # The owners' daily digests too (services.digest, logged under its pseudo-account).
    handed = (
        EventType.NOTICE_SENT,
        EventType.LEGAL_NOTIFIED,
        EventType.NOTICE_UNCONFIRMED,
        EventType.DIGEST_SENT,
    )
    sent = [event for event in events if event["type"] in handed and event.get("eml")]
    for event in sent:
        raw = aws.s3.get_object(Bucket=aws.bucket, Key=f"notices/{event['eml']}")["Body"].read()
        (outbox / event["eml"]).write_bytes(raw)
    rejected = _merge_reject_reports(simulation, out_dir / "rejected")
    _copy_packets(aws, out_dir / "packets")
    invoices, owed_at_end = _invoice_lines(ledger, policy, end)
    found = failures.collect(events, aws, template_failures)
    html = render_report(
        events=events,
        invoices=invoices,
        start=first,
        end=end,
        failures=failures.rows(found),
        owed=owed_at_end,
        worklists=worklists.rows if worklists else None,
    )
    (out_dir / "report.html").write_text(html, encoding="utf-8")
    cases = sum(1 for event in events if event["type"] == EventType.CASE_OPENED)
    notices = sum(1 for event in events if event["type"] == EventType.NOTICE_SENT)
    return Outcome(events, notices, cases, rejected, dropped, found)


def _copy_packets(aws: EmbeddedAws, folder: Path) -> None:
    """The case packets the escalate function wrote to the legal bucket."""
    from dunning.local.embedded_aws import LEGAL_BUCKET

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.zip"):
        old.unlink()
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=LEGAL_BUCKET, Prefix="cases/"):
        for item in page.get("Contents", []):
            body = aws.s3.get_object(Bucket=LEGAL_BUCKET, Key=item["Key"])["Body"].read()
            (folder / item["Key"].rsplit("/", 1)[-1]).write_bytes(body)


def _merge_reject_reports(simulation: Simulation, folder: Path) -> list[Path]:
    """One report per source file, whatever number of daily uploads it was split into."""
    rows: dict[str, dict[tuple[int, str, str, str], None]] = defaultdict(dict)
    for result in simulation.import_results:
        for summary in result["imports"]:
            if summary.get("report"):
                for record in csv.DictReader(io.StringIO(summary["report"], newline="")):
                    key = (int(record["row"]), record["field"], record["value"], record["error"])
                    rows[summary["key"].rsplit("/", 1)[-1]][key] = None
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.errors.csv"):
        old.unlink()
    written = []
    for name, lines in sorted(rows.items()):
        path = folder / f"{name}.errors.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("row", "field", "value", "error"))
            writer.writerows(sorted(lines))  # values were made formula-safe by the ingest already
        written.append(path)
    return written


def _invoice_lines(
    ledger: Ledger, policy: Policy, end: date
) -> tuple[list[InvoiceLine], dict[str, list[Owed]]]:
    """Every invoice as it stands at the end, and what each account owes then, per currency."""
    accounts = sorted({account_of(item["PK"]) for item in ledger.scan_kind("account")})
    lines = []
    owed_at_end: dict[str, list[Owed]] = {}
    for account_id in accounts:
        items = list(ledger.account_items(account_id))
        snapshot = AccountSnapshot.from_items(account_id, items)
        owed_at_end[account_id] = [
            owed(AccountSnapshot.from_items(account_id, items, currency), currency, on=end, policy=policy)
            for currency in snapshot.currencies()
        ]
        name = str(snapshot.profile.get("customer_name", account_id))
        for invoice in snapshot.invoices:
            lines.append(
                InvoiceLine(
                    account_id,
                    name,
                    invoice.invoice_id,
                    invoice.currency,
                    invoice.amount,
                    invoice.due_on,
                    invoice.outstanding or Decimal(0),
                    invoice.status,
                    invoice.issued_on,
                    invoice.reductions(),
                )
            )
    return lines, owed_at_end


def _progress_bar(stream: TextIO) -> Any:
    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // total
        stream.write(f"\rsimulating [{'#' * filled}{'.' * (width - filled)}] day {done}/{total}")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show


def _print_summary(outcome: Outcome, args: argparse.Namespace, first: date, out: TextIO) -> None:
    counts: dict[str, int] = defaultdict(int)
    for event in outcome.events:
        counts[event["type"]] += 1
    accounts = len(
        {e["account_id"] for e in outcome.events if e["account_id"] and e["account_id"] != DIGEST_ACCOUNT}
    )
    last = first + timedelta(days=args.days - 1)
    print(
        f"Simulated {args.days} days ({first} to {last}) for {accounts} accounts on an embedded AWS (moto).",
        file=out,
    )
    failed = counts[EventType.NOTICE_FAILED]
    rows = [
        ("invoices imported", counts[EventType.INVOICE_IMPORTED], ""),
        ("payments applied", counts[EventType.PAYMENT_APPLIED], ""),
        ("notices sent", outcome.notices, ""),
        ("notices skipped", counts[EventType.NOTICE_SKIPPED], ""),
        *([("notices FAILED", failed, "   (refused by SES: see notice_failed)")] if failed else []),
        ("promises kept", counts[EventType.PROMISE_KEPT], ""),
        ("promises broken", counts[EventType.PROMISE_BROKEN], ""),
        ("plans agreed", counts[EventType.PLAN_AGREED], ""),
        ("plans broken", counts[EventType.PLAN_BROKEN], ""),
        ("plans completed", counts[EventType.PLAN_COMPLETED], ""),
        ("accounts settled", counts[EventType.ACCOUNT_SETTLED], ""),
        ("cases opened", outcome.cases, ""),
        ("rows rejected", counts[EventType.ROW_REJECTED], ""),
    ]
    for label, count, note in rows:
        print(f"  {label:<20}{count:>6}{note}", file=out)
    if outcome.dropped_rows:
        print(f"  rows dated after the period (not applied): {outcome.dropped_rows}", file=out)
    print(f"\nOutputs in {args.out}/:", file=out)
    print(
        f"  outbox/        every email as sent (.eml): {outcome.notices} customer emails, legal team emails, "
        "collectors' digests",
        file=out,
    )
    print(f"  packets/       {outcome.cases} legal case packet(s)", file=out)
    print("  events.jsonl   the contact log", file=out)
    print(
        "  report.html    aging (each month end), DSO/CEI/realization, promises, plans, worklist, timelines",
        file=out,
    )
    if outcome.rejected_files:
        names = ", ".join(path.name for path in outcome.rejected_files)
        print(f"  rejected/      {names}", file=out)
    if (args.out / "worklist.csv").exists():
        open_tasks = max(0, len((args.out / "worklist.csv").read_text(encoding="utf-8").splitlines()) - 1)
        print(f"  worklist.csv   the collector's open tasks at the end, by priority: {open_tasks}", file=out)
        print("  worklist/      the worklist at the end of each day; scripts/: each call's script", file=out)
    letters = sorted((args.out / "letters").glob("*.pdf"))
    if letters:
        print(f"  letters/       {len(letters)} letter(s) to print and post (a letter task each)", file=out)
