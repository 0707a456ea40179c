"""Ingest: an uploaded file in, ledger records and a reject report out.

The upload's prefix says what it holds (CONTRACT 8): incoming/invoices/, incoming/payments/,
incoming/actions/, incoming/documents/. Files are streamed and written in batches, so memory stays flat
whatever their size. Every write is idempotent: the same upload processed twice (S3 events arrive at
least once) changes nothing the second time, and a corrected row updates its invoice.

The rows of each kind are recorded by their own module (invoices, payments, actions, documents), as the
records of dunning.ingest.records, in the ledger the Ingestor is given (ports.IngestLedger).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from dunning.domain.policy import Policy
from dunning.ingest import formats
from dunning.ingest.actions import import_actions
from dunning.ingest.csvfile import UnreadableFile, open_text, read_records
from dunning.ingest.documents import ingest_document
from dunning.ingest.invoices import import_invoices
from dunning.ingest.payments import AfterPayments, import_payments
from dunning.ingest.records import receipt
from dunning.ingest.run import ImportSummary, Run
from dunning.ports import IngestLedger, StoredObject, UploadStore

__all__ = ["INCOMING_PREFIX", "ImportSummary", "Ingestor", "UploadKind", "upload_kind"]

logger = Logger(service="dunning", child=True)


class UploadKind(StrEnum):
    INVOICES = "invoices"
    PAYMENTS = "payments"
    ACTIONS = "actions"
    DOCUMENTS = "documents"


INCOMING_PREFIX = "incoming/"


def upload_kind(key: str) -> UploadKind | None:
    for kind in UploadKind:
        if key.startswith(f"{INCOMING_PREFIX}{kind.value}/") and not key.endswith("/"):
            return kind
    return None


class Ingestor:
    def __init__(
        self,
        ledger: IngestLedger,
        store: UploadStore,
        policy: Policy,
        rejected_prefix: str = "rejected/",
        after_payments: AfterPayments | None = None,
    ) -> None:
        self._ledger = ledger
        self._store = store
        self._policy = policy
        self._rejected_prefix = rejected_prefix
        # Told which accounts received payments (e.g. to update a legal case and tell the legal team).
        self._after_payments = after_payments

    def ingest(self, source: StoredObject) -> ImportSummary | None:
        """Import one upload; None for keys outside the incoming/ prefixes (nothing to do)."""
        kind = upload_kind(source.key)
        if kind is None:
            logger.warning("Ignoring an object outside the upload prefixes", extra={"key": source.key})
            return None
        summary = ImportSummary(key=source.key, kind=kind.value)
        if self._ledger.ingested(source):
            summary.already_processed = True
            logger.info("Upload already processed", extra={"key": source.key, "revision": source.revision})
            return summary
        run = Run(source, summary, self._ledger)
        try:
            if kind is UploadKind.DOCUMENTS:
                ingest_document(run, self._store)
            else:
                self._ingest_csv(run, kind)
            run.flush_events(force=True)
            self._publish_report(run)
        finally:
            run.report.close()
        self._ledger.record_ingested(source, receipt(summary))
        logger.info("Upload ingested", extra={"summary": summary.__dict__})
        return summary

    def _ingest_csv(self, run: Run, kind: UploadKind) -> None:
        text = open_text(self._store.open(run.source))
        records = _counted(read_records(text), run.summary)
        try:
            first = next(records, None)
            if first is None:
                raise UnreadableFile("the file is empty; it needs a header row and at least one data row")
            header = formats.Header(first)
            rows = _accepted(run, self._parser(kind, header, records, run))
            if kind is UploadKind.INVOICES:
                import_invoices(run, rows)
            elif kind is UploadKind.PAYMENTS:
                import_payments(run, rows, self._after_payments)
            else:
                import_actions(run, rows)
        except UnreadableFile as exc:
            run.reject(formats.Rejection(exc.line, "", "", str(exc)))
        finally:
            text.close()

    def _parser(
        self, kind: UploadKind, header: formats.Header, records: Iterator[Any], run: Run
    ) -> Iterator[formats.ParsedRow]:
        if kind is UploadKind.INVOICES:
            if formats.is_xero_header(header):
                run.summary.format = "xero"
                return formats.parse_xero(header, records, self._policy)
            run.summary.format = "dunning"
            return formats.parse_invoices(header, records, self._policy)
        run.summary.format = kind.value
        if kind is UploadKind.PAYMENTS:
            return formats.parse_payments(header, records)
        return formats.parse_actions(header, records)

    def _publish_report(self, run: Run) -> None:
        key = f"{self._rejected_prefix}{run.source.file_name}.errors.csv"
        if run.report.count:
            self._store.put(run.source.bucket, key, run.report.stream(), "text/csv; charset=utf-8")
            run.summary.report_key = key
        elif self._store.exists(run.source.bucket, key):
            # A corrected upload under the same name: the old report no longer describes it.
            self._store.delete(run.source.bucket, key)


def _accepted(run: Run, rows: Iterable[formats.ParsedRow]) -> Iterator[Any]:
    """The good rows; rejected and skipped ones are reported and counted on the way."""
    for row in rows:
        if isinstance(row, formats.Rejection):
            run.reject(row)
        elif isinstance(row, formats.Skipped):
            run.summary.skipped += 1
        else:
            yield row


def _counted(records: Iterator[Any], summary: ImportSummary) -> Iterator[Any]:
    """Counts data rows as they are read (the first record is the header)."""
    for index, record in enumerate(records):
        summary.rows = index
        yield record
