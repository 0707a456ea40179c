"""The fakes keep the adapters' promises: every case here runs twice, on the in-memory fakes
(tests/support/fakes.py) and on the DynamoDB adapters over the moto table made from the template.

A service test on the fakes is only worth something while the fakes behave like the ledger: the
conditional writes that make a ladder single-owner and a notice exactly-once most of all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from dunning.adapters.keys import account_pk
from dunning.adapters.ledger import Ledger
from dunning.adapters.pacing import DynamoPacer
from dunning.domain.account import TASK
from dunning.domain.ladder import LogEntry
from dunning.domain.notices import FAILED, SENDING, SENT, UNCONFIRMED, NoticeId
from dunning.local.embedded_aws import EmbeddedAws, embedded_aws
from dunning.ports import Books, DueEntry, Pacer
from dunning.runtime.wiring import ledger_books
from tests.support.fakes import FakePacer, MemoryRecords, fake_books
from tests.support.given import ACCOUNT, at, customer, invoice

Seed = Callable[..., None]
NOW = at(date(2027, 2, 11))
LEASE = at(date(2027, 2, 12))
AFTER_LEASE = LEASE + timedelta(minutes=1)
LATER = at(date(2027, 3, 1))
AFTER_LATER = LATER + timedelta(minutes=1)
REMINDER = NoticeId(ACCOUNT, "EUR", 0, "reminder")


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedAws]:
    """One embedded stack for the module (a stack per case would cost half a second each)."""
    with embedded_aws() as aws:
        yield aws


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> EmbeddedAws:
    """The module's stack with an empty ledger table and an empty ingest bucket: each case starts clean."""
    aws: EmbeddedAws = request.getfixturevalue("stack")
    table = aws.dynamodb.Table(aws.table_name)
    with table.batch_writer() as batch:
        for item in table.scan(ProjectionExpression="PK, SK")["Items"]:
            batch.delete_item(Key={"PK": item["PK"], "SK": item["SK"]})
    versions = aws.s3.list_object_versions(Bucket=aws.bucket)
    for version in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]:
        aws.s3.delete_object(Bucket=aws.bucket, Key=version["Key"], VersionId=version["VersionId"])
    return aws


@pytest.fixture(params=["memory", "dynamodb"])
def books_and_seed(request: pytest.FixtureRequest) -> Iterator[tuple[Books, Seed]]:
    if request.param == "memory":
        books = fake_books()
        records: MemoryRecords = books.ladders.records  # type: ignore[attr-defined]

        def put(*items: Any) -> None:
            for item in items:
                records.put(item)

        yield books, put
        return
    aws: EmbeddedAws = request.getfixturevalue("aws")
    ledger = Ledger(aws.dynamodb, aws.table_name)
    yield ledger_books(ledger), lambda *items: ledger.write_batch(list(items))


@pytest.fixture
def books(books_and_seed: tuple[Books, Seed]) -> Books:
    return books_and_seed[0]


@pytest.fixture
def seed(books_and_seed: tuple[Books, Seed]) -> Seed:
    return books_and_seed[1]


# --- ladders ----------------------------------------------------------------------------------------------


def _claim(books: Books, owner: str, *, currency: str = "EUR", episode: int = 0, now: Any = None) -> bool:
    return books.ladders.claim(ACCOUNT, currency, owner, now or NOW, episode, LEASE)


def _waking(books: Books, before: Any = None, limit: int = 100) -> list[tuple[str, str]]:
    """Every ladder waking before `before`, page by page, shard by shard."""
    found = []
    for shard in range(books.ladders.wake_shards()):
        cursor = None
        while True:
            page, cursor = books.ladders.waking_page(shard, before or LATER, cursor, limit)
            found += [(w.account_id, w.currency) for w in page]
            if cursor is None:
                break
    return found


def test_the_wake_index_pages_through_a_shard_with_a_cursor(books: Books) -> None:
    ladders = [(f"ACC#{n:02d}", currency) for n in range(12) for currency in ("EUR", "GBP")]
    for account_id, currency in ladders:
        books.ladders.wake_soon(account_id, currency)
    assert sorted(_waking(books, NOW, limit=1)) == sorted(_waking(books, NOW)) == sorted(ladders)


def test_one_owner_per_ladder_and_none_once_it_is_with_legal(books: Books) -> None:
    ladders = books.ladders
    assert _claim(books, "one", episode=3)
    assert _claim(books, "one"), "the owner may claim again (a retry)"
    assert not _claim(books, "two")
    assert _claim(books, "two", currency="GBP"), "another currency is another ladder"
    assert ladders.load(ACCOUNT, "EUR").state.episode == 3
    assert ladders.mark_legal(ACCOUNT, "EUR", "one", "CASE-1", NOW)
    assert not ladders.mark_legal(ACCOUNT, "EUR", "one", "CASE-1", NOW)
    assert not ladders.release(ACCOUNT, "EUR", "one", settled=True, touched=0, look_again=False)
    assert not _claim(books, "one"), "legal: nobody claims it"
    state = ladders.load(ACCOUNT, "EUR").state
    assert (state.status, state.owner, state.case_id, state.episode) == ("legal", "one", "CASE-1", 3)


def test_a_lease_that_ran_out_lets_the_next_execution_take_the_ladder_over(books: Books) -> None:
    assert _claim(books, "one")
    assert not _claim(books, "two", now=LEASE), "the lease runs to its instant"
    assert _claim(books, "two", now=AFTER_LEASE), "its owner died without letting go"
    assert books.ladders.load(ACCOUNT, "EUR").state.owner == "two"
    assert not books.ladders.sleep(ACCOUNT, "EUR", "one", LATER, 0), "the dead owner no longer holds it"


def test_release_ends_an_episode_only_for_its_owner(books: Books) -> None:
    ladders = books.ladders
    _claim(books, "one")
    assert not ladders.release(ACCOUNT, "EUR", "two", settled=True, touched=0, look_again=False)
    assert ladders.load(ACCOUNT, "EUR").state.owner == "one"
    assert ladders.release(ACCOUNT, "EUR", "one", settled=True, touched=0, look_again=False)
    state = ladders.load(ACCOUNT, "EUR").state
    assert (state.owner, state.status, state.episode, state.settled_by) == (None, "idle", 1, "one")
    assert _waking(books) == [], "settled: nothing to wake for"
    _claim(books, "three")
    assert ladders.release(ACCOUNT, "EUR", "three", settled=False, touched=None, look_again=True)
    assert ladders.load(ACCOUNT, "EUR").state.episode == 1
    assert _waking(books, NOW) == [(ACCOUNT, "EUR")], "failed: the next scan looks again"


def test_a_sleeping_ladder_wakes_in_the_index_at_its_instant(books: Books) -> None:
    ladders = books.ladders
    _claim(books, "one")
    assert ladders.sleep(ACCOUNT, "EUR", "one", LATER, 0)
    state = ladders.load(ACCOUNT, "EUR").state
    assert (state.owner, state.status) == (None, "active")
    assert _waking(books, LATER) == [], "not before its instant"
    assert _waking(books, AFTER_LATER) == [(ACCOUNT, "EUR")]
    assert _claim(books, "two"), "asleep: the next execution claims it"


def test_an_upload_wakes_a_ladder_and_stops_an_execution_that_read_it_before(books: Books) -> None:
    ladders = books.ladders
    _claim(books, "one")
    seen = ladders.load(ACCOUNT, "EUR").state.touched
    ladders.wake_soon(ACCOUNT, "EUR")
    assert _waking(books, NOW) == [(ACCOUNT, "EUR")], "the next scan looks at it"
    assert not ladders.sleep(ACCOUNT, "EUR", "one", LATER, seen), "it read the ladder before the upload"
    assert not ladders.release(ACCOUNT, "EUR", "one", settled=True, touched=seen, look_again=False)
    fresh = ladders.load(ACCOUNT, "EUR").state
    assert fresh.touched == seen + 1 and fresh.owner == "one"
    assert ladders.sleep(ACCOUNT, "EUR", "one", LATER, fresh.touched)
    assert _waking(books, NOW) == []


def test_an_upload_on_a_new_ladder_keeps_the_episode_of_the_state_kept_before_currencies(
    books: Books, seed: Seed
) -> None:
    seed({"PK": account_pk(ACCOUNT), "SK": "STATE", "kind": "state", "episode": 2, "status": "idle"})
    books.ladders.wake_soon(ACCOUNT, "EUR")
    state = books.ladders.load(ACCOUNT, "EUR").state
    assert (state.episode, state.status, state.touched) == (2, "idle", 1)
    assert _claim(books, "one", episode=state.episode)
    assert books.ladders.load(ACCOUNT, "EUR").state.episode == 2


def test_the_wake_index_is_built_once(books: Books) -> None:
    assert not books.ladders.wake_index_built()
    books.ladders.mark_wake_index_built()
    assert books.ladders.wake_index_built()


def test_a_live_owner_passes_the_ladder_on(books: Books) -> None:
    ladders = books.ladders
    _claim(books, "one")
    assert not ladders.pass_on(ACCOUNT, "EUR", "two", "three")
    assert ladders.pass_on(ACCOUNT, "EUR", "one", "one-c1")
    assert ladders.load(ACCOUNT, "EUR").state.owner == "one-c1"


def test_a_hand_off_is_taken_over_finished_and_then_closed(books: Books) -> None:
    ladders = books.ladders
    assert ladders.handoff(ACCOUNT, "EUR") is None
    _claim(books, "one")
    ladders.wake_soon(ACCOUNT, "EUR")
    ladders.mark_legal(ACCOUNT, "EUR", "one", "CASE-1", NOW)
    handoff = ladders.handoff(ACCOUNT, "EUR")
    assert handoff is not None and (handoff.case_id, handoff.at, handoff.open, handoff.owner) == (
        "CASE-1",
        NOW,
        True,
        "one",
    )
    assert not ladders.claim_handoff(ACCOUNT, "EUR", "r1", NOW, LEASE), "its owner's lease runs"
    assert ladders.claim_handoff(ACCOUNT, "EUR", "r1", AFTER_LEASE, LATER)
    assert not ladders.finish_handoff(ACCOUNT, "EUR", "r1", "CASE-2")
    ladders.rest_with_legal(ACCOUNT, "EUR")
    assert _waking(books, NOW) == [(ACCOUNT, "EUR")], "unfinished: it stays for the scan to come back"
    assert ladders.finish_handoff(ACCOUNT, "EUR", "r1", "CASE-1")
    handoff = ladders.handoff(ACCOUNT, "EUR")
    assert handoff is not None and (handoff.open, handoff.owner) == (False, None)
    assert _waking(books, NOW) == [], "finished: out of the wake index"
    assert not ladders.claim_handoff(ACCOUNT, "EUR", "r2", AFTER_LATER, AFTER_LATER), "finished"
    ladders.wake_soon(ACCOUNT, "EUR")  # an upload for an account with the legal team
    ladders.rest_with_legal(ACCOUNT, "EUR")
    assert _waking(books, NOW) == []


def test_the_state_kept_before_ladders_were_per_currency_still_reads(books: Books, seed: Seed) -> None:
    seed(
        {
            "PK": account_pk(ACCOUNT),
            "SK": "STATE",
            "kind": "state",
            "episode": 2,
            "owner": "old",
            "status": "active",
        }
    )
    state = books.ladders.load(ACCOUNT, "EUR").state
    assert (state.episode, state.owner) == (2, "old")


def test_the_due_index_lists_what_is_due_and_forgets_a_handed_over_currency(books: Books, seed: Seed) -> None:
    seed(
        customer(),
        invoice("A-1", "10.00", date(2027, 2, 10)),
        invoice("A-2", "10.00", date(2027, 3, 10)),
        invoice("G-1", "10.00", date(2027, 2, 1), currency="GBP"),
    )
    due = sorted(books.ladders.due_through(date(2027, 2, 28)), key=lambda entry: entry.invoice_id)
    assert due == [
        DueEntry(ACCOUNT, "EUR", "A-1", "2027-02-10"),
        DueEntry(ACCOUNT, "GBP", "G-1", "2027-02-01"),
    ]
    books.ladders.leave_due_index(ACCOUNT, "EUR")
    left = list(books.ladders.due_through(date(2027, 12, 31)))
    assert left == [DueEntry(ACCOUNT, "GBP", "G-1", "2027-02-01")]
    open_invoices = books.ladders.load(ACCOUNT).open_invoices()
    assert sorted(invoice.invoice_id for invoice in open_invoices) == ["A-1", "A-2", "G-1"], "still open"


def test_a_notice_is_reserved_once_and_only_a_failed_one_again(books: Books) -> None:
    ladders = books.ladders
    said: dict[str, Any] = {"stage": "reminder", "to": ["ap@acme.example.com"], "amount_due": "10.00"}
    assert ladders.notice_status(REMINDER) is None
    assert ladders.begin_send(REMINDER, NOW, "notices/r.eml", said)
    assert not ladders.begin_send(REMINDER, NOW, "notices/r.eml", said)
    record = ladders.notice_status(REMINDER)
    assert record is not None
    assert (record["status"], record["attempts"], record["notice"], record["archive_key"]) == (
        SENDING,
        1,
        said,
        "notices/r.eml",
    )
    assert ladders.finish_send(REMINDER, FAILED, error="refused")
    assert ladders.begin_send(REMINDER, NOW, "notices/r2.eml", said)
    record = ladders.notice_status(REMINDER) or {}
    assert (record["status"], record["attempts"], "error" in record) == (SENDING, 2, False)
    assert not ladders.finish_send(REMINDER, SENT, only_if=(UNCONFIRMED,))
    assert ladders.finish_send(REMINDER, SENT, only_if=(SENDING,), message_id="m-1")
    ladders.cancel_send(REMINDER)
    record = ladders.notice_status(REMINDER) or {}
    assert (record["status"], record["message_id"]) == (SENT, "m-1"), "only a `sending` one is cancelled"
    [notice] = ladders.load(ACCOUNT, "EUR").notices
    assert (notice.stage, notice.status, notice.currency) == ("reminder", SENT, "EUR")


def test_a_rung_that_is_a_task_is_recorded_once_and_done_for_the_ladder(books: Books) -> None:
    call = NoticeId(ACCOUNT, "EUR", 0, "call")
    assert books.ladders.record_task(call, NOW, "T-call-1")
    assert not books.ladders.record_task(call, NOW, "T-call-2")
    record = books.ladders.notice_status(call) or {}
    assert (record["status"], record["task_id"]) == (TASK, "T-call-1")
    assert not books.ladders.begin_send(call, NOW, "notices/x.eml"), "never emailed afterwards"
    [rung] = [n for n in books.ladders.load(ACCOUNT, "EUR").notices if n.stage == "call"]
    assert rung.done and rung.is_task


def test_a_cancelled_reservation_is_gone(books: Books) -> None:
    books.ladders.begin_send(REMINDER, NOW, "notices/r.eml")
    books.ladders.cancel_send(REMINDER)
    assert books.ladders.notice_status(REMINDER) is None


# --- the contact log --------------------------------------------------------------------------------------


def test_an_event_is_stored_once_and_found_by_what_it_is(books: Books) -> None:
    entry = LogEntry("notice_sent", "EUR#0#reminder", {"stage": "reminder", "message_id": "m-1"})
    books.log.log(ACCOUNT, NOW, [entry])
    books.log.log(ACCOUNT, NOW, [entry])
    books.log.log(ACCOUNT, NOW, [LogEntry("case_opened", "CASE-1", {"case_id": "CASE-1"})], seq=100)

    events = books.log.events(ACCOUNT)
    assert [event["type"] for event in events] == ["notice_sent", "case_opened"]
    assert events[0]["message_id"] == "m-1" and events[0]["at"] == "2027-02-11T10:00:00Z"
    assert books.log.logged_event(ACCOUNT, NOW, entry) == events[0]
    assert books.log.logged_event(ACCOUNT, NOW, LogEntry("case_opened", "CASE-1"), seq=100) == events[1]
    assert books.log.logged_event(ACCOUNT, NOW, LogEntry("case_opened", "CASE-1")) is None, "other seq"


# --- cases ------------------------------------------------------------------------------------------------


def test_a_case_is_recorded_once_and_its_email_reserved_once(books: Books) -> None:
    cases = books.cases
    record = {"case_id": "CASE-1", "kind": "case", "account_id": ACCOUNT, "status": "open", "balance": 10}
    assert cases.add_case(record)
    assert not cases.add_case({**record, "balance": 99})
    assert cases.update_case("CASE-1", {"notify_status": SENDING, "notify_to": "l@x"}, when=(None, FAILED))
    assert not cases.update_case("CASE-1", {"notify_status": SENDING}, when=(None, FAILED))
    assert cases.update_case("CASE-1", {"notify_status": None}, when=(SENDING,))
    assert cases.update_case("CASE-1", {"notify_status": SENT}, when=(None,))
    assert cases.update_case("CASE-1", {"balance": 0, "status": "settled"})
    assert cases.case("CASE-1") == {
        **record,
        "balance": 0,
        "status": "settled",
        "notify_status": SENT,
        "notify_to": "l@x",
    }
    assert [case["case_id"] for case in cases.cases()] == ["CASE-1"]
    assert cases.case("CASE-2") is None


# --- suppressions -----------------------------------------------------------------------------------------


def test_an_address_is_suppressed_lifted_and_renewed_only_by_newer_news(books: Books) -> None:
    list_ = books.suppressions
    fields = {
        "kind": "suppression",
        "address": "jane@example.com",
        "reason": "bounce",
        "at": "2027-02-01T00:00:00.000000Z",
    }
    assert list_.suppress("Jane <Jane@Example.com>", fields, fields["at"])
    assert not list_.suppress("jane@example.com", fields, "2027-02-02T00:00:00.000000Z"), "already"
    assert list_.suppressed(["JANE@example.com", "john@example.com", ""]) == {"JANE@example.com"}
    assert list_.lift("jane@example.com", "2027-02-03T00:00:00.000000Z")
    assert not list_.lift("jane@example.com", "2027-02-04T00:00:00.000000Z")
    assert not list_.lift("john@example.com", "2027-02-04T00:00:00.000000Z")
    assert list_.suppressed(["jane@example.com"]) == set()
    assert not list_.suppress("jane@example.com", fields, "2027-02-01T00:00:00.000000Z"), (
        "older than the lift"
    )
    assert list_.suppress("jane@example.com", fields, "2027-02-05T00:00:00.000000Z")
    assert list_.suppressed(["jane@example.com"]) == {"jane@example.com"}


def test_the_first_delivery_report_is_kept(books: Books) -> None:
    report = {
        "kind": "delivery",
        "message_id": "m-1",
        "address": "Jane@Example.com",
        "reason": "bounce",
        "at": "t1",
    }
    assert books.suppressions.add_report(report)
    assert not books.suppressions.add_report({**report, "at": "t2"})
    assert books.suppressions.report("m-1", "bounce", "jane@example.com") == report
    assert books.suppressions.report("m-1", "complaint", "jane@example.com") is None


# --- ingest: the ledger (ports.IngestLedger) and the bucket (ports.UploadStore, ports.PolicyFiles) --------
#
# The same promise for the ingest's ports: FakeIngestLedger (over the books' in-memory records) against
# DynamoIngestLedger on moto, FakeUploads against ObjectStore on the embedded (versioned) bucket. The
# section is appended to the module, hence its own imports.

import dataclasses  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from decimal import Decimal  # noqa: E402

from dunning.adapters.ingest_ledger import DynamoIngestLedger  # noqa: E402
from dunning.adapters.keys import document_pk, receipt_key  # noqa: E402
from dunning.adapters.storage import ObjectStore  # noqa: E402
from dunning.domain.events import Event  # noqa: E402
from dunning.ports import IngestLedger, ObjectGone, StoredObject, StoredRecord  # noqa: E402
from tests.support.fakes import FakeUploads, ingest_ledger_for  # noqa: E402

# Its module fixture runs a whole simulation: one worker runs every test here (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("test_port_contracts")

UPLOADED = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
_INDEX_ATTRIBUTES = ("PK", "SK", "due_pk", "due_sk")


@dataclasses.dataclass
class IngestSide:
    """The ingest's ledger, the services' books over the same table, and the table's raw items by key."""

    ledger: IngestLedger
    books: Books
    item: Callable[[str, str], dict[str, Any] | None]
    seed: Seed


@pytest.fixture(params=["memory", "dynamodb"])
def ingest(request: pytest.FixtureRequest) -> Iterator[IngestSide]:
    if request.param == "memory":
        books = fake_books()
        fake = ingest_ledger_for(books)
        records = fake.records

        def seed_records(*items: dict[str, Any]) -> None:
            for item in items:
                records.put(item)

        yield IngestSide(fake, books, lambda pk, sk: records.get((pk, sk)), seed_records)
        return
    aws: EmbeddedAws = request.getfixturevalue("aws")
    table = Ledger(aws.dynamodb, aws.table_name)
    yield IngestSide(
        DynamoIngestLedger(table), ledger_books(table), table.get, lambda *items: table.write_batch(items)
    )


@pytest.fixture(params=["memory", "s3"])
def uploads(request: pytest.FixtureRequest) -> Iterator[tuple[FakeUploads | ObjectStore, str]]:
    if request.param == "memory":
        yield FakeUploads(), "ingest"
        return
    aws: EmbeddedAws = request.getfixturevalue("aws")
    yield ObjectStore(aws.s3), aws.bucket


def _invoice(
    invoice_id: str, amount: str, due_on: date, *, account_id: str = ACCOUNT, row_hash: str = ""
) -> StoredRecord:
    """An invoice record as ingest builds it (dunning.ingest.records.invoice): no key, no due index."""
    item = invoice(invoice_id, amount, due_on, account_id=account_id)
    record = {name: value for name, value in item.items() if name not in _INDEX_ATTRIBUTES}
    record.update(row_hash=row_hash or f"h-{invoice_id}", source_key="incoming/invoices/x.csv", source_row=2)
    return record


def _profile(account_id: str = ACCOUNT) -> StoredRecord:
    return {k: v for k, v in customer(account_id).items() if k not in _INDEX_ATTRIBUTES}


def _payment(invoice_id: str, amount: str) -> StoredRecord:
    return {
        "kind": "payment",
        "account_id": ACCOUNT,
        "invoice_id": invoice_id,
        "amount": Decimal(amount),
        "currency": "EUR",
        "paid_on": "2027-01-10",
        "reference": "",
        "credit": Decimal(0),
        "recorded_at": "2027-01-15T08:00:00Z",
    }


def _owed(side: IngestSide, invoice_id: str) -> Decimal:
    [state] = [i for i in side.books.ladders.load(ACCOUNT).invoices if i.invoice_id == invoice_id]
    return state.outstanding


def _due(side: IngestSide) -> list[tuple[str, str]]:
    return sorted((e.account_id, e.invoice_id) for e in side.books.ladders.due_through(date(2027, 12, 31)))


def test_an_upload_version_is_ingested_once_by_its_receipt(ingest: IngestSide) -> None:
    ledger = ingest.ledger
    first = StoredObject("ingest", "incoming/invoices/jan.csv", "etag-1", UPLOADED, "v1")
    assert not ledger.ingested(first)
    ledger.record_ingested(first, {"kind": "receipt", "format": "dunning", "rows": 3, "imported": 2})
    assert ledger.ingested(first)
    assert ledger.ingested(dataclasses.replace(first, etag="etag-2")), "the version names the upload"
    assert not ledger.ingested(dataclasses.replace(first, version_id="v2"))
    unversioned = dataclasses.replace(first, version_id=None)
    assert not ledger.ingested(unversioned)
    ledger.record_ingested(unversioned, {"kind": "receipt", "format": "dunning", "rows": 1})
    assert ledger.ingested(dataclasses.replace(first, version_id="null")), "no version: its ETag names it"
    receipt = ingest.item(*receipt_key(first.key, "v1"))
    assert receipt is not None and receipt["rows"] == 3 and isinstance(receipt["rows"], Decimal)


def test_new_invoices_are_read_back_and_only_the_due_ones_are_in_the_due_index(ingest: IngestSide) -> None:
    ledger = ingest.ledger
    a1 = _invoice("A-1", "100.00", date(2027, 2, 10))
    ledger.add_invoices(
        [
            (a1, True),
            (_invoice("A-2", "50.00", date(2027, 2, 20)), False),
            (_invoice("A-10", "10.00", date(2027, 3, 1)), True),
            (_invoice("A-1", "70.00", date(2027, 2, 1), account_id="OTHER"), True),
        ],
        [_profile()],
        [(ACCOUNT, "A-1.pdf")],
    )

    found = ledger.invoices([(ACCOUNT, "A-1"), (ACCOUNT, "NOPE"), ("OTHER", "A-1")])
    assert set(found) == {(ACCOUNT, "A-1"), ("OTHER", "A-1")}
    assert found[("OTHER", "A-1")]["amount"] == Decimal("70.00")
    read = ledger.invoice(ACCOUNT, "A-1")
    assert read == found[(ACCOUNT, "A-1")] and ledger.invoice(ACCOUNT, "NOPE") is None
    assert {name: read[name] for name in a1} == a1, "the record as written, its ids included"
    assert isinstance(read["source_row"], Decimal), "numbers come back as DynamoDB gives them"
    a2 = ledger.invoice(ACCOUNT, "A-2")
    assert a2 is not None and ledger.in_due_index(read) and not ledger.in_due_index(a2)
    assert [i["invoice_id"] for i in ledger.account_invoices(ACCOUNT)] == ["A-1", "A-10", "A-2"], "by key"
    assert ledger.known([ACCOUNT, "OTHER", "GHOST"], [(ACCOUNT, "A-2"), ("OTHER", "A-2")]) == (
        {ACCOUNT},
        {(ACCOUNT, "A-2")},
    )
    assert _due(ingest) == [(ACCOUNT, "A-1"), (ACCOUNT, "A-10"), ("OTHER", "A-1")]
    snapshot = ingest.books.ladders.load(ACCOUNT)
    assert snapshot.profile["customer_name"] == "Acme Ltd"
    assert [i.invoice_id for i in snapshot.open_invoices()] == ["A-1", "A-2", "A-10"]


def test_a_corrected_invoice_replaces_only_the_version_that_was_read(ingest: IngestSide) -> None:
    ledger = ingest.ledger
    a1 = _invoice("A-1", "100.00", date(2027, 2, 10), row_hash="h1")
    ledger.add_invoices([(a1, True)], [], [])
    read = ledger.invoice(ACCOUNT, "A-1")
    assert read is not None

    assert ledger.replace_invoice(
        {**a1, "amount": Decimal("80.00"), "row_hash": "h2"}, due=False, replacing=read
    )
    assert not ledger.replace_invoice({**a1, "row_hash": "h3"}, due=True, replacing=read), "changed since"
    now = ledger.invoice(ACCOUNT, "A-1")
    assert now is not None and (now["amount"], now["row_hash"]) == (Decimal("80.00"), "h2")
    assert not ledger.in_due_index(now) and _due(ingest) == [], "the whole item is replaced"
    assert _owed(ingest, "A-1") == Decimal("80.00")
    ghost = _invoice("GHOST", "5.00", date(2027, 2, 10))
    assert not ledger.replace_invoice(ghost, due=True, replacing=ghost), "no item: nothing to replace"
    assert ledger.invoice(ACCOUNT, "GHOST") is None


def test_an_invoice_leaves_and_reenters_the_due_index_unless_it_was_reimported(ingest: IngestSide) -> None:
    ledger = ingest.ledger
    a1 = _invoice("A-1", "100.00", date(2027, 2, 10), row_hash="h1")
    ledger.add_invoices([(a1, True)], [], [])
    read = ledger.invoice(ACCOUNT, "A-1")
    assert read is not None

    out = ledger.set_due(read, False)
    assert out == {name: value for name, value in read.items() if name not in ("due_pk", "due_sk")}
    assert out is not None and not ledger.in_due_index(out) and _due(ingest) == []
    back = ledger.set_due(out, True)
    assert back is not None and ledger.in_due_index(back) and back == read
    assert _due(ingest) == [(ACCOUNT, "A-1")]

    assert ledger.replace_invoice({**a1, "row_hash": "h2"}, due=True, replacing=back)
    assert ledger.set_due(back, False) is None, "re-imported since it was read"
    assert _due(ingest) == [(ACCOUNT, "A-1")]
    assert ledger.set_due(_invoice("GHOST", "5.00", date(2027, 2, 10)), True) is None
    assert ledger.invoice(ACCOUNT, "GHOST") is None and _due(ingest) == [(ACCOUNT, "A-1")]


def test_a_credit_note_is_new_once_and_then_replaced_only_over_the_version_read(ingest: IngestSide) -> None:
    ledger = ingest.ledger
    note: StoredRecord = {
        "kind": "credit_note",
        "account_id": ACCOUNT,
        "credit_note_id": "CN-1",
        "currency": "EUR",
        "total": Decimal("30.00"),
        "amount": Decimal("30.00"),
        "issued_on": "2027-01-05",
        "status": "open",
        "reference": "",
        "row_hash": "c1",
    }
    assert ledger.put_credit_note(note, None)
    assert not ledger.put_credit_note({**note, "amount": Decimal(0), "row_hash": "c2"}, None), "it exists"
    read = ledger.credit_note(ACCOUNT, "CN-1")
    assert read is not None and read["amount"] == Decimal("30.00")
    assert ledger.put_credit_note({**note, "amount": Decimal("10.00"), "row_hash": "c2"}, read)
    assert not ledger.put_credit_note({**note, "row_hash": "c3"}, read), "changed since it was read"
    other = {**note, "credit_note_id": "CN-9"}
    assert not ledger.put_credit_note(other, other), "no item: nothing to replace"

    assert ledger.credit_note(ACCOUNT, "CN-9") is None
    found = ledger.credit_notes([(ACCOUNT, "CN-1"), (ACCOUNT, "CN-9")])
    assert list(found) == [(ACCOUNT, "CN-1")] and found[(ACCOUNT, "CN-1")]["amount"] == Decimal("10.00")
    assert [(n["credit_note_id"], n["row_hash"]) for n in ledger.account_credit_notes(ACCOUNT)] == [
        ("CN-1", "c2")
    ]


def test_a_payment_entry_is_written_once_and_reversed_once(ingest: IngestSide) -> None:
    ledger = ingest.ledger
    ledger.add_invoices(
        [
            (_invoice("A-1", "100.00", date(2027, 2, 10)), True),
            (_invoice("A-10", "10.00", date(2027, 2, 10)), True),
        ],
        [],
        [],
    )
    assert ledger.add_payment("e1", _payment("A-1", "30.00"))
    assert not ledger.add_payment("e1", _payment("A-1", "99.00")), "the entry exists"
    assert ledger.add_payment("e1", _payment("A-10", "5.00")), "the same entry of another invoice"
    ledger.put_payments([("e2", _payment("A-1", "20.00"))])
    ledger.put_payments([("e2", _payment("A-1", "25.00"))])

    assert {entry: p["amount"] for entry, p in ledger.payments(ACCOUNT, "A-1").items()} == {
        "e1": Decimal("30.00"),
        "e2": Decimal("25.00"),
    }, "A-10's are not A-1's"
    assert sorted(ledger.account_payments(ACCOUNT)) == [("A-1", "e1"), ("A-1", "e2"), ("A-10", "e1")]
    assert ledger.payment(ACCOUNT, "A-1", "e9") is None
    assert _owed(ingest, "A-1") == Decimal("45.00")

    by = "incoming/payments/r.csv#v1#2"
    assert ledger.reverse_payment(ACCOUNT, "A-1", "e1", amount=Decimal("30.00"), at="t1", by=by)
    assert not ledger.reverse_payment(ACCOUNT, "A-1", "e1", amount=Decimal("30.00"), at="t2", by=by)
    assert not ledger.reverse_payment(ACCOUNT, "A-1", "e9", amount=Decimal("1.00"), at="t2", by=by)
    assert ledger.payment(ACCOUNT, "A-1", "e9") is None, "nothing to reverse: nothing written"
    reversed_ = ledger.payments(ACCOUNT, "A-1")["e1"]
    assert {k: reversed_[k] for k in ("kind", "amount", "reversed_amount", "reversed_at", "reversed_by")} == {
        "kind": "reversed_payment",
        "amount": Decimal(0),
        "reversed_amount": Decimal("30.00"),
        "reversed_at": "t1",
        "reversed_by": by,
    }
    assert reversed_["paid_on"] == "2027-01-10", "the record stays"
    assert _owed(ingest, "A-1") == Decimal("75.00")


def test_a_payment_reference_is_new_once_and_then_replaced_only_over_the_version_read(
    ingest: IngestSide,
) -> None:
    ledger = ingest.ledger
    ref: StoredRecord = {
        "kind": "payment_ref",
        "payment_id": "PAY-1",
        "account_id": ACCOUNT,
        "invoice_id": "",
        "amount": Decimal("30.00"),
        "currency": "EUR",
        "paid_on": "2027-01-10",
        "content": "c",
        "state": "active",
        "row_hash": "r1",
        "parts": [{"invoice_id": "A-1", "amount": Decimal("30.00"), "credit": Decimal(0)}],
    }
    assert ledger.put_payment_ref(ref, None)
    assert not ledger.put_payment_ref({**ref, "row_hash": "r2"}, None), "it exists"
    read = ledger.payment_ref(ACCOUNT, "PAY-1")
    assert read is not None and read["parts"] == ref["parts"]
    assert ledger.put_payment_ref({**ref, "state": "reversed", "row_hash": "r2"}, read)
    assert not ledger.put_payment_ref({**ref, "row_hash": "r3"}, read), "changed since it was read"
    other = {**ref, "payment_id": "PAY-9"}
    assert not ledger.put_payment_ref(other, other) and ledger.payment_ref(ACCOUNT, "PAY-9") is None
    found = ledger.payment_refs([(ACCOUNT, "PAY-1"), (ACCOUNT, "PAY-9")])
    assert list(found) == [(ACCOUNT, "PAY-1")] and found[(ACCOUNT, "PAY-1")]["state"] == "reversed"
    assert ledger.account_payments(ACCOUNT) == {}, "a reference is no payment"


def test_every_ladder_state_is_read_the_one_kept_before_currencies_too(ingest: IngestSide) -> None:
    ingest.seed(
        {"PK": account_pk(ACCOUNT), "SK": "STATE", "kind": "state", "status": "active", "owner": "old"}
    )
    ingest.books.ladders.claim(ACCOUNT, "GBP", "one", NOW, 0, LEASE)
    ingest.books.ladders.mark_legal(ACCOUNT, "GBP", "one", "CASE-1", NOW)

    states = ingest.ledger.ladder_states(ACCOUNT)
    assert [(s.get("currency"), s["status"]) for s in states] == [(None, "active"), ("GBP", "legal")]


def test_an_action_is_recorded_once_per_day_and_id(ingest: IngestSide) -> None:
    ledger = ingest.ledger
    action: StoredRecord = {
        "kind": "action",
        "account_id": ACCOUNT,
        "action": "dispute",
        "on": "2027-01-16",
        "invoice_id": "A-1",
        "recorded_at": "2027-01-15T08:00:00Z",
    }
    assert ledger.add_action("id1", action)
    assert not ledger.add_action("id1", {**action, "note": "again"}), "it exists"
    assert ledger.add_action("id2", action), "another id"
    assert ledger.add_action("id1", {**action, "on": "2027-01-17"}), "another day"
    actions = ingest.books.ladders.load(ACCOUNT).actions
    assert sorted((a.action.value, a.on.isoformat(), a.invoice_id) for a in actions) == [
        ("dispute", "2027-01-16", "A-1"),
        ("dispute", "2027-01-16", "A-1"),
        ("dispute", "2027-01-17", "A-1"),
    ]


def test_a_document_is_claimed_by_the_accounts_whose_invoices_look_for_it(ingest: IngestSide) -> None:
    ledger = ingest.ledger
    ledger.add_invoices([], [], [(ACCOUNT, "A-1.pdf"), ("OTHER", "A-1.pdf"), (ACCOUNT, "terms.pdf")])
    ledger.add_invoices([], [], [(ACCOUNT, "A-1.pdf")])
    assert ledger.document_claimants("A-1.pdf") == {ACCOUNT, "OTHER"}
    assert ledger.document_claimants("terms.pdf") == {ACCOUNT}
    assert ledger.document_claimants("A-1") == set(), "the whole name"

    document: StoredRecord = {
        "kind": "document",
        "file_name": "A-1.pdf",
        "bucket": "ingest",
        "key": "incoming/documents/A-1.pdf",
        "version_id": "",
        "sha256": "00",
        "bytes": 1234,
        "uploaded_at": "2027-01-15T08:00:00Z",
    }
    ledger.record_document(document, None)
    ledger.record_document({**document, "key": "incoming/documents/ACME/A-1.pdf"}, ACCOUNT)
    unbound, bound = (
        ingest.item(document_pk("A-1.pdf"), "DOCUMENT"),
        ingest.item(document_pk("A-1.pdf"), account_pk(ACCOUNT)),
    )
    assert unbound is not None and (unbound["key"], unbound["bytes"]) == ("incoming/documents/A-1.pdf", 1234)
    assert bound is not None and bound["key"] == "incoming/documents/ACME/A-1.pdf"
    assert ledger.document_claimants("A-1.pdf") == {ACCOUNT, "OTHER"}, "an upload claims nothing"


def test_ingest_events_are_appended_once_each_and_read_by_the_contact_log(ingest: IngestSide) -> None:
    imported = Event(
        UPLOADED, "invoice_imported", ACCOUNT, {"invoice_id": "A-1"}, "k#e#2#invoice_imported#", 20
    )
    rejected = Event(
        UPLOADED, "row_rejected", ACCOUNT, {"row": 3, "error": "amount: bad"}, "k#e#3#row_rejected#", 30
    )
    ingest.ledger.append_events([rejected, imported, imported])
    ingest.ledger.append_events([imported])

    events = ingest.books.log.events(ACCOUNT)
    assert [e["type"] for e in events] == ["invoice_imported", "row_rejected"], "once each, in order"
    assert events[1] == {
        "at": "2027-01-15T08:00:00Z",
        "type": "row_rejected",
        "account_id": ACCOUNT,
        "row": 3,
        "error": "amount: bad",
    }
    assert ("invoice_imported", "k#e#2#invoice_imported#") in ingest.books.ladders.load(ACCOUNT).event_types


def test_an_upload_is_read_by_its_version_and_gone_once_deleted(
    uploads: tuple[FakeUploads | ObjectStore, str],
) -> None:
    store, bucket = uploads
    key = "incoming/invoices/contract.csv"
    with pytest.raises(ObjectGone):
        store.describe(bucket, key)
    store.put(bucket, key, b"first", "text/csv")
    first = store.describe(bucket, key)
    store.put(bucket, key, io.BytesIO(b"second"), "text/csv")
    second = store.describe(bucket, key)

    assert first.etag == hashlib.md5(b"first").hexdigest() and first.revision != second.revision
    assert store.open(first).read() == b"first" and store.open(second).read() == b"second"
    assert store.open(dataclasses.replace(first, version_id=None)).read() == b"second", "the latest"
    assert store.exists(bucket, key) and not store.exists(bucket, key + ".errors.csv")
    store.delete(bucket, key)
    store.delete(bucket, "incoming/invoices/never-there.csv")
    assert not store.exists(bucket, key)
    with pytest.raises(ObjectGone):
        store.open(dataclasses.replace(second, version_id=None))
    assert store.open(first).read() == b"first", "a version stays readable"


def test_a_policy_file_is_read_only_when_it_changed(uploads: tuple[FakeUploads | ObjectStore, str]) -> None:
    store, bucket = uploads
    key = "contract/policy.yaml"
    with pytest.raises(ObjectGone):
        store.read_if_changed(bucket, key, None)
    store.put(bucket, key, b"grace_days: 3\n", "application/yaml")
    read = store.read_if_changed(bucket, key, None)
    assert read is not None and read[0] == b"grace_days: 3\n"
    etag = read[1]
    assert store.read_if_changed(bucket, key, etag) is None
    assert store.read_if_changed(bucket, key, "another-etag") == read
    store.put(bucket, "contract/policy.yaml.errors.csv", b"row\n", "text/csv")
    assert store.list(bucket, "contract/policy.yaml") == [
        (key, etag),
        ("contract/policy.yaml.errors.csv", hashlib.md5(b"row\n").hexdigest()),
    ]
    assert store.list(bucket, "contract/nothing") == []


# --- the SES pacer ------------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "dynamodb"])
def pacer(request: pytest.FixtureRequest) -> Pacer:
    if request.param == "memory":
        return FakePacer(per_second=2)
    aws: EmbeddedAws = request.getfixturevalue("aws")
    return DynamoPacer(Ledger(aws.dynamodb, aws.table_name), per_second=2)


def test_the_pacer_admits_its_rate_in_each_second_and_no_more(pacer: Pacer) -> None:
    second = NOW.replace(microsecond=0)
    assert [pacer.admit(second + timedelta(milliseconds=ms)) for ms in (0, 300, 900)] == [True, True, False]
    assert pacer.admit(second + timedelta(seconds=1)), "the next second has its own places"
