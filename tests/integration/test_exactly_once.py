"""Defects of the send and decide steps under real faults, one test each (issue 9): each failed before its
fix. The fault matrix (test_fault_matrix.py) covers the same classes on a whole portfolio."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from dunning.adapters.ladders import DynamoLadders
from dunning.domain.clock import FixedClock
from dunning.domain.notices import NoticeId
from dunning.domain.policy import DEFAULT_POLICY
from dunning.runtime.wiring import ledger_books
from dunning.services.escalation import StepRequest, decide_step
from tests.support.collections import world
from tests.support.files import invoice_row


def test_a_payment_recorded_while_the_notice_is_rendered_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # The re-check that matters is the last one before SES, not the one before rendering.
    from dunning.notices.render import render_notice as original

    paid: list[str] = []

    def render_then_pay(context: Any, dirs: Any, **options: Any) -> Any:
        rendered = original(context, dirs, **options)
        if context.stage.startswith("reminder") and not paid:
            from tests.support.collections import PAYMENT_HEADER
            from tests.support.files import csv_bytes

            paid.append(context.account_id)
            body = csv_bytes(PAYMENT_HEADER, [["ACME", "A-1", "100.00", "2027-02-11"]])
            state.aws.upload("payments", "paid-while-rendering.csv", body)
        return rendered

    monkeypatch.setattr("dunning.services.sending.render_notice", render_then_pay)
    with world(date(2027, 2, 1)) as state:
        state.invoices(invoice_row("A-1", amount="100.00", due_on="2027-02-10"))
        state.run_through(date(2027, 2, 20))

        assert paid == ["ACME"]
        assert [stage for stage, _ in state.notices("ACME")] == ["pre_due"]
        assert [m["X-Dunning-Notice"] for m in state.sent_emails()] == ["EUR/0/pre_due"]
        skipped = state.events("ACME", "notice_skipped")
        assert [(e["stage"], e["reason"]) for e in skipped] == [("reminder", "paid")]
        # The reservation was released, not left to look like an unconfirmed send.
        assert DynamoLadders(state.ledger).notice_status(NoticeId("ACME", "EUR", 0, "reminder")) is None


def test_a_settlement_while_waiting_is_not_missed_when_a_new_invoice_arrives() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="100.00", due_on="2027-02-10"))
        w.payment("ACME", "A-1", "100.00", date(2027, 2, 12))
        # A new debt arrives before the ladder wakes for the second reminder (17 Feb).
        w.invoices(
            invoice_row("B-1", amount="60.00", due_on="2027-03-15", issued_on="2027-02-14"),
            on=date(2027, 2, 14),
        )
        w.run_through(date(2027, 3, 20))

        notices = [(stage, at[:10]) for stage, at in w.notices("ACME")]
        assert notices[:2] == [("pre_due", "2027-02-08"), ("reminder", "2027-02-11")]
        # B-1 starts its own ladder: its first notice is the courtesy reminder, not a second reminder.
        assert notices[2] == ("pre_due", "2027-03-12")
        # The new invoice's upload woke the ladder at that day's scan: the settlement is logged then, once.
        assert [e["at"][:10] for e in w.events("ACME", "account_settled")] == ["2027-02-14"]
        [b_first] = [e for e in w.events("ACME", "notice_sent") if e["invoice_ids"] == ["B-1"]][:1]
        assert b_first["stage"] == "pre_due"


def test_a_settling_decide_whose_answer_is_lost_logs_the_settlement_once() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="100.00", due_on="2027-02-10"))
        w.payment("ACME", "A-1", "100.00", date(2027, 2, 12))
        w.run_through(date(2027, 2, 12))
        assert DynamoLadders(w.ledger).load("ACME", "EUR").state.owner is None, "asleep until its next rung"
        request = StepRequest("ACME", "ACME-EUR-d20270212-execution", "EUR", round=3)
        # The payment has arrived: the first Decide settles and ends the episode; Step Functions never
        # hears back and runs the same Decide twice more, later.
        for hours in (0, 1, 5):
            clock = FixedClock(w.aws.now().replace(hour=10 + hours))
            result = decide_step(ledger_books(w.ledger), DEFAULT_POLICY, clock, request)
            assert result["decision"] == {"action": "done", "reason": "settled"}
        assert len(w.events("ACME", "account_settled")) == 1
        assert DynamoLadders(w.ledger).load("ACME", "EUR").state.episode == 1


def test_ses_send_event_confirms_a_notice_whose_answer_was_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    # SES accepted the reminder but the API answer was lost: unconfirmed. SES's own Send event (published
    # through the configuration set) then settles it: notice_sent at the attempt's time, notice_confirmed.
    from moto.ses.models import ses_backends

    from dunning.local.embedded_aws import invoke_handler
    from functions.ses_events import app
    from tests.integration.test_ses_events import _eventbridge, _mail
    from tests.support.faults import SesFaults

    faults = SesFaults("timeout_after_accept")
    with world(date(2027, 2, 1)) as w:
        faults.install(monkeypatch)
        w.invoices(invoice_row("A-1", due_on="2027-02-10"))
        w.run_through(date(2027, 2, 12))
        [pre_due, reminder] = w.events("ACME", "notice_unconfirmed")
        reminder_record = DynamoLadders(w.ledger).notice_status(NoticeId("ACME", "EUR", 0, "reminder")) or {}
        assert reminder_record["status"] == "unconfirmed"

        accepted = ses_backends["123456789012"]["eu-west-1"].sent_messages[-1]
        mail = _mail("ap@acme.example.com", message_id=accepted.id)
        mail["headers"].append({"name": "X-Dunning-Notice", "value": "EUR/0/reminder"})
        event = _eventbridge("Email Sent", {"eventType": "Send", "send": {}, "mail": mail}, reminder["at"])
        for _ in range(2):  # EventBridge delivers at least once
            invoke_handler(app.handler, event, "dunning-ses-events")

        status = DynamoLadders(w.ledger).notice_status(NoticeId("ACME", "EUR", 0, "reminder")) or {}
        assert (status["status"], status["message_id"]) == ("sent", accepted.id)
        [sent] = [e for e in w.events("ACME", "notice_sent") if e["stage"] == "reminder"]
        assert (sent["at"], sent["message_id"], sent["eml"]) == (reminder["at"], accepted.id, reminder["eml"])
        assert [e["stage"] for e in w.events("ACME", "notice_confirmed")] == ["reminder"]
        assert w.aws.denied_calls == []
        # The pre-due notice stays unconfirmed until its own Send event comes.
        pre_due_record = DynamoLadders(w.ledger).notice_status(NoticeId("ACME", "EUR", 0, "pre_due")) or {}
        assert pre_due_record["status"] == "unconfirmed"
        assert pre_due["stage"] == "pre_due"
