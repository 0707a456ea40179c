"""The ledger records an upload becomes: attribute maps, as dunning.domain.account reads them back.

The ledger (ports.IngestLedger) stores each under its key; nothing here knows how. Every record of a row
says where it came from (`source_fields`), and is written the same way however often the upload is
processed, so that processing it again changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from dunning.domain.account import reported_history
from dunning.domain.clock import rfc3339
from dunning.domain.models import ADDRESS_FIELDS
from dunning.ingest import formats
from dunning.ingest.run import ImportSummary
from dunning.ports import StoredObject, StoredRecord

# How many changes of an invoice's paid figure are remembered (balances.py): older ones are dropped, the
# oldest kept then counting as the first (with the feed recorded before it: the larger of the two).
_PAID_HISTORY = 20

ACTIVE = "active"
REVERSED = "reversed"


def source_fields(source: StoredObject, line: int) -> StoredRecord:
    return {"source_key": source.key, "source_revision": source.revision, "source_row": line}


def invoice(source: StoredObject, row: formats.InvoiceRow, current: Mapping[str, Any] | None) -> StoredRecord:
    """The invoice of `row` (replacing `current`, if any)."""
    invoice = row.invoice
    return {
        "kind": "invoice",
        "row_hash": row.row_hash,
        **invoice.model_dump(mode="python", exclude_none=True),
        "issued_on": invoice.issued_on.isoformat(),
        "due_on": invoice.due_on.isoformat(),
        "status": invoice.status.value,
        "imported_at": rfc3339(source.uploaded_at),
        "paid_reported": _paid_history(current, invoice.amount_paid, source.uploaded_at),
        **source_fields(source, row.line),
    }


def _paid_history(current: Mapping[str, Any] | None, paid: Decimal, at: datetime) -> list[StoredRecord]:
    """The export's paid figure each time it changed, as `paid_reported` on the invoice item: the current
    item's history, and `paid` as of `at` if it differs from the last figure (a re-upload of the same
    figure changes nothing, so feed payments recorded since still count on top of it)."""
    history: list[StoredRecord] = []
    for reported in reported_history(current) if current is not None else ():
        history.append({"paid": reported.paid} | ({"at": rfc3339(reported.at)} if reported.at else {}))
    if not history or Decimal(history[-1]["paid"]) != paid:
        history.append({"at": rfc3339(at), "paid": paid})
    return history[-_PAID_HISTORY:]


def profile(source: StoredObject, row: formats.InvoiceRow) -> StoredRecord:
    """The account's profile (kind `account`), as the invoice row gives it."""
    fields = row.profile.model_dump(mode="python", exclude_none=True, exclude=set(ADDRESS_FIELDS))
    fields["emails"] = list(fields["emails"])
    fields["customer_type"] = row.profile.customer_type.value
    # The postal address as one map, {line1, line2, city, region, postal_code}: only the parts given.
    if address := row.profile.address:
        fields["address"] = address
    return {"kind": "account", **fields, **source_fields(source, row.line)}


def credit_note(source: StoredObject, row: formats.CreditNoteRow) -> StoredRecord:
    return {
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
        "imported_at": rfc3339(source.uploaded_at),
        **source_fields(source, row.line),
    }


@dataclass(frozen=True)
class Part:
    """What one payment puts on one invoice (a payment on account has one part per invoice it pays)."""

    invoice_id: str
    amount: Decimal
    credit: Decimal = Decimal(0)


def plan(parts: list[Part]) -> list[StoredRecord]:
    """The parts of a payment on account as recorded (`allocation` on its items, `parts` on its reference)."""
    return [{"invoice_id": p.invoice_id, "amount": p.amount, "credit": p.credit} for p in parts]


def plan_parts(recorded: list[StoredRecord]) -> list[Part]:
    return [_part(p["invoice_id"], p["amount"], p.get("credit", 0)) for p in recorded]


def ref_parts(ref: Mapping[str, Any]) -> list[Part]:
    """Where a payment_id's payment counts: its invoice, or the parts of a payment on account."""
    if "parts" in ref:
        return plan_parts(ref["parts"])
    return [_part(ref["invoice_id"], ref["amount"])]


def _part(invoice_id: Any, amount: Any, credit: Any = 0) -> Part:
    return Part(str(invoice_id), Decimal(amount), Decimal(credit))


def payment(
    source: StoredObject,
    row: formats.PaymentRow,
    part: Part,
    currency: str,
    payment_id: str = "",
    extra: StoredRecord | None = None,
) -> StoredRecord:
    """A payment item (kind `payment`): `part` of the row's payment, on its invoice."""
    paid = row.payment
    record: StoredRecord = {
        "kind": "payment",
        "account_id": paid.account_id,
        "invoice_id": part.invoice_id,
        "amount": part.amount,
        "currency": currency,
        "paid_on": paid.paid_on.isoformat(),
        "reference": paid.reference or "",
        "credit": part.credit,
        "recorded_at": rfc3339(source.uploaded_at),
        **source_fields(source, row.line),
        **(extra or {}),
    }
    if payment_id:
        record["payment_id"] = payment_id
    return record


def ref_hash(content: str, state: str) -> str:
    return hashlib.sha256(f"{content}#{state}".encode()).hexdigest()


def payment_ref(
    row: formats.PaymentRow, content: str, state: str, amount: Decimal, currency: str, parts: list[Part]
) -> StoredRecord:
    """The reference of a payment with a payment_id (kind `payment_ref`): its content and state, and where
    it counts."""
    paid = row.payment
    # A payment on account has no one invoice: "" and the parts it was allocated as.
    on_account: StoredRecord = {"parts": plan(parts)} if paid.invoice_id is None else {}
    return {
        "kind": "payment_ref",
        "payment_id": row.payment_id,
        "account_id": paid.account_id,
        "invoice_id": paid.invoice_id or "",
        "amount": amount,
        "currency": currency,
        "paid_on": paid.paid_on.isoformat(),
        "content": content,
        "state": state,
        "row_hash": ref_hash(content, state),
        **on_account,
    }


def reversed_ref(ref: Mapping[str, Any]) -> StoredRecord:
    return dict(ref, state=REVERSED, row_hash=ref_hash(ref["content"], REVERSED))


def action(source: StoredObject, row: formats.ActionRow) -> StoredRecord:
    return {
        "kind": "action",
        **row.action.model_dump(mode="json", exclude_none=True),
        "recorded_at": rfc3339(source.uploaded_at),
        **source_fields(source, row.line),
    }


def document(source: StoredObject, sha256: str, size: int) -> StoredRecord:
    """An uploaded invoice PDF: where it is, and what it holds."""
    return {
        "kind": "document",
        "file_name": source.file_name,
        "bucket": source.bucket,
        "key": source.key,
        "version_id": source.version_id or "",
        "sha256": sha256,
        "bytes": size,
        "uploaded_at": rfc3339(source.uploaded_at),
    }


def receipt(summary: ImportSummary) -> StoredRecord:
    """What one upload (one version of a source object) came to: it is not ingested again."""
    return {"kind": "receipt", "format": summary.format, **summary.counts()}
