"""Ingest fuzz (issue 9), bounded: mutated files with good rows at known lines (bench/ingest_fuzz.py makes
them). No crash, no failed upload, every good row imported, every bad row in the reject report.

A sample goes through the real path (an upload into the embedded AWS, the deployed handler, moto's
DynamoDB and S3); many more through the ingest service on in-memory fakes, as `make bench` does with
10,000. Seeded: a failure names its seed and file, and `python -m bench.ingest_fuzz --seed S` replays it.
"""

from __future__ import annotations

import csv
import io
import random

from bench.ingest_fuzz import PAYER, PAYER_INVOICE, check, fuzz_files, generate, imported_ids
from dunning.adapters.ledger import Ledger
from dunning.local.embedded_aws import EmbeddedAws
from tests.conftest import UPLOADED_AT
from tests.support.files import invoice_row, invoices_csv

AWS_FILES = 20
MEMORY_FILES = 1000


def test_fuzzed_files_through_the_embedded_aws(aws: EmbeddedAws, ledger: Ledger) -> None:
    payer = invoices_csv(invoice_row(PAYER_INVOICE, account_id=PAYER, amount="100000000.00"))
    aws.upload("invoices", "payer.csv", payer, UPLOADED_AT)
    rng = random.Random(20270115)
    problems = []
    formats: set[str] = set()
    for index in range(AWS_FILES):
        fuzz = generate(rng, index)
        result = aws.upload(fuzz.kind, fuzz.name, fuzz.body, UPLOADED_AT)
        formats.update(summary["format"] for summary in result["imports"])
        crash = result.get("error", "") or "; ".join(failed.error for failed in aws.failed_uploads)
        key = f"rejected/{fuzz.name}.errors.csv"
        listed = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix=key).get("Contents", [])
        raw = aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read() if listed else b"row\r\n"
        report = list(csv.DictReader(io.StringIO(raw.decode())))
        kind = "payments" if fuzz.kind == "payments" else "invoices"
        imported = imported_ids(ledger.scan_kind(kind.removesuffix("s")), kind)
        outcome = check(fuzz, imported, report, crash)
        if outcome.crash or outcome.lost or outcome.unreported:
            problems.append(f"{fuzz.name} ({fuzz.kind}): {outcome}")
    assert problems == []
    assert formats >= {"dunning", "xero", "payments"}, "the sample covers every format"


def test_fuzzed_files_through_the_ingest_service() -> None:
    totals = fuzz_files(MEMORY_FILES, seed=1)

    assert totals.files == MEMORY_FILES and totals.good_rows > 5 * MEMORY_FILES
    assert (totals.crashes, totals.lost, totals.unreported) == (0, 0, 0), totals.examples
