"""A file is streamed, not loaded: ten times the rows must not need ten times the memory.

(`make bench` measures the process's peak RSS for 10k and 100k rows against a moto server; this test
guards the property on every run, with tracemalloc and in-memory fakes.)"""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from typing import IO, Any, cast

from dunning.adapters.ingest_ledger import DynamoIngestLedger
from dunning.adapters.ledger import Ledger
from dunning.domain.policy import DEFAULT_POLICY
from dunning.ingest.service import Ingestor
from dunning.ports import StoredObject, UploadStore
from tests.support.files import INVOICE_HEADER


class GeneratedCsv:
    """An upload body produced row by row as it is read, so the test itself holds no file in memory."""

    def __init__(self, rows: int) -> None:
        self._lines = self._generate(rows)
        self._pending = b""

    @staticmethod
    def _generate(rows: int) -> Any:
        yield (",".join(INVOICE_HEADER) + "\n").encode()
        for n in range(rows):
            account = f"ACC-{n % 500}"
            yield (
                f"INV-{n},{account},Customer {account},ap{n % 500}@example.com,EUR,{100 + n % 900}.50,"
                "2027-01-01,2027-01-31\n"
            ).encode()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            line = next(self._lines, None)
            if line is None:
                break
            self._pending += line
        size = len(self._pending) if size < 0 else size
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return chunk


class DiscardingLedger:
    """Accepts every write and keeps none of it: only the ingest's own memory is measured."""

    def __init__(self) -> None:
        self.items_written = 0

    def get(self, pk: str, sk: str) -> None:
        return None

    def get_many(self, keys: Any) -> dict[Any, Any]:
        list(keys)
        return {}

    def write_batch(self, items: list[Any]) -> None:
        self.items_written += len(items)

    def append_events(self, events: list[Any]) -> None:
        self.items_written += len(events)

    def update(self, key: Any, **_: Any) -> bool:  # an invoice's upload wakes its ladder
        self.items_written += 1
        return True


class GeneratedStore:
    def __init__(self, rows: int) -> None:
        self.rows = rows

    def open(self, obj: StoredObject) -> IO[bytes]:
        return cast(IO[bytes], GeneratedCsv(self.rows))

    def exists(self, bucket: str, key: str) -> bool:
        return False


def _peak_bytes(rows: int) -> tuple[int, int]:
    ledger = DiscardingLedger()
    ingestor = Ingestor(
        DynamoIngestLedger(cast(Ledger, ledger)), cast(UploadStore, GeneratedStore(rows)), DEFAULT_POLICY
    )
    source = StoredObject("b", "incoming/invoices/big.csv", "etag", datetime(2027, 1, 15, tzinfo=UTC))
    tracemalloc.start()
    try:
        summary = ingestor.ingest(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary is not None and summary.imported == rows
    return peak, ledger.items_written


def test_memory_does_not_grow_with_the_number_of_rows() -> None:
    small_peak, small_written = _peak_bytes(1_000)
    large_peak, large_written = _peak_bytes(10_000)

    assert large_written > 9 * small_written  # every row really was processed and written
    assert large_peak < 1.5 * small_peak, f"peak {small_peak} B for 1k rows but {large_peak} B for 10k rows"
