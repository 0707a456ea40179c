"""SES's own rules in the embedded AWS, and what a refused notice does to the ladder (CONTRACT 2, 5, 7).

Each test runs an account through the deployed state machine on simulated days with something SES
refuses, and shows: `notice_failed` with SES's reason, no rung counted (nothing sent; once the cause is
fixed the next notice sent is the very stage that was refused), one retry per business day, and no case
opened while the final notice is refused. The default policy sends Monday-Friday 09:00-17:00 (UTC here);
the invoice is due Wednesday 10 February 2027, so pre_due (-3) is first tried on Monday 8 February.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from dunning.adapters.keys import PROFILE_SK, account_pk
from dunning.adapters.ledger import Ledger
from dunning.local.embedded_aws import EmbeddedAws
from dunning.local.embedded_ses import NOTICE_CONFIGURATION_SET
from tests.conftest import UPLOADED_AT
from tests.support.collections import World, world
from tests.support.files import invoice_row, invoices_csv, reject_report

ACCOUNT = "ACME"
ADDRESS = "ap@acme.example.com"
FIRST_TRIES = [("pre_due", "2027-02-08T09:00"), ("pre_due", "2027-02-09T09:00")]


def _refused_then_fixed(w: World, fix: Callable[[], None], reason: str) -> None:
    """Refused on Monday and, again, on Tuesday (never twice a day); fixed on Tuesday evening; sent on
    Wednesday, and what is sent is the stage that was refused."""
    w.invoices(invoice_row("A-1", account_id=ACCOUNT, due_on="2027-02-10"))
    w.run_through(date(2027, 2, 9))

    failed = w.events(ACCOUNT, "notice_failed")
    assert [(e["stage"], e["at"][:16]) for e in failed] == FIRST_TRIES
    assert all(reason in e["reason"] for e in failed), failed
    assert w.notices(ACCOUNT) == [] and w.sent_emails() == []
    assert not w.events(ACCOUNT, "notice_skipped")

    fix()
    w.run_through(date(2027, 2, 12))
    assert w.notices(ACCOUNT)[0] == ("pre_due", "2027-02-10 09:00")
    assert len(w.events(ACCOUNT, "notice_failed")) == 2
    assert [m["To"] for m in w.sent_emails()] == [ADDRESS]


def _set_emails(w: World, emails: list[str]) -> None:
    """The account's stored addresses, as an older import (before ingest normalised them) left them."""
    w.ledger.update(
        (account_pk(ACCOUNT), PROFILE_SK),
        UpdateExpression="SET emails = :emails",
        ExpressionAttributeValues={":emails": emails},
    )


def test_a_non_ascii_address_is_refused_and_the_stage_retried_once_fixed() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", account_id=ACCOUNT, due_on="2027-02-10"))
        w.run_through(date(2027, 2, 1))
        _set_emails(w, ["jürgen@acme.example.com"])
        _refused_then_fixed(w, lambda: _set_emails(w, [ADDRESS]), "non-ASCII address (local part)")


def test_an_unencoded_display_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mailer that handed SES the policy's sender as written (the bug this encoding fixes)."""
    policy = 'sender: "Façturi SRL <billing@example.com>"\n'
    monkeypatch.setattr("dunning.adapters.mailer.ses_address", lambda address: address)
    with world(date(2027, 2, 1), policy) as w:
        _refused_then_fixed(
            w,
            monkeypatch.undo,
            "BadRequestException: Display name contains characters that are not 7-bit ASCII and not "
            "RFC 2047-encoded (FromEmailAddress: Façturi SRL <billing@example.com>)",
        )
        message = w.sent_emails()[0]
        assert message["From"].addresses[0].display_name == "Façturi SRL"
        from moto.ses.models import ses_backends

        (accepted,) = ses_backends["123456789012"]["eu-west-1"].sent_messages
        assert accepted.source == "=?utf-8?q?Fa=C3=A7turi_SRL?= <billing@example.com>"
        assert "From: =?utf-8?q?Fa=C3=A7turi?= SRL <billing@example.com>" in accepted.raw_data


def test_a_message_over_40_mb_is_refused() -> None:
    big = b"%PDF-1.4\n" + bytes(range(256)) * (34 * 1024)  # ~8.5 MB each, under ingest's 10 MB
    rows = [
        invoice_row(f"A-{n}", account_id=ACCOUNT, due_on="2027-02-10", document=f"a-{n}.pdf")
        for n in (1, 2, 3)
    ]
    with world(date(2027, 2, 1)) as w:
        for n in (1, 2, 3):
            w.aws.upload("documents", f"a-{n}.pdf", big + bytes([n]))
        w.invoices(*rows)
        w.run_through(date(2027, 2, 9))

        failed = w.events(ACCOUNT, "notice_failed")
        assert [(e["stage"], e["at"][:16]) for e in failed] == FIRST_TRIES
        assert all(
            e["reason"].startswith("BadRequestException: Message length is more than 41943040")
            for e in failed
        )
        assert w.notices(ACCOUNT) == []

        # The accountant takes the PDFs off (generated one-page copies are attached instead).
        w.invoices(*[{**row, "document": ""} for row in rows])
        w.run_through(date(2027, 2, 10))
        assert w.notices(ACCOUNT) == [("pre_due", "2027-02-10 09:00")]


def test_a_sender_no_verified_identity_covers_is_refused() -> None:
    with world(date(2027, 2, 1)) as w:
        w.aws.sesv2.delete_email_identity(EmailIdentity="example.com")
        _refused_then_fixed(
            w,
            lambda: w.aws.sesv2.create_email_identity(EmailIdentity="billing@example.com"),
            "MessageRejected: Email address is not verified. The following identities failed the check "
            "in region EU-WEST-1: billing@example.com",
        )


def test_an_unknown_configuration_set_is_refused() -> None:
    with world(date(2027, 2, 1)) as w:
        w.aws.sesv2.delete_configuration_set(ConfigurationSetName=NOTICE_CONFIGURATION_SET)
        _refused_then_fixed(
            w,
            lambda: w.aws.sesv2.create_configuration_set(ConfigurationSetName=NOTICE_CONFIGURATION_SET),
            f"NotFoundException: Configuration set <{NOTICE_CONFIGURATION_SET}> does not exist.",
        )


def test_a_send_without_a_configuration_set_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A function deployed without SES_CONFIGURATION_SET."""
    from dunning.adapters.mailer import SesMailer

    original = SesMailer.__init__

    def without_set(self: SesMailer, sesv2: Any, configuration_set: str | None = None) -> None:
        original(self, sesv2, None)

    monkeypatch.setattr(SesMailer, "__init__", without_set)
    with world(date(2027, 2, 1)) as w:
        _refused_then_fixed(w, monkeypatch.undo, "BadRequestException: ConfigurationSetName is required")


def test_in_the_sandbox_an_unverified_recipient_is_refused() -> None:
    with world(date(2027, 2, 1), ses_sandbox=True) as w:
        _refused_then_fixed(
            w,
            lambda: w.aws.sesv2.create_email_identity(EmailIdentity=ADDRESS),
            "MessageRejected: Email address is not verified. The following identities failed the check "
            f"in region EU-WEST-1: {ADDRESS}",
        )


def test_in_the_sandbox_a_verified_recipient_gets_the_notice() -> None:
    with world(date(2027, 2, 1), ses_sandbox=True, ses_verified=(ADDRESS,)) as w:
        w.invoices(invoice_row("A-1", account_id=ACCOUNT, due_on="2027-02-10"))
        w.run_through(date(2027, 2, 8))
        assert w.notices(ACCOUNT) == [("pre_due", "2027-02-08 09:00")]
        assert not w.events(ACCOUNT, "notice_failed")


def test_a_refused_final_notice_holds_the_account_at_that_stage_and_opens_no_case() -> None:
    with world(date(2027, 2, 10)) as w:
        w.invoices(invoice_row("OLD", account_id=ACCOUNT, amount="100.00", due_on="2027-01-01"))
        w.run_through(date(2027, 2, 12))
        assert w.notices(ACCOUNT) == [("demand_letter", "2027-02-10 09:00")]

        w.aws.sesv2.delete_configuration_set(ConfigurationSetName=NOTICE_CONFIGURATION_SET)
        w.run_through(date(2027, 3, 12))  # the hand-off (+60, 2 March) has long come

        failed = w.events(ACCOUNT, "notice_failed")
        assert {e["stage"] for e in failed} == {"final_notice"}
        days = [e["at"][:10] for e in failed]
        # The final notice is due once the demand letter's deadline (24 Feb, 10 business days) has passed.
        assert days[:6] == [
            "2027-02-25",
            "2027-02-26",
            "2027-03-01",
            "2027-03-02",
            "2027-03-03",
            "2027-03-04",
        ]
        assert len(days) == len(set(days)) == 12, "once each business day, 25 Feb to 12 March"
        assert w.notices(ACCOUNT) == [("demand_letter", "2027-02-10 09:00")]
        assert not w.events(ACCOUNT, "case_opened")

        w.aws.sesv2.create_configuration_set(ConfigurationSetName=NOTICE_CONFIGURATION_SET)
        w.run_through(date(2027, 4, 1))
        assert w.notices(ACCOUNT) == [
            ("demand_letter", "2027-02-10 09:00"),
            ("final_notice", "2027-03-15 09:00"),
        ]
        (case,) = w.events(ACCOUNT, "case_opened")
        # Not before the final notice's deadline: 10 business days after 15 March.
        assert case["at"] == "2027-03-30T09:00:00Z"


def test_a_hard_bounced_final_notice_opens_no_case() -> None:
    from dunning.local.embedded_aws import invoke_handler
    from dunning.ports import account_tag
    from functions.ses_events import app as ses_events
    from tests.integration.test_ses_events import bounce_event

    with world(date(2027, 2, 10)) as w:
        w.invoices(invoice_row("OLD", account_id=ACCOUNT, amount="100.00", due_on="2027-01-01"))
        w.run_through(date(2027, 2, 26))  # the final notice after the demand letter's deadline (24 Feb)
        final = w.events(ACCOUNT, "notice_sent")[-1]
        assert final["stage"] == "final_notice"
        event = bounce_event(ADDRESS, message_id=final["message_id"], account_id=account_tag(ACCOUNT))
        invoke_handler(ses_events.handler, event, "dunning-ses-events")
        w.run_through(date(2027, 4, 15))

        assert not w.events(ACCOUNT, "case_opened")
        assert [stage for stage, _ in w.notices(ACCOUNT)] == ["demand_letter", "final_notice"]


def test_the_notice_failed_alarm_metric_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[str] = []
    monkeypatch.setattr("dunning.adapters.metrics.count", lambda name, value=1: counted.append(name))
    with world(date(2027, 2, 1), ses_sandbox=True) as w:
        w.invoices(invoice_row("A-1", account_id=ACCOUNT, due_on="2027-02-10"))
        w.run_through(date(2027, 2, 8))
    assert counted.count("NoticeFailed") == 1


def test_an_idn_address_is_sent_in_punycode() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(
            invoice_row("A-1", account_id=ACCOUNT, due_on="2027-02-10", customer_email="ivan@пример.рф")
        )
        w.run_through(date(2027, 2, 8))
        (sent,) = w.events(ACCOUNT, "notice_sent")
        assert sent["to"] == ["ivan@xn--e1afmkfd.xn--p1ai"]
        message = w.sent_emails()[0]
        assert message["To"] == "ivan@xn--e1afmkfd.xn--p1ai"


def test_ingest_punycodes_idn_domains_and_rejects_non_ascii_local_parts(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    body = invoices_csv(
        invoice_row("IDN", account_id="IVAN", customer_email="Ivan@Пример.рф"),
        invoice_row("UTF8", account_id="JURGEN", customer_email="jürgen@example.de"),
    )
    result = aws.upload("invoices", "idn.csv", body, UPLOADED_AT)

    assert (result["imports"][0]["imported"], result["imports"][0]["rejected"]) == (1, 1)
    profile = ledger.get(account_pk("IVAN"), PROFILE_SK)
    assert profile is not None and list(profile["emails"]) == ["Ivan@xn--e1afmkfd.xn--p1ai"]
    (row,) = reject_report(aws, "idn.csv")
    assert (row["row"], row["field"], row["value"]) == ("3", "customer_email", "jürgen@example.de")
    assert row["error"] == "SES cannot send to a non-ASCII address (local part): 'jürgen@example.de'"


def test_simulate_in_the_sandbox_with_no_verified_recipient_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dunning.cli.main import main

    invoices = tmp_path / "invoices.csv"
    invoices.write_bytes(
        invoices_csv(
            invoice_row("A-1", account_id="ACME", due_on="2027-02-10"),
            invoice_row(
                "OLD", account_id="LATE", due_on="2026-11-01", issued_on="2026-10-01"
            ),  # already past its hand-off day
        )
    )
    out = tmp_path / "out"
    args = ["simulate", "--invoices", str(invoices), "--start", "2027-02-01", "--days", "20"]
    main([*args, "--ses-sandbox", "--quiet", "--out", str(out)])

    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    kinds = [event["type"] for event in events]
    assert kinds.count("notice_sent") == 0 and kinds.count("case_opened") == 0
    failed = [event for event in events if event["type"] == "notice_failed"]
    assert {event["account_id"] for event in failed} == {"ACME", "LATE"}
    assert all("Email address is not verified" in event["reason"] for event in failed)
    assert list((out / "outbox").glob("*.eml")) == []
    assert "notices FAILED" in capsys.readouterr().out
