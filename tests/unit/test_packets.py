"""The legal case packet: complete, self-verifying, deterministic, and safe with hostile text."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from fpdf import FPDF

from dunning.domain.account import InvoiceState
from dunning.notices.render import Business, ChargeLine, format_money
from dunning.packets.archive import verify_packet, write_packet
from dunning.packets.case import MANIFEST, STATEMENT_COLUMNS, CaseFile
from tests.support.notices import interest_line, pdf_pages

CREATED = datetime(2027, 4, 2, 9, 30, 15, tzinfo=UTC)
FORMULA_ID = "=cmd|' /C calc'!A0"


def _tiny_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_creation_date(datetime(2027, 1, 20, tzinfo=UTC))
    pdf.add_page()
    return bytes(pdf.output())


UPLOADED = _tiny_pdf()


def _invoice(invoice_id: str, amount: str, issued: date, **changes: Any) -> InvoiceState:
    base = InvoiceState(
        invoice_id=invoice_id,
        currency="EUR",
        amount=Decimal(amount),
        reported_paid=Decimal(0),
        payments_total=Decimal(0),
        status="open",
        issued_on=issued,
        due_on=issued + timedelta(days=30),
        reference=None,
        document=None,
    )
    return replace(base, **changes)


INVOICES = (
    # Partly paid through the payments feed.
    _invoice(
        "INV-1",
        "1000.00",
        date(2027, 1, 10),
        payments_total=Decimal("400.00"),
        payments=((date(2027, 2, 20), Decimal("400.00")),),
        reference="PO-77",
    ),
    # Has an uploaded document; disputed, then the dispute was resolved.
    _invoice("INV-2", "250.50", date(2027, 1, 20), document="uploads/INV-2.pdf"),
    # Part paid before the payments feed (only the accounting export knows it); an id a spreadsheet runs.
    _invoice(FORMULA_ID, "80.00", date(2027, 1, 25), reported_paid=Decimal("30.00")),
)
AMOUNT_DUE = Decimal("900.50")  # 600 + 250.50 + 50
CHARGES = (
    ChargeLine(kind="late_fee", invoice_id="INV-1", amount=Decimal("40.00"), currency="EUR"),
    interest_line(
        "INV-1", "12.34", rate=Decimal("10.15"), days=52, start=date(2027, 2, 10), end=date(2027, 4, 2)
    ),
    ChargeLine(kind="fixed_compensation", invoice_id="INV-2", amount=Decimal("40.00"), currency="EUR"),
)
TOTAL_CLAIMED = Decimal("992.84")


def _event(at: str, kind: str, **keys: Any) -> dict[str, Any]:
    return {"at": at, "type": kind, "account_id": "ACC-9", **keys}


EVENTS = (
    _event("2027-02-12T08:00:00Z", "notice_sent", stage="reminder", invoice_ids=["INV-1"],
           amount_due="1000.00", currency="EUR", to=["ana@example.com"], message_id="0100-aaa",
           eml="ACC-9-1-reminder.eml"),
    _event("2027-02-20T10:00:00Z", "payment_applied", invoice_id="INV-1", amount="400.00", currency="EUR"),
    _event("2027-02-25T09:00:00Z", "promise_recorded", until="2027-03-05"),
    _event("2027-03-06T08:00:00Z", "promise_broken", until="2027-03-05"),
    _event("2027-03-08T12:00:00Z", "dispute_opened", invoice_id="INV-2"),
    _event("2027-03-15T12:00:00Z", "dispute_resolved", invoice_id="INV-2"),
    _event("2027-03-16T08:00:00Z", "notice_skipped", stage="final_notice", reason="paused"),
    _event("2027-03-20T08:00:00Z", "notice_sent", stage="final_notice", invoice_ids=["INV-1", "INV-2"],
           amount_due="900.50", currency="EUR", to=["ana@example.com", "billing@example.com"],
           message_id="0100-bbb", eml="ACC-9-1-final_notice.eml"),
    _event("2027-03-20T08:01:00Z", "delivery_failed", address="billing@example.com", reason="bounce",
           detail="mailbox full", message_id="0100-bbb"),
)  # fmt: skip
NOTICES = (
    (
        "ACC-9-1-reminder.eml",
        b"From: ar@example.com\r\nTo: ana@example.com\r\nSubject: Reminder\r\n\r\nPlease pay.\r\n",
    ),
    (
        "ACC-9-1-final_notice.eml",
        b"From: ar@example.com\r\nSubject: =?utf-8?q?Final_notice?=\r\n\r\n\xc8\x99 Last call\r\n\x00\xff",
    ),
)
BUSINESS = Business(
    name="Example Trading Ltd",
    address=("12 Harbour Street", "Bristol BS1 4AA"),
    reply_to="ar@example.com",
    payment_instructions=("IBAN GB33 BUKB 2020 1555 5555 55",),
)
CASE = CaseFile(
    case_id="CASE-ACC-9-1",
    account_id="ACC-9",
    created_at=CREATED,
    currency="EUR",
    amount_due=AMOUNT_DUE,
    charges=CHARGES,
    customer={
        "customer_name": "Ana Popescu",
        "emails": ["ana@example.com", "billing@example.com"],
        "country": "RO",
        "customer_type": "business",
        "locale": "ro",
    },
    business=BUSINESS,
    invoices=INVOICES,
    events=EVENTS,
    notices=NOTICES,
    documents={"INV-2": ("INV-2 signed.pdf", UPLOADED)},
    policy_json='{"stages": ["reminder", "final_notice"], "late_fee": "40.00"}',
    disputes=({"at": "2027-03-08T12:00:00Z", "invoice_id": "INV-2", "note": "quantity contested"},),
)


def _build(case: CaseFile = CASE) -> bytes:
    out = io.BytesIO()
    write_packet(case, out)
    return out.getvalue()


@pytest.fixture(scope="module")
def packet() -> bytes:
    return _build()


def _zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def _statement(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_zip(data).read("statement_of_account.csv").decode())))


def _pdf_text(data: bytes) -> str:
    return "\n".join(pdf_pages(data))


# --- contents ------------------------------------------------------------------------------------------


def test_every_file_of_contract_6_is_in_the_packet(packet: bytes) -> None:
    names = set(_zip(packet).namelist())
    assert {
        "manifest.json",
        "README.txt",
        "case_summary.pdf",
        "statement_of_account.csv",
        "contact_log.jsonl",
        "policy.json",
        "notices/ACC-9-1-reminder.eml",
        "notices/ACC-9-1-final_notice.eml",
        "invoices/INV-2/INV-2_signed.pdf",
        "invoices/INV-1/generated-copy.pdf",
    } <= names
    # Every invoice of the case has exactly one document.
    assert len([n for n in names if n.startswith("invoices/")]) == 3


def test_manifest_describes_the_case_and_every_other_file(packet: bytes) -> None:
    zf = _zip(packet)
    manifest = json.loads(zf.read(MANIFEST))
    assert manifest["case_id"] == "CASE-ACC-9-1"
    assert manifest["account_id"] == "ACC-9"
    assert manifest["created_at"] == "2027-04-02T09:30:15Z"
    assert manifest["amount_due"] == "900.50"
    assert manifest["currency"] == "EUR"
    assert manifest["total_claimed"] == "992.84"
    paths = [entry["path"] for entry in manifest["files"]]
    assert paths == sorted(paths)
    assert set(paths) == set(zf.namelist()) - {MANIFEST}
    for entry in manifest["files"]:
        content = zf.read(entry["path"])
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]
        assert len(content) == entry["bytes"]


def test_write_packet_returns_the_manifest_it_wrote_and_leaves_the_stream_at_the_end() -> None:
    out = io.BytesIO()
    manifest = write_packet(CASE, out)
    assert out.tell() == len(out.getvalue())
    assert json.loads(_zip(out.getvalue()).read(MANIFEST)) == manifest


def test_the_packet_verifies(packet: bytes) -> None:
    assert verify_packet(io.BytesIO(packet)) == []


def test_notices_and_uploaded_documents_are_byte_identical(packet: bytes) -> None:
    zf = _zip(packet)
    for name, content in NOTICES:
        assert zf.read(f"notices/{name}") == content
    assert zf.read("invoices/INV-2/INV-2_signed.pdf") == UPLOADED
    generated = zf.read("invoices/INV-1/generated-copy.pdf")
    assert generated.startswith(b"%PDF-")
    assert "INV-1" in _pdf_text(generated)


def test_contact_log_holds_the_events_as_given_and_policy_as_written(packet: bytes) -> None:
    zf = _zip(packet)
    lines = zf.read("contact_log.jsonl").decode().split("\n")
    assert lines[-1] == ""
    assert [json.loads(line) for line in lines[:-1]] == list(EVENTS)
    assert zf.read("policy.json").decode() == CASE.policy_json
    assert "sha256sum" in zf.read("README.txt").decode()


# --- determinism ---------------------------------------------------------------------------------------


def test_the_same_case_gives_the_same_bytes(packet: bytes) -> None:
    assert _build() == packet
    # A copy of the case (equal, not identical objects) too.
    assert _build(replace(CASE, events=tuple(dict(e) for e in EVENTS))) == packet


def test_zip_entries_have_fixed_metadata_and_order(packet: bytes) -> None:
    infos = _zip(packet).infolist()
    names = [info.filename for info in infos]
    assert names[-1] == MANIFEST
    assert names[:-1] == sorted(names[:-1])
    for info in infos:
        # The hand-off instant in UTC; a zip stores time in two-second steps.
        assert info.date_time == (2027, 4, 2, 9, 30, 14)
        assert info.external_attr == 0o644 << 16
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.extra == b""


def test_the_hand_off_instant_is_written_in_utc() -> None:
    bucharest = CREATED.astimezone(timezone(timedelta(hours=3)))
    assert _build(replace(CASE, created_at=bucharest)) == _build()


# --- tampering -----------------------------------------------------------------------------------------


def _flip_byte_in_entry(data: bytes, name: str) -> bytes:
    info = _zip(data).getinfo(name)
    header = data[info.header_offset : info.header_offset + 30]
    name_length = int.from_bytes(header[26:28], "little")
    extra_length = int.from_bytes(header[28:30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    at = start + info.compress_size // 2
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _rezip(data: bytes, changes: dict[str, bytes | None]) -> bytes:
    """The packet with some files replaced (None: removed) or added, the manifest left as it was."""
    source = _zip(data)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename not in changes:
                target.writestr(info, source.read(info.filename))
        for name, content in changes.items():
            if content is not None:
                target.writestr(name, content)
    return out.getvalue()


def test_a_changed_byte_inside_the_zip_is_reported(packet: bytes) -> None:
    name = "notices/ACC-9-1-reminder.eml"
    problems = verify_packet(io.BytesIO(_flip_byte_in_entry(packet, name)))
    assert problems
    assert all(problem.startswith(name) for problem in problems)


def test_a_replaced_notice_is_reported_by_its_hash(packet: bytes) -> None:
    name = "notices/ACC-9-1-final_notice.eml"
    changed = NOTICES[1][1].replace(b"Last call", b"Last cal1")
    problems = verify_packet(io.BytesIO(_rezip(packet, {name: changed})))
    assert len(problems) == 1
    assert problems[0].startswith(f"{name}: SHA-256")


def test_missing_and_unlisted_files_are_reported(packet: bytes) -> None:
    problems = verify_packet(io.BytesIO(_rezip(packet, {"policy.json": None, "notices/extra.eml": b"x"})))
    assert problems == [
        "policy.json: listed in manifest.json but missing from the zip",
        "notices/extra.eml: in the zip but not listed in manifest.json",
    ]


def test_a_packet_without_manifest_or_not_a_zip_is_reported(packet: bytes) -> None:
    assert verify_packet(io.BytesIO(_rezip(packet, {MANIFEST: None}))) == ["manifest.json is missing"]
    assert verify_packet(io.BytesIO(b"not a zip"))[0].startswith("not a readable zip file")
    assert verify_packet(io.BytesIO(_rezip(packet, {MANIFEST: b"{"})))[0].startswith("manifest.json cannot")


# --- the statement of account --------------------------------------------------------------------------


def test_statement_ends_at_the_total_claimed(packet: bytes) -> None:
    rows = _statement(packet)
    assert list(rows[0]) == list(STATEMENT_COLUMNS)
    charges = sum((c.amount for c in CHARGES), Decimal(0))
    assert Decimal(rows[-1]["balance"]) == AMOUNT_DUE + charges == TOTAL_CLAIMED
    debits = sum((Decimal(r["debit"]) for r in rows if r["debit"]), Decimal(0))
    credits = sum((Decimal(r["credit"]) for r in rows if r["credit"]), Decimal(0))
    assert debits - credits == TOTAL_CLAIMED
    # The running balance is exact at every line.
    balance = Decimal(0)
    for row in rows:
        balance += Decimal(row["debit"] or 0) - Decimal(row["credit"] or 0)
        assert Decimal(row["balance"]) == balance
        assert row["currency"] == "EUR"
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)


def test_statement_lines_of_invoices_payments_and_charges(packet: bytes) -> None:
    rows = _statement(packet)
    by_kind = [(r["date"], r["type"], r["invoice_id"], r["debit"], r["credit"]) for r in rows]
    assert ("2027-01-10", "invoice", "INV-1", "1000.00", "") in by_kind
    assert ("2027-02-20", "payment", "INV-1", "", "400.00") in by_kind
    # Paid before the feed: dated at the invoice's issue date.
    assert ("2027-01-25", "payment", "'" + FORMULA_ID, "", "30.00") in by_kind
    assert ("2027-04-02", "statutory_interest", "INV-1", "12.34", "") in by_kind
    assert ("2027-04-02", "fixed_compensation", "INV-2", "40.00", "") in by_kind


def test_summary_totals_equal_the_statement(packet: bytes) -> None:
    final = Decimal(_statement(packet)[-1]["balance"])
    text = _pdf_text(_zip(packet).read("case_summary.pdf"))
    assert format_money(final, "EUR", "en_GB") in text
    assert f"{final} EUR" in text


def test_a_formula_cell_is_neutralised(packet: bytes) -> None:
    rows = _statement(packet)
    ids = {r["invoice_id"] for r in rows}
    assert FORMULA_ID not in ids
    assert "'" + FORMULA_ID in ids
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@")), value


def test_a_case_that_does_not_add_up_is_refused() -> None:
    with pytest.raises(ValueError, match="amount_due"):
        _build(replace(CASE, amount_due=Decimal("900.49")))
    with pytest.raises(ValueError, match="aware"):
        _build(replace(CASE, created_at=datetime(2027, 4, 2, 9, 30)))


def test_a_void_invoice_and_another_currency_stay_out_of_the_claim() -> None:
    void = _invoice("INV-V", "70.00", date(2027, 1, 5), status="void")
    usd = replace(_invoice("INV-USD", "10.00", date(2027, 1, 6)), currency="USD")
    data = _build(replace(CASE, invoices=(*INVOICES, void, usd)))
    rows = _statement(data)
    assert Decimal(rows[-1]["balance"]) == TOTAL_CLAIMED
    assert not [r for r in rows if r["invoice_id"] == "INV-USD"]
    assert verify_packet(io.BytesIO(data)) == []


# --- the case summary ----------------------------------------------------------------------------------


def test_summary_names_the_parties_and_tells_what_happened(packet: bytes) -> None:
    text = _pdf_text(_zip(packet).read("case_summary.pdf"))
    flat = re.sub(r"\s+", " ", text)
    for expected in (
        "Ana Popescu",
        "Example Trading Ltd",
        "ACC-9",
        "ana@example.com",
        "INV-1",
        "€992.84",
        "€900.50",
        "Promise broken",
        "Dispute resolved",
        "paused",
        "bounce",
    ):
        assert expected in flat, expected
    assert "0100-aaa" in text.replace("\n", "")


def test_hostile_customer_text_does_not_break_the_packet() -> None:
    hostile = "Ana\u202e 0.00 EUR\u202c\x00\x07{nb}\r\n" + "W" * 3000 + " 😀 的"
    event = _event(
        "2027-03-21T08:00:00Z",
        "notice_sent",
        stage=hostile,
        to=[hostile],
        message_id=hostile,
        eml="../../x.eml",
    )
    case = replace(
        CASE,
        customer={**CASE.customer, "customer_name": hostile, "emails": hostile, "country": None},
        events=(*EVENTS, event, {"type": "promise_recorded"}),
        notices=(*NOTICES, ("../../etc/passwd", b"x"), ("..", b"y")),
        disputes=({"note": hostile},),
    )
    data = _build(case)
    assert verify_packet(io.BytesIO(data)) == []
    names = _zip(data).namelist()
    assert all(".." not in name.split("/") and not name.startswith("/") for name in names)
    assert "notices/passwd" in names
    assert "Ana" in _pdf_text(_zip(data).read("case_summary.pdf"))


# --- size ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_five_hundred_notices() -> None:
    notices = tuple((f"ACC-9-{n}.eml", b"Subject: notice %d\r\n\r\n" % n + b"x" * 2000) for n in range(500))
    events = tuple(
        _event(f"2027-03-01T08:{n // 60 % 60:02d}:{n % 60:02d}Z", "notice_sent", stage="reminder",
               to=["ana@example.com"], message_id=f"0100-{n:04d}", eml=f"ACC-9-{n}.eml")
        for n in range(500)
    )  # fmt: skip
    data = _build(replace(CASE, notices=notices, events=events))
    names = _zip(data).namelist()
    assert len([name for name in names if name.startswith("notices/")]) == 500
    assert verify_packet(io.BytesIO(data)) == []
