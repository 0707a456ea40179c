"""Hostile customer data through a full send: escaped or rejected everywhere, never executed or injected."""

from __future__ import annotations

import csv
import email.message
import io
import zipfile
from datetime import date

from pypdf import PdfReader

from dunning.adapters.keys import PROFILE_SK, account_pk, invoice_sk
from dunning.local.embedded_aws import LEGAL_BUCKET
from tests.support.collections import world
from tests.support.files import invoice_row, reject_report

SCRIPT = "<script>alert('x')</script>"
FORMULA = '=HYPERLINK("http://evil.example","click")'


def test_hostile_names_and_references_are_escaped_or_rejected_end_to_end() -> None:
    with world(date(2027, 2, 8)) as w:
        w.invoices(
            invoice_row(
                "INV-1",
                account_id="EVIL",
                customer_name=f"Evil {SCRIPT} Ltd",
                reference=FORMULA,
                due_on="2027-02-10",
            ),
            invoice_row(
                "INV-2",
                account_id="CRLF",
                customer_name="Bob\r\nBcc: victim@example.com",
                due_on="2027-02-10",
            ),
            invoice_row(
                "INV-3",
                account_id="HDR",
                customer_email="a@example.com\nBcc: b@example.com",
                due_on="2027-02-10",
            ),
        )
        w.run_through(date(2027, 2, 8))

        (message,) = w.sent_emails()
        assert message["To"] == "ap@evil.example.com" and message["Bcc"] is None
        assert "\n" not in message["Subject"]
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert SCRIPT not in html and "&lt;script&gt;" in html
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert FORMULA in text, "plain text shows the reference as written; it is not a spreadsheet"

        report = reject_report(w.aws, "invoices-0.csv")
        # Row 2 is EVIL; the quoted CRLF makes CRLF's record span lines 3-4, so HDR starts on line 5.
        assert {(r["row"], r["field"]) for r in report} == {("3", "customer_name"), ("5", "customer_email")}
        raw = w.aws.s3.get_object(Bucket=w.aws.bucket, Key="rejected/invoices-0.csv.errors.csv")[
            "Body"
        ].read()
        cells = [cell for row in csv.reader(io.StringIO(raw.decode())) for cell in row]
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


# Embeddings, overrides, isolates and the directional marks: invisible, and able to make a name read as
# other words ("Evil\u202eLtd" shows its tail reversed).
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
SPOOFED_NAME = "Mallory \u202efdp.exe\u202c Ltd \u2066\u200f\u061c\u2069"
SPOOFED_REFERENCE = "PO \u202e1234\u202c \u200e"


def _pdf_texts(message: email.message.EmailMessage) -> list[str]:
    return [
        "".join(page.extract_text() for page in PdfReader(io.BytesIO(part.get_content())).pages)
        for part in message.iter_attachments()
        if part.get_content_type() == "application/pdf"
    ]


def test_bidi_controls_never_reach_a_notice_a_pdf_or_the_legal_team() -> None:
    # CLEAN is ingested as it arrives now; OLD stands for rows imported before ingest stripped the controls
    # (its ledger items are given them back by hand), which the rendering must still clean. ARAB checks
    # that right-to-left letters themselves are kept.
    overdue = {"due_on": "2026-12-01", "issued_on": "2026-11-01", "reference": SPOOFED_REFERENCE}
    with world(date(2027, 2, 7)) as w:  # a Sunday: everything is imported before the first send
        w.invoices(
            invoice_row("INV-1", account_id="CLEAN", customer_name=SPOOFED_NAME, **overdue),
            invoice_row("INV-2", account_id="OLD", customer_name="Old Ltd", **overdue),
            invoice_row("INV-3", account_id="ARAB", customer_name="شركة \u202eالأمل", locale="ar", **overdue),
        )
        w.run_through(date(2027, 2, 7))
        profile = w.ledger.get(account_pk("CLEAN"), PROFILE_SK)
        invoice = w.ledger.get(account_pk("CLEAN"), invoice_sk("INV-1"))
        assert profile is not None and invoice is not None
        assert profile["customer_name"] == "Mallory fdp.exe Ltd" and invoice["reference"] == "PO 1234"
        w.ledger.update(
            (account_pk("OLD"), PROFILE_SK),
            UpdateExpression="SET customer_name = :name",
            ExpressionAttributeValues={":name": SPOOFED_NAME},
        )
        w.ledger.update(
            (account_pk("OLD"), invoice_sk("INV-2")),
            UpdateExpression="SET #reference = :reference",
            ExpressionAttributeNames={"#reference": "reference"},
            ExpressionAttributeValues={":reference": SPOOFED_REFERENCE},
        )
        w.run_through(date(2027, 3, 10))

        emails = w.sent_emails()
        to_customers = [m for m in emails if m["To"] != "legal@example.com"]
        to_legal = [m for m in emails if m["To"] == "legal@example.com"]
        assert {m["To"] for m in to_customers} >= {"ap@clean.example.com", "ap@old.example.com"}
        assert len(to_legal) == 3, "one case per account"
        assert any("Mallory fdp.exe Ltd" in m["Subject"] for m in to_legal)
        pdfs = 0
        for message in emails:
            english = message["To"] != "ap@arab.example.com"
            # Babel itself marks direction inside Arabic amounts and dates (U+200F): only the customer's
            # overrides and isolates are looked for there.
            forbidden = BIDI if english else BIDI[:9]
            parts = [
                str(message["Subject"]),
                message.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
                message.get_body(("html",)).get_content(),  # type: ignore[union-attr]
                *_pdf_texts(message),
            ]
            pdfs += len(parts) - 3
            for part in parts:
                assert not set(part) & set(forbidden), (message["To"], message["Subject"], part[:200])
        assert pdfs >= 3, "the letters (PDF) were looked at too"
        arabic = next(m for m in to_customers if m["To"] == "ap@arab.example.com")
        assert "شركة الأمل" in arabic.get_body(("html",)).get_content()  # type: ignore[union-attr]

        for case in (e for account in ("CLEAN", "OLD") for e in w.events(account, "case_opened")):
            packet = w.aws.s3.get_object(Bucket=LEGAL_BUCKET, Key=f"cases/{case['case_id']}.zip")[
                "Body"
            ].read()
            archive = zipfile.ZipFile(io.BytesIO(packet))
            for name in archive.namelist():
                if name.endswith(".pdf"):
                    reader = PdfReader(io.BytesIO(archive.read(name)))
                    text = "".join(page.extract_text() for page in reader.pages)
                    assert not set(text) & set(BIDI), (case["account_id"], name)
