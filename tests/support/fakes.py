"""In-memory fakes of every port in dunning.ports: the services' fast test tier.

Each fake keeps the same records the DynamoDB adapters keep (the same fields, under the same keys), so a
snapshot loads the same way, and tests/integration/test_port_contracts.py runs one set of cases against
both the fake and the adapter on moto: a fake that drifts from the real thing fails there.
"""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any

from dunning.adapters import items
from dunning.adapters.keys import (
    CLAIM_PREFIX,
    CREDIT_NOTE_PREFIX,
    DUE_SHARDS,
    EVENT_PREFIX,
    INVOICE_PREFIX,
    LEGACY_STATE_SK,
    NOTICE_PREFIX,
    PAYMENT_PREFIX,
    WAKE_INDEX_MARKER,
    WAKE_SOON,
    account_pk,
    claimants,
    document_pk,
    due_sk_through,
    event_sk,
    notice_key,
    payment_prefix,
    receipt_key,
    state_key,
    wake_keys,
    wake_pk,
    wake_sk_before,
    waking_from,
)
from dunning.adapters.ladders import HANDOFF_DONE, HANDOFF_OPEN
from dunning.adapters.ledger import event_item
from dunning.domain.account import TASK, AccountSnapshot
from dunning.domain.agreements import HELD_BY_AGREEMENT
from dunning.domain.clock import rfc3339
from dunning.domain.events import Event
from dunning.domain.ladder import LogEntry
from dunning.domain.models import normalize_address
from dunning.domain.notices import FAILED, SENDING, NoticeId
from dunning.ports import (
    Books,
    Claim,
    DueEntry,
    Handoff,
    NewInvoice,
    ObjectGone,
    Record,
    SendRejected,
    SendThrottled,
    SendUnconfirmed,
    StoredObject,
    StoredRecord,
    Waking,
)

Key = tuple[str, str]


class MemoryRecords:
    """The records of one in-memory ledger, by (partition, sort) key, shared by the fakes below."""

    def __init__(self, items: Iterable[Mapping[str, Any]] = ()) -> None:
        self.items: dict[Key, dict[str, Any]] = {(i["PK"], i["SK"]): copy.deepcopy(dict(i)) for i in items}

    def get(self, key: Key) -> dict[str, Any] | None:
        return self.items.get(key)

    def partition(self, pk: str, prefix: str = "") -> list[dict[str, Any]]:
        return [item for (p, s), item in sorted(self.items.items()) if p == pk and s.startswith(prefix)]

    def put(self, item: Mapping[str, Any]) -> None:
        self.items[(item["PK"], item["SK"])] = copy.deepcopy(dict(item))


def _notice_key(notice: NoticeId) -> Key:
    return notice_key(notice.account_id, notice.currency, notice.episode, notice.stage)


def _copy(item: Mapping[str, Any] | None) -> Record | None:
    return copy.deepcopy(dict(item)) if item is not None else None


def _claimable(state: Mapping[str, Any], owner: str, now: datetime) -> bool:
    held_by = state.get("owner")
    lease = state.get("lease_until")
    return held_by in (None, owner) or (lease is not None and lease < rfc3339(now))


def _let_go(state: dict[str, Any]) -> None:
    state.pop("owner", None)
    state.pop("lease_until", None)


def _leave_wake_index(state: dict[str, Any]) -> None:
    state.pop("wake_pk", None)
    state.pop("wake_sk", None)


def wake_soon(records: MemoryRecords, account_id: str, currency: str) -> None:
    """adapters.ladders.wake_ladder_soon on the in-memory records."""
    key = state_key(account_id, currency)
    state = records.items.setdefault(key, {"PK": key[0], "SK": key[1]})
    state.update(kind="state", account_id=account_id, currency=currency)
    state.update(wake_keys(account_id, currency, WAKE_SOON))
    state["touched"] = state.get("touched", 0) + 1


class FakeLadders:
    def __init__(self, records: MemoryRecords) -> None:
        self.records = records

    def _state(self, account_id: str, currency: str) -> dict[str, Any] | None:
        return self.records.get(state_key(account_id, currency))

    def _new_state(self, account_id: str, currency: str) -> dict[str, Any]:
        pk, sk = state_key(account_id, currency)
        item: dict[str, Any] = {"PK": pk, "SK": sk}
        self.records.items[(pk, sk)] = item
        return item

    def load(self, account_id: str, currency: str | None = None) -> AccountSnapshot:
        return AccountSnapshot.from_items(
            account_id, self.records.partition(account_pk(account_id)), currency
        )

    def claim(
        self, account_id: str, currency: str, owner: str, now: datetime, episode: int, lease_until: datetime
    ) -> bool:
        state = self._state(account_id, currency)
        if state is not None and (not _claimable(state, owner, now) or state.get("status") == "legal"):
            return False
        state = state if state is not None else self._new_state(account_id, currency)
        state.update(owner=owner, status="active", kind="state", account_id=account_id, currency=currency)
        state["lease_until"] = rfc3339(lease_until)
        state.setdefault("episode", episode)
        state.setdefault("claimed_at", rfc3339(now))
        return True

    def _owned(
        self,
        account_id: str,
        currency: str,
        owner: str,
        *,
        legal_ok: bool = False,
        touched: int | None = None,
    ) -> dict[str, Any] | None:
        state = self._state(account_id, currency)
        if state is None or state.get("owner") != owner or (state.get("status") == "legal" and not legal_ok):
            return None
        if touched is not None and state.get("touched", touched) != touched:
            return None
        return state

    def sleep(
        self,
        account_id: str,
        currency: str,
        owner: str,
        wake_at: datetime,
        touched: int,
        holding: str | None = None,
    ) -> bool:
        state = self._owned(account_id, currency, owner, touched=touched)
        if state is None:
            return False
        _let_go(state)
        state.update(wake_keys(account_id, currency, rfc3339(wake_at)))
        if holding:
            state["holding"] = holding
        else:
            state.pop("holding", None)
        return True

    def release(
        self,
        account_id: str,
        currency: str,
        owner: str,
        *,
        settled: bool,
        touched: int | None,
        look_again: bool,
    ) -> bool:
        state = self._owned(account_id, currency, owner, touched=touched)
        if state is None:
            return False
        _let_go(state)
        state["status"] = "idle"
        if look_again:
            state.update(wake_keys(account_id, currency, WAKE_SOON))
        else:
            _leave_wake_index(state)
        if settled:
            state["settled_by"] = owner
            state["episode"] = state.get("episode", 0) + 1
        return True

    def rest_with_legal(self, account_id: str, currency: str) -> None:
        state = self._state(account_id, currency)
        if state is not None and state.get("status") == "legal" and state.get("handoff") != HANDOFF_OPEN:
            _leave_wake_index(state)

    def pass_on(self, account_id: str, currency: str, owner: str, successor: str) -> bool:
        state = self._owned(account_id, currency, owner, legal_ok=True)
        if state is None:
            return False
        state["owner"] = successor
        return True

    def mark_legal(self, account_id: str, currency: str, owner: str, case_id: str, now: datetime) -> bool:
        state = self._owned(account_id, currency, owner)
        if state is None:
            return False
        state.update(status="legal", case_id=case_id, handed_over_at=rfc3339(now), handoff=HANDOFF_OPEN)
        return True

    def handoff(self, account_id: str, currency: str) -> Handoff | None:
        state = self._state(account_id, currency) or {}
        if state.get("status") != "legal" or not state.get("case_id"):
            return None
        return Handoff(
            state["case_id"],
            datetime.fromisoformat(state["handed_over_at"]),
            state.get("handoff") == HANDOFF_OPEN,
            state.get("owner"),
        )

    def claim_handoff(
        self, account_id: str, currency: str, owner: str, now: datetime, lease_until: datetime
    ) -> bool:
        state = self._state(account_id, currency)
        if (
            state is None
            or state.get("status") != "legal"
            or state.get("handoff") != HANDOFF_OPEN
            or not _claimable(state, owner, now)
        ):
            return False
        state.update(owner=owner, lease_until=rfc3339(lease_until))
        return True

    def finish_handoff(self, account_id: str, currency: str, owner: str, case_id: str) -> bool:
        state = self._owned(account_id, currency, owner, legal_ok=True)
        if state is None or state.get("case_id") != case_id:
            return False
        _let_go(state)
        _leave_wake_index(state)
        state["handoff"] = HANDOFF_DONE
        return True

    def wake_shards(self) -> int:
        return DUE_SHARDS

    def waking_page(
        self, shard: int, before: datetime, cursor: str | None, limit: int
    ) -> tuple[list[Waking], str | None]:
        # The adapter's order (the index's sort key within the shard) and an opaque cursor: the last key.
        upper = wake_sk_before(rfc3339(before))
        shard_pk = wake_pk(shard)
        waking = sorted(
            item["wake_sk"]
            for item in self.records.items.values()
            if item.get("wake_pk") == shard_pk
            and item["wake_sk"] < upper
            and (cursor is None or item["wake_sk"] > cursor)
        )
        page = waking[:limit]
        ladders = [Waking(*waking_from(sk)) for sk in page]
        return ladders, (page[-1] if page and len(page) == limit else None)

    def wake_soon(self, account_id: str, currency: str) -> None:
        wake_soon(self.records, account_id, currency)

    def wake_index_built(self) -> bool:
        return self.records.get(WAKE_INDEX_MARKER) is not None

    def mark_wake_index_built(self) -> None:
        self.records.put({"PK": WAKE_INDEX_MARKER[0], "SK": WAKE_INDEX_MARKER[1], "kind": "marker"})

    def due_through(self, through: date) -> Iterator[DueEntry]:
        upper = due_sk_through(through)
        due = [item for item in self.records.items.values() if "due_pk" in item and item["due_sk"] <= upper]
        for item in sorted(due, key=lambda item: item["due_sk"]):
            yield DueEntry(item["account_id"], item["currency"], item["invoice_id"], item["due_on"])

    def leave_due_index(self, account_id: str, currency: str) -> None:
        for item in self.records.partition(account_pk(account_id), INVOICE_PREFIX):
            if "due_pk" in item and item.get("currency") == currency:
                del item["due_pk"], item["due_sk"]

    def record_task(self, notice: NoticeId, at: datetime, task_id: str) -> bool:
        key = _notice_key(notice)
        if self.records.get(key) is not None:
            return False
        self.records.items[key] = {
            "PK": key[0],
            "SK": key[1],
            "kind": "notice",
            "account_id": notice.account_id,
            "currency": notice.currency,
            "episode": notice.episode,
            "stage": notice.stage,
            "status": TASK,
            "started_at": rfc3339(at),
            "task_id": task_id,
        }
        return True

    def begin_send(
        self, notice: NoticeId, at: datetime, archive_key: str, said: Mapping[str, Any] | None = None
    ) -> bool:
        key = _notice_key(notice)
        item = self.records.get(key)
        if item is not None and item.get("status") != FAILED:
            return False
        item = item if item is not None else {"PK": key[0], "SK": key[1]}
        item.pop("error", None)
        item.pop("reason", None)
        item.update(
            kind="notice",
            account_id=notice.account_id,
            currency=notice.currency,
            episode=notice.episode,
            stage=notice.stage,
            status=SENDING,
            started_at=rfc3339(at),
            archive_key=archive_key,
            notice=copy.deepcopy(dict(said or {})),
            attempts=item.get("attempts", 0) + 1,
        )
        self.records.items[key] = item
        return True

    def notice_status(self, notice: NoticeId) -> Record | None:
        return _copy(self.records.get(_notice_key(notice)))

    def finish_send(
        self, notice: NoticeId, status: str, *, only_if: tuple[str, ...] = (), **fields: Any
    ) -> bool:
        key = _notice_key(notice)
        item = self.records.get(key)
        if only_if and (item is None or item.get("status") not in only_if):
            return False
        item = item if item is not None else {"PK": key[0], "SK": key[1]}  # an UpdateItem creates it
        item.update(status=status, **fields)
        self.records.items[key] = item
        return True

    def cancel_send(self, notice: NoticeId) -> None:
        key = _notice_key(notice)
        if (self.records.get(key) or {}).get("status") == SENDING:
            del self.records.items[key]


class FakeContactLog:
    def __init__(self, records: MemoryRecords) -> None:
        self.records = records

    def log(self, account_id: str, at: datetime, entries: Iterable[LogEntry | Event], seq: int = 0) -> None:
        for index, entry in enumerate(entries):
            event = (
                entry
                if isinstance(entry, Event)
                else Event(at, entry.type, account_id, entry.data, identity=entry.identity, seq=seq + index)
            )
            self.records.put(event_item(event))

    def logged_event(self, account_id: str, at: datetime, entry: LogEntry, seq: int = 0) -> Record | None:
        event = Event(at, entry.type, account_id, identity=entry.identity, seq=seq)
        item = self.records.get((account_pk(account_id), event_sk(event)))
        return copy.deepcopy(item["event"]) if item else None

    def events(self, account_id: str) -> list[Record]:
        return [
            copy.deepcopy(item["event"])
            for item in self.records.partition(account_pk(account_id), EVENT_PREFIX)
        ]


class FakeCases:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def case(self, case_id: str) -> Record | None:
        return _copy(self.records.get(case_id))

    def cases(self) -> list[Record]:
        return [copy.deepcopy(record) for _, record in sorted(self.records.items())]

    def add_case(self, record: Mapping[str, Any]) -> bool:
        if record["case_id"] in self.records:
            return False
        self.records[record["case_id"]] = copy.deepcopy(dict(record))
        return True

    def update_case(
        self, case_id: str, fields: Mapping[str, Any], *, when: tuple[str | None, ...] | None = None
    ) -> bool:
        record = self.records.get(case_id)
        if when is not None and (record or {}).get("notify_status") not in when:
            return False
        record = record if record is not None else self.records.setdefault(case_id, {"case_id": case_id})
        for name, value in fields.items():
            if value is None:
                record.pop(name, None)
            else:
                record[name] = value
        return True


class FakeSuppressions:
    def __init__(self) -> None:
        self.addresses: dict[str, dict[str, Any]] = {}
        self.reports: dict[tuple[str, str, str], dict[str, Any]] = {}

    def suppress(self, address: str, fields: Mapping[str, Any], at: str) -> bool:
        bare = normalize_address(address)
        existing = self.addresses.get(bare)
        if existing is not None and not ("lifted_at" in existing and existing["lifted_at"] < at):
            return False
        self.addresses[bare] = dict(fields)
        return True

    def suppressed(self, addresses: Iterable[str]) -> set[str]:
        return {
            address
            for address in addresses
            if (item := self.addresses.get(normalize_address(address))) is not None
            and "lifted_at" not in item
        }

    def lift(self, address: str, at: str) -> bool:
        item = self.addresses.get(normalize_address(address))
        if item is None or "lifted_at" in item:
            return False
        item["lifted_at"] = at
        return True

    def add_report(self, record: Mapping[str, Any]) -> bool:
        key = (record["message_id"], record["reason"], normalize_address(record["address"]))
        if key in self.reports:
            return False
        self.reports[key] = dict(record)
        return True

    def report(self, message_id: str, reason: str, address: str) -> Record | None:
        return _copy(self.reports.get((message_id, reason, normalize_address(address))))


class FakeCounter:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] += value


def fake_books(items: Iterable[Mapping[str, Any]] = ()) -> Books:
    """Books over one in-memory ledger, seeded with `items` (records as the ledger stores them)."""
    records = MemoryRecords(items)
    return Books(
        FakeLadders(records), FakeContactLog(records), FakeCases(), FakeSuppressions(), FakeCounter()
    )


# --- the outside world ----------------------------------------------------------------------------------


@dataclass
class FakeMailer:
    """SES: accepts every message (ids m-1, m-2, ...) unless told to answer with an error."""

    sent: list[tuple[str, tuple[str, ...], bytes]] = field(default_factory=list)
    answers: list[Exception] = field(default_factory=list)  # raised, in order, before accepting again

    def send(self, sender: str, to: Sequence[str], raw: bytes, account_id: str | None = None) -> str:
        if self.answers:
            raise self.answers.pop(0)
        self.sent.append((sender, tuple(to), raw))
        return f"m-{len(self.sent)}"

    def throttle(self) -> None:
        self.answers.append(SendThrottled("Throttling"))

    def refuse(self, reason: str = "MessageRejected") -> None:
        self.answers.append(SendRejected(reason))

    def lose_answer(self) -> None:
        self.answers.append(SendUnconfirmed("read timeout"))


@dataclass
class FakeArchive:
    objects: dict[str, bytes] = field(default_factory=dict)

    def put(self, key: str, raw: bytes) -> None:
        self.objects[key] = raw


@dataclass
class FakeDocuments:
    pdfs: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)

    def invoice_pdf(self, account_id: str, document: str | None, invoice_id: str) -> tuple[str, bytes] | None:
        return self.pdfs.get((account_id, invoice_id))


@dataclass
class FakeObjects:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def put(self, bucket: str, key: str, body: Any, content_type: str) -> None:
        self.objects[(bucket, key)] = body if isinstance(body, bytes) else body.read()

    def read(self, bucket: str, key: str) -> bytes:
        return self.objects[(bucket, key)]


@dataclass
class FakeWorkflows:
    """Step Functions' executions by name: a name is started once; `running` are still open."""

    started: dict[str, dict[str, Any]] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        if name in self.started:
            return False
        self.started[name] = payload
        self.running.add(name)
        return True

    def end(self, name: str) -> None:
        self.running.discard(name)


@dataclass
class FakePacer:
    """adapters.pacing.DynamoPacer in memory: `per_second` sends in each second."""

    per_second: int
    taken: Counter[str] = field(default_factory=Counter)

    def admit(self, at: datetime) -> bool:
        second = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.taken[second] >= self.per_second:
            return False
        self.taken[second] += 1
        return True


@dataclass
class FakeScanPages:
    """The scan queue: pages in the order sent."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(self, page: Mapping[str, Any]) -> None:
        self.sent.append(dict(page))

    def send_all(self, pages: Sequence[Mapping[str, Any]]) -> None:
        self.sent.extend(dict(page) for page in pages)


@dataclass
class FakeExecutions:
    started: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> None:
        self.started.append((state_machine_arn, name, payload))


# --- ingest -----------------------------------------------------------------------------------------------
#
# The ledger and the bucket as dunning.ingest sees them (ports.IngestLedger, ports.UploadStore and
# ports.PolicyFiles).

_DUE_ATTRIBUTES = ("due_pk", "due_sk")


def _as_stored(value: Any) -> Any:
    """A value as DynamoDB keeps it and gives it back (boto3's serializer): every number a Decimal, a tuple a
    list; a float is refused as boto3 refuses it."""
    if isinstance(value, bool) or value is None or isinstance(value, str | Decimal | bytes):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    if isinstance(value, Mapping):
        return {key: _as_stored(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_as_stored(inner) for inner in value]
    if isinstance(value, set | frozenset):
        return {_as_stored(inner) for inner in value}
    raise TypeError(f"Unsupported type {type(value)} for value {value!r}")


class FakeIngestLedger:
    """ports.IngestLedger over MemoryRecords: the items DynamoIngestLedger writes (dunning.adapters.items),
    under the same keys, with the same conditions (a new entry only if its key is free, a replacement only
    over the row_hash that was read), read back as DynamoDB reads them (numbers as Decimal, fresh copies).

    Share the books' records (`ingest_ledger_for`) and what is ingested is what FakeLadders.load and
    due_through see."""

    def __init__(self, records: MemoryRecords) -> None:
        self.records = records

    # --- the upload

    def ingested(self, source: StoredObject) -> bool:
        return self.records.get(receipt_key(source.key, source.revision)) is not None

    def record_ingested(self, source: StoredObject, receipt: StoredRecord) -> None:
        self._write_batch([items.receipt_item(source.key, source.revision, receipt)])

    def append_events(self, events: Iterable[Event]) -> None:
        # As Ledger.append_events: one item per key (the last wins), stored as the contact log stores it.
        unique = {(item["PK"], item["SK"]): item for item in map(event_item, events)}
        for item in unique.values():
            self.records.put(item)

    # --- invoices, credit notes and account profiles

    def invoices(self, ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        return self._get_many(ids, items.invoice_key)

    def invoice(self, account_id: str, invoice_id: str) -> StoredRecord | None:
        return self._get(items.invoice_key(account_id, invoice_id))

    def add_invoices(
        self, invoices: Sequence[NewInvoice], profiles: Sequence[StoredRecord], claims: Sequence[Claim]
    ) -> None:
        self._write_batch(
            [items.invoice_item(invoice, due=due) for invoice, due in invoices]
            + [items.profile_item(profile) for profile in profiles]
            + [items.claim_item(account_id, file_name) for account_id, file_name in claims]
        )
        for account_id, currency in sorted({(i["account_id"], i["currency"]) for i, due in invoices if due}):
            wake_soon(self.records, account_id, currency)

    def replace_invoice(self, invoice: StoredRecord, *, due: bool, replacing: StoredRecord) -> bool:
        replaced = self._replace(items.invoice_item(invoice, due=due), replacing["row_hash"])
        if replaced and due:
            wake_soon(self.records, invoice["account_id"], invoice["currency"])
        return replaced

    def credit_notes(self, ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        return self._get_many(ids, items.credit_note_key)

    def credit_note(self, account_id: str, credit_note_id: str) -> StoredRecord | None:
        return self._get(items.credit_note_key(account_id, credit_note_id))

    def put_credit_note(self, note: StoredRecord, replacing: StoredRecord | None) -> bool:
        return self._put(items.credit_note_item(note), replacing)

    def account_invoices(self, account_id: str) -> list[StoredRecord]:
        return self._query(account_pk(account_id), INVOICE_PREFIX)

    def account_credit_notes(self, account_id: str) -> list[StoredRecord]:
        return self._query(account_pk(account_id), CREDIT_NOTE_PREFIX)

    def account_tasks(self, account_id: str) -> list[StoredRecord]:
        rungs = self._query(account_pk(account_id), NOTICE_PREFIX)
        return [rung for rung in rungs if rung.get("status") == TASK]

    # --- payments

    def payments(self, account_id: str, invoice_id: str) -> dict[str, StoredRecord]:
        prefix = payment_prefix(invoice_id)
        return {item["SK"].removeprefix(prefix): item for item in self._query(account_pk(account_id), prefix)}

    def account_payments(self, account_id: str) -> dict[tuple[str, str], StoredRecord]:
        found = self._query(account_pk(account_id), PAYMENT_PREFIX)
        return {(item["invoice_id"], items.payment_entry(item)): item for item in found}

    def payment(self, account_id: str, invoice_id: str, entry: str) -> StoredRecord | None:
        return self._get(items.payment_key(account_id, invoice_id, entry))

    def add_payment(self, entry: str, payment: StoredRecord) -> bool:
        return self._put_new(items.payment_item(entry, payment))

    def put_payments(self, payments: Sequence[tuple[str, StoredRecord]]) -> None:
        self._write_batch([items.payment_item(entry, payment) for entry, payment in payments])

    def reverse_payment(
        self, account_id: str, invoice_id: str, entry: str, *, amount: Decimal, at: str, by: str
    ) -> bool:
        # UpdateItem with `#kind = :payment`: a missing item fails the condition (and is not created).
        item = self.records.get(items.payment_key(account_id, invoice_id, entry))
        if item is None or item.get("kind") != "payment":
            return False
        item.update(
            _as_stored(
                {
                    "kind": "reversed_payment",
                    "amount": Decimal(0),
                    "reversed_amount": amount,
                    "reversed_at": at,
                    "reversed_by": by,
                }
            )
        )
        return True

    def payment_refs(self, ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        return self._get_many(ids, items.payment_ref_key)

    def payment_ref(self, account_id: str, payment_id: str) -> StoredRecord | None:
        return self._get(items.payment_ref_key(account_id, payment_id))

    def put_payment_ref(self, ref: StoredRecord, replacing: StoredRecord | None) -> bool:
        return self._put(items.payment_ref_item(ref), replacing)

    def ladder_states(self, account_id: str) -> list[StoredRecord]:
        return self._query(account_pk(account_id), LEGACY_STATE_SK)

    def account(self, account_id: str) -> AccountSnapshot:
        return AccountSnapshot.from_items(account_id, self._query(account_pk(account_id), ""))

    def wake_ladders(self, account_id: str) -> None:
        for state in self.ladder_states(account_id):
            if state.get("currency"):
                wake_soon(self.records, account_id, state["currency"])

    def wake_held(self, account_ids: Iterable[str]) -> None:
        for account_id in sorted(set(account_ids)):
            for state in self.ladder_states(account_id):
                if state.get("currency") and state.get("holding") in HELD_BY_AGREEMENT:
                    wake_soon(self.records, account_id, state["currency"])

    def in_due_index(self, invoice: StoredRecord) -> bool:
        return "due_pk" in invoice

    def set_due(self, invoice: StoredRecord, due: bool) -> StoredRecord | None:
        # UpdateItem with `row_hash = :expected`; the answer is built from `invoice`, as the adapter's is.
        key = items.invoice_key(invoice["account_id"], invoice["invoice_id"])
        stored = self.records.get(key)
        if stored is None or stored.get("row_hash") != invoice["row_hash"]:
            return None
        if not due:
            for name in _DUE_ATTRIBUTES:
                stored.pop(name, None)
            return {name: value for name, value in invoice.items() if name not in _DUE_ATTRIBUTES}
        attributes = items.due_attributes(invoice)
        stored.update(_as_stored(attributes))
        wake_soon(self.records, invoice["account_id"], invoice["currency"])
        return {**invoice, **attributes}

    # --- actions and documents

    def known(
        self, accounts: Iterable[str], invoices: Iterable[tuple[str, str]]
    ) -> tuple[set[str], set[tuple[str, str]]]:
        return (
            {account_id for account_id in accounts if self.records.get(items.profile_key(account_id))},
            {invoice for invoice in invoices if self.records.get(items.invoice_key(*invoice))},
        )

    def add_action(self, action_id: str, action: StoredRecord) -> bool:
        return self._put_new(items.action_item(action_id, action))

    def document_claimants(self, file_name: str) -> set[str]:
        return claimants(self.records.partition(document_pk(file_name), CLAIM_PREFIX))

    def record_document(self, document: StoredRecord, account_id: str | None) -> None:
        self._write_batch([items.document_item(document, account_id)])

    # --- the table's operations, as dunning.adapters.ledger.Ledger performs them

    def _get(self, key: Key) -> StoredRecord | None:
        return _copy(self.records.get(key))

    def _get_many(
        self, ids: Iterable[tuple[str, str]], key: Callable[[str, str], Key]
    ) -> dict[tuple[str, str], StoredRecord]:
        found = {each: self.records.get(key(*each)) for each in ids}
        return {each: copy.deepcopy(item) for each, item in found.items() if item is not None}

    def _query(self, pk: str, prefix: str) -> list[StoredRecord]:
        return [copy.deepcopy(item) for item in self.records.partition(pk, prefix)]

    def _write_batch(self, batch: Sequence[Mapping[str, Any]]) -> None:
        """BatchWriteItem: unconditional puts. DynamoDB refuses a batch naming one key twice (moto lets it
        pass: the fake holds callers to Ledger.write_batch's rule)."""
        keys = [(item["PK"], item["SK"]) for item in batch]
        if len(set(keys)) != len(keys):
            raise ValueError("Provided list of item keys contains duplicates")
        stored = [_as_stored(item) for item in batch]  # all refused before any is written
        for item in stored:
            self.records.put(item)

    def _put_new(self, item: Mapping[str, Any]) -> bool:
        """PutItem with attribute_not_exists(PK)."""
        if self.records.get((item["PK"], item["SK"])) is not None:
            return False
        self.records.put(_as_stored(item))
        return True

    def _replace(self, item: Mapping[str, Any], expected_row_hash: str) -> bool:
        """PutItem with `row_hash = :expected`: a missing item (or one without row_hash) fails it."""
        current = self.records.get((item["PK"], item["SK"]))
        if current is None or current.get("row_hash") != expected_row_hash:
            return False
        self.records.put(_as_stored(item))
        return True

    def _put(self, item: Mapping[str, Any], replacing: Mapping[str, Any] | None) -> bool:
        if replacing is None:
            return self._put_new(item)
        return self._replace(item, replacing["row_hash"])


def ingest_ledger_for(books: Books) -> FakeIngestLedger:
    """The ingest's ledger over the same records as `books` (made by fake_books)."""
    records: MemoryRecords = books.ladders.records  # type: ignore[attr-defined]
    return FakeIngestLedger(records)


INGEST_BUCKET = "ingest"


@dataclass
class _Version:
    body: bytes
    etag: str
    version_id: str
    content_type: str
    at: datetime


_version_ids = itertools.count(1)


@dataclass
class FakeUploads:
    """The ingest bucket (ports.UploadStore and ports.PolicyFiles), versioned as the deployed one is: each
    put is a new version (its ETag the MD5 of its bytes, as S3's for a single-part upload); a delete hides
    the key, while its versions stay readable by version id."""

    current: dict[tuple[str, str], _Version] = field(default_factory=dict)
    versions: dict[tuple[str, str, str], _Version] = field(default_factory=dict)
    # Every version's LastModified (the ingest dates an upload by its S3 event's time instead).
    last_modified: datetime = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)

    def upload(
        self, key: str, body: bytes, at: datetime | None = None, bucket: str = INGEST_BUCKET
    ) -> StoredObject:
        """Put a file as an accountant would: the StoredObject the ingest function is given for it (uploaded
        at the S3 event's time, `at`)."""
        self.put(bucket, key, body, "text/csv")
        stored = self.describe(bucket, key)
        return StoredObject(bucket, key, stored.etag, at or stored.uploaded_at, stored.version_id)

    def describe(self, bucket: str, key: str, version_id: str | None = None) -> StoredObject:
        """As ObjectStore.describe: the object (or that version) as it stands; ObjectGone if there is none."""
        version = self._version(bucket, key, version_id)
        return StoredObject(bucket, key, version.etag, version.at, version.version_id)

    def text(self, bucket: str, key: str) -> str:
        """The object's bytes as UTF-8 text (tests only)."""
        return self._version(bucket, key, None).body.decode("utf-8")

    def open(self, obj: StoredObject) -> IO[bytes]:
        return io.BytesIO(self._version(obj.bucket, obj.key, obj.version_id).body)

    def put(self, bucket: str, key: str, body: IO[bytes] | bytes, content_type: str) -> None:
        data = body if isinstance(body, bytes) else body.read()
        version = _Version(
            data, hashlib.md5(data).hexdigest(), f"v{next(_version_ids)}", content_type, self.last_modified
        )
        self.current[(bucket, key)] = version
        self.versions[(bucket, key, version.version_id)] = version

    def exists(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.current

    def delete(self, bucket: str, key: str) -> None:
        self.current.pop((bucket, key), None)  # S3 deletes a missing key without complaint

    def read_if_changed(self, bucket: str, key: str, etag: str | None) -> tuple[bytes, str] | None:
        version = self._version(bucket, key, None)
        if etag and version.etag == etag:
            return None
        return version.body, version.etag

    def list(self, bucket: str, prefix: str) -> list[tuple[str, str]]:
        return [
            (key, version.etag)
            for (in_bucket, key), version in sorted(self.current.items())
            if in_bucket == bucket and key.startswith(prefix)
        ]

    def _version(self, bucket: str, key: str, version_id: str | None) -> _Version:
        if version_id and version_id != "null":
            found = self.versions.get((bucket, key, version_id))
        else:
            found = self.current.get((bucket, key))
        if found is None:
            raise ObjectGone(f"s3://{bucket}/{key} does not exist")
        return found
