"""`dunning simulate` on the bundled examples: CONTRACT section 2 outputs, reproducible."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from dunning.cli.main import main

# Its module fixture runs a whole simulation: one worker runs every test here (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("test_cli_simulate")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ARGS = [
    "simulate", "--invoices", str(EXAMPLES / "invoices.csv"), "--invoices", str(EXAMPLES / "xero_export.csv"),
    "--payments", str(EXAMPLES / "payments.csv"), "--actions", str(EXAMPLES / "actions.csv"),
    "--start", "2026-11-20", "--days", "120", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sim")
    assert main([*ARGS, "--out", str(folder)]) == 0
    return folder


def test_outbox_holds_every_email_in_send_order_with_the_simulated_date(out: Path) -> None:
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    emails = [e for e in events if e["type"] in ("notice_sent", "legal_notified")]
    files = sorted(p.name for p in (out / "outbox").iterdir())
    assert files == sorted(e["eml"] for e in emails), "one .eml per email sent"
    assert [e["eml"] for e in emails] == sorted(e["eml"] for e in emails), "lexical order = send order"
    sent = [e for e in events if e["type"] == "notice_sent"]
    assert len(files) >= 10
    for event in sent:
        message = email.message_from_bytes(
            (out / "outbox" / event["eml"]).read_bytes(), policy=email.policy.default
        )
        assert parsedate_to_datetime(message["Date"]) == datetime.fromisoformat(
            event["at"].replace("Z", "+00:00")
        )
        assert message.get_content_type() in ("multipart/alternative", "multipart/mixed")
        html = message.get_body(("html",))
        assert html is not None and '<html lang="' in html.get_content()


def test_events_follow_the_contract(out: Path) -> None:
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert all(e["at"].endswith("Z") and {"at", "type", "account_id"} <= e.keys() for e in events)
    required = {
        "invoice_imported": {"invoice_id"},
        "row_rejected": {"source", "row", "error"},
        "payment_applied": {"invoice_id", "amount", "currency"},
        "notice_sent": {"stage", "invoice_ids", "amount_due", "currency", "to", "message_id", "eml"},
        "notice_skipped": {"stage", "reason"},
        "promise_recorded": {"until"},
        "dispute_opened": {"invoice_id"},
        "case_opened": {"case_id", "packet", "amount_due", "currency"},
    }
    seen = {e["type"] for e in events}
    assert {"invoice_imported", "row_rejected", "payment_applied", "notice_sent", "case_opened"} <= seen
    for event in events:
        assert required.get(event["type"], set()) <= event.keys(), event


def test_payments_dated_later_take_effect_on_their_day(out: Path) -> None:
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    applied = {e["invoice_id"]: e["at"] for e in events if e["type"] == "payment_applied"}
    assert applied["INV-2001"].startswith("2026-12-20T00:00")  # paid_on 2026-12-20, start of day (UTC policy)
    budapest = [e for e in events if e["account_id"] == "BUDA-HU" and e["type"] == "notice_sent"]
    assert all(e["at"] < applied["INV-2001"] for e in budapest), "nothing sent after the payment"


def test_reject_reports_keep_the_source_row_numbers(out: Path) -> None:
    report = (out / "rejected" / "payments.csv.errors.csv").read_text()
    assert report.splitlines()[1:] == [
        "5,invoice_id,INV-9999,account JSMITH has no invoice INV-9999; import the invoice first",
        "6,currency,USD,the payment is in USD but invoice INV-7001 is in JPY",
    ]


def test_report_is_one_self_contained_page(out: Path) -> None:
    html = (out / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "ACME-RO" in html


def test_the_same_run_gives_the_same_outputs(out: Path, tmp_path: Path) -> None:
    assert main([*ARGS, "--out", str(tmp_path)]) == 0
    for name in ("events.jsonl", "report.html"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    assert sorted((tmp_path / "outbox").iterdir()) != [] and all(
        (tmp_path / "outbox" / p.name).read_bytes() == p.read_bytes() for p in (out / "outbox").iterdir()
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate"],
        ["simulate", "--invoices", "/nonexistent.csv"],
        ["simulate", "--invoices", str(EXAMPLES / "invoices.csv"), "--days", "zero"],
        ["simulate", "--invoices", str(EXAMPLES / "invoices.csv"), "--start", "2026-13-01"],
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dunning: error:") and err.count("\n") == 1


@pytest.mark.parametrize("where", ["file", "below-a-file"])
def test_an_out_that_is_a_file_is_one_line_and_exit_2(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "report.txt"
    existing.write_text("keep me")
    target = existing if where == "file" else existing / "run"

    assert main(["simulate", "--invoices", str(EXAMPLES / "invoices.csv"), "--out", str(target)]) == 2

    err = capsys.readouterr().err
    assert err.startswith("dunning: error:") and err.count("\n") == 1 and "is a file" in err
    assert "Traceback" not in err and existing.read_text() == "keep me"


def test_version_prints_the_version_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"dunning {version('dunning')}\n"


def test_bare_dunning_prints_the_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("usage: dunning") and captured.out == ""
    for command in ("ingest", "simulate", "cases", "preflight"):
        assert command in captured.err


def test_the_uploaded_invoice_pdf_is_attached_where_the_stage_says_so(out: Path) -> None:
    (pre_due,) = [
        p for p in (out / "outbox").iterdir() if "ACME-RO" in p.name and p.name.endswith("pre_due.eml")
    ]
    message = email.message_from_bytes(pre_due.read_bytes(), policy=email.policy.default)
    attachments = list(message.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["INV-1001.pdf"]
    assert attachments[0].get_content().startswith(b"%PDF-")
    assert (EXAMPLES / "documents" / "INV-1001.pdf").read_bytes() == attachments[0].get_content()


def test_the_demand_letter_pdf_states_amount_and_deadline_in_the_customers_language(out: Path) -> None:
    import io

    from pypdf import PdfReader

    (path,) = [
        p for p in (out / "outbox").iterdir() if "ACME-RO" in p.name and p.name.endswith("demand_letter.eml")
    ]
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    attachments = list(message.iter_attachments())
    (letter,) = [a for a in attachments if (a.get_filename() or "").startswith("demand-letter")]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(letter.get_content())).pages)
    # The payment plan of 16 December held the ladder; its third instalment was missed, the plan broke on
    # Thursday 11 March 2027 and the ladder resumed at the demand letter, deadline 10 business days later.
    # 4,850.00 + (1,200.50 less the 200.50 the export reports paid, less the feed's 500.00 of 15 December:
    # the 500 RON payment reduces the debt by 500, not by 299.50, issue 10) = 5,350.00 agreed in the plan,
    # less the two instalments paid (4,000.00), plus INV-9002 (2,100.00) due since 3 March = 3,450.00.
    assert "3.450,00 RON" in text and "25 martie 2027" in text
    html = message.get_body(("html",))
    assert html is not None and '<html lang="ro" dir="ltr">' in html.get_content()


def test_arabic_notices_are_right_to_left(out: Path) -> None:
    paths = [p for p in (out / "outbox").iterdir() if "NOUR-AE" in p.name]
    message = email.message_from_bytes(sorted(paths)[0].read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",))
    assert html is not None and '<html lang="ar" dir="rtl">' in html.get_content()


# --- the summary tells the truth (CONTRACT 2): failures are listed, and the exit status is 3 -------------

SHORT = [
    "simulate", "--invoices", str(EXAMPLES / "invoices.csv"), "--start", "2026-11-20", "--days", "12",
    "--quiet",
]  # fmt: skip


def test_a_template_that_does_not_render_is_a_failure_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = tmp_path / "templates" / "en"
    templates.mkdir(parents=True)
    (templates / "reminder.subject.j2").write_text("Invoice {{ invoice_numbr }} is overdue\n")  # a typo
    (templates / "final_notice.txt.j2").write_text("{% if %}broken{% endif %}\n")  # a syntax error
    out = tmp_path / "out"
    status = main([*SHORT, "--templates", str(tmp_path / "templates"), "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 3, printed
    assert "FAILURES:" in printed
    assert "templates/en/final_notice.txt.j2: TemplateSyntaxError" in printed
    assert "UndefinedError" in printed and "invoice_numbr" in printed
    report = (out / "report.html").read_text()
    assert 'id="failures-table"' in report and "invoice_numbr" in report
    assert (out / "events.jsonl").is_file()


def test_interest_without_a_reference_rate_for_the_day_is_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    # A policy's own rate table that ends before the run: the notices leave the interest of those days out
    # (never a stale rate, never a crash) and the run says so.
    policy.write_text(
        "charges:\n  statutory_interest: eu\n  show_on: [reminder, second_reminder, firm_notice]\n"
        '  reference_rates: {eu: [{from: "2025-07-01", rate: "2.15"}]}\n'
    )
    out = tmp_path / "out"
    status = main([*SHORT, "--policy", str(policy), "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 3, printed
    assert "missing rate" in printed and "no eu reference rate for 2026-" in printed
    assert "missing rate" in (out / "report.html").read_text()
    incomplete = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert any(event["type"] == "charges_incomplete" for event in incomplete)


def test_a_policy_scan_time_is_not_used_the_stacks_schedule_is(tmp_path: Path) -> None:
    """An older policy file with its own scan_time runs exactly as one without: the ladder and the scan both
    follow the template's ScanSchedule (07:00). Were the file's 05:00 in force, this run's contact log would
    differ (checked: it does from the 20th day on, when the file's time is put in force)."""
    argv = [*SHORT[:-3], "--actions", str(EXAMPLES / "actions.csv"), "--days", "20", "--quiet"]
    runs = {}
    for name, text in (("without", "min_gap_days: 3\n"), ("with", 'min_gap_days: 3\nscan_time: "05:00"\n')):
        policy = tmp_path / f"{name}.yaml"
        policy.write_text(text)
        out = tmp_path / name
        assert main([*argv, "--policy", str(policy), "--out", str(out)]) == 0
        runs[name] = (out / "events.jsonl").read_text()
    assert runs["with"] == runs["without"]
    assert '"notice_sent"' in runs["with"]


def test_every_kind_of_failure_is_collected() -> None:
    from dunning.cli.failures import collect

    class Denied:
        def __init__(self) -> None:
            self.at = datetime.fromisoformat("2027-01-02T10:00:00+00:00")
            self.function = "dunning-escalate"
            self.account_id = "ACME"
            self.action = "s3:GetObject"
            self.resource = "arn:aws:s3:::dunning-ingest/x"

    class Aws:
        def __init__(self) -> None:
            self.denied_calls = [Denied()]
            self.failed_uploads: list[object] = []

    events = [
        {"at": "2027-01-01T00:00:00Z", "type": "notice_sent", "account_id": "A"},
        {"at": "2027-01-01T00:00:00Z", "type": "workflow_failed", "account_id": "A", "error": "KeyError",
         "cause": "boom"},
        {"at": "2027-01-01T00:00:00Z", "type": "notice_failed", "account_id": "B", "stage": "reminder",
         "reason": "MessageRejected"},
        {"at": "2027-01-01T00:00:00Z", "type": "notice_skipped", "account_id": "C",
         "reason": "AccessDenied: ses:SendRawEmail"},
    ]  # fmt: skip
    events.append(
        {"at": "2027-01-01T00:00:00Z", "type": "charges_incomplete", "account_id": "D",
         "stage": "firm_notice", "currency": "EUR",
         "reason": "no eu reference rate for 2027-01-01..2027-01-14; add the half-year"}
    )  # fmt: skip
    kinds = [failure.kind for failure in collect(events, Aws())]
    assert sorted(kinds) == sorted(
        ["workflow failed", "notice failed", "access denied", "access denied", "missing rate"]
    )
    # The IAM engineer's events replace the enforcer's own list (no double count).
    denied = {"at": "2027-01-02T10:00:00Z", "type": "access_denied", "account_id": "A",
              "function": "dunning-scan", "action": "s3:GetObject", "resource": "x"}  # fmt: skip
    again = [f for f in collect([denied], Aws()) if f.kind == "access denied"]
    assert len(again) == 1 and "dunning-scan may not s3:GetObject on x" in again[0].detail
    assert collect([events[0]], object()) == []
