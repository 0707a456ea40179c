"""The collections engine end to end: the deployed ASL executed by moto, the real handlers in-process, the
daily scan at 07:00, Wait states released by the simulated clock. Times below are UTC unless the account
lives elsewhere; the default policy sends on business days (Monday-Friday in most countries) 09:00-17:00
in the customer's time zone."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.support.collections import world
from tests.support.files import invoice_row

FULL_LADDER = [
    ("pre_due", "2027-02-08 09:00"),  # due Wed 10 Feb; -3 is Sunday 7 Feb -> Monday
    ("reminder", "2027-02-11 09:00"),
    ("second_reminder", "2027-02-17 09:00"),
    ("firm_notice", "2027-02-24 09:00"),
    ("demand_letter", "2027-03-12 09:00"),
    ("final_notice", "2027-03-29 09:00"),  # +45 is Saturday 27 March -> Monday
]


def test_an_account_that_never_pays_walks_every_stage_to_the_legal_team() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="100.00", due_on="2027-02-10"))
        w.run_through(date(2027, 4, 20))

        assert w.notices("ACME") == FULL_LADDER
        (case,) = w.events("ACME", "case_opened")
        # +60 is Sunday 11 April, but the final notice (29 March) gave 10 business days, until 12 April.
        assert case["at"] == "2027-04-13T09:00:00Z"
        assert (case["amount_due"], case["currency"]) == ("100.00", "EUR")
        assert case["packet"] == f"{case['case_id']}.zip"
        emails = [m for m in w.sent_emails() if m["To"] != "legal@example.com"]
        assert len(emails) == 6, "one email per customer-facing stage, none twice"
        assert all(m["To"] == "ap@acme.example.com" for m in emails)
        assert len(w.sent_emails()) == 7, "and one to the legal team"
        statuses = {e["status"] for e in w.aws.executions()}
        assert statuses == {"SUCCEEDED"}


def test_nothing_is_sent_after_the_payment_date() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="100.00", due_on="2027-02-10"))
        w.payment("ACME", "A-1", "100.00", date(2027, 2, 20))
        w.run_through(date(2027, 4, 20))

        assert w.notices("ACME") == FULL_LADDER[:3]
        assert len(w.events("ACME", "account_settled")) == 1
        assert not w.events("ACME", "case_opened")
        assert len(w.sent_emails()) == 3


def test_partial_then_full_payment() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="100.00", due_on="2027-02-10"))
        w.payment("ACME", "A-1", "40.00", date(2027, 2, 15))
        w.payment("ACME", "A-1", "60.00", date(2027, 2, 22))
        w.run_through(date(2027, 3, 31))

        sent = w.events("ACME", "notice_sent")
        assert [(e["stage"], e["amount_due"]) for e in sent] == [
            ("pre_due", "100.00"),
            ("reminder", "100.00"),
            ("second_reminder", "60.00"),
        ]
        assert len(w.events("ACME", "account_settled")) == 1


def test_paying_the_earliest_invoice_re_times_the_ladder_from_the_next() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(
            invoice_row("A-1", amount="100.00", due_on="2027-02-10"),
            invoice_row("B-1", amount="50.00", due_on="2027-03-03"),
        )
        w.payment("ACME", "A-1", "100.00", date(2027, 2, 19))
        w.run_through(date(2027, 3, 20))

        sent = w.events("ACME", "notice_sent")
        assert [(e["stage"], e["at"][:16]) for e in sent] == [
            ("pre_due", "2027-02-08T09:00"),
            ("reminder", "2027-02-11T09:00"),
            ("second_reminder", "2027-02-17T09:00"),
            # B-1 is due 3 March: the next rung, firm_notice (+14), counts from there, not from A-1.
            ("firm_notice", "2027-03-17T09:00"),
        ]
        assert sent[-1]["invoice_ids"] == ["B-1"] and sent[-1]["amount_due"] == "50.00"


def test_a_broken_promise_pauses_the_ladder_then_resumes_it() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="100.00", due_on="2027-02-10"))
        w.action("ACME", "promise", date(2027, 2, 12), until="2027-02-19")
        w.run_through(date(2027, 2, 28))

        assert w.notices("ACME")[:3] == [
            ("pre_due", "2027-02-08 09:00"),
            ("reminder", "2027-02-11 09:00"),
            ("second_reminder", "2027-02-22 09:00"),  # held during the promise (17 Feb), sent after it broke
        ]
        (broken,) = w.events("ACME", "promise_broken")
        assert (broken["at"], broken["until"]) == ("2027-02-20T07:00:00Z", "2027-02-19")


def test_a_kept_promise_ends_the_ladder() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="100.00", due_on="2027-02-10"))
        w.action("ACME", "promise", date(2027, 2, 12), until="2027-02-19")
        w.payment("ACME", "A-1", "100.00", date(2027, 2, 18))
        w.run_through(date(2027, 3, 31))

        assert w.notices("ACME") == FULL_LADDER[:2]
        assert [e["type"] for e in w.events("ACME", "promise_kept", "promise_broken", "account_settled")] == [
            "promise_kept",
            "account_settled",
        ]


def test_a_disputed_invoice_is_left_out_of_notices_and_totals_until_resolved() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(
            invoice_row("A-1", amount="100.00", due_on="2027-02-10"),
            invoice_row("B-1", amount="50.00", due_on="2027-02-10"),
        )
        w.action("ACME", "dispute", date(2027, 2, 2), invoice="B-1")
        w.action("ACME", "resolve", date(2027, 2, 16), invoice="B-1")
        w.run_through(date(2027, 2, 18))

        sent = w.events("ACME", "notice_sent")
        assert [(e["stage"], e["invoice_ids"], e["amount_due"]) for e in sent] == [
            ("pre_due", ["A-1"], "100.00"),
            ("reminder", ["A-1"], "100.00"),
            ("second_reminder", ["A-1", "B-1"], "150.00"),
        ]


def test_an_account_imported_40_days_overdue_starts_at_its_stage_without_a_burst() -> None:
    with world(date(2027, 2, 10)) as w:
        w.invoices(invoice_row("OLD", amount="100.00", due_on="2027-01-01"))
        w.run_through(date(2027, 2, 28))

        assert w.notices("ACME") == [
            ("demand_letter", "2027-02-10 09:00"),  # +30 (31 Jan) has passed, +45 (15 Feb) has not
            # Not on +45: the demand letter gave 10 business days to pay (to Wed 24 Feb); the final warning
            # comes the day after that deadline, never inside it.
            ("final_notice", "2027-02-25 09:00"),
        ]


def test_an_account_imported_90_days_overdue_gets_the_demand_letter_first_never_a_final_warning() -> None:
    with world(date(2027, 4, 1)) as w:
        w.invoices(invoice_row("OLD", amount="100.00", due_on="2027-01-01"))
        w.run_through(date(2027, 5, 15))

        notices = w.notices("ACME")
        # +60 (hand-off) has long passed, but a customer never hears a final warning or a hand-off first.
        assert [stage for stage, _ in notices] == ["demand_letter", "final_notice"]
        assert notices[0] == ("demand_letter", "2027-04-01 09:00")
        assert notices[1] == ("final_notice", "2027-04-16 09:00")  # 10 business days (Easter: 29 Mar is past)


def test_a_second_scan_the_same_day_starts_nothing_new() -> None:
    with world(date(2027, 2, 8)) as w:
        w.invoices(
            invoice_row("A-1", due_on="2027-02-10"),
            invoice_row("B-1", account_id="BETA", due_on="2027-02-11"),
        )
        w.run_through(date(2027, 2, 8))
        executions = w.aws.executions()
        # The scan's two; each of their steps found its pre-due reminder due at 09:00 and started the
        # successor execution that waited for it.
        assert sorted(e["name"].endswith("-c1") for e in executions) == [False, False, True, True]

        again = w.aws.scan()

        assert again["started"] == [], "each ladder has today's execution (or sleeps past the next scan)"
        assert w.aws.executions() == executions


def test_a_scan_page_that_fails_is_reported_alone_and_the_rest_of_its_batch_is_scanned() -> None:
    from dunning.local.embedded_aws import invoke_handler
    from functions.scan_overdue import app

    with world(date(2027, 2, 8)) as w:
        w.invoices(invoice_row("A-1", due_on="2027-02-10"))
        w.run_through(date(2027, 2, 8))
        day = '{"before": "2027-03-01T06:00:00Z", "day": "2027-02-08", "shard": %d}'
        records = [
            {"messageId": f"m-{shard}", "body": day % shard, "eventSource": "aws:sqs"} for shard in range(16)
        ]
        records.insert(3, {"messageId": "m-bad", "body": "{not a page", "eventSource": "aws:sqs"})

        result = invoke_handler(app.handler, {"Records": records}, "dunning-scan")

        assert result["batchItemFailures"] == [{"itemIdentifier": "m-bad"}]
        assert sorted(page["shard"] for page in result["pages"]) == list(range(16))
        assert sum(page["items_read"] for page in result["pages"]) == 1, "ACME's ladder, from its shard"


def test_a_paused_account_gets_nothing_until_the_pause_ends() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="100.00", due_on="2027-02-10"))
        w.action("ACME", "pause", date(2027, 2, 9), until="2027-03-01")
        w.run_through(date(2027, 3, 5))

        assert w.notices("ACME") == [
            ("pre_due", "2027-02-08 09:00"),
            ("firm_notice", "2027-03-01 09:00"),  # +14 has passed when the pause ends; no burst of the others
        ]


def test_weekends_holidays_and_the_customer_time_zone_are_honoured() -> None:
    row = invoice_row(
        "RO-1",
        account_id="RO",
        amount="100.00",
        due_on="2026-11-24",
        timezone="Europe/Bucharest",
        issued_on="2026-11-01",
        country="RO",
    )
    with world(date(2026, 11, 20)) as w:
        w.invoices(row)
        w.run_through(date(2026, 12, 3))

        assert w.notices("RO") == [
            ("pre_due", "2026-11-23 07:00"),  # -3 is Saturday 21 Nov -> Monday 09:00 in Bucharest (UTC+2)
            ("reminder", "2026-11-26 07:00"),  # +1 (25 Nov) is within 3 days of the last notice -> 26 Nov
            # +7 is Tuesday 1 December, Romania's National Day, after St Andrew's Day on the 30th
            ("second_reminder", "2026-12-02 07:00"),
        ]


def test_notices_never_go_out_on_the_customer_country_weekend() -> None:
    # Saudi Arabia rests Friday-Saturday, Iran on Friday. Due Monday 5 October 2026, so -3 is a Friday; no
    # public holiday in either country from late September to mid-November.
    rows = [
        invoice_row(
            f"{country}-1",
            account_id=account,
            due_on="2026-10-05",
            issued_on="2026-09-01",
            country=country,
            timezone=zone,
        )
        for account, country, zone in (("SAUDI", "SA", "Asia/Riyadh"), ("IRAN", "IR", "Asia/Tehran"))
    ]
    with world(date(2026, 9, 28)) as w:
        w.invoices(*rows)
        w.run_through(date(2026, 12, 10))

        assert w.notices("SAUDI") == [
            ("pre_due", "2026-10-04 06:00"),  # Friday 2 October -> Sunday 09:00 in Riyadh (UTC+3)
            ("reminder", "2026-10-07 06:00"),  # +1 (Tuesday) is within 3 days of Sunday's notice
            ("second_reminder", "2026-10-12 06:00"),
            ("firm_notice", "2026-10-19 06:00"),
            ("demand_letter", "2026-11-04 06:00"),
            ("final_notice", "2026-11-19 06:00"),  # a Thursday: a working day in Riyadh
        ]
        assert w.notices("IRAN") == [
            ("pre_due", "2026-10-03 05:30"),  # Friday 2 October -> Saturday 09:00 in Tehran (UTC+3:30)
            ("reminder", "2026-10-06 05:30"),
            ("second_reminder", "2026-10-12 05:30"),
            ("firm_notice", "2026-10-19 05:30"),
            ("demand_letter", "2026-11-04 05:30"),
            ("final_notice", "2026-11-19 05:30"),
        ]
        weekends = {"SAUDI": ("Asia/Riyadh", {4, 5}), "IRAN": ("Asia/Tehran", {4})}
        sent = [e for account in weekends for e in w.events(account, "notice_sent")]
        assert len(sent) == 12
        for event in sent:
            zone, weekend = weekends[event["account_id"]]
            local = datetime.fromisoformat(event["at"]).astimezone(ZoneInfo(zone))
            assert local.weekday() not in weekend, event
        assert len(w.events("SAUDI", "case_opened")) == len(w.events("IRAN", "case_opened")) == 1


def test_consumers_are_never_contacted_outside_08_00_to_21_00_local() -> None:
    policy = 'sending_window: {start: "06:00", end: "23:00"}\n'
    row = invoice_row(
        "US-1",
        account_id="JANE",
        due_on="2027-02-10",
        timezone="America/New_York",
        country="US",
        customer_type="consumer",
    )
    with world(date(2027, 2, 1), policy=policy) as w:
        w.invoices(row)
        w.run_through(date(2027, 2, 12))

        # Business window opens at 06:00, but for a consumer not before 08:00 New York time (13:00 UTC).
        assert w.notices("JANE") == [("pre_due", "2027-02-08 13:00"), ("reminder", "2027-02-11 13:00")]


@pytest.mark.parametrize("failures", [1, 3])
def test_ses_throttling_is_retried_and_every_notice_goes_out_exactly_once(
    failures: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.adapters.mailer import SesMailer
    from dunning.ports import SendThrottled

    original = SesMailer.send
    attempts: dict[bytes, int] = {}

    def throttled(
        self: SesMailer, sender: str, to: list[str], raw: bytes, account_id: str | None = None
    ) -> str:
        notice = raw.split(b"X-Dunning-Notice: ", 1)[1].split(b"\r\n", 1)[0]
        attempts[notice] = attempts.get(notice, 0) + 1
        if attempts[notice] <= failures:
            raise SendThrottled("TooManyRequestsException")
        return original(self, sender, to, raw, account_id)

    monkeypatch.setattr(SesMailer, "send", throttled)
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", due_on="2027-02-10"))
        w.run_through(date(2027, 2, 18))

        assert w.notices("ACME") == FULL_LADDER[:3]
        assert len(w.sent_emails()) == 3
        # Full jitter: each back-off is somewhere in [0, 5 * 2**n] seconds.
        waits = w.aws.scheduler.retry_intervals
        assert len(waits) == 3 * failures
        assert all(0 <= wait <= 5 * 2 ** (n % failures) for n, wait in enumerate(waits))


def test_a_crash_after_ses_accepted_never_sends_the_notice_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    # The function dies after SES accepted the reminder and before anything was logged: the retry cannot
    # know whether it went out, so it is not sent again and is reported as unconfirmed, in full.
    from dunning.adapters.ladders import DynamoContactLog
    from tests.support.faults import crash_once_at

    def logging_the_reminder(log: object, account_id: str, at: object, entries: list[object]) -> bool:
        return any(getattr(entry, "identity", "") == "EUR#0#reminder" for entry in entries)

    crashed = crash_once_at(monkeypatch, DynamoContactLog, "log", logging_the_reminder)
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", due_on="2027-02-10"))
        w.run_through(date(2027, 2, 18))

        subjects = [m["X-Dunning-Notice"] for m in w.sent_emails()]
        assert subjects == ["EUR/0/pre_due", "EUR/0/reminder", "EUR/0/second_reminder"], (
            "the reminder went out once"
        )
        [unconfirmed] = w.events("ACME", "notice_unconfirmed")
        assert unconfirmed["stage"] == "reminder" and unconfirmed["invoice_ids"] == ["A-1"]
        assert unconfirmed["eml"].endswith("-reminder.eml") and unconfirmed["to"] == ["ap@acme.example.com"]
        assert [stage for stage, _ in w.notices("ACME")] == ["pre_due", "second_reminder"]
        assert crashed, "the crash point was reached"


def test_a_crash_between_logging_and_acknowledging_a_send_is_repaired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # notice_sent was logged, then the function died before marking the reservation sent: the retry finds
    # the logged event and completes the acknowledgement. Nothing is sent twice, nothing is left out.
    from dunning.adapters.ladders import DynamoLadders
    from dunning.domain.notices import NoticeId
    from tests.support.faults import crash_once_at

    def acknowledging_the_reminder(*args: object, **_: object) -> bool:
        return args[1].stage == "reminder" and args[2] == "sent"  # type: ignore[attr-defined]

    crashed = crash_once_at(monkeypatch, DynamoLadders, "finish_send", acknowledging_the_reminder)
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", due_on="2027-02-10"))
        w.run_through(date(2027, 2, 18))

        subjects = [m["X-Dunning-Notice"] for m in w.sent_emails()]
        assert subjects == ["EUR/0/pre_due", "EUR/0/reminder", "EUR/0/second_reminder"]
        assert [stage for stage, _ in w.notices("ACME")] == ["pre_due", "reminder", "second_reminder"]
        assert w.events("ACME", "notice_unconfirmed") == []
        reminder = DynamoLadders(w.ledger).notice_status(NoticeId("ACME", "EUR", 0, "reminder")) or {}
        assert reminder["status"] == "sent"
        assert crashed, "the crash point was reached"


def test_after_the_hand_off_payments_are_still_applied_and_nothing_is_sent() -> None:
    with world(date(2027, 2, 10)) as w:
        w.invoices(invoice_row("OLD", amount="100.00", due_on="2026-12-01", issued_on="2026-11-01"))
        w.payment("ACME", "OLD", "30.00", date(2027, 3, 15))
        w.run_through(date(2027, 3, 24))

        types = [e["type"] for e in w.events("ACME") if e["type"] != "invoice_imported"]
        assert types == [
            *["notice_sent", "notice_sent"],  # the demand letter, then the final notice after its deadline
            *["case_opened", "legal_notified", "payment_applied", "legal_notified"],
        ]
        assert [stage for stage, _ in w.notices("ACME")] == ["demand_letter", "final_notice"]
        assert w.aws.scan()["items_read"] == 0, "a case with the legal team is out of the daily scan"


def test_an_open_ended_pause_is_looked_at_daily_one_execution_at_a_time() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="100.00", due_on="2027-02-10"))
        w.action("ACME", "pause", date(2027, 2, 9))  # no end date: the ladder is looked at every day
        w.action("ACME", "resume", date(2027, 2, 20))
        w.run_through(date(2027, 2, 25))

        executions = w.aws.executions()
        names = sorted(e["name"] for e in executions)
        assert len(names) >= 4 and all(n.startswith("ACME-EUR-d2027") for n in names)
        assert sum(e["status"] == "RUNNING" for e in executions) <= 1, (
            "one execution walks the account at a time"
        )
        assert [stage for stage, _ in w.notices("ACME")] == ["pre_due", "second_reminder", "firm_notice"]
        assert not w.events("ACME", "workflow_failed")


def test_a_failing_step_is_logged_and_the_next_scan_picks_the_account_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dunning.services import escalation

    original = escalation.decide  # type: ignore[attr-defined]
    failures: list[int] = []

    def broken_for_a_while(*args: object, **kwargs: object) -> object:
        if len(failures) < 5:  # more than the state machine's retries of one step
            failures.append(1)
            raise RuntimeError("ledger unavailable")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(escalation, "decide", broken_for_a_while)
    with world(date(2027, 2, 5)) as w:
        w.invoices(invoice_row("A-1", amount="100.00", due_on="2027-02-10"))
        w.run_through(date(2027, 2, 12))

        (failed,) = w.events("ACME", "workflow_failed")
        assert failed["error"] == "RuntimeError" and failed["at"].startswith("2027-02-05")
        assert [stage for stage, _ in w.notices("ACME")] == ["pre_due", "reminder"]
        statuses = [e["status"] for e in w.aws.executions()]
        assert statuses.count("FAILED") == 1 and set(statuses) <= {"FAILED", "SUCCEEDED", "RUNNING"}


def test_a_customer_who_opted_out_gets_no_email_and_the_ladder_still_moves_on() -> None:
    row = invoice_row(
        "C-1", account_id="JANE", amount="100.00", due_on="2027-02-10", customer_type="consumer"
    )
    with world(date(2027, 2, 1)) as w:
        w.invoices(row)
        w.action("JANE", "opt_out", date(2027, 2, 9))
        w.run_through(date(2027, 2, 28))

        assert [stage for stage, _ in w.notices("JANE")] == ["pre_due"]
        skipped = [(e["stage"], e["reason"]) for e in w.events("JANE", "notice_skipped")]
        assert skipped == [
            ("reminder", "opted_out"),
            ("second_reminder", "opted_out"),
            ("firm_notice", "opted_out"),
        ]
        assert len(w.sent_emails()) == 1


def test_a_bounced_address_is_suppressed_and_the_next_notice_skipped() -> None:
    from dunning.local.embedded_aws import invoke_handler
    from dunning.ports import account_tag
    from functions.ses_events import app as ses_events
    from tests.integration.test_ses_events import bounce_event

    with world(date(2027, 2, 1)) as w:
        w.invoices(
            invoice_row(
                "A-1",
                account_id="Thames Joinery Ltd",
                due_on="2027-02-10",
                customer_email="ap@thames.example.com",
            )
        )
        w.run_through(date(2027, 2, 8))
        (sent,) = w.events("Thames Joinery Ltd", "notice_sent")
        event = bounce_event(
            sent["to"][0], message_id=sent["message_id"], account_id=account_tag("Thames Joinery Ltd")
        )
        invoke_handler(ses_events.handler, event, "dunning-ses-events")
        w.run_through(date(2027, 2, 12))

        (failed,) = w.events("Thames Joinery Ltd", "delivery_failed")
        assert failed["address"] == "ap@thames.example.com" and failed["reason"] == "bounce"
        skipped = [(e["stage"], e["reason"]) for e in w.events("Thames Joinery Ltd", "notice_skipped")]
        assert skipped == [("reminder", "suppressed")]
        assert len(w.sent_emails()) == 1


def test_a_day_with_one_notice_is_one_execution_of_two_state_transitions() -> None:
    # What Step Functions charges for (docs/scale.md): the scan's execution waits until the ladder's moment,
    # then send_notice takes the step, sends and puts the ladder to sleep until its next notice.
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", due_on="2027-02-10"))
        w.run_through(date(2027, 2, 12))

        day = [e for e in w.aws.executions() if "-d20270211-" in e["name"]]
        assert [stage for stage, _ in w.notices("ACME")] == ["pre_due", "reminder"]
        [execution] = day
        history = w.aws.sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
        entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
        assert entered == ["WaitForStep", "Step"]
        assert execution["status"] == "SUCCEEDED"
