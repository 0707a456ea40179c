"""The ledger as ingest records uploads in it (ports.IngestLedger), on the ledger table.

dunning.adapters.items puts each record under its key; this module reads and writes them with the Ledger's
batched and conditional operations (the conditions are in dunning.adapters.ledger's docstring: a payment
entry is written only if new, a correction only over the version that was read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from dunning.adapters import items
from dunning.adapters.keys import (
    CLAIM_PREFIX,
    CREDIT_NOTE_PREFIX,
    INVOICE_PREFIX,
    LEGACY_STATE_SK,
    NOTICE_PREFIX,
    PAYMENT_PREFIX,
    account_pk,
    claimants,
    document_pk,
    payment_prefix,
    receipt_key,
)
from dunning.adapters.ladders import wake_ladder_soon
from dunning.adapters.ledger import Ledger
from dunning.domain.account import TASK, AccountSnapshot
from dunning.domain.agreements import HELD_BY_AGREEMENT
from dunning.domain.events import Event
from dunning.ports import Claim, NewInvoice, StoredObject, StoredRecord

_DUE_ATTRIBUTES = ("due_pk", "due_sk")


class DynamoIngestLedger:
    """ports.IngestLedger on the ledger table."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    # --- the upload

    def ingested(self, source: StoredObject) -> bool:
        return self._ledger.get(*receipt_key(source.key, source.revision)) is not None

    def record_ingested(self, source: StoredObject, receipt: StoredRecord) -> None:
        self._ledger.write_batch([items.receipt_item(source.key, source.revision, receipt)])

    def append_events(self, events: Iterable[Event]) -> None:
        self._ledger.append_events(events)

    # --- invoices, credit notes and account profiles

    def invoices(self, ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        return self._get_many(ids, items.invoice_key)

    def invoice(self, account_id: str, invoice_id: str) -> StoredRecord | None:
        return self._ledger.get(*items.invoice_key(account_id, invoice_id))

    def add_invoices(
        self, invoices: Sequence[NewInvoice], profiles: Sequence[StoredRecord], claims: Sequence[Claim]
    ) -> None:
        self._ledger.write_batch(
            [items.invoice_item(invoice, due=due) for invoice, due in invoices]
            + [items.profile_item(profile) for profile in profiles]
            + [items.claim_item(account_id, file_name) for account_id, file_name in claims]
        )
        self._wake({(invoice["account_id"], invoice["currency"]) for invoice, due in invoices if due})

    def replace_invoice(self, invoice: StoredRecord, *, due: bool, replacing: StoredRecord) -> bool:
        item = items.invoice_item(invoice, due=due)
        replaced = self._ledger.replace(item, expected_row_hash=replacing["row_hash"])
        if replaced and due:
            self._wake({(invoice["account_id"], invoice["currency"])})
        return replaced

    def _wake(self, ladders: Iterable[tuple[str, str]]) -> None:
        # After the invoices are stored: a scan that reads the wake first then finds them.
        for account_id, currency in sorted(ladders):
            wake_ladder_soon(self._ledger, account_id, currency)

    def credit_notes(self, ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        return self._get_many(ids, items.credit_note_key)

    def credit_note(self, account_id: str, credit_note_id: str) -> StoredRecord | None:
        return self._ledger.get(*items.credit_note_key(account_id, credit_note_id))

    def put_credit_note(self, note: StoredRecord, replacing: StoredRecord | None) -> bool:
        return self._put(items.credit_note_item(note), replacing)

    def account_invoices(self, account_id: str) -> list[StoredRecord]:
        return list(self._ledger.query_partition(account_pk(account_id), INVOICE_PREFIX))

    def account_credit_notes(self, account_id: str) -> list[StoredRecord]:
        return list(self._ledger.query_partition(account_pk(account_id), CREDIT_NOTE_PREFIX))

    def account_tasks(self, account_id: str) -> list[StoredRecord]:
        rungs = self._ledger.query_partition(account_pk(account_id), NOTICE_PREFIX)
        return [rung for rung in rungs if rung.get("status") == TASK]

    # --- payments

    def payments(self, account_id: str, invoice_id: str) -> dict[str, StoredRecord]:
        prefix = payment_prefix(invoice_id)
        found = self._ledger.query_partition(account_pk(account_id), prefix)
        return {item["SK"].removeprefix(prefix): item for item in found}

    def account_payments(self, account_id: str) -> dict[tuple[str, str], StoredRecord]:
        found = self._ledger.query_partition(account_pk(account_id), PAYMENT_PREFIX)
        return {(item["invoice_id"], items.payment_entry(item)): item for item in found}

    def payment(self, account_id: str, invoice_id: str, entry: str) -> StoredRecord | None:
        return self._ledger.get(*items.payment_key(account_id, invoice_id, entry))

    def add_payment(self, entry: str, payment: StoredRecord) -> bool:
        return self._ledger.put_new(items.payment_item(entry, payment))

    def put_payments(self, payments: Sequence[tuple[str, StoredRecord]]) -> None:
        self._ledger.write_batch([items.payment_item(entry, payment) for entry, payment in payments])

    def reverse_payment(
        self, account_id: str, invoice_id: str, entry: str, *, amount: Decimal, at: str, by: str
    ) -> bool:
        return self._ledger.update(
            items.payment_key(account_id, invoice_id, entry),
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
                ":at": at,
                ":source": by,
            },
        )

    def payment_refs(self, ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        return self._get_many(ids, items.payment_ref_key)

    def payment_ref(self, account_id: str, payment_id: str) -> StoredRecord | None:
        return self._ledger.get(*items.payment_ref_key(account_id, payment_id))

    def put_payment_ref(self, ref: StoredRecord, replacing: StoredRecord | None) -> bool:
        return self._put(items.payment_ref_item(ref), replacing)

    def ladder_states(self, account_id: str) -> list[StoredRecord]:
        # STATE#<currency>, and the one STATE kept before ladders were per currency.
        return list(self._ledger.query_partition(account_pk(account_id), LEGACY_STATE_SK))

    def in_due_index(self, invoice: StoredRecord) -> bool:
        return "due_pk" in invoice

    def set_due(self, invoice: StoredRecord, due: bool) -> StoredRecord | None:
        account_id, invoice_id, row_hash = invoice["account_id"], invoice["invoice_id"], invoice["row_hash"]
        if not due:
            if not self._ledger.drop_from_due_index(account_id, invoice_id, row_hash=row_hash):
                return None
            return {name: value for name, value in invoice.items() if name not in _DUE_ATTRIBUTES}
        attributes = items.due_attributes(invoice)
        entered = self._ledger.update(
            items.invoice_key(account_id, invoice_id),
            condition="row_hash = :expected",
            UpdateExpression="SET due_pk = :pk, due_sk = :sk",
            ExpressionAttributeValues={
                ":expected": row_hash,
                ":pk": attributes["due_pk"],
                ":sk": attributes["due_sk"],
            },
        )
        if not entered:
            return None
        self._wake({(account_id, invoice["currency"])})
        return {**invoice, **attributes}

    # --- actions and documents

    def known(
        self, accounts: Iterable[str], invoices: Iterable[tuple[str, str]]
    ) -> tuple[set[str], set[tuple[str, str]]]:
        profiles = {items.profile_key(account_id): account_id for account_id in accounts}
        invoice_keys = {items.invoice_key(*invoice): invoice for invoice in invoices}
        found = self._ledger.get_many({**profiles, **invoice_keys})
        return (
            {account_id for key, account_id in profiles.items() if key in found},
            {invoice for key, invoice in invoice_keys.items() if key in found},
        )

    def account(self, account_id: str) -> AccountSnapshot:
        return AccountSnapshot.from_items(account_id, self._ledger.account_items(account_id))

    def wake_ladders(self, account_id: str) -> None:
        self._wake(
            {
                (account_id, state["currency"])
                for state in self.ladder_states(account_id)
                if state.get("currency")
            }
        )

    def wake_held(self, account_ids: Iterable[str]) -> None:
        for account_id in sorted(set(account_ids)):
            held = [
                state for state in self.ladder_states(account_id) if state.get("holding") in HELD_BY_AGREEMENT
            ]
            self._wake({(account_id, state["currency"]) for state in held if state.get("currency")})

    def add_action(self, action_id: str, action: StoredRecord) -> bool:
        return self._ledger.put_new(items.action_item(action_id, action))

    def document_claimants(self, file_name: str) -> set[str]:
        return claimants(self._ledger.query_partition(document_pk(file_name), CLAIM_PREFIX))

    def record_document(self, document: StoredRecord, account_id: str | None) -> None:
        self._ledger.write_batch([items.document_item(document, account_id)])

    # --- helpers

    def _get_many(
        self, ids: Iterable[tuple[str, str]], key: Callable[[str, str], tuple[str, str]]
    ) -> dict[tuple[str, str], StoredRecord]:
        keys = {key(*each): each for each in ids}
        return {keys[found]: item for found, item in self._ledger.get_many(keys).items()}

    def _put(self, item: StoredRecord, replacing: Mapping[str, Any] | None) -> bool:
        if replacing is None:
            return self._ledger.put_new(item)
        return self._ledger.replace(item, expected_row_hash=replacing["row_hash"])
