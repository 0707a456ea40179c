"""The ledger items that hold ingest's records: each record under its key (dunning.adapters.keys), an
invoice with the due index's attributes while the scan should read it.

A record (ports.StoredRecord) carries the ids that name it; the item is the key first, then the record's
attributes as they are. Stored items are read back by these keys: never change one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from dunning.adapters.keys import (
    PROFILE_SK,
    UNBOUND_DOCUMENT_SK,
    account_pk,
    action_sk,
    bound_document_sk,
    claim_sk,
    credit_note_sk,
    document_pk,
    due_keys,
    invoice_sk,
    payment_prefix,
    payment_ref_sk,
    payment_sk,
    receipt_key,
)

Item = dict[str, Any]
Key = tuple[str, str]


def _keyed(key: Key, record: Mapping[str, Any]) -> Item:
    return {"PK": key[0], "SK": key[1], **record}


def invoice_key(account_id: str, invoice_id: str) -> Key:
    return account_pk(account_id), invoice_sk(invoice_id)


def due_attributes(invoice: Mapping[str, Any]) -> Item:
    """The due index's attributes of an invoice record."""
    return due_keys(invoice["account_id"], invoice["invoice_id"], date.fromisoformat(invoice["due_on"]))


def invoice_item(invoice: Mapping[str, Any], *, due: bool) -> Item:
    item = _keyed(invoice_key(invoice["account_id"], invoice["invoice_id"]), invoice)
    if due:
        item.update(due_attributes(invoice))
    return item


def credit_note_key(account_id: str, credit_note_id: str) -> Key:
    return account_pk(account_id), credit_note_sk(credit_note_id)


def credit_note_item(note: Mapping[str, Any]) -> Item:
    return _keyed(credit_note_key(note["account_id"], note["credit_note_id"]), note)


def profile_key(account_id: str) -> Key:
    return account_pk(account_id), PROFILE_SK


def profile_item(profile: Mapping[str, Any]) -> Item:
    return _keyed(profile_key(profile["account_id"]), profile)


def claim_item(account_id: str, file_name: str) -> Item:
    """The account's invoices look for the document `file_name`."""
    return {
        "PK": document_pk(file_name),
        "SK": claim_sk(account_id),
        "kind": "document_claim",
        "file_name": file_name,
    }


def payment_key(account_id: str, invoice_id: str, entry: str) -> Key:
    return account_pk(account_id), payment_sk(invoice_id, entry)


def payment_entry(item: Mapping[str, Any]) -> str:
    """A payment item's entry: its id among its invoice's payments."""
    return str(item["SK"]).removeprefix(payment_prefix(item["invoice_id"]))


def payment_item(entry: str, payment: Mapping[str, Any]) -> Item:
    return _keyed(payment_key(payment["account_id"], payment["invoice_id"], entry), payment)


def payment_ref_key(account_id: str, payment_id: str) -> Key:
    return account_pk(account_id), payment_ref_sk(payment_id)


def payment_ref_item(ref: Mapping[str, Any]) -> Item:
    return _keyed(payment_ref_key(ref["account_id"], ref["payment_id"]), ref)


def action_item(action_id: str, action: Mapping[str, Any]) -> Item:
    return _keyed(
        (account_pk(action["account_id"]), action_sk(date.fromisoformat(action["on"]), action_id)), action
    )


def document_item(document: Mapping[str, Any], account_id: str | None) -> Item:
    sk = UNBOUND_DOCUMENT_SK if account_id is None else bound_document_sk(account_id)
    return _keyed((document_pk(document["file_name"]), sk), document)


def receipt_item(object_key: str, revision: str, receipt: Mapping[str, Any]) -> Item:
    return _keyed(receipt_key(object_key, revision), receipt)
