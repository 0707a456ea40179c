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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
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
    payment_ref_sk,
    payment_sk,
)
from dunning.models import ActionKind, InvoiceStatus, Payment
from dunning.money import format_amount, to_minor_units
from dunning.policy import Policy
from dunning.storage import (
    DOCUMENTS_PREFIX,
    UNBOUND_DOCUMENT_SK,
    ObjectStore,
    StoredObject,
    bound_document_sk,
    claim_sk,
    claimants,
    document_account,
    document_name,
    document_pk,
)
from dunning.workflow import STATE_SK

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
        self._ledger.write_batch(new_items + list(profiles.values()) + list(claims.values()))
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
            if row.payment is not None
        }
        keys |= {(ref["PK"], invoice_sk(ref["invoice_id"])) for ref in refs.values()}
        keys |= {(account_pk(_row_account(row)), STATE_SK) for row in rows}
        found = self._ledger.get_many(keys)
        legal = {
            item["PK"] for key, item in found.items() if key[1] == STATE_SK and item.get("status") == "legal"
        }
        invoices = {key: item for key, item in found.items() if key[1] != STATE_SK}
        return _PaymentChunk(self._ledger, invoices, refs, legal, occurrences, reversals)

    def _apply_payment(self, run: _Run, row: formats.PaymentRow, chunk: _PaymentChunk) -> bool:
        """A payment without payment_id: identified by its content (and occurrence in the file)."""
        payment = row.payment
        key = (account_pk(payment.account_id), invoice_sk(payment.invoice_id))
        invoice = chunk.invoices.get(key)
        rejection = _payment_problem(row.line, payment, invoice)
        if rejection is not None:
            self._reject(run, rejection)
            return False
        assert invoice is not None
        currency = invoice["currency"]
        amount = to_minor_units(payment.amount, currency)
        digest = _payment_digest(payment, amount, currency)
        chunk.occurrences[digest] += 1
        before = chunk.owed(key)
        credit = max(amount - before, Decimal(0))
        sk = payment_sk(payment.invoice_id, _occurrence_id(digest, chunk.occurrences[digest]))
        if not self._ledger.put_new(self._payment_item(run, row, key[0], sk, amount, currency, credit)):
            run.summary.unchanged += 1
            return False
        run.summary.imported += 1
        chunk.add(key, amount)
        self._payment_events(run, EventType.PAYMENT_APPLIED, row, amount, currency, credit)
        return True

    def _apply_identified_payment(self, run: _Run, row: formats.PaymentRow, chunk: _PaymentChunk) -> bool:
        """A payment with a payment_id: new, the same again (unchanged), or a correction of that id."""
        payment = row.payment
        pk = account_pk(payment.account_id)
        key = (pk, invoice_sk(payment.invoice_id))
        invoice = chunk.invoices.get(key)
        rejection = _payment_problem(row.line, payment, invoice)
        if rejection is not None:
            self._reject(run, rejection)
            return False
        assert invoice is not None
        currency = invoice["currency"]
        amount = to_minor_units(payment.amount, currency)
        content = _payment_content(payment, amount, currency)
        ref_key = (pk, payment_ref_sk(row.payment_id))
        for _ in range(5):
            ref = chunk.refs.get(ref_key)
            if ref is not None and ref["content"] == content and ref["state"] == _ACTIVE:
                run.summary.unchanged += 1
                return False
            # Where the id's payment counts now, if anywhere: it stops counting there.
            old_key = (
                (pk, invoice_sk(ref["invoice_id"])) if ref is not None and ref["state"] == _ACTIVE else None
            )
            old_amount = Decimal(ref["amount"]) if old_key is not None and ref is not None else Decimal(0)
            before = chunk.owed(key, leaving_out=old_amount if old_key == key else Decimal(0))
            if old_key is not None:
                chunk.owed(old_key)
            credit = max(amount - before, Decimal(0))
            suffix = _identified_suffix(row.payment_id)
            sk = payment_sk(payment.invoice_id, suffix)
            self._ledger.write_batch(
                [self._payment_item(run, row, pk, sk, amount, currency, credit, row.payment_id)]
            )
            if old_key is not None and old_key != key:
                assert ref is not None
                self._deactivate(run, (pk, payment_sk(ref["invoice_id"], suffix)), old_amount, row.line)
            new_ref = _payment_ref(ref_key, row, content, _ACTIVE, amount, currency)
            if not self._put_ref(new_ref, ref):
                chunk.reread_ref(ref_key)
                continue
            chunk.refs[ref_key] = new_ref
            if old_key is not None:
                chunk.add(old_key, -old_amount)
            chunk.add(key, amount)
            if ref is None:
                run.summary.imported += 1
                self._payment_events(run, EventType.PAYMENT_APPLIED, row, amount, currency, credit)
            else:
                run.summary.updated += 1
                previous = {
                    "previous_invoice_id": ref["invoice_id"],
                    "previous_amount": format_amount(Decimal(ref["amount"]), currency),
                    "previous_paid_on": ref["paid_on"],
                    "previous_state": ref["state"],
                }
                self._payment_events(
                    run, EventType.PAYMENT_CORRECTED, row, amount, currency, credit, previous
                )
            return True
        raise RuntimeError(f"payment {row.payment_id} kept changing while it was being corrected")

    def _reverse_payment(self, run: _Run, row: formats.ReversalRow, chunk: _PaymentChunk) -> bool:
        if row.payment_id:
            return self._reverse_identified(run, row, chunk)
        payment = row.payment
        assert payment is not None
        key = (account_pk(payment.account_id), invoice_sk(payment.invoice_id))
        invoice = chunk.invoices.get(key)
        rejection = _payment_problem(row.line, payment, invoice, reversal=True)
        if rejection is not None:
            self._reject(run, rejection)
            return False
        assert invoice is not None
        currency = invoice["currency"]
        amount = to_minor_units(payment.amount, currency)
        digest = _payment_digest(payment, amount, currency)
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
        chunk.owed(key)
        if item["kind"] != "payment" or not self._deactivate(run, item_key, amount, row.line):
            run.summary.unchanged += 1
            return False
        chunk.add(key, -amount)
        run.summary.updated += 1
        self._reversal_event(run, row.line, payment.account_id, item, amount, currency)
        return True

    def _reverse_identified(self, run: _Run, row: formats.ReversalRow, chunk: _PaymentChunk) -> bool:
        pk = account_pk(row.account_id)
        ref_key = (pk, payment_ref_sk(row.payment_id))
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
            key = (pk, invoice_sk(ref["invoice_id"]))
            amount = Decimal(ref["amount"])
            chunk.owed(key)
            self._deactivate(
                run, (pk, payment_sk(ref["invoice_id"], _identified_suffix(row.payment_id))), amount, row.line
            )
            new_ref = dict(ref, state=_REVERSED, row_hash=_ref_hash(ref["content"], _REVERSED))
            if not self._put_ref(new_ref, ref):
                chunk.reread_ref(ref_key)
                continue
            chunk.refs[ref_key] = new_ref
            chunk.add(key, -amount)
            run.summary.updated += 1
            self._reversal_event(run, row.line, row.account_id, ref, amount, ref["currency"])
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
        amount: Decimal,
        currency: str,
        credit: Decimal,
        payment_id: str = "",
    ) -> Item:
        payment = row.payment
        item: Item = {
            "PK": pk,
            "SK": sk,
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
        if payment_id:
            item["payment_id"] = payment_id
        return item

    def _payment_events(
        self,
        run: _Run,
        type_: str,
        row: formats.PaymentRow,
        amount: Decimal,
        currency: str,
        credit: Decimal,
        extra: dict[str, Any] | None = None,
    ) -> None:
        payment = row.payment
        data: dict[str, Any] = {
            "invoice_id": payment.invoice_id,
            "amount": format_amount(amount, currency),
            "currency": currency,
            "paid_on": payment.paid_on.isoformat(),
            **({"payment_id": row.payment_id} if row.payment_id else {}),
            **(extra or {}),
        }
        run.event(type_, payment.account_id, row.line, **data)
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

    def _reversal_event(
        self, run: _Run, line: int, account_id: str, payment: Item, amount: Decimal, currency: str
    ) -> None:
        data: dict[str, Any] = {
            "invoice_id": payment["invoice_id"],
            "amount": format_amount(amount, currency),
            "currency": currency,
            "paid_on": payment["paid_on"],
            **({"payment_id": payment["payment_id"]} if payment.get("payment_id") else {}),
        }
        run.event(EventType.PAYMENT_REVERSED, account_id, line, **data)

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
            if owed > 0 and "due_pk" not in invoice and key[0] not in chunk.legal:
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
            others = sorted(claimants(self._ledger.query_partition(document_pk(name), "CLAIM#")))
            if len(others) > 1:
                # Attaching it to any of them could send one customer another's invoice (module docstring
                # of dunning.storage); invoices that claim it later make it ambiguous the same way.
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
    legal: set[str]  # PKs of the accounts with the legal team
    occurrences: Counter[bytes]  # of each payment content in the file
    reversals: Counter[bytes]  # of each reversal content in the file
    totals: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    touched: set[tuple[str, str]] = field(default_factory=set)

    def owed(self, key: tuple[str, str], leaving_out: Decimal = Decimal(0)) -> Decimal:
        """What the invoice still owes; call before writing its payments (the total is read once)."""
        if key not in self.totals:
            invoice_id = key[1].removeprefix("INVOICE#")
            self.totals[key] = self.ledger.payments_total(key[0].removeprefix("ACCOUNT#"), invoice_id)
        invoice = self.invoices[key]
        return balances.outstanding(
            invoice["amount"], invoice["amount_paid"], self.totals[key] - leaving_out, invoice["status"]
        )

    def reread_ref(self, key: tuple[str, str]) -> None:
        """Another delivery changed the reference since it was read: read it again."""
        current = self.ledger.get(*key)
        if current is None:
            self.refs.pop(key, None)
        else:
            self.refs[key] = current

    def add(self, key: tuple[str, str], amount: Decimal) -> None:
        self.totals[key] += amount
        self.touched.add(key)


def _row_account(row: formats.PaymentRow | formats.ReversalRow) -> str:
    return row.account_id if isinstance(row, formats.ReversalRow) else row.payment.account_id


def _payment_digest(payment: Payment, amount: Decimal, currency: str) -> bytes:
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
    return hashlib.sha256(identity.encode()).digest()[:16]


def _occurrence_id(digest: bytes, occurrence: int) -> str:
    return hashlib.sha256(digest + str(occurrence).encode()).hexdigest()[:24]


def _identified_suffix(payment_id: str) -> str:
    # Hashed: a payment_id may hold '#' or be long, and must not be mistaken for a content hash.
    return "id-" + hashlib.sha256(payment_id.encode()).hexdigest()[:24]


def _payment_content(payment: Payment, amount: Decimal, currency: str) -> str:
    return json.dumps(
        [payment.invoice_id, payment.paid_on.isoformat(), str(amount), currency, payment.reference or ""]
    )


def _ref_hash(content: str, state: str) -> str:
    return hashlib.sha256(f"{content}#{state}".encode()).hexdigest()


def _payment_ref(
    key: tuple[str, str], row: formats.PaymentRow, content: str, state: str, amount: Decimal, currency: str
) -> Item:
    payment = row.payment
    return {
        "PK": key[0],
        "SK": key[1],
        "kind": "payment_ref",
        "payment_id": row.payment_id,
        "account_id": payment.account_id,
        "invoice_id": payment.invoice_id,
        "amount": amount,
        "currency": currency,
        "paid_on": payment.paid_on.isoformat(),
        "content": content,
        "state": state,
        "row_hash": _ref_hash(content, state),
    }


def _payment_problem(
    line: int, payment: Payment, invoice: Item | None, *, reversal: bool = False
) -> formats.Rejection | None:
    account = payment.account_id
    if invoice is None:
        return formats.Rejection(
            line,
            "invoice_id",
            payment.invoice_id,
            f"account {account} has no invoice {payment.invoice_id}; import the invoice first",
            account,
        )
    # A payment already applied to an invoice voided since can still be reversed.
    if not reversal and invoice["status"] in (InvoiceStatus.VOID.value, InvoiceStatus.DRAFT.value):
        return formats.Rejection(
            line,
            "invoice_id",
            payment.invoice_id,
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
