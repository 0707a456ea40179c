"""Batch writes and reads retry what DynamoDB leaves unprocessed, with backoff, and give up loudly."""

from __future__ import annotations

from typing import Any

import pytest

from dunning.adapters.ledger import Backoff, Ledger, LedgerError


class FlakyDynamo:
    """Leaves the last item of every request unprocessed `failures` times before accepting it."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.written: list[dict[str, Any]] = []
        self.calls = 0

    def Table(self, name: str) -> object:
        return object()

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        self.calls += 1
        ((table, requests),) = RequestItems.items()
        if self.failures and requests:
            self.failures -= 1
            self.written.extend(r["PutRequest"]["Item"] for r in requests[:-1])
            return {"UnprocessedItems": {table: requests[-1:]}}
        self.written.extend(r["PutRequest"]["Item"] for r in requests)
        return {"UnprocessedItems": {}}


def test_unprocessed_items_are_retried_with_growing_pauses() -> None:
    pauses: list[float] = []
    dynamo = FlakyDynamo(failures=3)
    ledger = Ledger(dynamo, "t", Backoff(base_seconds=1, sleep=pauses.append))

    ledger.write_batch([{"PK": f"P{i}", "SK": "S"} for i in range(30)])

    assert sorted(item["PK"] for item in dynamo.written) == sorted(f"P{i}" for i in range(30))
    assert dynamo.calls == 5  # 25 + 5 items, three retries of the leftover item
    assert len(pauses) == 3 and all(0 <= p <= 2**i for i, p in enumerate(pauses))


def test_gives_up_after_the_last_attempt() -> None:
    ledger = Ledger(FlakyDynamo(failures=100), "t", Backoff(sleep=lambda _: None))
    with pytest.raises(LedgerError, match="unprocessed"):
        ledger.write_batch([{"PK": "P", "SK": "S"}])
