"""Invoice uploads (our format or an accounting export): invoices, the accounts' profiles, the documents
their invoices look for, and (from an export) credit notes.

A row seen before is unchanged (its `row_hash`); a corrected row replaces its invoice, conditionally on the
version read, so that a payment and an import, or two deliveries of one file, can race without losing an
update.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from dunning.domain import balances
from dunning.domain.account import feed_payment, invoice_state
from dunning.domain.events import EventType
from dunning.ingest import formats, records
from dunning.ingest.run import Run, chunks_without_repeats
from dunning.ports import StoredRecord, document_name

# A corrected row is retried this many times while other writers keep changing its record.
ATTEMPTS = 5


def import_invoices(run: Run, rows: Iterator[formats.InvoiceRow | formats.CreditNoteRow]) -> None:
    for chunk in chunks_without_repeats(rows, key=_row_key):
        invoices = [row for row in chunk if isinstance(row, formats.InvoiceRow)]
        credit_notes = [row for row in chunk if isinstance(row, formats.CreditNoteRow)]
        if invoices:
            _import_invoice_chunk(run, invoices)
        if credit_notes:
            _import_credit_notes(run, credit_notes)


def _row_key(row: formats.InvoiceRow | formats.CreditNoteRow) -> tuple[str, str, str]:
    if isinstance(row, formats.CreditNoteRow):
        return row.account_id, "credit_note", row.credit_note_id
    return row.invoice.account_id, "invoice", row.invoice.invoice_id


def _import_invoice_chunk(run: Run, chunk: list[formats.InvoiceRow]) -> None:
    ids = [(row.invoice.account_id, row.invoice.invoice_id) for row in chunk]
    existing = run.ledger.invoices(ids)
    new: list[tuple[StoredRecord, bool]] = []
    profiles: dict[str, StoredRecord] = {}
    claims: dict[tuple[str, str], None] = {}
    for row, invoice_key in zip(chunk, ids, strict=True):
        # Unchanged rows claim too, so uploading again invoices imported before claims existed binds their
        # documents.
        claims[(row.invoice.account_id, document_name(row.invoice.document, row.invoice.invoice_id))] = None
        current = existing.get(invoice_key)
        if current is not None and current.get("row_hash") == row.row_hash:
            run.summary.unchanged += 1
            continue
        if current is None:
            invoice, due = _invoice(run, row, None, ())
            new.append((invoice, due))
            credit = invoice_state(invoice, ()).own.credit
            run.summary.imported += 1
        else:
            credit = _replace_invoice(run, row, current)
            run.summary.updated += 1
        profiles[row.profile.account_id] = records.profile(run.source, row)
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
            run.credit_event(
                row.invoice.account_id,
                row.line,
                1,
                "",
                credit,
                row.invoice.currency,
                invoice_id=row.invoice.invoice_id,
            )
    run.ledger.add_invoices(new, list(profiles.values()), list(claims))
    run.flush_events()


def _replace_invoice(run: Run, row: formats.InvoiceRow, current: StoredRecord) -> Decimal:
    """A corrected invoice: conditional on the version we read, re-read and retried if it moved. Returns how
    much its credit (what it received beyond its amount) changed."""
    for _ in range(ATTEMPTS):
        feed = _feed(run, row)
        invoice, due = _invoice(run, row, current, feed)
        if run.ledger.replace_invoice(invoice, due=due, replacing=current):
            return invoice_state(invoice, feed).own.credit - invoice_state(current, feed).own.credit
        latest = run.ledger.invoice(row.invoice.account_id, row.invoice.invoice_id)
        if latest is None or latest.get("row_hash") == row.row_hash:
            return Decimal(0)
        current = latest
    raise RuntimeError(f"invoice {row.invoice.invoice_id} kept changing while it was being updated")


def _feed(run: Run, row: formats.InvoiceRow) -> list[balances.FeedPayment]:
    """The payments that count towards the row's invoice."""
    payments = run.ledger.payments(row.invoice.account_id, row.invoice.invoice_id).values()
    return [feed_payment(item) for item in payments if item.get("kind") == "payment"]


def _invoice(
    run: Run,
    row: formats.InvoiceRow,
    current: Mapping[str, Any] | None,
    feed: Sequence[balances.FeedPayment],
) -> tuple[StoredRecord, bool]:
    """The invoice record for `row` (replacing `current`, if any), and whether it is in the due index: while
    it owes something by its own export figure and payments (balances.py; account credits are left out: they
    may settle it later, and the scan then finds it settled)."""
    invoice = records.invoice(run.source, row, current)
    return invoice, invoice_state(invoice, feed).own.outstanding > 0


def _import_credit_notes(run: Run, rows: list[formats.CreditNoteRow]) -> None:
    """Credit notes of the export: what is left of each to allocate is a credit on its account; the change
    of it is logged as `credit_recorded` (negative when the accounting system allocated it)."""
    ids = [(row.account_id, row.credit_note_id) for row in rows]
    existing = run.ledger.credit_notes(ids)
    for row, note_key in zip(rows, ids, strict=True):
        current = existing.get(note_key)
        if current is not None and current.get("row_hash") == row.row_hash:
            run.summary.unchanged += 1
            continue
        before = _put_credit_note(run, row, current)
        if before is None:
            run.summary.unchanged += 1
            continue
        if current is None:
            run.summary.imported += 1
        else:
            run.summary.updated += 1
        if row.remaining != before:
            run.credit_event(
                row.account_id,
                row.line,
                0,
                "",
                row.remaining - before,
                row.currency,
                credit_note_id=row.credit_note_id,
                reference=row.reference,
            )
    run.flush_events()


def _put_credit_note(run: Run, row: formats.CreditNoteRow, current: StoredRecord | None) -> Decimal | None:
    """Write the credit note (conditionally on the version read); the remainder it replaced, or None when
    another delivery wrote this very row first."""
    note = records.credit_note(run.source, row)
    for _ in range(ATTEMPTS):
        if run.ledger.put_credit_note(note, current):
            return Decimal(current["amount"]) if current is not None else Decimal(0)
        current = run.ledger.credit_note(row.account_id, row.credit_note_id)
        if current is not None and current.get("row_hash") == row.row_hash:
            return None
    raise RuntimeError(f"credit note {row.credit_note_id} kept changing while it was being updated")
