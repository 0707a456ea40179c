"""`dunning ingest`: the deployed ingest path, run on an embedded AWS, with a readable summary."""

from __future__ import annotations

import argparse
import csv
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from dunning.adapters.ledger import Ledger
from dunning.cli.inputs import invoice_documents
from dunning.cli.output import upload_time, write_events
from dunning.local.embedded_aws import embedded_aws


def run_ingest(args: argparse.Namespace, out: TextIO) -> int:
    at = upload_time(args.at)
    # Documents first, so invoices can find their PDFs; payments and actions need their invoices.
    uploads = [("documents", path) for path in invoice_documents(args.invoices, args.documents)]
    uploads += [("invoices", path) for path in args.invoices]
    uploads += [("payments", path) for path in args.payments]
    uploads += [("actions", path) for path in args.actions]
    rejected_dir = args.out / "rejected"
    rejected_dir.mkdir(parents=True, exist_ok=True)
    summaries: list[dict[str, Any]] = []
    with embedded_aws() as aws:
        if args.policy:
            aws.use_policy(args.policy.read_bytes())
        for index, (kind, path) in enumerate(uploads):
            # One second apart, as if uploaded one after another: the contact log keeps that order.
            result = aws.upload(kind, path.name, path.read_bytes(), at + timedelta(seconds=index))
            for summary in result["imports"]:
                summaries.append(summary)
                if summary["report_key"]:
                    body = aws.s3.get_object(Bucket=aws.bucket, Key=summary["report_key"])["Body"].read()
                    (rejected_dir / summary["report_key"].rsplit("/", 1)[-1]).write_bytes(body)
        events = Ledger(aws.dynamodb, aws.table_name).all_events()
    write_events(events, args.out / "events.jsonl")
    _print_summary(summaries, rejected_dir, args.out / "events.jsonl", len(events), out)
    return 0


def _print_summary(
    summaries: list[dict[str, Any]], rejected_dir: Path, events_path: Path, events: int, out: TextIO
) -> None:
    columns = ("rows", "imported", "updated", "unchanged", "skipped", "rejected")
    width = max([len("file"), *(len(s["key"].rsplit("/", 1)[-1]) for s in summaries)])
    print(f"Imported {len(summaries)} file(s) into the embedded AWS (moto):", file=out)
    print(f"  {'file':<{width}}  {'kind':<9} {'format':<8} " + " ".join(f"{c:>9}" for c in columns), file=out)
    for summary in summaries:
        name = summary["key"].rsplit("/", 1)[-1]
        counts = " ".join(f"{summary[c]:>9}" for c in columns)
        print(f"  {name:<{width}}  {summary['kind']:<9} {summary['format']:<8} {counts}", file=out)
    reports = [s for s in summaries if s["report_key"]]
    for summary in reports:
        path = rejected_dir / summary["report_key"].rsplit("/", 1)[-1]
        print(f"\nRejected rows of {summary['key'].rsplit('/', 1)[-1]} ({path}):", file=out)
        with path.open(encoding="utf-8", newline="") as handle:
            for record in csv.DictReader(handle):
                where = f"row {record['row']}" + (f", {record['field']}" if record["field"] else "")
                print(f"  {where}: {record['error']}", file=out)
    if not reports:
        print("\nNo rows were rejected.", file=out)
    print(f"\nContact log: {events_path} ({events} events)", file=out)
