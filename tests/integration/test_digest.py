"""The daily digest through the simulator (`dunning simulate`): on the day a call task falls due, its owner's
digest, sent by the digest function with its own role, is in OUT/outbox/ with the task in it; one a day."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

from dunning.cli.main import main
from tests.support.files import invoice_row, invoices_csv

POLICY = "collector: Collections@Example.com\nsender: Accounts <billing@example.com>\n"


def test_the_owners_digest_is_in_the_outbox_on_the_day_the_call_is_due(tmp_path: Path) -> None:
    invoices = tmp_path / "invoices.csv"
    invoices.write_bytes(
        invoices_csv(
            invoice_row("B-1", account_id="BIG", amount="900.00", due_on="2027-02-10", phone="+44 20 1")
        )
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    out = tmp_path / "out"
    args = ["simulate", "--invoices", str(invoices), "--policy", str(policy), "--start", "2027-02-01"]
    assert main([*args, "--days", "23", "--quiet", "--out", str(out)]) == 0

    events = [json.loads(line) for line in (out / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    [task] = [e for e in events if e["type"] == "task_created"]
    assert task["due_on"] == "2027-02-22", "+10 is a Saturday: Monday"
    digests = [e for e in events if e["type"] == "digest_sent"]
    assert [(e["account_id"], e["day"], e["owner"]) for e in digests] == [
        ("_digest", "2027-02-22", "collections@example.com"),
        ("_digest", "2027-02-23", "collections@example.com"),
    ], "nothing to say before the task; the next day it is still open (overdue)"
    sent = digests[0]
    assert sent["at"] == "2027-02-22T09:05:00Z", "the hourly run's first in the window (09:00 UTC)"
    message = email.message_from_bytes(
        (out / "outbox" / sent["eml"]).read_bytes(), policy=email.policy.default
    )
    assert message["To"] == "collections@example.com" and "billing@example.com" in message["From"]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "BIG Ltd" in text and "900.00 EUR" in text and "+44 20 1" in text and task["task_id"] in text
