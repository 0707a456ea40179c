"""Ingest: an uploaded file in, ledger items and a reject report out.

The upload's prefix says what it holds (CONTRACT 8): incoming/invoices/, incoming/payments/,
incoming/actions/, incoming/documents/. Files are streamed and written in batches, so memory stays flat
whatever their size. Every write is idempotent: the same upload processed twice (S3 events arrive at
least once) changes nothing the second time, and a corrected row updates its invoice.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from dunning import balances
from dunning.clock import rfc3339
from dunning.events import Event, EventType
from dunning.ingest import formats
from dunning.ingest.csvfile import RejectReport, UnreadableFile, open_text, read_records
from dunning.ledger import (
    PROFILE_SK,
    Item,
    Ledger,
    account_pk,
    action_sk,
    due_keys,
    invoice_sk,
    payment_sk,
)
from dunning.models import ActionKind, InvoiceStatus
from dunning.money import format_amount, to_minor_units
from dunning.policy import Policy
from dunning.storage import ObjectStore, StoredObject

logger = Logger(service="dunning", child=True)

CHUNK = 100
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
_PDF_MAGIC = b"%PDF-"


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


@dataclass
class ImportSummary:
    key: str
    kind: str
    format: str = ""
    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    rejected: int = 0
    report_key: str | None = None
    already_processed: bool = False

    @property
    def file_name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@dataclass
class _Run:
    """State of one file being ingested."""

    source: StoredObject
    summary: ImportSummary
    report: RejectReport = field(default_factory=RejectReport)
    events: list[Event] = field(default_factory=list)
    last_rejected_line: int | None = None

    def event(
        self, type_: str, account_id: str, line: int, seq: int = 0, part: str = "", **data: Any
    ) -> None:
        # The content's ETag, not the version id: the same bytes give the same events, run after run.
        identity = f"{self.source.key}#{self.source.etag}#{line}#{type_}#{part}"
        # Events of one upload share its time; the row number keeps them in file order.
        self.events.append(Event(self.source.uploaded_at, type_, account_id, data, identity, line * 10 + seq))

    def source_fields(self, line: int) -> Item:
        return {"source_key": self.source.key, "source_revision": self.source.revision, "source_row": line}


class Ingestor:
    def __init__(
        self,
        ledger: Ledger,
        store: ObjectStore,
        policy: Policy,
        rejected_prefix: str = "rejected/",
        after_payments: Callable[[set[str], datetime], None] | None = None,
    ) -> None:
        self._ledger = ledger
        self._store = store
        self._policy = policy
        self._rejected_prefix = rejected_prefix
        # Told which accounts received payments (e.g. to update a legal case and tell the legal team).
        self._after_payments = after_payments

    # --- entry point ---------------------------------------------------------------------------------

    def ingest(self, source: StoredObject) -> ImportSummary | None:
        """Import one upload; None for keys outside the incoming/ prefixes (nothing to do)."""
        kind = upload_kind(source.key)
        if kind is None:
            logger.warning("Ignoring an object outside the upload prefixes", extra={"key": source.key})
            return None
        summary = ImportSummary(key=source.key, kind=kind.value)
        receipt_key = (f"FILE#{source.key}", f"RECEIPT#{source.revision}")
        if self._ledger.get(*receipt_key) is not None:
            summary.already_processed = True
            logger.info("Upload already processed", extra={"key": source.key, "revision": source.revision})
            return summary
        run = _Run(source, summary)
        try:
            if kind is UploadKind.DOCUMENTS:
                self._ingest_document(run)
            else:
                self._ingest_csv(run, kind)
            self._flush_events(run, force=True)
            self._publish_report(run)
        finally:
            run.report.close()
        self._ledger.write_batch([self._receipt(receipt_key, summary)])
        logger.info("Upload ingested", extra={"summary": summary.__dict__})
        return summary

    def _receipt(self, key: tuple[str, str], summary: ImportSummary) -> Item:
        counts = {
            name: getattr(summary, name)
            for name in ("rows", "imported", "updated", "unchanged", "skipped", "rejected")
        }
        return {"PK": key[0], "SK": key[1], "kind": "receipt", "format": summary.format, **counts}

    # --- CSV uploads ---------------------------------------------------------------------------------

    def _ingest_csv(self, run: _Run, kind: UploadKind) -> None:
        text = open_text(self._store.open(run.source))
        records = _counted(read_records(text), run.summary)
        try:
            first = next(records, None)
            if first is None:
                raise UnreadableFile("the file is empty; it needs a header row and at least one data row")
            header = formats.Header(first)
            rows = self._parser(kind, header, records, run)
            accepted = self._accepted(run, rows)
            if kind is UploadKind.INVOICES:
                self._import_invoices(run, accepted)
            elif kind is UploadKind.PAYMENTS:
                self._import_payments(run, accepted)
            else:
                self._import_actions(run, accepted)
        except UnreadableFile as exc:
            self._reject(run, formats.Rejection(exc.line, "", "", str(exc)))
        finally:
            text.close()

    def _parser(
        self, kind: UploadKind, header: formats.Header, records: Iterator[Any], run: _Run
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

    def _accepted(self, run: _Run, rows: Iterable[formats.ParsedRow]) -> Iterator[Any]:
        """The good rows; rejected and skipped ones are reported and counted on the way."""
        for row in rows:
            if isinstance(row, formats.Rejection):
                self._reject(run, row)
            elif isinstance(row, formats.Skipped):
                run.summary.skipped += 1
            else:
                yield row

    def _reject(self, run: _Run, rejection: formats.Rejection) -> None:
        run.report.add(rejection.line, rejection.field, rejection.value, rejection.error)
        # A row with several problems has one report line per problem but counts as one rejected row.
        if rejection.line != run.last_rejected_line:
            run.summary.rejected += 1
            run.last_rejected_line = rejection.line
        error = f"{rejection.field}: {rejection.error}" if rejection.field else rejection.error
        run.event(
            EventType.ROW_REJECTED,
            rejection.account_id,
            rejection.line,
            part=rejection.field,
            source=run.source.file_name,
            row=rejection.line,
            error=error,
        )
        self._flush_events(run)

    def _flush_events(self, run: _Run, *, force: bool = False) -> None:
        if run.events and (force or len(run.events) >= CHUNK):
            self._ledger.append_events(run.events)
            run.events.clear()

    def _publish_report(self, run: _Run) -> None:
        key = f"{self._rejected_prefix}{run.source.file_name}.errors.csv"
        if run.report.count:
            self._store.put(run.source.bucket, key, run.report.stream(), "text/csv; charset=utf-8")
            run.summary.report_key = key
        elif self._store.exists(run.source.bucket, key):
            # A corrected upload under the same name: the old report no longer describes it.
            self._store.delete(run.source.bucket, key)

    # --- invoices ------------------------------------------------------------------------------------

    def _import_invoices(self, run: _Run, rows: Iterator[formats.InvoiceRow]) -> None:
        for chunk in _chunks_without_repeats(
            rows, key=lambda row: (row.invoice.account_id, row.invoice.invoice_id)
        ):
            self._import_invoice_chunk(run, chunk)

    def _import_invoice_chunk(self, run: _Run, chunk: list[formats.InvoiceRow]) -> None:
        keys = [(account_pk(row.invoice.account_id), invoice_sk(row.invoice.invoice_id)) for row in chunk]
        existing = self._ledger.get_many(keys)
        new_items: list[Item] = []
        profiles: dict[str, Item] = {}
        for row, key in zip(chunk, keys, strict=True):
            current = existing.get(key)
            if current is not None and current.get("row_hash") == row.row_hash:
                run.summary.unchanged += 1
                continue
            if current is None:
                new_items.append(self._invoice_item(run, row, payments_total=Decimal(0)))
                run.summary.imported += 1
            else:
                self._replace_invoice(run, row, current)
                run.summary.updated += 1
            profiles[row.profile.account_id] = self._profile_item(run, row)
            updated: dict[str, Any] = {"updated": True} if current else {}
            run.event(
                EventType.INVOICE_IMPORTED,
                row.invoice.account_id,
                row.line,
                invoice_id=row.invoice.invoice_id,
                **updated,
            )
        self._ledger.write_batch(new_items + list(profiles.values()))
        self._flush_events(run)

    def _replace_invoice(self, run: _Run, row: formats.InvoiceRow, current: Item) -> None:
        """A corrected invoice: conditional on the version we read, re-read and retried if it moved."""
        for _ in range(5):
            paid = self._ledger.payments_total(row.invoice.account_id, row.invoice.invoice_id)
            if self._ledger.replace(
                self._invoice_item(run, row, paid), expected_row_hash=current["row_hash"]
            ):
                return
            latest = self._ledger.get(current["PK"], current["SK"])
            if latest is None or latest.get("row_hash") == row.row_hash:
                return
            current = latest
        raise RuntimeError(f"invoice {row.invoice.invoice_id} kept changing while it was being updated")

    def _invoice_item(self, run: _Run, row: formats.InvoiceRow, payments_total: Decimal) -> Item:
        invoice = row.invoice
        item: Item = {
            "PK": account_pk(invoice.account_id),
            "SK": invoice_sk(invoice.invoice_id),
            "kind": "invoice",
            "row_hash": row.row_hash,
            **invoice.model_dump(mode="python", exclude_none=True),
            "issued_on": invoice.issued_on.isoformat(),
            "due_on": invoice.due_on.isoformat(),
            "status": invoice.status.value,
            "imported_at": rfc3339(run.source.uploaded_at),
            **run.source_fields(row.line),
        }
        if balances.outstanding(invoice.amount, invoice.amount_paid, payments_total, invoice.status) > 0:
            item.update(due_keys(invoice.account_id, invoice.invoice_id, invoice.due_on))
        return item

    def _profile_item(self, run: _Run, row: formats.InvoiceRow) -> Item:
        profile = row.profile.model_dump(mode="python", exclude_none=True)
        profile["emails"] = list(profile["emails"])
        profile["customer_type"] = row.profile.customer_type.value
        return {
            "PK": account_pk(row.profile.account_id),
            "SK": PROFILE_SK,
            "kind": "account",
            **profile,
            **run.source_fields(row.line),
        }

    # --- payments ------------------------------------------------------------------------------------

    def _import_payments(self, run: _Run, rows: Iterator[formats.PaymentRow]) -> None:
        occurrences: Counter[bytes] = Counter()
        paid_accounts: set[str] = set()
        for chunk in _chunks(rows):
            keys = {(account_pk(r.payment.account_id), invoice_sk(r.payment.invoice_id)) for r in chunk}
            invoices = self._ledger.get_many(keys)
            paid_so_far: dict[tuple[str, str], Decimal] = {}
            for row in chunk:
                if self._apply_payment(run, row, invoices, paid_so_far, occurrences):
                    paid_accounts.add(row.payment.account_id)
            self._flush_events(run)
        if paid_accounts and self._after_payments is not None:
            self._flush_events(run, force=True)
            self._after_payments(paid_accounts, run.source.uploaded_at)

    def _apply_payment(
        self,
        run: _Run,
        row: formats.PaymentRow,
        invoices: dict[tuple[str, str], Item],
        paid_so_far: dict[tuple[str, str], Decimal],
        occurrences: Counter[bytes],
    ) -> bool:
        """Record one payment row; True when it was new (applied now)."""
        payment = row.payment
        key = (account_pk(payment.account_id), invoice_sk(payment.invoice_id))
        invoice = invoices.get(key)
        rejection = _payment_problem(row, invoice)
        if rejection is not None:
            self._reject(run, rejection)
            return False
        assert invoice is not None
        currency = invoice["currency"]
        amount = to_minor_units(payment.amount, currency)
        identity = "\x1f".join(
            (
                payment.account_id,
                payment.invoice_id,
                payment.paid_on.isoformat(),
                str(amount),
                currency,
                payment.reference or "",
            )
        )
        digest = hashlib.sha256(identity.encode()).digest()[:16]
        occurrences[digest] += 1
        payment_id = hashlib.sha256(digest + str(occurrences[digest]).encode()).hexdigest()[:24]
        if key not in paid_so_far:
            paid_so_far[key] = self._ledger.payments_total(payment.account_id, payment.invoice_id)
        before = balances.outstanding(
            invoice["amount"], invoice["amount_paid"], paid_so_far[key], invoice["status"]
        )
        credit = max(amount - before, Decimal(0))
        recorded = self._ledger.put_new(
            {
                "PK": key[0],
                "SK": payment_sk(payment.invoice_id, payment_id),
                "kind": "payment",
                "account_id": payment.account_id,
                "invoice_id": payment.invoice_id,
                "amount": amount,
                "currency": currency,
                "paid_on": payment.paid_on.isoformat(),
                "reference": payment.reference or "",
                "credit": credit,
                "recorded_at": rfc3339(run.source.uploaded_at),
                **run.source_fields(row.line),
            }
        )
        if not recorded:
            run.summary.unchanged += 1
            return False
        run.summary.imported += 1
        paid_so_far[key] += amount
        run.event(
            EventType.PAYMENT_APPLIED,
            payment.account_id,
            row.line,
            invoice_id=payment.invoice_id,
            amount=format_amount(amount, currency),
            currency=currency,
            paid_on=payment.paid_on.isoformat(),
        )
        if credit > 0:
            run.event(
                EventType.CREDIT_RECORDED,
                payment.account_id,
                row.line,
                seq=1,
                invoice_id=payment.invoice_id,
                amount=format_amount(credit, currency),
                currency=currency,
            )
        if before > 0 and before <= amount:
            self._ledger.drop_from_due_index(
                payment.account_id, payment.invoice_id, row_hash=invoice["row_hash"]
            )
        return True

    # --- actions -------------------------------------------------------------------------------------

    def _import_actions(self, run: _Run, rows: Iterator[formats.ActionRow]) -> None:
        occurrences: Counter[str] = Counter()
        for chunk in _chunks(rows):
            keys = {(account_pk(r.action.account_id), PROFILE_SK) for r in chunk}
            keys |= {
                (account_pk(r.action.account_id), invoice_sk(r.action.invoice_id))
                for r in chunk
                if r.action.invoice_id
            }
            known = self._ledger.get_many(keys)
            for row in chunk:
                self._record_action(run, row, known, occurrences)
            self._flush_events(run)

    def _record_action(
        self, run: _Run, row: formats.ActionRow, known: dict[tuple[str, str], Item], occurrences: Counter[str]
    ) -> None:
        action = row.action
        pk = account_pk(action.account_id)
        if (pk, PROFILE_SK) not in known:
            self._reject(
                run,
                formats.Rejection(
                    row.line,
                    "account_id",
                    action.account_id,
                    "no account with this id; import its invoices first",
                    action.account_id,
                ),
            )
            return
        if action.invoice_id and (pk, invoice_sk(action.invoice_id)) not in known:
            self._reject(
                run,
                formats.Rejection(
                    row.line,
                    "invoice_id",
                    action.invoice_id,
                    f"account {action.account_id} has no invoice {action.invoice_id}",
                    action.account_id,
                ),
            )
            return
        content = action.model_dump_json()
        occurrences[content] += 1
        action_id = hashlib.sha256(f"{content}#{occurrences[content]}".encode()).hexdigest()[:24]
        item = {
            "PK": pk,
            "SK": action_sk(action.on, action_id),
            "kind": "action",
            **action.model_dump(mode="json", exclude_none=True),
            "recorded_at": rfc3339(run.source.uploaded_at),
            **run.source_fields(row.line),
        }
        if not self._ledger.put_new(item):
            run.summary.unchanged += 1
            return
        run.summary.imported += 1
        type_, data = _action_event(action)
        run.event(type_, action.account_id, row.line, on=action.on.isoformat(), **data)

    # --- documents -----------------------------------------------------------------------------------

    def _ingest_document(self, run: _Run) -> None:
        run.summary.format = "pdf"
        body = self._store.open(run.source)
        digest = hashlib.sha256()
        size = 0
        head = b""
        while chunk := body.read(1024 * 1024):
            head = head or chunk[: len(_PDF_MAGIC)]
            digest.update(chunk)
            size += len(chunk)
        if not head.startswith(_PDF_MAGIC):
            self._reject(run, formats.Rejection(0, "", run.source.file_name, "is not a PDF document"))
            return
        if size > MAX_DOCUMENT_BYTES:
            limit = MAX_DOCUMENT_BYTES // (1024 * 1024)
            self._reject(
                run,
                formats.Rejection(
                    0, "", run.source.file_name, f"is larger than {limit} MB, too large to attach to an email"
                ),
            )
            return
        self._ledger.write_batch(
            [
                {
                    "PK": f"DOCUMENT#{run.source.file_name}",
                    "SK": "DOCUMENT",
                    "kind": "document",
                    "file_name": run.source.file_name,
                    "bucket": run.source.bucket,
                    "key": run.source.key,
                    "version_id": run.source.version_id or "",
                    "sha256": digest.hexdigest(),
                    "bytes": size,
                    "uploaded_at": rfc3339(run.source.uploaded_at),
                }
            ]
        )
        run.summary.imported = 1


def _payment_problem(row: formats.PaymentRow, invoice: Item | None) -> formats.Rejection | None:
    payment = row.payment
    account = payment.account_id
    if invoice is None:
        return formats.Rejection(
            row.line,
            "invoice_id",
            payment.invoice_id,
            f"account {account} has no invoice {payment.invoice_id}; import the invoice first",
            account,
        )
    if invoice["status"] in (InvoiceStatus.VOID.value, InvoiceStatus.DRAFT.value):
        return formats.Rejection(
            row.line,
            "invoice_id",
            payment.invoice_id,
            f"invoice {payment.invoice_id} is {invoice['status']}; a payment cannot be applied to it",
            account,
        )
    if payment.currency and payment.currency != invoice["currency"]:
        return formats.Rejection(
            row.line,
            "currency",
            payment.currency,
            f"the payment is in {payment.currency} but invoice {payment.invoice_id} is in "
            f"{invoice['currency']}",
            account,
        )
    try:
        to_minor_units(payment.amount, invoice["currency"])
    except ValueError as exc:
        return formats.Rejection(row.line, "amount", str(payment.amount), str(exc), account)
    return None


def _action_event(action: Any) -> tuple[str, dict[str, Any]]:
    until = {"until": action.until.isoformat()} if action.until else {}
    invoice = {"invoice_id": action.invoice_id} if action.invoice_id else {}
    return {
        ActionKind.PROMISE: (EventType.PROMISE_RECORDED, {**until, **invoice}),
        ActionKind.DISPUTE: (EventType.DISPUTE_OPENED, invoice),
        ActionKind.RESOLVE: (EventType.DISPUTE_RESOLVED, invoice),
        ActionKind.PAUSE: (EventType.ACCOUNT_PAUSED, until),
        ActionKind.RESUME: (EventType.ACCOUNT_RESUMED, {}),
        ActionKind.OPT_OUT: (EventType.EMAIL_OPT_OUT, {}),
        ActionKind.OPT_IN: (EventType.EMAIL_OPT_IN, {}),
    }[action.action]


def _counted(records: Iterator[Any], summary: ImportSummary) -> Iterator[Any]:
    """Counts data rows as they are read (the first record is the header)."""
    for index, record in enumerate(records):
        summary.rows = index
        yield record


def _chunks(rows: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _chunks_without_repeats(rows: Iterable[Any], key: Any, size: int = CHUNK) -> Iterator[list[Any]]:
    """Chunks in which no key appears twice, so a later row in the file is applied after an earlier one."""
    chunk: list[Any] = []
    keys: set[Any] = set()
    for row in rows:
        if len(chunk) == size or key(row) in keys:
            yield chunk
            chunk, keys = [], set()
        chunk.append(row)
        keys.add(key(row))
    if chunk:
        yield chunk
