"""One upload being ingested: what it counted, the reject report it writes and the events it logs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from dunning.domain.events import Event, EventType
from dunning.domain.money import format_amount
from dunning.ingest.csvfile import RejectReport
from dunning.ingest.formats import Rejection
from dunning.ports import IngestLedger, StoredObject

# Rows are read, written and logged this many at a time: memory stays flat whatever the file's size.
CHUNK = 100

RowT = TypeVar("RowT")

_COUNTS = ("rows", "imported", "updated", "unchanged", "skipped", "rejected")


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

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _COUNTS}


@dataclass
class Run:
    """State of one file being ingested."""

    source: StoredObject
    summary: ImportSummary
    ledger: IngestLedger
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

    def credit_event(
        self, account_id: str, line: int, seq: int, part: str, amount: Decimal, currency: str, **data: Any
    ) -> None:
        """`credit_recorded`: the account's credit changed by `amount` (negative: a credit was taken back).
        Their sum per account and currency is balances.AccountCredits.total."""
        self.event(
            EventType.CREDIT_RECORDED,
            account_id,
            line,
            seq=seq,
            part=part,
            **data,
            amount=format_amount(amount, currency),
            currency=currency,
        )

    def reject(self, rejection: Rejection) -> None:
        self.report.add(rejection.line, rejection.field, rejection.value, rejection.error)
        # A row with several problems has one report line per problem but counts as one rejected row.
        if rejection.line != self.last_rejected_line:
            self.summary.rejected += 1
            self.last_rejected_line = rejection.line
        error = f"{rejection.field}: {rejection.error}" if rejection.field else rejection.error
        self.event(
            EventType.ROW_REJECTED,
            rejection.account_id,
            rejection.line,
            part=rejection.field,
            source=self.source.file_name,
            row=rejection.line,
            error=error,
        )
        self.flush_events()

    def flush_events(self, *, force: bool = False) -> None:
        if self.events and (force or len(self.events) >= CHUNK):
            self.ledger.append_events(self.events)
            self.events.clear()


def chunks(rows: Iterable[RowT], size: int = CHUNK) -> Iterator[list[RowT]]:
    chunk: list[RowT] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def chunks_without_repeats(
    rows: Iterable[RowT], key: Callable[[RowT], Any], size: int = CHUNK
) -> Iterator[list[RowT]]:
    """Chunks in which no key appears twice, so a later row in the file is applied after an earlier one."""
    chunk: list[RowT] = []
    keys: set[Any] = set()
    for row in rows:
        if len(chunk) == size or key(row) in keys:
            yield chunk
            chunk, keys = [], set()
        chunk.append(row)
        keys.add(key(row))
    if chunk:
        yield chunk
