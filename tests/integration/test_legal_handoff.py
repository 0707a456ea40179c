"""The legal hand-off end to end: the real state machine walks an account to the legal team, whose packet
proves itself; later payments still count and the legal team hears about them."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from pypdf import PdfReader

from dunning.adapters.cases import DynamoCases
from dunning.adapters.keys import CASES_PK, account_pk, state_key
from dunning.adapters.ladders import DynamoContactLog
from dunning.adapters.ledger import Ledger
from dunning.adapters.mailer import SesMailer
from dunning.domain.money import format_amount
from dunning.local.embedded_aws import LEGAL_BUCKET
from dunning.packets import archive as packets
from dunning.ports import SendThrottled, SendUnconfirmed
from dunning.services import legal
from tests.support.collections import World, world
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
        for entry in manifest["files"]:
            data = archive.read(entry["path"])
            assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        assert {entry["path"] for entry in manifest["files"]} == names - {"manifest.json"}

        # Every notice in the packet is byte-identical to what SES received.
        sent = {m["Message-ID"]: m for m in w.sent_emails()}
        notices = sorted(n for n in names if n.startswith("notices/"))
        # Six rungs and the promise's confirmation (the legal team sees what the customer agreed).
        assert len(notices) == len(w.events("ACME", "notice_sent")) == 7
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
        w.payment("ACME", "OLD", "30.00", date(2027, 3, 15))
        w.run_through(date(2027, 3, 17))

        assert [e["type"] for e in w.events("ACME", "case_opened", "payment_applied")] == [
            "case_opened",
            "payment_applied",
        ]
        reasons = [e["reason"] for e in w.events("ACME", "legal_notified")]
        assert reasons == ["opened", "balance_changed"]
        assert w.events("ACME", "legal_notified")[-1]["balance"] == "70.00"
        assert not [e for e in w.events("ACME", "notice_sent") if e["at"] > "2027-02-26"]


# --- a hand-off that fails half-way is finished, exactly once (issue 9) --------------------------------

ACCOUNTS = [f"FIRM-{n}" for n in range(1, 9)]


def _overdue(w: World, *accounts: str) -> None:
    """Accounts far along on the first day: the demand letter (never a final warning first), the final notice
    after its deadline, then the hand-off after the final notice's (12 March 2027)."""
    w.invoices(
        *(
            invoice_row(f"{account}-OLD", account_id=account, due_on="2026-12-01", issued_on="2026-11-01")
            for account in accounts
        )
    )


def _is_legal_email(raw: bytes) -> bool:
    return b"X-Dunning-Case:" in raw.split(b"\r\n\r\n", 1)[0]


def _legal_emails(w: World) -> list[Any]:
    return [m for m in w.sent_emails() if m["X-Dunning-Case"]]


def assert_one_finished_case(w: World, account: str, stored: int = 1) -> dict[str, Any]:
    """One packet (its record's hash), one case record, one case_opened, one legal email, the same amounts
    everywhere, and the account out of the daily scan. `stored`: how many times the packet was put."""
    (opened,) = w.events(account, "case_opened")
    case_id = opened["case_id"]
    (record,) = [case for case in legal.list_cases(DynamoCases(w.ledger)) if case.account_id == account]
    assert record.case_id == case_id
    state = w.ledger.get(*state_key(account, "EUR")) or {}
    assert (state["status"], state["handoff"], state.get("owner")) == ("legal", "done", None)
    assert opened["at"] == state["handed_over_at"], "dated by the hand-off, whatever attempt logged it"
    packet = w.aws.s3.get_object(Bucket=LEGAL_BUCKET, Key=record.packet_key)["Body"].read()
    assert hashlib.sha256(packet).hexdigest() == record.packet_sha256 and len(packet) == record.packet_bytes
    versions = w.aws.s3.list_object_versions(Bucket=LEGAL_BUCKET, Prefix=f"cases/{case_id}")["Versions"]
    assert [v["Key"] for v in versions] == [record.packet_key] * stored, "one packet"
    for version in versions:  # put again only by a retry that cannot know the first put completed
        body = w.aws.s3.get_object(Bucket=LEGAL_BUCKET, Key=record.packet_key, VersionId=version["VersionId"])
        assert hashlib.sha256(body["Body"].read()).hexdigest() == record.packet_sha256, "the very same bytes"
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(packet)).read("manifest.json"))
    amounts = (opened["amount_due"], opened["currency"], opened["charges"], opened["total_due"])
    assert amounts == (
        manifest["amount_due"],
        manifest["currency"],
        manifest["charges"],
        manifest["total_claimed"],
    )
    assert format_amount(record.amount_due, record.currency) == opened["amount_due"]
    (notified,) = w.events(account, "legal_notified")
    assert notified["case_id"] == case_id
    emails = [m for m in _legal_emails(w) if m["X-Dunning-Case"] == case_id]
    assert len(emails) == 1, "the legal team heard about it once"
    assert w.ledger.get(CASES_PK, case_id)["notify_status"] == "sent"  # type: ignore[index]
    assert not [
        item for item in w.ledger.query_partition(account_pk(account), "INVOICE#") if "due_pk" in item
    ], "a finished case is out of the daily scan"
    return opened


def _crash_once(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, when: Any = None) -> list[int]:
    crashes: list[int] = []
    original = getattr(owner, name)

    def crashing(*args: Any, **kwargs: Any) -> Any:
        if not crashes and (when is None or when(*args, **kwargs)):
            crashes.append(1)
            raise RuntimeError(f"injected crash in {name}")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, crashing)
    return crashes


def test_a_crash_after_marking_legal_and_before_the_packet_is_stored_is_finished_by_the_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crashes = _crash_once(monkeypatch, packets, "write_packet")  # e.g. a timeout building a large packet
    with world(date(2027, 2, 10)) as w:
        _overdue(w, "ACME")
        w.run_through(date(2027, 3, 17))

        assert crashes == [1]
        assert_one_finished_case(w, "ACME")
        assert not w.events("ACME", "workflow_failed"), "the state machine's retry finished it"
        assert {e["status"] for e in w.aws.executions()} == {"SUCCEEDED"}


def test_a_crash_after_the_packet_and_before_the_case_record_is_finished_by_the_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crashes = _crash_once(monkeypatch, Ledger, "put_new", lambda _, item: item.get("PK") == CASES_PK)
    with world(date(2027, 2, 10)) as w:
        _overdue(w, "ACME")
        w.run_through(date(2027, 3, 17))

        assert crashes == [1]
        # The role may write packets but not read them, so the retry cannot tell whether the first put
        # completed: it puts again. The hand-off instant fixes what goes in, so the bytes are identical.
        assert_one_finished_case(w, "ACME", stored=2)


def test_a_crash_after_case_opened_and_before_the_step_returns_logs_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def after_case_opened(log: Any, account_id: str, at: Any, entries: Any, seq: int = 0) -> bool:
        return any(getattr(e, "type", "") == "case_opened" for e in entries)

    original_log = DynamoContactLog.log
    crashes: list[int] = []

    def log_then_crash(*args: Any, **kwargs: Any) -> None:
        original_log(*args, **kwargs)
        if not crashes and after_case_opened(*args, **kwargs):
            crashes.append(1)
            raise RuntimeError("injected crash after case_opened")

    monkeypatch.setattr(DynamoContactLog, "log", log_then_crash)
    with world(date(2027, 2, 10)) as w:
        _overdue(w, "ACME")
        w.run_through(date(2027, 3, 17))

        assert crashes == [1]
        assert_one_finished_case(w, "ACME")


def test_retries_exhausted_while_building_the_packet_the_next_scan_finishes_the_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failing_on: list[date] = []
    original = packets.write_packet

    def failing_all_day(case: Any, out: Any) -> Any:
        today = w.aws.now().date()
        failing_on[:] = failing_on or [today]
        if today == failing_on[0]:
            raise TimeoutError("the packet took too long")
        return original(case, out)

    monkeypatch.setattr(packets, "write_packet", failing_all_day)
    with world(date(2027, 2, 10)) as w:
        _overdue(w, "ACME")
        w.run_through(date(2027, 3, 17))

        (failed,) = w.events("ACME", "workflow_failed")
        opened = assert_one_finished_case(w, "ACME")
        assert failed["at"][:10] == opened["at"][:10] == failing_on[0].isoformat()
        notified = w.events("ACME", "legal_notified")[0]
        assert notified["at"][:10] > opened["at"][:10], "finished by the next day's execution"
        next_day = date.fromisoformat(notified["at"][:10]).strftime("%Y%m%d")
        restarted = [e["name"] for e in w.aws.executions() if f"-d{next_day}-" in e["name"]]
        # The scan starts every waking ladder on send_notice's step; it passes an open hand-off on to one
        # successor on escalate, which finishes it.
        [daily] = [name for name in restarted if not name.endswith("-c1")]
        assert sorted(restarted) == [daily, f"{daily}-c1"], "the next day's executions took the hand-off over"


def _throttle_legal_emails(monkeypatch: pytest.MonkeyPatch, throttled: Any) -> list[bool]:
    """SES refuses the legal team's emails for which `throttled(call number)` holds, as SES does when
    throttling (HTTP 400, nothing accepted)."""
    calls: list[bool] = []
    original = SesMailer.send

    def send(self: SesMailer, sender: str, to: Any, raw: bytes, account_id: str | None = None) -> str:
        if _is_legal_email(raw):
            refused = bool(throttled(len(calls)))
            calls.append(refused)
            if refused:
                error = {"Error": {"Code": "TooManyRequestsException", "Message": "Maximum sending rate"}}
                cause = ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 429}}, "SendEmail")
                raise SendThrottled("TooManyRequestsException") from cause
        return original(self, sender, to, raw, account_id)

    monkeypatch.setattr(SesMailer, "send", send)
    return calls


def test_with_30_percent_of_legal_emails_throttled_every_case_is_notified_exactly_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _throttle_legal_emails(monkeypatch, lambda n: n % 10 in (0, 3, 6))
    with world(date(2027, 2, 10)) as w:
        _overdue(w, *ACCOUNTS)
        w.run_through(date(2027, 3, 17))

        assert calls.count(True) >= 3 and calls.count(False) == len(ACCOUNTS)
        for account in ACCOUNTS:
            assert_one_finished_case(w, account)
        assert len(_legal_emails(w)) == len(ACCOUNTS)
        assert not [e for a in ACCOUNTS for e in w.events(a, "workflow_failed")]
        assert w.aws.scheduler.retry_intervals, "retried by the state machine, with back-off"


def test_legal_email_retries_exhausted_the_next_scan_notifies_the_legal_team_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first_day: list[date] = []

    def throttled_all_day(_: int) -> bool:
        today = w.aws.now().date()
        first_day[:] = first_day or [today]
        return today == first_day[0]

    _throttle_legal_emails(monkeypatch, throttled_all_day)
    with world(date(2027, 2, 10)) as w:
        _overdue(w, "ACME")
        w.run_through(date(2027, 3, 17))

        (failed,) = w.events("ACME", "workflow_failed")
        assert "SendThrottled" in failed["error"]
        opened = assert_one_finished_case(w, "ACME")
        (notified,) = w.events("ACME", "legal_notified")
        assert opened["at"][:10] == failed["at"][:10] == first_day[0].isoformat() < notified["at"][:10]
        assert w.aws.scan()["items_read"] == 0, "nothing wakes the ladder again"


def test_a_lost_ses_answer_to_the_legal_email_is_never_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    original = SesMailer.send

    def accepted_then_lost(
        self: SesMailer, sender: str, to: Any, raw: bytes, account_id: str | None = None
    ) -> str:
        message_id = original(self, sender, to, raw, account_id)
        if _is_legal_email(raw):
            raise SendUnconfirmed("ReadTimeoutError") from ReadTimeoutError(endpoint_url="https://email")
        return message_id

    monkeypatch.setattr(SesMailer, "send", accepted_then_lost)
    with world(date(2027, 2, 10)) as w:
        _overdue(w, "ACME")
        w.run_through(date(2027, 3, 24))

        assert len(_legal_emails(w)) == 1, "SES got it once, and it was not sent again"
        assert not w.events("ACME", "legal_notified")
        (unconfirmed,) = w.events("ACME", "notice_unconfirmed")
        (opened,) = w.events("ACME", "case_opened")
        assert (unconfirmed["stage"], unconfirmed["case_id"]) == ("legal_handoff", opened["case_id"])
        record = w.ledger.get(CASES_PK, opened["case_id"]) or {}
        assert record["notify_status"] == "unconfirmed"
        state = w.ledger.get(*state_key("ACME", "EUR")) or {}
        assert state["handoff"] == "done", "a person checks it; the scan does not come back"
        assert w.aws.scan()["items_read"] == 0, "nothing wakes the ladder again"


def test_a_retry_that_finds_the_legal_email_reserved_but_not_logged_does_not_send_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process died between handing the email to SES and logging legal_notified."""
    crashes = _crash_once(
        monkeypatch, DynamoContactLog, "log", lambda *args, **kwargs: _logs(args, "legal_notified")
    )
    with world(date(2027, 2, 10)) as w:
        _overdue(w, "ACME")
        w.run_through(date(2027, 3, 17))

        assert crashes == [1]
        assert len(_legal_emails(w)) == 1
        assert not w.events("ACME", "legal_notified")
        assert [e["stage"] for e in w.events("ACME", "notice_unconfirmed")] == ["legal_handoff"]


def _logs(args: tuple[Any, ...], event_type: str) -> bool:
    return any(getattr(entry, "type", "") == event_type for entry in args[3])
