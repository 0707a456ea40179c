"""Invoice PDFs are bound to an account, never to a file name alone: invoice ids are unique only per
account, so two customers can both have an invoice 1001 (the rule is in dunning.adapters.storage's
docstring)."""

from __future__ import annotations

import email.message
import io
import zipfile
from datetime import date

from dunning.local.embedded_aws import LEGAL_BUCKET
from dunning.local.simulator import Upload
from tests.support.collections import World, world
from tests.support.files import invoice_row


def _pdf(marker: str) -> bytes:
    body = f"%PDF-1.4\n% {marker}\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    return body.encode()


ALPHA_PDF = _pdf("ALPHA's confidential invoice 1001")
CHARLIE_PDF = _pdf("CHARLIE's invoice 2002")


def _document(w: World, name: str, body: bytes, on: date) -> None:
    w.sim.schedule(on, Upload("documents", name, body))


def _attachments(w: World, to: str) -> dict[str, bytes]:
    (message,) = [m for m in w.sent_emails() if m["To"] == to]
    assert isinstance(message, email.message.EmailMessage)
    return {str(part.get_filename()): part.get_content() for part in message.iter_attachments()}


def test_a_customer_never_receives_another_accounts_pdf() -> None:
    first = date(2027, 2, 1)
    with world(first) as w:
        w.invoices(
            invoice_row("1001", account_id="ALPHA", due_on="2027-02-10"),
            invoice_row("1001", account_id="BETA", due_on="2027-02-10"),
            invoice_row("2002", account_id="CHARLIE", due_on="2027-02-10"),
        )
        # ALPHA's PDF, uploaded once by file name only (which customer's 1001?) and once in ALPHA's folder.
        _document(w, "1001.pdf", ALPHA_PDF, first)
        _document(w, "ALPHA/1001.pdf", ALPHA_PDF, first)
        _document(w, "2002.pdf", CHARLIE_PDF, first)  # only CHARLIE has an invoice 2002
        w.run_through(date(2027, 2, 8))  # the pre-due reminders, invoices attached

        assert [stage for stage, _ in w.notices("BETA")] == ["pre_due"]
        beta = _attachments(w, "ap@beta.example.com")
        assert list(beta) == ["1001-copy.pdf"], "BETA gets the generated copy of its own invoice"
        assert beta["1001-copy.pdf"].startswith(b"%PDF-") and ALPHA_PDF not in beta.values()
        assert _attachments(w, "ap@alpha.example.com") == {"1001.pdf": ALPHA_PDF}
        assert _attachments(w, "ap@charlie.example.com") == {"2002.pdf": CHARLIE_PDF}

        # Reported when it arrived (ALPHA/1001.pdf, the fix, then replaced the report of that file name).
        (report,) = [
            summary["report"]
            for result in w.sim.import_results
            for summary in result["imports"]
            if summary["key"] == "incoming/documents/1001.pdf"
        ]
        assert "(ALPHA, BETA)" in report and "incoming/documents/<account_id>/1001.pdf" in report


def test_a_case_packet_never_holds_another_accounts_pdf() -> None:
    first = date(2027, 2, 10)
    with world(first) as w:
        # Uploaded before the invoices (so ingest cannot see yet that the name is ambiguous): the notices
        # and packets decide when they read it.
        _document(w, "1001.pdf", ALPHA_PDF, first)
        w.invoices(
            *(
                invoice_row("1001", account_id=account, due_on="2026-12-01", issued_on="2026-11-01")
                for account in ("ALPHA", "BETA")
            )
        )
        w.run_through(date(2027, 3, 17))  # demand letter, final notice, hand-off on 12 March

        for account in ("ALPHA", "BETA"):
            (case,) = w.events(account, "case_opened")
            key = f"cases/{case['case_id']}.zip"
            archive = zipfile.ZipFile(
                io.BytesIO(w.aws.s3.get_object(Bucket=LEGAL_BUCKET, Key=key)["Body"].read())
            )
            invoices = {
                name: archive.read(name) for name in archive.namelist() if name.startswith("invoices/")
            }
            # Two accounts have an invoice 1001, so the bare file name is bound to neither.
            assert list(invoices) == ["invoices/1001/generated-copy.pdf"], account
            assert ALPHA_PDF not in invoices.values()
