"""Hostile customer data through a full send: escaped or rejected everywhere, never executed or injected."""

from __future__ import annotations

import csv
import io
from datetime import date

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
