"""The legal hand-off end to end: the real state machine walks an account to the legal team, whose packet
proves itself; later payments still count and the legal team hears about them."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date
from decimal import Decimal

from pypdf import PdfReader

from dunning.local import LEGAL_BUCKET
from tests.support.collections import world
from tests.support.files import invoice_row


def test_a_case_packet_the_legal_team_can_trust() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(
            invoice_row("A-1", amount="1000.00", due_on="2027-02-10"),
            invoice_row("A-2", amount="500.00", due_on="2027-02-12"),
            invoice_row("A-3", amount="250.00", due_on="2027-02-15"),
        )
        w.payment("ACME", "A-1", "300.00", date(2027, 2, 20))
        w.action("ACME", "promise", date(2027, 2, 22), until="2027-03-01")
        w.action("ACME", "dispute", date(2027, 2, 23), invoice="A-3")
        w.action("ACME", "resolve", date(2027, 3, 10), invoice="A-3")
        w.run_through(date(2027, 5, 10))

        (case,) = w.events("ACME", "case_opened")
        assert w.events("ACME", "promise_broken")
        key = f"cases/{case['case_id']}.zip"
        packet = w.aws.s3.get_object(Bucket=LEGAL_BUCKET, Key=key)["Body"].read()
        archive = zipfile.ZipFile(io.BytesIO(packet))
        names = set(archive.namelist())
        for required in (
            "manifest.json",
            "case_summary.pdf",
            "statement_of_account.csv",
            "contact_log.jsonl",
            "policy.json",
        ):
            assert required in names, required
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["case_id"] == case["case_id"] and manifest["amount_due"] == case["amount_due"]
        import hashlib

        for entry in manifest["files"]:
            data = archive.read(entry["path"])
            assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        assert {entry["path"] for entry in manifest["files"]} == names - {"manifest.json"}

        # Every notice in the packet is byte-identical to what SES received.
        sent = {m["Message-ID"]: m for m in w.sent_emails()}
        notices = sorted(n for n in names if n.startswith("notices/"))
        assert len(notices) == len(w.events("ACME", "notice_sent")) == 6
        from moto.ses.models import ses_backends

        raw_by_id = {
            message.raw_data.split("Message-ID: ", 1)[1].split("\r\n", 1)[0]: message.raw_data.encode()
            for message in ses_backends["123456789012"]["eu-west-1"].sent_messages
        }
        for name in notices:
            data = archive.read(name)
            message_id = data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
            assert raw_by_id[message_id] == data, name
        assert sent
        invoices = sorted(n for n in names if n.startswith("invoices/"))
        assert len(invoices) == 3

        statement = list(csv.DictReader(io.StringIO(archive.read("statement_of_account.csv").decode())))
        balance = Decimal(statement[-1]["balance"])
        summary = "".join(
            page.extract_text() for page in PdfReader(io.BytesIO(archive.read("case_summary.pdf"))).pages
        )
        assert "ACME Ltd" in summary
        assert f"{balance:,.2f}" in summary or str(balance) in summary, (
            "the summary states the statement's total"
        )

        (notified,) = w.events("ACME", "legal_notified")
        assert notified["to"] == "legal@example.com" and notified["case_id"] == case["case_id"]


def test_a_payment_after_the_hand_off_is_applied_and_reported_to_the_legal_team() -> None:
    with world(date(2027, 2, 10)) as w:
        w.invoices(invoice_row("OLD", amount="100.00", due_on="2026-12-01", issued_on="2026-11-01"))
        w.payment("ACME", "OLD", "30.00", date(2027, 3, 1))
        w.run_through(date(2027, 3, 3))

        assert [e["type"] for e in w.events("ACME", "case_opened", "payment_applied")] == [
            "case_opened",
            "payment_applied",
        ]
        reasons = [e["reason"] for e in w.events("ACME", "legal_notified")]
        assert reasons == ["opened", "balance_changed"]
        assert w.events("ACME", "legal_notified")[-1]["balance"] == "70.00"
        assert not [e for e in w.events("ACME", "notice_sent") if e["at"] > "2027-02-25"]
