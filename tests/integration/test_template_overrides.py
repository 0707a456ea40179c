"""A business's own templates win over the shipped ones, file by file (simulate --templates DIR, which
uses the same templates/ prefix in the bucket that the deployed send function reads)."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from dunning.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_an_override_replaces_one_file_and_the_rest_stay_shipped(tmp_path: Path) -> None:
    overrides = tmp_path / "templates" / "en"
    overrides.mkdir(parents=True)
    (overrides / "pre_due.subject.j2").write_text("Our own subject for {{ customer_name }}\n")
    (tmp_path / "invoices.csv").write_text(
        "invoice_id,account_id,customer_name,customer_email,currency,amount,issued_on,due_on\n"
        "INV-1,ACME,Acme Ltd,ap@acme.example.com,EUR,100.00,2027-01-01,2027-02-10\n"
    )
    out = tmp_path / "out"
    argv = [
        "simulate",
        "--invoices",
        str(tmp_path / "invoices.csv"),
        "--templates",
        str(tmp_path / "templates"),
        "--start",
        "2027-02-05",
        "--days",
        "8",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0

    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted((out / "outbox").iterdir())
    ]
    subjects = [m["Subject"] for m in messages]
    assert subjects[0] == "Our own subject for Acme Ltd"
    assert "Our own subject" not in subjects[1], "the reminder still uses the shipped subject"
    assert "Acme Ltd" in messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
