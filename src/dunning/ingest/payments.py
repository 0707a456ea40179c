"""Payment uploads: payments, corrections (a payment_id seen before) and reversals.

A payment record (kind `payment`) is a fact that counts towards its invoice. A payment that is undone
(reversed, or moved to another invoice by a correction) is never deleted: its record stays, as kind
`reversed_payment` with `amount` 0 and the old amount in `reversed_amount`, so that every reader that sums
payment records stays right and an overlapping bank export that lists it again is still recognised as a
payment already seen. A payment that has a payment_id also has a reference (kind `payment_ref`): which
invoice it is on, its content and whether it is reversed; a later row with that id is compared with it. The
payment records are written first and the reference last (conditionally on the version read), so a
redelivery after a crash finishes the job.

A payment on account (no invoice_id, CONTRACT 4.3) is allocated here, once: to the account's open invoices
of its currency, oldest due date first (ties: invoice id), each getting at most what it still owes (with the
account's credits applied, as the balance computes it); what is left goes on the last part (or, when nothing
of that currency is open, on the account's newest invoice of it) and is a credit the way an overpayment on a
named invoice is (balances.py). Each part is a normal payment record on its invoice. Every part of a row
without payment_id carries the row's `allocation_id` (from its content and occurrence, as a named payment's
id) and the whole plan (`allocation`), so a re-delivery, or an overlapping export listing the row again,
finds the plan and writes only what is missing instead of allocating the money a second time. With a
payment_id, the plan is kept on the reference (`parts`), so a correction or reversal by that id undoes every
part.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from dunning.domain import balances
from dunning.domain.account import AccountSnapshot, credit_note, feed_payment
from dunning.domain.clock import rfc3339
from dunning.domain.events import EventType
from dunning.domain.models import Payment
from dunning.domain.money import format_amount
from dunning.ingest import formats, records
from dunning.ingest.allocation import (
    AccountView,
    InvoiceKey,
    PaymentChunk,
    allocate,
    amount_rejection,
    credited,
    identified_entry,
    minor_units,
    occurrence_id,
    on_account_currency,
    part_entry,
    payment_content,
    payment_digest,
    payment_problem,
    row_account,
)
from dunning.ingest.records import ACTIVE, Part
from dunning.ingest.run import Run, chunks
from dunning.ports import StoredRecord

# Told which accounts received payments, and when (e.g. to update a legal case and tell the legal team).
AfterPayments = Callable[[set[str], datetime], None]

# A correction or reversal is retried this many times while other deliveries keep changing its reference.
ATTEMPTS = 5


def import_payments(
    run: Run, rows: Iterator[formats.PaymentRow | formats.ReversalRow], after_payments: AfterPayments | None
) -> None:
    _Payments(run).apply(rows, after_payments)


class _Payments:
    def __init__(self, run: Run) -> None:
        self._run = run
        self._ledger = run.ledger

    def apply(
        self, rows: Iterator[formats.PaymentRow | formats.ReversalRow], after_payments: AfterPayments | None
    ) -> None:
        run = self._run
        occurrences: Counter[bytes] = Counter()
        reversals: Counter[bytes] = Counter()
        changed_accounts: set[str] = set()
        for rows_in_chunk in chunks(rows):
            chunk = self._chunk(rows_in_chunk, occurrences, reversals)
            for row in rows_in_chunk:
                if self._apply_row(row, chunk):
                    changed_accounts.add(row_account(row))
            self._sync_due_index(chunk)
            run.flush_events()
        if changed_accounts and after_payments is not None:
            run.flush_events(force=True)
            after_payments(changed_accounts, run.source.uploaded_at)

    def _apply_row(self, row: formats.PaymentRow | formats.ReversalRow, chunk: PaymentChunk) -> bool:
        """Apply one row; True when it changed what the account has paid."""
        if isinstance(row, formats.ReversalRow):
            return self._reverse_payment(row, chunk)
        if row.payment_id:
            return self._apply_identified_payment(row, chunk)
        if row.payment.invoice_id is None:
            return self._apply_on_account(row, chunk)
        return self._apply_payment(row, chunk)

    def _chunk(
        self,
        rows: list[formats.PaymentRow | formats.ReversalRow],
        occurrences: Counter[bytes],
        reversals: Counter[bytes],
    ) -> PaymentChunk:
        refs = self._ledger.payment_refs(
            {(row_account(row), row.payment_id) for row in rows if row.payment_id}
        )
        ids = {
            (row.payment.account_id, row.payment.invoice_id)
            for row in rows
            if row.payment is not None and row.payment.invoice_id is not None
        }
        ids |= {
            (account_id, part.invoice_id)
            for (account_id, _), ref in refs.items()
            for part in records.ref_parts(ref)
        }
        invoices = self._ledger.invoices(ids)
        # Each currency's ladder has its own state (one kept before ladders were per currency: all of them).
        legal = {
            (account_id, state.get("currency"))
            for account_id in sorted({row_account(row) for row in rows})
            for state in self._ledger.ladder_states(account_id)
            if state.get("status") == "legal"
        }
        return PaymentChunk(self._ledger, invoices, refs, legal, occurrences, reversals)

    def _named_payment(
        self, line: int, payment: Payment, chunk: PaymentChunk, *, reversal: bool
    ) -> tuple[InvoiceKey, str, Decimal, bytes] | None:
        """(invoice, currency, amount in minor units, content digest) of a payment row that names its
        invoice; None (and the row rejected) when it cannot apply to it."""
        assert payment.invoice_id is not None
        key = (payment.account_id, payment.invoice_id)
        invoice = chunk.invoices.get(key)
        rejection = payment_problem(line, payment, invoice, reversal=reversal)
        if rejection is not None:
            self._run.reject(rejection)
            return None
        assert invoice is not None
        currency = str(invoice["currency"])
        amount = minor_units(line, payment, currency)
        assert not isinstance(amount, formats.Rejection)  # payment_problem saw to it
        return key, currency, amount, payment_digest(payment, amount, currency)

    def _occurrence(
        self, line: int, payment: Payment, chunk: PaymentChunk, *, reversal: bool
    ) -> tuple[InvoiceKey, str, Decimal, str] | None:
        """(invoice, currency, amount in minor units, entry) of a row without payment_id that names its
        invoice: the entry of its content's next occurrence in the file (payments and reversals are counted
        apart: the n-th reversal of a payment in a file undoes its n-th occurrence). None (and the row
        rejected) when it cannot apply to the invoice."""
        named = self._named_payment(line, payment, chunk, reversal=reversal)
        if named is None:
            return None
        key, currency, amount, digest = named
        seen = chunk.reversals if reversal else chunk.occurrences
        seen[digest] += 1
        return key, currency, amount, occurrence_id(digest, seen[digest])

    def _apply_payment(self, row: formats.PaymentRow, chunk: PaymentChunk) -> bool:
        """A payment without payment_id: identified by its content (and occurrence in the file)."""
        run = self._run
        payment = row.payment
        named = self._occurrence(row.line, payment, chunk, reversal=False)
        if named is None:
            return False
        key, currency, amount, entry = named
        at = run.source.uploaded_at
        [part], _ = credited(chunk, key[0], [Part(key[1], amount)], {}, payment.paid_on, at)
        if not self._ledger.add_payment(entry, records.payment(run.source, row, part, currency)):
            run.summary.unchanged += 1
            return False
        run.summary.imported += 1
        chunk.add(key, entry, balances.FeedPayment(payment.paid_on, amount, at))
        self._payment_events(EventType.PAYMENT_APPLIED, row, part, currency)
        return True

    def _apply_on_account(self, row: formats.PaymentRow, chunk: PaymentChunk) -> bool:
        """A payment on account without payment_id (the module docstring has the rule)."""
        run = self._run
        payment = row.payment
        account_id = payment.account_id
        view = self._account_view(chunk, account_id)
        terms = self._on_account_terms(row, chunk, view)
        if terms is None:
            return False
        currency, amount = terms
        digest = payment_digest(payment, amount, currency)
        chunk.occurrences[digest] += 1
        allocation_id = occurrence_id(digest, chunk.occurrences[digest])
        known = view.allocations.get(allocation_id)
        if known is not None:
            parts = records.plan_parts(known["allocation"])
        else:
            parts = allocate(chunk, account_id, view, currency, amount, {})
            parts, _ = credited(chunk, account_id, parts, {}, payment.paid_on, run.source.uploaded_at)
        extra: StoredRecord = {
            "on_account": True,
            "allocation_id": allocation_id,
            "allocation": records.plan(parts),
        }
        # A part already there (a re-delivery after a crash) is not written, counted or logged again; the
        # others keep their place in the plan (`index`), so their events are the ones it would have logged.
        written: list[tuple[int, Part]] = []
        for index, part in enumerate(parts):
            record = records.payment(run.source, row, part, currency, extra=extra)
            if self._ledger.add_payment(part_entry(allocation_id, part.invoice_id), record):
                written.append((index, part))
                view.allocations.setdefault(allocation_id, record)
        if not written:
            run.summary.unchanged += 1
            return False
        run.summary.imported += 1
        for index, part in written:
            fed = balances.FeedPayment(payment.paid_on, part.amount, run.source.uploaded_at)
            chunk.add((account_id, part.invoice_id), part_entry(allocation_id, part.invoice_id), fed)
            self._payment_events(EventType.PAYMENT_APPLIED, row, part, currency, index=index)
        return True

    def _account_view(self, chunk: PaymentChunk, account_id: str) -> AccountView:
        """The account's invoices, payments and credit notes, read once per account and chunk (and kept
        current)."""
        view = chunk.accounts.get(account_id)
        if view is not None:
            return view
        invoices = self._ledger.account_invoices(account_id)
        payments = self._ledger.account_payments(account_id)
        notes = self._ledger.account_credit_notes(account_id)
        snapshot = AccountSnapshot.from_items(account_id, [*invoices, *payments.values(), *notes])
        feeds: dict[InvoiceKey, dict[str, balances.FeedPayment]] = {}
        for item in invoices:
            if item.get("kind") == "invoice":
                chunk.invoices.setdefault((account_id, item["invoice_id"]), item)
                feeds.setdefault((account_id, item["invoice_id"]), {})
        for (invoice_id, entry), item in payments.items():
            if item.get("kind") == "payment":
                feeds.setdefault((account_id, invoice_id), {})[entry] = feed_payment(item)
        # Payments this chunk already applied are in the chunk's own feeds; the others are read here.
        for key, feed in feeds.items():
            chunk.feeds.setdefault(key, feed)
        allocations: dict[str, StoredRecord] = {}
        for item in [*invoices, *payments.values(), *notes]:
            if item.get("allocation_id"):
                allocations.setdefault(item["allocation_id"], item)
        credit_notes = tuple(credit_note(item) for item in notes if item.get("kind") == "credit_note")
        view = AccountView(snapshot.invoices, allocations, credit_notes)
        chunk.accounts[account_id] = view
        return view

    def _on_account_terms(
        self, row: formats.PaymentRow, chunk: PaymentChunk, view: AccountView, ref: StoredRecord | None = None
    ) -> tuple[str, Decimal] | None:
        """The currency and amount of a payment on account, or None when the row was rejected."""
        currency = on_account_currency(row, chunk, view, ref)
        if isinstance(currency, formats.Rejection):
            self._run.reject(currency)
            return None
        amount = minor_units(row.line, row.payment, currency)
        if isinstance(amount, formats.Rejection):
            self._run.reject(amount)
            return None
        return currency, amount

    def _apply_identified_payment(self, row: formats.PaymentRow, chunk: PaymentChunk) -> bool:
        """A payment with a payment_id: new, the same again (unchanged), or a correction of that id."""
        run = self._run
        payment = row.payment
        account_id = payment.account_id
        ref_key = (account_id, row.payment_id)
        terms = self._identified_terms(row, chunk, ref_key)
        if terms is None:
            return False
        currency, amount, view = terms
        content = payment_content(payment, amount, currency)
        entry = identified_entry(row.payment_id)
        for _ in range(ATTEMPTS):
            ref = chunk.refs.get(ref_key)
            if ref is not None and ref["content"] == content and ref["state"] == ACTIVE:
                run.summary.unchanged += 1
                return False
            # Where the id's payment counts now, if anywhere: it stops counting there.
            old_parts = records.ref_parts(ref) if ref is not None and ref["state"] == ACTIVE else []
            leaving = {(account_id, part.invoice_id): {entry} for part in old_parts}
            if view is not None:
                parts = allocate(chunk, account_id, view, currency, amount, leaving)
            else:
                assert payment.invoice_id is not None
                parts = [Part(payment.invoice_id, amount)]
            at = run.source.uploaded_at
            parts, left_behind = credited(chunk, account_id, parts, leaving, payment.paid_on, at)
            extra: StoredRecord = {"on_account": True} if payment.invoice_id is None else {}
            self._ledger.put_payments(
                [
                    (entry, records.payment(run.source, row, part, currency, row.payment_id, extra))
                    for part in parts
                ]
            )
            new_invoices = {part.invoice_id for part in parts}
            for old in old_parts:
                if old.invoice_id not in new_invoices:
                    self._deactivate((account_id, old.invoice_id), entry, old.amount, row.line)
            new_ref = records.payment_ref(row, content, ACTIVE, amount, currency, parts)
            if not self._ledger.put_payment_ref(new_ref, ref):
                chunk.reread_ref(ref_key)
                continue
            chunk.refs[ref_key] = new_ref
            for old_key, entries in leaving.items():
                for old_entry in entries:
                    chunk.remove(old_key, old_entry)
            for part in parts:
                fed = balances.FeedPayment(payment.paid_on, part.amount, at)
                chunk.add((account_id, part.invoice_id), entry, fed)
            self._identified_events(row, ref, parts, currency)
            for (_, invoice_id), change in left_behind.items():
                # The invoices the payment was moved off: what it had received beyond them goes with it.
                run.credit_event(account_id, row.line, 9, invoice_id, change, currency, invoice_id=invoice_id)
            return True
        raise RuntimeError(f"payment {row.payment_id} kept changing while it was being corrected")

    def _identified_terms(
        self, row: formats.PaymentRow, chunk: PaymentChunk, ref_key: tuple[str, str]
    ) -> tuple[str, Decimal, AccountView | None] | None:
        """Currency, amount and (on account) the account's view of an identified payment; None when the
        row was rejected."""
        payment = row.payment
        if payment.invoice_id is None:
            view = self._account_view(chunk, payment.account_id)
            terms = self._on_account_terms(row, chunk, view, chunk.refs.get(ref_key))
            return None if terms is None else (*terms, view)
        named = self._named_payment(row.line, payment, chunk, reversal=False)
        return None if named is None else (named[1], named[2], None)

    def _identified_events(
        self, row: formats.PaymentRow, ref: StoredRecord | None, parts: list[Part], currency: str
    ) -> None:
        if ref is None:
            self._run.summary.imported += 1
            for index, part in enumerate(parts):
                self._payment_events(EventType.PAYMENT_APPLIED, row, part, currency, index=index)
            return
        self._run.summary.updated += 1
        previous = {
            "previous_invoice_id": ref["invoice_id"],
            "previous_amount": format_amount(Decimal(ref["amount"]), ref["currency"]),
            "previous_paid_on": ref["paid_on"],
            "previous_state": ref["state"],
        }
        for index, part in enumerate(parts):
            self._payment_events(EventType.PAYMENT_CORRECTED, row, part, currency, previous, index=index)

    def _reverse_payment(self, row: formats.ReversalRow, chunk: PaymentChunk) -> bool:
        if row.payment_id:
            return self._reverse_identified(row, chunk)
        payment = row.payment
        assert payment is not None
        if payment.invoice_id is None:
            return self._reverse_on_account(row, payment, chunk)
        named = self._occurrence(row.line, payment, chunk, reversal=True)
        if named is None:
            return False
        key, currency, amount, entry = named
        item = self._ledger.payment(*key, entry)
        if item is None:
            self._run.reject(
                amount_rejection(
                    row.line,
                    payment,
                    f"no payment of {format_amount(amount, currency)} {currency} on {payment.paid_on} to "
                    f"invoice {payment.invoice_id} (reference '{payment.reference or ''}') to reverse; a "
                    "reversal names the payment by its payment_id, or by the invoice, amount, paid_on and "
                    "reference it was recorded with",
                )
            )
            return False
        credit = chunk.credit_changes({key: {entry}}, {})[key]
        if item["kind"] != "payment" or not self._deactivate(key, entry, amount, row.line):
            self._run.summary.unchanged += 1
            return False
        chunk.remove(key, entry)
        self._run.summary.updated += 1
        self._reversal_event(row.line, payment.account_id, item, amount, currency, credit=credit)
        return True

    def _reverse_on_account(self, row: formats.ReversalRow, payment: Payment, chunk: PaymentChunk) -> bool:
        """A reversal without invoice_id undoes a payment on account: every part of its allocation."""
        account_id = payment.account_id
        view = self._account_view(chunk, account_id)
        found = _recorded_on_account(payment, chunk, view)
        if len(found) != 1:
            self._run.reject(_no_single_payment_on_account(row.line, payment, [f[2] for f in found]))
            return False
        digest, known, currency, _ = found[0]
        chunk.reversals[digest] += 1
        allocation_id = known["allocation_id"]
        changed = False
        for index, part in enumerate(records.plan_parts(known["allocation"])):
            key = (account_id, part.invoice_id)
            entry = part_entry(allocation_id, part.invoice_id)
            credit = chunk.credit_changes({key: {entry}}, {})[key]
            if not self._deactivate(key, entry, part.amount, row.line):
                continue
            chunk.remove(key, entry)
            changed = True
            self._reversal_event(
                row.line,
                account_id,
                {**known, "invoice_id": part.invoice_id},
                part.amount,
                currency,
                index=index,
                credit=credit,
            )
        if not changed:
            self._run.summary.unchanged += 1
            return False
        self._run.summary.updated += 1
        return True

    def _reverse_identified(self, row: formats.ReversalRow, chunk: PaymentChunk) -> bool:
        account_id = row.account_id
        ref_key = (account_id, row.payment_id)
        entry = identified_entry(row.payment_id)
        for _ in range(ATTEMPTS):
            ref = chunk.refs.get(ref_key)
            if ref is None:
                self._run.reject(
                    formats.Rejection(
                        row.line,
                        "payment_id",
                        row.payment_id,
                        f"account {account_id} has no payment with this payment_id to reverse",
                        account_id,
                    )
                )
                return False
            if ref["state"] != ACTIVE:
                self._run.summary.unchanged += 1
                return False
            parts = records.ref_parts(ref)
            credits = chunk.credit_changes({(account_id, part.invoice_id): {entry} for part in parts}, {})
            for part in parts:
                self._deactivate((account_id, part.invoice_id), entry, part.amount, row.line)
            new_ref = records.reversed_ref(ref)
            if not self._ledger.put_payment_ref(new_ref, ref):
                chunk.reread_ref(ref_key)
                continue
            chunk.refs[ref_key] = new_ref
            self._run.summary.updated += 1
            for index, part in enumerate(parts):
                key = (account_id, part.invoice_id)
                chunk.remove(key, entry)
                self._reversal_event(
                    row.line,
                    account_id,
                    {**ref, "invoice_id": part.invoice_id},
                    part.amount,
                    ref["currency"],
                    index=None if ref["invoice_id"] else index,
                    credit=credits[key],
                )
            return True
        raise RuntimeError(f"payment {row.payment_id} kept changing while it was being reversed")

    def _deactivate(self, key: InvoiceKey, entry: str, amount: Decimal, line: int) -> bool:
        """The payment stops counting; its record stays (see the module docstring). False if it did not
        count (any more)."""
        source = self._run.source
        return self._ledger.reverse_payment(
            *key,
            entry,
            amount=amount,
            at=rfc3339(source.uploaded_at),
            by=f"{source.key}#{source.revision}#{line}",
        )

    def _payment_events(
        self,
        type_: str,
        row: formats.PaymentRow,
        part: Part,
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
        self._run.event(type_, payment.account_id, row.line, seq=min(index, 8), part=tag, **data)
        if part.credit:
            seq = 9 if on_account else 1
            self._run.credit_event(
                payment.account_id, row.line, seq, tag, part.credit, currency, invoice_id=part.invoice_id
            )

    def _reversal_event(
        self,
        line: int,
        account_id: str,
        payment: StoredRecord,
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
        self._run.event(
            EventType.PAYMENT_REVERSED, account_id, line, seq=min(index or 0, 9), part=tag, **data
        )
        if credit:
            self._run.credit_event(
                account_id, line, 9, tag, credit, currency, invoice_id=payment["invoice_id"]
            )

    def _sync_due_index(self, chunk: PaymentChunk) -> None:
        """The invoices whose payments changed enter or leave the sparse due index as they now owe or not:
        a reversal that re-opens a settled invoice makes the ladder chase it again (unless the account is
        with the legal team, whose hand-off took its invoices out of the index)."""
        # A payment may keep a promise or pay an instalment: the ladder an agreement holds looks at it today.
        self._ledger.wake_held(account_id for account_id, _ in chunk.touched)
        for key in sorted(chunk.touched):
            invoice = chunk.invoices.get(key)
            if invoice is None:
                continue
            owes = chunk.owed(key) > 0
            if owes == self._ledger.in_due_index(invoice) or (
                owes and chunk.with_legal(key[0], invoice["currency"])
            ):
                continue
            now = self._ledger.set_due(invoice, owes)
            if now is not None:
                chunk.invoices[key] = now
        chunk.touched.clear()


def _recorded_on_account(
    payment: Payment, chunk: PaymentChunk, view: AccountView
) -> list[tuple[bytes, StoredRecord, str, Decimal]]:
    """The recorded payments on account (digest, a part's record, currency, amount) a reversal without
    invoice_id may mean: its next occurrence in each currency it could be in."""
    currencies = [payment.currency] if payment.currency else sorted({i.currency for i in view.invoices})
    found: list[tuple[bytes, StoredRecord, str, Decimal]] = []
    for currency in currencies:
        amount = minor_units(0, payment, currency)
        if isinstance(amount, formats.Rejection):
            continue
        digest = payment_digest(payment, amount, currency)
        known = view.allocations.get(occurrence_id(digest, chunk.reversals[digest] + 1))
        if known is not None:
            found.append((digest, known, currency, amount))
    return found


def _no_single_payment_on_account(line: int, payment: Payment, currencies: list[str]) -> formats.Rejection:
    """A reversal without invoice_id that names no payment on account, or one in several currencies."""
    amount_text = str(payment.amount)
    if currencies:
        error = (
            f"payments on account of {amount_text} on {payment.paid_on} were recorded in "
            f"{' and '.join(currencies)}; give the currency of the one to reverse"
        )
        return formats.Rejection(line, "currency", payment.currency or "", error, payment.account_id)
    error = (
        f"no payment on account of {amount_text} on {payment.paid_on} (reference "
        f"'{payment.reference or ''}') to reverse; a reversal names the payment by its payment_id, "
        "or by the amount, paid_on and reference (and currency) it was recorded with"
    )
    return formats.Rejection(line, "amount", amount_text, error, payment.account_id)
