"""What uploads left in the embedded AWS: what an invoice still owes, the due index, every item."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dunning.adapters.ledger import Ledger
from dunning.domain.balances import outstanding
from dunning.local.embedded_aws import EmbeddedAws


def owed(ledger: Ledger, invoice: str, account: str = "ACME") -> Decimal:
    """What the invoice still owes by its own export figures and payments."""
    item = ledger.get(f"ACCOUNT#{account}", f"INVOICE#{invoice}")
    assert item is not None
    paid = ledger.payments_total(account, invoice)
    return outstanding(item["amount"], item["amount_paid"], paid, item["status"])


def due_index(aws: EmbeddedAws) -> list[str]:
    """The invoice ids in the due index the daily scan reads."""
    return sorted(i["invoice_id"] for i in aws.dynamodb.Table(aws.table_name).scan(IndexName="due")["Items"])


def every_item(aws: EmbeddedAws) -> list[dict[str, Any]]:
    """Every item of the ledger table, by key."""
    items = aws.dynamodb.Table(aws.table_name).scan()["Items"]
    return sorted(items, key=lambda item: (item["PK"], item["SK"]))
