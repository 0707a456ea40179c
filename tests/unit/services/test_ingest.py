"""Ingesting uploads (dunning.ingest.service.Ingestor), on the fakes: the ingest's ledger shares the books'
records, so what an upload records is what the scan (due_through) and the ladder (load) then read. The moto
tier (tests/integration/test_ingest_*.py) runs the same uploads through the deployed handler."""

from __future__ import annotations

import copy
import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta

from dunning.domain.policy import DEFAULT_POLICY
from dunning.ingest.service import ImportSummary, Ingestor
from dunning.ports import Books, StoredObject
from tests.support.fakes import FakeIngestLedger, FakeUploads, fake_books, ingest_ledger_for
from tests.support.files import csv_bytes, invoice_row, invoices_csv
from tests.support.given import ACCOUNT, IMPORTED

UPLOADED_AT = IMPORTED + timedelta(days=14)
PAYMENT_HEADER = ["account_id", "invoice_id", "amount", "paid_on", "currency", "reference", "type"]
ACTION_HEADER = ["account_id", "action", "on", "until", "invoice_id", "note"]


@dataclass
class Desk:
    """The books, the ingest's ledger over them, the bucket, and the Ingestor the ingest function builds."""

    books: Books = field(default_factory=fake_books)
    uploads: FakeUploads = field(default_factory=FakeUploads)

    @property
    def ledger(self) -> FakeIngestLedger:
        return ingest_ledger_for(self.books)

    def upload(self, kind: str, name: str, body: bytes, days: int = 0) -> StoredObject:
        return self.uploads.upload(f"incoming/{kind}/{name}", body, UPLOADED_AT + timedelta(days=days))

    def ingest(self, source: StoredObject) -> ImportSummary:
        summary = Ingestor(self.ledger, self.uploads, DEFAULT_POLICY).ingest(source)
        assert summary is not None
        return summary

    def report(self, summary: ImportSummary) -> list[dict[str, str]]:
        assert summary.report_key is not None
        return list(csv.DictReader(io.StringIO(self.uploads.text("ingest", summary.report_key))))

    def due(self, through: date = date(2027, 12, 31)) -> list[str]:
        return sorted(entry.invoice_id for entry in self.books.ladders.due_through(through))

    def events(self, event_type: str) -> list[dict[str, object]]:
        return [event for event in self.books.log.events(ACCOUNT) if event["type"] == event_type]


def _invoices(desk: Desk) -> Desk:
    body = invoices_csv(invoice_row("A-1", amount="100.00"), invoice_row("A-2", amount="50.00"))
    desk.ingest(desk.upload("invoices", "january.csv", body))
    return desk


def test_an_invoice_file_with_a_bad_row_imports_the_good_rows_and_reports_the_bad_one() -> None:
    desk = Desk()
    body = invoices_csv(
        invoice_row("A-1", amount="100.00"),
        invoice_row("A-2", amount="twelve"),
        invoice_row("A-3", amount="50.00", due_on="2027-02-28"),
    )
    source = desk.upload("invoices", "january.csv", body)

    summary = desk.ingest(source)

    assert (summary.format, summary.rows, summary.imported, summary.rejected) == ("dunning", 3, 2, 1)
    [rejected] = desk.report(summary)
    assert (rejected["row"], rejected["field"], rejected["value"]) == ("3", "amount", "twelve")
    assert rejected["error"].startswith("must be a plain number"), "with its reason"
    assert summary.report_key == "rejected/january.csv.errors.csv"
    assert desk.uploads.open(source).read() == body, "the upload is kept"
    assert desk.due() == ["A-1", "A-3"]
    assert [i.invoice_id for i in desk.books.ladders.load(ACCOUNT).open_invoices()] == ["A-1", "A-3"]
    [logged] = desk.events("row_rejected")
    assert (logged["row"], logged["source"]) == (3, "january.csv")


def test_a_corrected_upload_removes_the_report_that_no_longer_describes_it() -> None:
    desk = Desk()
    bad = desk.ingest(desk.upload("invoices", "jan.csv", invoices_csv(invoice_row("A-1", amount="x"))))
    assert bad.report_key is not None and desk.uploads.exists("ingest", bad.report_key)

    fixed = desk.ingest(desk.upload("invoices", "jan.csv", invoices_csv(invoice_row("A-1")), days=1))

    assert (fixed.imported, fixed.rejected, fixed.report_key) == (1, 0, None)
    assert not desk.uploads.exists("ingest", bad.report_key)


def test_the_same_upload_version_ingested_again_changes_nothing() -> None:
    desk = Desk()
    body = invoices_csv(invoice_row("A-1", amount="100.00"), invoice_row("A-2", amount="oops"))
    source = desk.upload("invoices", "january.csv", body)
    desk.ingest(source)
    records = desk.ledger.records
    before = copy.deepcopy(records.items)

    again = desk.ingest(source)  # S3 delivers an event at least once
    same_bytes = desk.ingest(desk.upload("invoices", "january.csv", body))  # a new version, the same rows

    assert again.already_processed and again.counts() == dict.fromkeys(again.counts(), 0)
    assert (same_bytes.already_processed, same_bytes.imported, same_bytes.unchanged) == (False, 0, 1)
    new_keys = set(records.items) - set(before)
    assert [sk for _, sk in new_keys] == [f"RECEIPT#{desk.uploads.describe('ingest', source.key).version_id}"]
    assert {key: item for key, item in records.items.items() if key in before} == before, "nothing changed"


def test_a_payment_pays_its_invoice_and_takes_it_out_of_the_due_index() -> None:
    desk = _invoices(Desk())
    assert desk.due() == ["A-1", "A-2"]
    rows = [["ACME", "A-1", "100.00", "2027-01-20", "EUR", "chq 7", ""]]

    summary = desk.ingest(desk.upload("payments", "bank.csv", csv_bytes(PAYMENT_HEADER, rows)))

    assert (summary.imported, summary.rejected) == (1, 0)
    assert desk.due() == ["A-2"], "the scan no longer reads A-1"
    assert [i.invoice_id for i in desk.books.ladders.load(ACCOUNT).open_invoices()] == ["A-2"]
    [applied] = desk.events("payment_applied")
    assert (applied["invoice_id"], applied["amount"], applied["currency"]) == ("A-1", "100.00", "EUR")


def test_a_reversed_payment_puts_its_invoice_back_in_the_due_index_once() -> None:
    desk = _invoices(Desk())
    paid = [["ACME", "A-1", "100.00", "2027-01-20", "EUR", "chq 7", ""]]
    desk.ingest(desk.upload("payments", "bank.csv", csv_bytes(PAYMENT_HEADER, paid)))
    bounced = [["ACME", "A-1", "-100.00", "2027-01-20", "", "chq 7", "reversal"]]

    first = desk.ingest(desk.upload("payments", "returns.csv", csv_bytes(PAYMENT_HEADER, bounced), days=1))
    again = desk.ingest(desk.upload("payments", "returns2.csv", csv_bytes(PAYMENT_HEADER, bounced), days=2))

    assert (first.updated, again.updated, again.unchanged) == (1, 0, 1), "nothing left to reverse"
    assert desk.due() == ["A-1", "A-2"]
    assert len(desk.events("payment_reversed")) == 1
    [a1] = [i for i in desk.books.ladders.load(ACCOUNT).invoices if i.invoice_id == "A-1"]
    assert a1.outstanding == 100


def test_a_dispute_is_recorded_for_the_ladder_and_an_unknown_account_is_reported() -> None:
    desk = _invoices(Desk())
    rows = [
        ["ACME", "dispute", "2027-01-16", "", "A-2", "damaged goods"],
        ["GHOST", "pause", "2027-01-16", "", "", ""],
    ]

    summary = desk.ingest(desk.upload("actions", "calls.csv", csv_bytes(ACTION_HEADER, rows)))

    assert (summary.imported, summary.rejected) == (1, 1)
    [dispute] = desk.books.ladders.load(ACCOUNT).actions
    assert (dispute.action.value, dispute.on, dispute.invoice_id) == ("dispute", date(2027, 1, 16), "A-2")
    [opened] = desk.events("dispute_opened")
    assert (opened["invoice_id"], opened["on"]) == ("A-2", "2027-01-16")
    [(row, error)] = [(r["row"], r["error"]) for r in desk.report(summary)]
    assert row == "3" and "no account with this id" in error


def test_a_phone_is_kept_for_the_collector_and_one_that_is_no_number_is_reported() -> None:
    desk = Desk()
    body = invoices_csv(
        invoice_row("A-1", phone=" +44 (20)  7946-0958 "),
        invoice_row("B-1", account_id="BETA", phone="call reception"),
        invoice_row("C-1", account_id="GAMMA"),
    )

    summary = desk.ingest(desk.upload("invoices", "phones.csv", body))

    assert (summary.imported, summary.rejected) == (2, 1)
    [rejected] = desk.report(summary)
    assert (rejected["row"], rejected["field"], rejected["value"]) == ("3", "phone", "call reception")
    assert "is not a phone number" in rejected["error"]
    assert desk.books.ladders.load(ACCOUNT).profile["phone"] == "+44 (20) 7946-0958"
    assert "phone" not in desk.books.ladders.load("GAMMA").profile


CALL_HEADER = [*ACTION_HEADER, "outcome"]


def test_a_call_row_ends_the_accounts_call_task_with_its_outcome_and_a_bad_one_is_reported() -> None:
    from dunning.domain.notices import NoticeId

    desk = _invoices(Desk())
    desk.books.ladders.record_task(NoticeId(ACCOUNT, "EUR", 0, "call"), UPLOADED_AT, "T-call-abc")
    body = csv_bytes(
        CALL_HEADER,
        [
            [ACCOUNT, "call", "2027-02-22", "", "", "promised to pay Friday", "reached"],
            [ACCOUNT, "call", "2027-02-22", "", "", "", "left a message"],
            [ACCOUNT, "pause", "2027-02-22", "", "", "", "reached"],
        ],
    )

    summary = desk.ingest(desk.upload("actions", "calls.csv", body))

    assert (summary.imported, summary.rejected) == (1, 2)
    [done] = desk.events("task_done")
    assert (done["task_id"], done["kind"], done["outcome"]) == ("T-call-abc", "call", "reached")
    assert done["note"] == "promised to pay Friday" and done["on"] == "2027-02-22"
    problems = {(row["row"], row["field"]) for row in desk.report(summary)}
    assert problems == {("3", "outcome"), ("4", "outcome")}


def test_a_call_nobody_was_asked_to_make_is_still_recorded() -> None:
    desk = _invoices(Desk())
    body = csv_bytes(CALL_HEADER, [[ACCOUNT, "call", "2027-02-22", "", "", "", "no_answer"]])

    desk.ingest(desk.upload("actions", "calls.csv", body))

    [done] = desk.events("task_done")
    assert (done["task_id"], done["outcome"]) == (None, "no_answer")
