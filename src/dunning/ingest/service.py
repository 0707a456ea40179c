"""Ingest: an uploaded file in, ledger items and a reject report out.

The upload's prefix says what it holds (CONTRACT 8): incoming/invoices/, incoming/payments/,
incoming/actions/, incoming/documents/. Files are streamed and written in batches, so memory stays flat
whatever their size. Every write is idempotent: the same upload processed twice (S3 events arrive at
least once) changes nothing the second time, and a corrected row updates its invoice.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from dunning.adapters.keys import (
    CLAIM_PREFIX,
    CREDIT_NOTE_PREFIX,
    INVOICE_PREFIX,
    LEGACY_STATE_SK,
    PAYMENT_PREFIX,
    PROFILE_SK,
    UNBOUND_DOCUMENT_SK,
    account_pk,
    action_sk,
    bound_document_sk,
    claim_sk,
    claimants,
    credit_note_sk,
    document_pk,
    due_keys,
    invoice_of,
    invoice_sk,
    payment_prefix,
    payment_ref_sk,
    payment_sk,
    receipt_key,
)
from dunning.adapters.ledger import Item, Ledger
from dunning.adapters.storage import (
    DOCUMENTS_PREFIX,
    ObjectStore,
    StoredObject,
    document_account,
    document_name,
)
from dunning.domain import balances
from dunning.domain.account import (
    AccountSnapshot,
    InvoiceState,
    credit_note,
    feed_payment,
    invoice_state,
    reported_history,
    with_credits,
)
from dunning.domain.clock import rfc3339
from dunning.domain.events import Event, EventType
from dunning.domain.models import ADDRESS_FIELDS, ActionKind, InvoiceStatus, Payment
from dunning.domain.money import format_amount, to_minor_units
from dunning.domain.policy import Policy
from dunning.ingest import formats
from dunning.ingest.csvfile import RejectReport, UnreadableFile, open_text, read_records

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
        receipt = receipt_key(source.key, source.revision)
        if self._ledger.get(*receipt) is not None:
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
        self._ledger.write_batch([self._receipt(receipt, summary)])
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

    def _import_invoices(self, run: _Run, rows: Iterator[formats.InvoiceRow | formats.CreditNoteRow]) -> None:
        for chunk in _chunks_without_repeats(rows, key=_invoice_row_key):
            invoices = [row for row in chunk if isinstance(row, formats.InvoiceRow)]
            credit_notes = [row for row in chunk if isinstance(row, formats.CreditNoteRow)]
            if invoices:
                self._import_invoice_chunk(run, invoices)
            if credit_notes:
                self._import_credit_notes(run, credit_notes)

    def _import_invoice_chunk(self, run: _Run, chunk: list[formats.InvoiceRow]) -> None:
        keys = [(account_pk(row.invoice.account_id), invoice_sk(row.invoice.invoice_id)) for row in chunk]
        existing = self._ledger.get_many(keys)
        new_items: list[Item] = []
        profiles: dict[str, Item] = {}
        claims: dict[tuple[str, str], Item] = {}
        for row, key in zip(chunk, keys, strict=True):
            # Unchanged rows claim too, so uploading again invoices imported before claims existed binds
            # their documents.
            claim = _document_claim(row.invoice.account_id, row.invoice.document, row.invoice.invoice_id)
            claims[(claim["PK"], claim["SK"])] = claim
            current = existing.get(key)
            if current is not None and current.get("row_hash") == row.row_hash:
                run.summary.unchanged += 1
                continue
            if current is None:
                item = self._invoice_item(run, row, None, ())
                new_items.append(item)
                credit = invoice_state(item, ()).own.credit
                run.summary.imported += 1
            else:
                credit = self._replace_invoice(run, row, current)
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
            if credit:
                # What the export says was paid beyond the amount, or a change of it: a credit (balances.py).
                _credit_event(
                    run,
                    row.invoice.account_id,
                    row.line,
                    1,
                    "",
                    credit,
                    row.invoice.currency,
                    invoice_id=row.invoice.invoice_id,
                )
        self._ledger.write_batch(new_items + list(profiles.values()) + list(claims.values()))
        self._flush_events(run)

    def _replace_invoice(self, run: _Run, row: formats.InvoiceRow, current: Item) -> Decimal:
        """A corrected invoice: conditional on the version we read, re-read and retried if it moved. Returns
        how much its credit (what it received beyond its amount) changed."""
        for _ in range(5):
            feed = self._feed(current)
            item = self._invoice_item(run, row, current, feed)
            if self._ledger.replace(item, expected_row_hash=current["row_hash"]):
                return invoice_state(item, feed).own.credit - invoice_state(current, feed).own.credit
            latest = self._ledger.get(current["PK"], current["SK"])
            if latest is None or latest.get("row_hash") == row.row_hash:
                return Decimal(0)
            current = latest
        raise RuntimeError(f"invoice {row.invoice.invoice_id} kept changing while it was being updated")

    def _feed(self, invoice: Item) -> list[balances.FeedPayment]:
        """The payments that count towards an invoice item."""
        items = self._ledger.query_partition(invoice["PK"], payment_prefix(invoice["invoice_id"]))
        return [feed_payment(item) for item in items if item.get("kind") == "payment"]

    def _invoice_item(
        self, run: _Run, row: formats.InvoiceRow, current: Item | None, feed: Sequence[balances.FeedPayment]
    ) -> Item:
        """The invoice item for `row` (replacing `current`, if any). It is in the due index while it owes
        something by its own export figure and payments (balances.py; account credits are left out: they
        may settle it later, and the scan then finds it settled)."""
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
            "paid_reported": _paid_history(current, invoice.amount_paid, run.source.uploaded_at),
            **run.source_fields(row.line),
        }
        if invoice_state(item, feed).own.outstanding > 0:
            item.update(due_keys(invoice.account_id, invoice.invoice_id, invoice.due_on))
        return item

    def _import_credit_notes(self, run: _Run, rows: list[formats.CreditNoteRow]) -> None:
        """Credit notes of the export: what is left of each to allocate is a credit on its account; the
        change of it is logged as `credit_recorded` (negative when the accounting system allocated it)."""
        keys = [(account_pk(row.account_id), credit_note_sk(row.credit_note_id)) for row in rows]
        existing = self._ledger.get_many(keys)
        for row, key in zip(rows, keys, strict=True):
            current = existing.get(key)
            if current is not None and current.get("row_hash") == row.row_hash:
                run.summary.unchanged += 1
                continue
            before = self._put_credit_note(run, row, key, current)
            if before is None:
                run.summary.unchanged += 1
                continue
            if current is None:
                run.summary.imported += 1
            else:
                run.summary.updated += 1
            if row.remaining != before:
                _credit_event(
                    run,
                    row.account_id,
                    row.line,
                    0,
                    "",
                    row.remaining - before,
                    row.currency,
                    credit_note_id=row.credit_note_id,
                    reference=row.reference,
                )
        self._flush_events(run)

    def _put_credit_note(
        self, run: _Run, row: formats.CreditNoteRow, key: tuple[str, str], current: Item | None
    ) -> Decimal | None:
        """Write the credit note (conditionally on the version read); the remainder it replaced, or None
        when another delivery wrote this very row first."""
        item: Item = {
            "PK": key[0],
            "SK": key[1],
            "kind": "credit_note",
            "row_hash": row.row_hash,
            "account_id": row.account_id,
            "credit_note_id": row.credit_note_id,
            "currency": row.currency,
            "total": row.total,
            "amount": row.remaining,
            "issued_on": row.issued_on.isoformat(),
            "status": row.status.value,
            "reference": row.reference,
            "imported_at": rfc3339(run.source.uploaded_at),
            **run.source_fields(row.line),
        }
        for _ in range(5):
            written = (
                self._ledger.put_new(item)
                if current is None
                else self._ledger.replace(item, expected_row_hash=current["row_hash"])
            )
            if written:
                return Decimal(current["amount"]) if current is not None else Decimal(0)
            current = self._ledger.get(*key)
            if current is not None and current.get("row_hash") == row.row_hash:
                return None
        raise RuntimeError(f"credit note {row.credit_note_id} kept changing while it was being updated")

    def _profile_item(self, run: _Run, row: formats.InvoiceRow) -> Item:
        profile = row.profile.model_dump(mode="python", exclude_none=True, exclude=set(ADDRESS_FIELDS))
        profile["emails"] = list(profile["emails"])
        profile["customer_type"] = row.profile.customer_type.value
        # The postal address as one map, {line1, line2, city, region, postal_code}: only the parts given.
        if address := row.profile.address:
            profile["address"] = address
        return {
            "PK": account_pk(row.profile.account_id),
            "SK": PROFILE_SK,
            "kind": "account",
            **profile,
            **run.source_fields(row.line),
        }

    # --- payments ------------------------------------------------------------------------------------
    #
    # A payment item (kind `payment`) is a fact that counts towards its invoice. A payment that is undone
    # (reversed, or moved to another invoice by a correction) is never deleted: its item stays, as kind
    # `reversed_payment` with `amount` 0 and the old amount in `reversed_amount`, so that every reader that
    # sums payment items stays right and an overlapping bank export that lists it again is still
    # recognised as a payment already seen. A payment that has a payment_id also has a reference item
    # (PAYMENTREF#<payment_id>, kind `payment_ref`): which invoice it is on, its content and whether it is
    # reversed; a later row with that id is compared with it. The payment items are written first and the
    # reference last (conditionally on the version read), so a redelivery after a crash finishes the job.

    def _import_payments(self, run: _Run, rows: Iterator[formats.PaymentRow | formats.ReversalRow]) -> None:
        occurrences: Counter[bytes] = Counter()
        reversals: Counter[bytes] = Counter()
        changed_accounts: set[str] = set()
        for rows_in_chunk in _chunks(rows):
            chunk = self._payment_chunk(rows_in_chunk, occurrences, reversals)
            for row in rows_in_chunk:
                if isinstance(row, formats.ReversalRow):
                    changed = self._reverse_payment(run, row, chunk)
                elif row.payment_id:
                    changed = self._apply_identified_payment(run, row, chunk)
                elif row.payment.invoice_id is None:
                    changed = self._apply_on_account(run, row, chunk)
                else:
                    changed = self._apply_payment(run, row, chunk)
                if changed:
                    changed_accounts.add(
                        row.account_id if isinstance(row, formats.ReversalRow) else row.payment.account_id
                    )
            self._sync_due_index(chunk)
            self._flush_events(run)
        if changed_accounts and self._after_payments is not None:
            self._flush_events(run, force=True)
            self._after_payments(changed_accounts, run.source.uploaded_at)

    def _payment_chunk(
        self,
        rows: list[formats.PaymentRow | formats.ReversalRow],
        occurrences: Counter[bytes],
        reversals: Counter[bytes],
    ) -> _PaymentChunk:
        ref_keys = {
            (account_pk(_row_account(row)), payment_ref_sk(row.payment_id)) for row in rows if row.payment_id
        }
        refs = self._ledger.get_many(ref_keys)
        keys = {
            (account_pk(row.payment.account_id), invoice_sk(row.payment.invoice_id))
            for row in rows
            if row.payment is not None and row.payment.invoice_id is not None
        }
        keys |= {
            (ref["PK"], invoice_sk(part.invoice_id)) for ref in refs.values() for part in _ref_parts(ref)
        }
        invoices = self._ledger.get_many(keys)
        # Each currency's ladder has its own state (STATE#<currency>; plain STATE before that: all of them).
        legal = {
            (pk, state.get("currency"))
            for pk in sorted({account_pk(_row_account(row)) for row in rows})
            for state in self._ledger.query_partition(pk, LEGACY_STATE_SK)
            if state.get("status") == "legal"
        }
        return _PaymentChunk(self._ledger, invoices, refs, legal, occurrences, reversals)

    def _named_payment(
        self, run: _Run, line: int, payment: Payment, chunk: _PaymentChunk, *, reversal: bool
    ) -> tuple[tuple[str, str], str, Decimal, bytes] | None:
        """(invoice key, currency, amount in minor units, content digest) of a payment row that names its
        invoice; None (and the row rejected) when it cannot apply to it."""
        assert payment.invoice_id is not None
        key = (account_pk(payment.account_id), invoice_sk(payment.invoice_id))
        invoice = chunk.invoices.get(key)
        rejection = _payment_problem(line, payment, invoice, reversal=reversal)
        if rejection is not None:
            self._reject(run, rejection)
            return None
        assert invoice is not None
        currency = str(invoice["currency"])
        amount = to_minor_units(payment.amount, currency)
        return key, currency, amount, _payment_digest(payment, amount, currency)

    def _apply_payment(self, run: _Run, row: formats.PaymentRow, chunk: _PaymentChunk) -> bool:
        """A payment without payment_id: identified by its content (and occurrence in the file)."""
        payment = row.payment
        invoice_id = payment.invoice_id
        assert invoice_id is not None
        named = self._named_payment(run, row.line, payment, chunk, reversal=False)
        if named is None:
            return False
        key, currency, amount, digest = named
        chunk.occurrences[digest] += 1
        sk = payment_sk(invoice_id, _occurrence_id(digest, chunk.occurrences[digest]))
        at = run.source.uploaded_at
        [part], _ = _credited(chunk, key[0], [_Part(invoice_id, amount)], {}, payment.paid_on, at)
        if not self._ledger.put_new(self._payment_item(run, row, key[0], sk, part, currency)):
            run.summary.unchanged += 1
            return False
        run.summary.imported += 1
        chunk.add(key, sk, balances.FeedPayment(payment.paid_on, amount, at))
        self._payment_events(run, EventType.PAYMENT_APPLIED, row, part, currency)
        return True

    # A payment on account (no invoice_id, CONTRACT 4.3) is allocated here, once: to the account's open
    # invoices of its currency, oldest due date first (ties: invoice id), each getting at most what it still
    # owes (with the account's credits applied, as the balance computes it); what is left goes on the last
    # part (or, when nothing of that currency is open, on the account's newest invoice of it) and is a
    # credit the way an overpayment on a named invoice is (balances.py). Each part is a
    # normal payment item on its invoice. Every part item of a row without payment_id carries the row's
    # `allocation_id` (from its content and occurrence, as a named payment's id) and the whole plan
    # (`allocation`), so a re-delivery, or an overlapping export listing the row again, finds the plan and
    # writes only what is missing instead of allocating the money a second time. With a payment_id, the
    # plan is kept on the reference item (`parts`), so a correction or reversal by that id undoes every part.

    def _apply_on_account(self, run: _Run, row: formats.PaymentRow, chunk: _PaymentChunk) -> bool:
        payment = row.payment
        pk = account_pk(payment.account_id)
        view = self._account_view(chunk, pk, payment.account_id)
        terms = self._on_account_terms(run, row, chunk, view)
        if terms is None:
            return False
        currency, amount = terms
        digest = _payment_digest(payment, amount, currency)
        chunk.occurrences[digest] += 1
        allocation_id = _occurrence_id(digest, chunk.occurrences[digest])
        known = view.allocations.get(allocation_id)
        if known is not None:
            parts = _plan_parts(known["allocation"])
        else:
            parts = _allocate(chunk, pk, view, currency, amount, {})
            parts, _ = _credited(chunk, pk, parts, {}, payment.paid_on, run.source.uploaded_at)
        plan = _plan(parts)
        extra: Item = {"on_account": True, "allocation_id": allocation_id, "allocation": plan}
        # A part already there (a re-delivery after a crash) is not written, counted or logged again; the
        # others keep their place in the plan (`index`), so their events are the ones it would have logged.
        written: list[tuple[int, _Part]] = []
        for index, part in enumerate(parts):
            sk = payment_sk(part.invoice_id, _part_suffix(allocation_id, part.invoice_id))
            item = self._payment_item(run, row, pk, sk, part, currency, extra=extra)
            if self._ledger.put_new(item):
                written.append((index, part))
                view.allocations.setdefault(allocation_id, item)
        if not written:
            run.summary.unchanged += 1
            return False
        run.summary.imported += 1
        for index, part in written:
            sk = payment_sk(part.invoice_id, _part_suffix(allocation_id, part.invoice_id))
            fed = balances.FeedPayment(payment.paid_on, part.amount, run.source.uploaded_at)
            chunk.add((pk, invoice_sk(part.invoice_id)), sk, fed)
            self._payment_events(run, EventType.PAYMENT_APPLIED, row, part, currency, index=index)
        return True

    def _account_view(self, chunk: _PaymentChunk, pk: str, account_id: str) -> _AccountView:
        """The account's invoices, payments and credit notes, read once per account and chunk (and kept
        current)."""
        view = chunk.accounts.get(pk)
        if view is not None:
            return view
        items = [
            *self._ledger.query_partition(pk, INVOICE_PREFIX),
            *self._ledger.query_partition(pk, PAYMENT_PREFIX),
            *self._ledger.query_partition(pk, CREDIT_NOTE_PREFIX),
        ]
        snapshot = AccountSnapshot.from_items(account_id, items)
        allocations: dict[str, Item] = {}
        feeds: dict[tuple[str, str], dict[str, balances.FeedPayment]] = {}
        for item in items:
            if item.get("kind") == "invoice":
                chunk.invoices.setdefault((pk, item["SK"]), item)
                feeds.setdefault((pk, item["SK"]), {})
            elif item.get("kind") == "payment":
                feeds.setdefault((pk, invoice_sk(item["invoice_id"])), {})[item["SK"]] = feed_payment(item)
            if item.get("allocation_id"):
                allocations.setdefault(item["allocation_id"], item)
        # Payments this chunk already applied are in the chunk's own feeds; the others are read here.
        for key, feed in feeds.items():
            chunk.feeds.setdefault(key, feed)
        notes = tuple(credit_note(item) for item in items if item.get("kind") == "credit_note")
        view = _AccountView(snapshot.invoices, allocations, notes)
        chunk.accounts[pk] = view
        return view

    def _on_account_terms(
        self,
        run: _Run,
        row: formats.PaymentRow,
        chunk: _PaymentChunk,
        view: _AccountView,
        ref: Item | None = None,
    ) -> tuple[str, Decimal] | None:
        """The currency and amount of a payment on account, or None when the row was rejected."""
        payment = row.payment
        problem = _on_account_currency(row, chunk, view, ref)
        if isinstance(problem, formats.Rejection):
            self._reject(run, problem)
            return None
        currency = problem
        try:
            amount = to_minor_units(payment.amount, currency)
        except (ValueError, ArithmeticError) as exc:
            self._reject(
                run,
                formats.Rejection(
                    row.line,
                    "amount",
                    str(payment.amount),
                    str(exc) or "is not a usable amount",
                    payment.account_id,
                ),
            )
            return None
        return currency, amount

    def _apply_identified_payment(self, run: _Run, row: formats.PaymentRow, chunk: _PaymentChunk) -> bool:
        """A payment with a payment_id: new, the same again (unchanged), or a correction of that id."""
        payment = row.payment
        pk = account_pk(payment.account_id)
        ref_key = (pk, payment_ref_sk(row.payment_id))
        terms = self._identified_terms(run, row, chunk, ref_key)
        if terms is None:
            return False
        currency, amount, view = terms
        content = _payment_content(payment, amount, currency)
        suffix = _identified_suffix(row.payment_id)
        for _ in range(5):
            ref = chunk.refs.get(ref_key)
            if ref is not None and ref["content"] == content and ref["state"] == _ACTIVE:
                run.summary.unchanged += 1
                return False
            # Where the id's payment counts now, if anywhere: it stops counting there.
            old_parts = _ref_parts(ref) if ref is not None and ref["state"] == _ACTIVE else []
            leaving = {
                (pk, invoice_sk(part.invoice_id)): {payment_sk(part.invoice_id, suffix)} for part in old_parts
            }
            if view is not None:
                parts = _allocate(chunk, pk, view, currency, amount, leaving)
            else:
                assert payment.invoice_id is not None
                parts = [_Part(payment.invoice_id, amount)]
            at = run.source.uploaded_at
            parts, left_behind = _credited(chunk, pk, parts, leaving, payment.paid_on, at)
            extra: Item = {"on_account": True} if payment.invoice_id is None else {}
            self._ledger.write_batch(
                [
                    self._payment_item(
                        run,
                        row,
                        pk,
                        payment_sk(part.invoice_id, suffix),
                        part,
                        currency,
                        row.payment_id,
                        extra,
                    )
                    for part in parts
                ]
            )
            new_invoices = {part.invoice_id for part in parts}
            for old in old_parts:
                if old.invoice_id not in new_invoices:
                    self._deactivate(run, (pk, payment_sk(old.invoice_id, suffix)), old.amount, row.line)
            new_ref = _payment_ref(ref_key, row, content, _ACTIVE, amount, currency, parts)
            if not self._put_ref(new_ref, ref):
                chunk.reread_ref(ref_key)
                continue
            chunk.refs[ref_key] = new_ref
            for old_key, sks in leaving.items():
                for sk in sks:
                    chunk.remove(old_key, sk)
            for part in parts:
                fed = balances.FeedPayment(payment.paid_on, part.amount, at)
                chunk.add((pk, invoice_sk(part.invoice_id)), payment_sk(part.invoice_id, suffix), fed)
            self._identified_events(run, row, ref, parts, currency)
            for key, change in left_behind.items():
                # The invoices the payment was moved off: what it had received beyond them goes with it.
                invoice_id = invoice_of(key[1])
                _credit_event(
                    run, payment.account_id, row.line, 9, invoice_id, change, currency, invoice_id=invoice_id
                )
            return True
        raise RuntimeError(f"payment {row.payment_id} kept changing while it was being corrected")

    def _identified_terms(
        self, run: _Run, row: formats.PaymentRow, chunk: _PaymentChunk, ref_key: tuple[str, str]
    ) -> tuple[str, Decimal, _AccountView | None] | None:
        """Currency, amount and (on account) the account's view of an identified payment; None when the
        row was rejected."""
        payment = row.payment
        if payment.invoice_id is None:
            view = self._account_view(chunk, ref_key[0], payment.account_id)
            terms = self._on_account_terms(run, row, chunk, view, chunk.refs.get(ref_key))
            return None if terms is None else (*terms, view)
        invoice = chunk.invoices.get((ref_key[0], invoice_sk(payment.invoice_id)))
        rejection = _payment_problem(row.line, payment, invoice)
        if rejection is not None:
            self._reject(run, rejection)
            return None
        assert invoice is not None
        currency = str(invoice["currency"])
        return currency, to_minor_units(payment.amount, currency), None

    def _identified_events(
        self, run: _Run, row: formats.PaymentRow, ref: Item | None, parts: list[_Part], currency: str
    ) -> None:
        if ref is None:
            run.summary.imported += 1
            for index, part in enumerate(parts):
                self._payment_events(run, EventType.PAYMENT_APPLIED, row, part, currency, index=index)
            return
        run.summary.updated += 1
        previous = {
            "previous_invoice_id": ref["invoice_id"],
            "previous_amount": format_amount(Decimal(ref["amount"]), ref["currency"]),
            "previous_paid_on": ref["paid_on"],
            "previous_state": ref["state"],
        }
        for index, part in enumerate(parts):
            self._payment_events(run, EventType.PAYMENT_CORRECTED, row, part, currency, previous, index=index)

    def _reverse_payment(self, run: _Run, row: formats.ReversalRow, chunk: _PaymentChunk) -> bool:
        if row.payment_id:
            return self._reverse_identified(run, row, chunk)
        payment = row.payment
        assert payment is not None
        if payment.invoice_id is None:
            return self._reverse_on_account(run, row, payment, chunk)
        named = self._named_payment(run, row.line, payment, chunk, reversal=True)
        if named is None:
            return False
        key, currency, amount, digest = named
        # The n-th reversal of a payment in a file undoes its n-th occurrence, as payments are counted.
        chunk.reversals[digest] += 1
        item_key = (key[0], payment_sk(payment.invoice_id, _occurrence_id(digest, chunk.reversals[digest])))
        item = self._ledger.get(*item_key)
        if item is None:
            self._reject(
                run,
                formats.Rejection(
                    row.line,
                    "amount",
                    str(payment.amount),
                    f"no payment of {format_amount(amount, currency)} {currency} on {payment.paid_on} to "
                    f"invoice {payment.invoice_id} (reference '{payment.reference or ''}') to reverse; a "
                    "reversal names the payment by its payment_id, or by the invoice, amount, paid_on and "
                    "reference it was recorded with",
                    payment.account_id,
                ),
            )
            return False
        credit = chunk.credit_changes({key: {item_key[1]}}, {})[key]
        if item["kind"] != "payment" or not self._deactivate(run, item_key, amount, row.line):
            run.summary.unchanged += 1
            return False
        chunk.remove(key, item_key[1])
        run.summary.updated += 1
        self._reversal_event(run, row.line, payment.account_id, item, amount, currency, credit=credit)
        return True

    def _reverse_on_account(
        self, run: _Run, row: formats.ReversalRow, payment: Payment, chunk: _PaymentChunk
    ) -> bool:
        """A reversal without invoice_id undoes a payment on account: every part of its allocation."""
        pk = account_pk(payment.account_id)
        view = self._account_view(chunk, pk, payment.account_id)
        currencies = [payment.currency] if payment.currency else sorted({i.currency for i in view.invoices})
        found: list[tuple[bytes, Item, str, Decimal]] = []
        for currency in currencies:
            try:
                amount = to_minor_units(payment.amount, currency)
            except (ValueError, ArithmeticError):
                continue
            digest = _payment_digest(payment, amount, currency)
            known = view.allocations.get(_occurrence_id(digest, chunk.reversals[digest] + 1))
            if known is not None:
                found.append((digest, known, currency, amount))
        if len(found) != 1:
            amount_text = str(payment.amount)
            error = (
                f"payments on account of {amount_text} on {payment.paid_on} were recorded in "
                f"{' and '.join(f[2] for f in found)}; give the currency of the one to reverse"
                if found
                else f"no payment on account of {amount_text} on {payment.paid_on} (reference "
                f"'{payment.reference or ''}') to reverse; a reversal names the payment by its payment_id, "
                "or by the amount, paid_on and reference (and currency) it was recorded with"
            )
            field_name = "currency" if found else "amount"
            value = payment.currency or "" if found else amount_text
            self._reject(run, formats.Rejection(row.line, field_name, value, error, payment.account_id))
            return False
        digest, known, currency, amount = found[0]
        chunk.reversals[digest] += 1
        allocation_id = known["allocation_id"]
        changed = False
        for index, part in enumerate(_plan_parts(known["allocation"])):
            key = (pk, invoice_sk(part.invoice_id))
            item_key = (pk, payment_sk(part.invoice_id, _part_suffix(allocation_id, part.invoice_id)))
            credit = chunk.credit_changes({key: {item_key[1]}}, {})[key]
            if not self._deactivate(run, item_key, part.amount, row.line):
                continue
            chunk.remove(key, item_key[1])
            changed = True
            self._reversal_event(
                run,
                row.line,
                payment.account_id,
                {**known, "invoice_id": part.invoice_id},
                part.amount,
                currency,
                index=index,
                credit=credit,
            )
        if not changed:
            run.summary.unchanged += 1
            return False
        run.summary.updated += 1
        return True

    def _reverse_identified(self, run: _Run, row: formats.ReversalRow, chunk: _PaymentChunk) -> bool:
        pk = account_pk(row.account_id)
        ref_key = (pk, payment_ref_sk(row.payment_id))
        suffix = _identified_suffix(row.payment_id)
        for _ in range(5):
            ref = chunk.refs.get(ref_key)
            if ref is None:
                self._reject(
                    run,
                    formats.Rejection(
                        row.line,
                        "payment_id",
                        row.payment_id,
                        f"account {row.account_id} has no payment with this payment_id to reverse",
                        row.account_id,
                    ),
                )
                return False
            if ref["state"] != _ACTIVE:
                run.summary.unchanged += 1
                return False
            parts = _ref_parts(ref)
            credits = chunk.credit_changes(
                {(pk, invoice_sk(part.invoice_id)): {payment_sk(part.invoice_id, suffix)} for part in parts},
                {},
            )
            for part in parts:
                self._deactivate(run, (pk, payment_sk(part.invoice_id, suffix)), part.amount, row.line)
            new_ref = dict(ref, state=_REVERSED, row_hash=_ref_hash(ref["content"], _REVERSED))
            if not self._put_ref(new_ref, ref):
                chunk.reread_ref(ref_key)
                continue
            chunk.refs[ref_key] = new_ref
            run.summary.updated += 1
            for index, part in enumerate(parts):
                key = (pk, invoice_sk(part.invoice_id))
                chunk.remove(key, payment_sk(part.invoice_id, suffix))
                self._reversal_event(
                    run,
                    row.line,
                    row.account_id,
                    {**ref, "invoice_id": part.invoice_id},
                    part.amount,
                    ref["currency"],
                    index=None if ref["invoice_id"] else index,
                    credit=credits[key],
                )
            return True
        raise RuntimeError(f"payment {row.payment_id} kept changing while it was being reversed")

    def _put_ref(self, new_ref: Item, current: Item | None) -> bool:
        if current is None:
            return self._ledger.put_new(new_ref)
        return self._ledger.replace(new_ref, expected_row_hash=current["row_hash"])

    def _deactivate(self, run: _Run, key: tuple[str, str], amount: Decimal, line: int) -> bool:
        """The payment stops counting; its item stays (see the section's comment). False if it did not
        count (any more)."""
        return self._ledger.update(
            key,
            condition="#kind = :payment",
            UpdateExpression=(
                "SET #kind = :reversed, #amount = :zero, reversed_amount = :amount, reversed_at = :at, "
                "reversed_by = :source"
            ),
            ExpressionAttributeNames={"#kind": "kind", "#amount": "amount"},
            ExpressionAttributeValues={
                ":payment": "payment",
                ":reversed": "reversed_payment",
                ":zero": Decimal(0),
                ":amount": amount,
                ":at": rfc3339(run.source.uploaded_at),
                ":source": f"{run.source.key}#{run.source.revision}#{line}",
            },
        )

    def _payment_item(
        self,
        run: _Run,
        row: formats.PaymentRow,
        pk: str,
        sk: str,
        part: _Part,
        currency: str,
        payment_id: str = "",
        extra: Item | None = None,
    ) -> Item:
        payment = row.payment
        item: Item = {
            "PK": pk,
            "SK": sk,
            "kind": "payment",
            "account_id": payment.account_id,
            "invoice_id": part.invoice_id,
            "amount": part.amount,
            "currency": currency,
            "paid_on": payment.paid_on.isoformat(),
            "reference": payment.reference or "",
            "credit": part.credit,
            "recorded_at": rfc3339(run.source.uploaded_at),
            **run.source_fields(row.line),
            **(extra or {}),
        }
        if payment_id:
            item["payment_id"] = payment_id
        return item

    def _payment_events(
        self,
        run: _Run,
        type_: str,
        row: formats.PaymentRow,
        part: _Part,
        currency: str,
        extra: dict[str, Any] | None = None,
        *,
        index: int = 0,
    ) -> None:
        """One event per part: a payment on account logs each invoice it went to (`part` keeps their
        identities apart); then, for a part that changed its invoice's credit (what it received beyond its
        amount: an overpayment; a correction may also take some back), `credit_recorded`."""
        payment = row.payment
        on_account = payment.invoice_id is None
        data: dict[str, Any] = {
            "invoice_id": part.invoice_id,
            "amount": format_amount(part.amount, currency),
            "currency": currency,
            "paid_on": payment.paid_on.isoformat(),
            **({"payment_id": row.payment_id} if row.payment_id else {}),
            **({"on_account": True} if on_account else {}),
            **(extra or {}),
        }
        tag = part.invoice_id if on_account else ""
        run.event(type_, payment.account_id, row.line, seq=min(index, 8), part=tag, **data)
        if part.credit:
            seq = 9 if on_account else 1
            _credit_event(
                run, payment.account_id, row.line, seq, tag, part.credit, currency, invoice_id=part.invoice_id
            )

    def _reversal_event(
        self,
        run: _Run,
        line: int,
        account_id: str,
        payment: Item,
        amount: Decimal,
        currency: str,
        *,
        index: int | None = None,
        credit: Decimal = Decimal(0),
    ) -> None:
        """`payment_reversed`, and `credit_recorded` (negative) when the payment had been received beyond
        its invoice's amount: that credit goes with it."""
        data: dict[str, Any] = {
            "invoice_id": payment["invoice_id"],
            "amount": format_amount(amount, currency),
            "currency": currency,
            "paid_on": payment["paid_on"],
            **({"payment_id": payment["payment_id"]} if payment.get("payment_id") else {}),
        }
        # A payment on account is reversed part by part: one event per invoice it had gone to.
        tag = "" if index is None else payment["invoice_id"]
        run.event(EventType.PAYMENT_REVERSED, account_id, line, seq=min(index or 0, 9), part=tag, **data)
        if credit:
            _credit_event(run, account_id, line, 9, tag, credit, currency, invoice_id=payment["invoice_id"])

    def _sync_due_index(self, chunk: _PaymentChunk) -> None:
        """The invoices whose payments changed enter or leave the sparse due index as they now owe or not:
        a reversal that re-opens a settled invoice makes the ladder chase it again (unless the account is
        with the legal team, whose hand-off took its invoices out of the index)."""
        for key in sorted(chunk.touched):
            invoice = chunk.invoices.get(key)
            if invoice is None:
                continue
            owed = chunk.owed(key)
            account_id, invoice_id = invoice["account_id"], invoice["invoice_id"]
            if owed > 0 and "due_pk" not in invoice and not chunk.with_legal(key[0], invoice["currency"]):
                due = due_keys(account_id, invoice_id, date.fromisoformat(invoice["due_on"]))
                if self._ledger.update(
                    key,
                    condition="row_hash = :expected",
                    UpdateExpression="SET due_pk = :pk, due_sk = :sk",
                    ExpressionAttributeValues={
                        ":expected": invoice["row_hash"],
                        ":pk": due["due_pk"],
                        ":sk": due["due_sk"],
                    },
                ):
                    invoice.update(due)
            elif (
                owed <= 0
                and "due_pk" in invoice
                and self._ledger.drop_from_due_index(account_id, invoice_id, row_hash=invoice["row_hash"])
            ):
                invoice.pop("due_pk", None)
                invoice.pop("due_sk", None)
        chunk.touched.clear()

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
        name = run.source.file_name
        account = document_account(run.source.key)
        if account is None:
            others = sorted(claimants(self._ledger.query_partition(document_pk(name), CLAIM_PREFIX)))
            if len(others) > 1:
                # Attaching it to any of them could send one customer another's invoice (module docstring
                # of dunning.adapters.storage); invoices that claim it later make it ambiguous the same way.
                error = (
                    f"invoices of several accounts ({', '.join(others)}) look for this file, so it is "
                    f"attached to none of them; upload it as {DOCUMENTS_PREFIX}<account_id>/{name}"
                )
                self._reject(run, formats.Rejection(0, "", name, error))
                return
        self._ledger.write_batch(
            [
                {
                    "PK": document_pk(name),
                    "SK": UNBOUND_DOCUMENT_SK if account is None else bound_document_sk(account),
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


def _invoice_row_key(row: formats.InvoiceRow | formats.CreditNoteRow) -> tuple[str, str, str]:
    if isinstance(row, formats.CreditNoteRow):
        return row.account_id, "credit_note", row.credit_note_id
    return row.invoice.account_id, "invoice", row.invoice.invoice_id


# How many changes of an invoice's paid figure are remembered (balances.py): older ones are dropped, the
# oldest kept then counting as the first (with the feed recorded before it: the larger of the two).
_PAID_HISTORY = 20


def _paid_history(current: Item | None, paid: Decimal, at: datetime) -> list[Item]:
    """The export's paid figure each time it changed, as `paid_reported` on the invoice item: the current
    item's history, and `paid` as of `at` if it differs from the last figure (a re-upload of the same
    figure changes nothing, so feed payments recorded since still count on top of it)."""
    history: list[Item] = []
    for reported in reported_history(current) if current is not None else ():
        history.append({"paid": reported.paid} | ({"at": rfc3339(reported.at)} if reported.at else {}))
    if not history or Decimal(history[-1]["paid"]) != paid:
        history.append({"at": rfc3339(at), "paid": paid})
    return history[-_PAID_HISTORY:]


def _credit_event(
    run: _Run, account_id: str, line: int, seq: int, part: str, amount: Decimal, currency: str, **data: Any
) -> None:
    """`credit_recorded`: the account's credit changed by `amount` (negative: a credit was taken back).
    Their sum per account and currency is balances.AccountCredits.total."""
    run.event(
        EventType.CREDIT_RECORDED,
        account_id,
        line,
        seq=seq,
        part=part,
        **data,
        amount=format_amount(amount, currency),
        currency=currency,
    )


def _document_claim(account_id: str, document: str | None, invoice_id: str) -> Item:
    name = document_name(document, invoice_id)
    return {"PK": document_pk(name), "SK": claim_sk(account_id), "kind": "document_claim", "file_name": name}


_ACTIVE = "active"
_REVERSED = "reversed"


@dataclass
class _PaymentChunk:
    """What one chunk of payment rows needs from the ledger, read up front, and kept current as they
    are applied."""

    ledger: Ledger
    invoices: dict[tuple[str, str], Item]
    refs: dict[tuple[str, str], Item]
    legal: set[tuple[str, str | None]]  # (PK, currency) of the ladders with the legal team; None: all
    occurrences: Counter[bytes]  # of each payment content in the file
    reversals: Counter[bytes]  # of each reversal content in the file
    # The payments that count towards each invoice, by item SK: read once per invoice (or with its
    # account's view), then kept current by `add` and `remove` (keyed by SK: never counted twice).
    feeds: dict[tuple[str, str], dict[str, balances.FeedPayment]] = field(default_factory=dict)
    touched: set[tuple[str, str]] = field(default_factory=set)
    accounts: dict[str, _AccountView] = field(default_factory=dict)  # by PK: accounts paid on account

    def with_legal(self, pk: str, currency: str) -> bool:
        """The account's debt in `currency` is with the legal team (its hand-off took it off the index)."""
        return (pk, currency) in self.legal or (pk, None) in self.legal

    def feed(self, key: tuple[str, str]) -> dict[str, balances.FeedPayment]:
        if key not in self.feeds:
            prefix = payment_prefix(invoice_of(key[1]))
            items = self.ledger.query_partition(key[0], prefix)
            self.feeds[key] = {
                item["SK"]: feed_payment(item) for item in items if item.get("kind") == "payment"
            }
        return self.feeds[key]

    def state(
        self,
        key: tuple[str, str],
        leaving_out: Collection[str] = (),
        adding: Sequence[balances.FeedPayment] = (),
    ) -> InvoiceState:
        """The invoice as it stands (leaving out the payment items `leaving_out`, with `adding` recorded)."""
        payments = [payment for sk, payment in self.feed(key).items() if sk not in leaving_out]
        return invoice_state(self.invoices[key], [*payments, *adding])

    def owed(self, key: tuple[str, str], leaving_out: Collection[str] = ()) -> Decimal:
        """What the invoice owes by its own export figure and payments (InvoiceState.own): the due index's
        test, which leaves account credits out."""
        return self.state(key, leaving_out).own.outstanding

    def credit_changes(
        self,
        leaving: Mapping[tuple[str, str], Collection[str]],
        adding: Mapping[tuple[str, str], Sequence[balances.FeedPayment]],
    ) -> dict[tuple[str, str], Decimal]:
        """How each invoice's credit (what it received beyond its amount) would change if the payment items
        `leaving` stopped counting and `adding` were recorded."""
        return {
            key: self.state(key, leaving.get(key, ()), adding.get(key, ())).own.credit
            - self.state(key).own.credit
            for key in sorted(set(leaving) | set(adding))
        }

    def reread_ref(self, key: tuple[str, str]) -> None:
        """Another delivery changed the reference since it was read: read it again."""
        current = self.ledger.get(*key)
        if current is None:
            self.refs.pop(key, None)
        else:
            self.refs[key] = current

    def add(self, key: tuple[str, str], sk: str, payment: balances.FeedPayment) -> None:
        self.feed(key)[sk] = payment
        self.touched.add(key)

    def remove(self, key: tuple[str, str], sk: str) -> None:
        self.feed(key).pop(sk, None)
        self.touched.add(key)


@dataclass(frozen=True)
class _Part:
    """What one payment puts on one invoice (a payment on account has one part per invoice it pays)."""

    invoice_id: str
    amount: Decimal
    credit: Decimal = Decimal(0)


@dataclass
class _AccountView:
    """An account that received a payment on account: its invoices (what they owe is `_account_owed`),
    its credit notes, and the allocations already recorded for rows without payment_id, by allocation_id."""

    invoices: tuple[InvoiceState, ...]
    allocations: dict[str, Item]
    credit_notes: tuple[balances.CreditNote, ...] = ()


def _account_owed(
    chunk: _PaymentChunk,
    pk: str,
    view: _AccountView,
    leaving: Mapping[tuple[str, str], Collection[str]],
) -> dict[str, Decimal]:
    """What each invoice of the account owes with the account's credits applied, as AccountSnapshot
    computes it (leaving out the payment items `leaving`: the payment being corrected)."""
    states = [
        chunk.state(
            (pk, invoice_sk(invoice.invoice_id)), leaving.get((pk, invoice_sk(invoice.invoice_id)), ())
        )
        for invoice in view.invoices
    ]
    return {state.invoice_id: state.outstanding for state in with_credits(states, view.credit_notes)}


def _credited(
    chunk: _PaymentChunk,
    pk: str,
    parts: list[_Part],
    leaving: Mapping[tuple[str, str], Collection[str]],
    paid_on: date,
    at: datetime,
) -> tuple[list[_Part], dict[tuple[str, str], Decimal]]:
    """`parts` with the credit each makes (the change of its invoice's credit, balances.py, once the
    payment items `leaving` stop counting), and the credit changes of the invoices the payment leaves."""
    adding = {
        (pk, invoice_sk(part.invoice_id)): [balances.FeedPayment(paid_on, part.amount, at)] for part in parts
    }
    changes = chunk.credit_changes(leaving, adding)
    credited = [replace(part, credit=changes[(pk, invoice_sk(part.invoice_id))]) for part in parts]
    return credited, {key: change for key, change in changes.items() if key not in adding and change}


_CHARGEABLE = (InvoiceStatus.OPEN.value, InvoiceStatus.PAID.value)


def _allocate(
    chunk: _PaymentChunk,
    pk: str,
    view: _AccountView,
    currency: str,
    amount: Decimal,
    leaving: Mapping[tuple[str, str], Collection[str]],
) -> list[_Part]:
    """A payment on account split over the open invoices of its currency, oldest due date first, each
    taking at most what it owes with the account's credits applied (leaving out `leaving`, the payment
    items of the payment being corrected); the rest goes on the last part, or on the newest invoice of the
    currency if none is open: received beyond that invoice's amount, it is a credit (see `_credited`)."""
    owed = _account_owed(chunk, pk, view, leaving)
    of_currency = sorted(
        (invoice for invoice in view.invoices if invoice.currency == currency),
        key=lambda invoice: (invoice.due_on, invoice.invoice_id),
    )
    parts: list[_Part] = []
    left = amount
    for invoice in of_currency:
        if left <= 0:
            break
        if owed[invoice.invoice_id] > 0:
            taken = min(left, owed[invoice.invoice_id])
            parts.append(_Part(invoice.invoice_id, taken))
            left -= taken
    if left > 0:
        if parts:
            last = parts.pop()
            parts.append(_Part(last.invoice_id, last.amount + left))
        else:
            holders = [invoice for invoice in of_currency if invoice.status in _CHARGEABLE]
            # _on_account_currency rejected the row when there is no invoice of the currency to hold it.
            parts.append(_Part(holders[-1].invoice_id, left))
    return parts


def _on_account_currency(
    row: formats.PaymentRow, chunk: _PaymentChunk, view: _AccountView, ref: Item | None
) -> str | formats.Rejection:
    """The currency of a payment on account: the row's, else the one it was allocated in before (a
    re-delivery, or the payment_id's reference), else that of the account's open invoices if they share
    one (else, when none is open, of all its invoices); else a rejection."""
    payment = row.payment
    account = payment.account_id
    pk = account_pk(account)
    chargeable = [invoice for invoice in view.invoices if invoice.status in _CHARGEABLE]
    if not chargeable:
        return formats.Rejection(
            row.line,
            "invoice_id",
            "",
            f"account {account} has no invoices, so a payment on account has nothing to be allocated "
            "to; import its invoices first, or name the invoice",
            account,
        )
    all_currencies = sorted({invoice.currency for invoice in chargeable})
    currency = payment.currency
    if currency is None and ref is not None and ref.get("currency") in all_currencies:
        currency = str(ref["currency"])
    if currency is None:
        for candidate in all_currencies:
            try:
                amount = to_minor_units(payment.amount, candidate)
            except (ValueError, ArithmeticError):
                continue
            digest = _payment_digest(payment, amount, candidate)
            if _occurrence_id(digest, chunk.occurrences[digest] + 1) in view.allocations:
                currency = candidate
                break
    if currency is None:
        owed = _account_owed(chunk, pk, view, {})
        open_currencies = sorted({invoice.currency for invoice in chargeable if owed[invoice.invoice_id] > 0})
        choices = open_currencies or all_currencies
        if len(choices) > 1:
            which = "open invoices" if open_currencies else "invoices"
            return formats.Rejection(
                row.line,
                "currency",
                "",
                f"ambiguous currency: account {account} has {which} in {', '.join(choices)}; give the "
                "payment's currency so it can be allocated",
                account,
            )
        currency = choices[0]
    if currency not in all_currencies:
        return formats.Rejection(
            row.line,
            "currency",
            currency,
            f"account {account} has no invoices in {currency} for a payment on account to be allocated to",
            account,
        )
    return currency


def _plan(parts: list[_Part]) -> list[Item]:
    return [{"invoice_id": p.invoice_id, "amount": p.amount, "credit": p.credit} for p in parts]


def _plan_parts(plan: list[Item]) -> list[_Part]:
    return [_Part(str(p["invoice_id"]), Decimal(p["amount"]), Decimal(p.get("credit", 0))) for p in plan]


def _part_suffix(allocation_id: str, invoice_id: str) -> str:
    """A part's id: from the row's identity (allocation_id) and its invoice."""
    return "oa-" + hashlib.sha256(f"{allocation_id}\x1f{invoice_id}".encode()).hexdigest()[:24]


def _ref_parts(ref: Item) -> list[_Part]:
    """Where a payment_id's payment counts: its invoice, or the parts of a payment on account."""
    if "parts" in ref:
        return _plan_parts(ref["parts"])
    return [_Part(str(ref["invoice_id"]), Decimal(ref["amount"]))]


def _row_account(row: formats.PaymentRow | formats.ReversalRow) -> str:
    return row.account_id if isinstance(row, formats.ReversalRow) else row.payment.account_id


def _payment_digest(payment: Payment, amount: Decimal, currency: str) -> bytes:
    identity = "\x1f".join(
        (
            payment.account_id,
            payment.invoice_id or "",
            payment.paid_on.isoformat(),
            str(amount),
            currency,
            payment.reference or "",
        )
    )
    return hashlib.sha256(identity.encode()).digest()[:16]


def _occurrence_id(digest: bytes, occurrence: int) -> str:
    return hashlib.sha256(digest + str(occurrence).encode()).hexdigest()[:24]


def _identified_suffix(payment_id: str) -> str:
    # Hashed: a payment_id may hold '#' or be long, and must not be mistaken for a content hash.
    return "id-" + hashlib.sha256(payment_id.encode()).hexdigest()[:24]


def _payment_content(payment: Payment, amount: Decimal, currency: str) -> str:
    return json.dumps(
        [
            payment.invoice_id or "",
            payment.paid_on.isoformat(),
            str(amount),
            currency,
            payment.reference or "",
        ]
    )


def _ref_hash(content: str, state: str) -> str:
    return hashlib.sha256(f"{content}#{state}".encode()).hexdigest()


def _payment_ref(
    key: tuple[str, str],
    row: formats.PaymentRow,
    content: str,
    state: str,
    amount: Decimal,
    currency: str,
    parts: list[_Part],
) -> Item:
    payment = row.payment
    # A payment on account has no one invoice: "" and the parts it was allocated as.
    on_account: Item = {"parts": _plan(parts)} if payment.invoice_id is None else {}
    return {
        "PK": key[0],
        "SK": key[1],
        "kind": "payment_ref",
        "payment_id": row.payment_id,
        "account_id": payment.account_id,
        "invoice_id": payment.invoice_id or "",
        "amount": amount,
        "currency": currency,
        "paid_on": payment.paid_on.isoformat(),
        "content": content,
        "state": state,
        "row_hash": _ref_hash(content, state),
        **on_account,
    }


def _payment_problem(
    line: int, payment: Payment, invoice: Item | None, *, reversal: bool = False
) -> formats.Rejection | None:
    account = payment.account_id
    if invoice is None:
        return formats.Rejection(
            line,
            "invoice_id",
            payment.invoice_id or "",
            f"account {account} has no invoice {payment.invoice_id}; import the invoice first",
            account,
        )
    # A payment already applied to an invoice voided since can still be reversed.
    if not reversal and invoice["status"] in (InvoiceStatus.VOID.value, InvoiceStatus.DRAFT.value):
        return formats.Rejection(
            line,
            "invoice_id",
            payment.invoice_id or "",
            f"invoice {payment.invoice_id} is {invoice['status']}; a payment cannot be applied to it",
            account,
        )
    if payment.currency and payment.currency != invoice["currency"]:
        return formats.Rejection(
            line,
            "currency",
            payment.currency,
            f"the payment is in {payment.currency} but invoice {payment.invoice_id} is in "
            f"{invoice['currency']}",
            account,
        )
    try:
        to_minor_units(payment.amount, invoice["currency"])
    except (ValueError, ArithmeticError) as exc:
        return formats.Rejection(
            line, "amount", str(payment.amount), str(exc) or "is not a usable amount", account
        )
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
