"""Accounts as the ledger holds them, for service tests on the in-memory fakes (tests/support/fakes.py).

The records have the fields the ingest writes (kind, ids, amounts, dates, the due index attributes), so the
services read them exactly as they read an imported account.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dunning.adapters.keys import account_pk, action_sk, due_keys, invoice_sk, payment_sk
from dunning.domain.clock import FixedClock as FixedClock
from dunning.domain.clock import rfc3339
from dunning.domain.policy import DEFAULT_POLICY, Policy
from dunning.ports import Books
from dunning.services.legal import LegalDesk
from tests.support.fakes import (
    FakeArchive,
    FakeDocuments,
    FakeMailer,
    FakeObjects,
    FakeWorkflows,
    MemoryRecords,
    fake_books,
)

ACCOUNT = "ACME"
IMPORTED = datetime(2027, 1, 1, tzinfo=UTC)


def customer(account_id: str = ACCOUNT, **profile: Any) -> dict[str, Any]:
    return {
        "PK": account_pk(account_id),
        "SK": "PROFILE",
        "kind": "account",
        "account_id": account_id,
        "customer_name": "Acme Ltd",
        "emails": ["ap@acme.example.com"],
        "locale": "en",
        "timezone": "UTC",
        **profile,
    }


def invoice(
    invoice_id: str,
    amount: str,
    due_on: date,
    *,
    account_id: str = ACCOUNT,
    currency: str = "EUR",
    paid: str = "0",
) -> dict[str, Any]:
    imported = rfc3339(IMPORTED)
    item = {
        "PK": account_pk(account_id),
        "SK": invoice_sk(invoice_id),
        "kind": "invoice",
        "account_id": account_id,
        "invoice_id": invoice_id,
        "currency": currency,
        "amount": Decimal(amount),
        "amount_paid": Decimal(paid),
        "status": "open",
        "issued_on": (due_on - timedelta(days=30)).isoformat(),
        "due_on": due_on.isoformat(),
        "imported_at": imported,
        "paid_reported": [{"at": imported, "paid": Decimal(paid)}],
        "row_hash": f"hash-{invoice_id}",
    }
    return item | due_keys(account_id, invoice_id, due_on)


def payment(
    invoice_id: str, amount: str, paid_on: date, *, account_id: str = ACCOUNT, currency: str = "EUR"
) -> dict[str, Any]:
    return {
        "PK": account_pk(account_id),
        "SK": payment_sk(invoice_id, f"P-{invoice_id}-{paid_on}"),
        "kind": "payment",
        "account_id": account_id,
        "invoice_id": invoice_id,
        "amount": Decimal(amount),
        "currency": currency,
        "paid_on": paid_on.isoformat(),
        "recorded_at": rfc3339(datetime.combine(paid_on, time(12), UTC)),
    }


def action(
    kind: str,
    on: date,
    *,
    account_id: str = ACCOUNT,
    invoice_id: str | None = None,
    until: date | None = None,
) -> dict[str, Any]:
    item = {
        "PK": account_pk(account_id),
        "SK": action_sk(on, f"{kind}-{on}"),
        "kind": "action",
        "account_id": account_id,
        "action": kind,
        "on": on.isoformat(),
        "recorded_at": rfc3339(datetime.combine(on, time(8), UTC)),
    }
    if until is not None:
        item["until"] = until.isoformat()
    if invoice_id is not None:
        item["invoice_id"] = invoice_id
    return item


def at(day: date, hour: int = 10, timezone: str = "UTC") -> datetime:
    return datetime.combine(day, time(hour), ZoneInfo(timezone))


@dataclass
class World:
    """The books and the outside world of one service test, all in memory."""

    books: Books = field(default_factory=fake_books)
    mailer: FakeMailer = field(default_factory=FakeMailer)
    archive: FakeArchive = field(default_factory=FakeArchive)
    documents: FakeDocuments = field(default_factory=FakeDocuments)
    objects: FakeObjects = field(default_factory=FakeObjects)
    workflows: FakeWorkflows = field(default_factory=FakeWorkflows)
    policy: Policy = DEFAULT_POLICY

    def __post_init__(self) -> None:
        # A world born with the wake index (services.scan builds it only on a stack from before it).
        self.books.ladders.mark_wake_index_built()

    def given(self, *items: dict[str, Any]) -> World:
        """Put records in the books; an invoice in the due index wakes its ladder, as its upload would."""
        records: MemoryRecords = self.books.ladders.records  # type: ignore[attr-defined]
        for item in items:
            records.put(item)
            if item.get("kind") == "invoice" and "due_pk" in item:
                self.books.ladders.wake_soon(item["account_id"], item["currency"])
        return self

    def legal_desk(self, legal_email: str | None = "legal@example.com") -> LegalDesk:
        """The hand-off's collaborators, over this world's books and outside world."""
        return LegalDesk(
            books=self.books,
            store=self.objects,
            ingest_bucket="ingest",
            legal_bucket="legal",
            archive=self.archive,
            documents=self.documents,
            mailer=self.mailer,
            policy=self.policy,
            presign=None,
            legal_email=legal_email,
        )

    def events(self, event_type: str | None = None, account_id: str = ACCOUNT) -> list[dict[str, Any]]:
        every = self.books.log.events(account_id)
        return [event for event in every if event_type is None or event["type"] == event_type]

    def counted(self, metric: str) -> int:
        counts: Counter[str] = self.books.counter.counts  # type: ignore[attr-defined]
        return counts[metric]
