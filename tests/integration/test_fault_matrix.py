"""The fault matrix: each class of fault a network or the platform makes, injected into the real state machine
on the embedded AWS while a small portfolio walks its ladders, and the promises that must hold anyway:
0 duplicate emails, 0 notices after payment, 0 lost payments, 0 lost cases or legal emails.

The portfolio (30 days from Monday 1 March 2027, business in London):
- NEVER: 40 days overdue at the start, never pays: demand letter, final notice, hand-off to the legal team;
- PAYS: due 3 March, pays in full on 12 March;
- PARTIAL: due 2 March, pays half on 5 March and the rest on 20 March;
- TOKYO: a customer in Tokyo, due 1 March, pays on 8 March: that day's notice would go at 09:00 Tokyo,
  which is 00:00 in London, the moment the payment takes effect;
- PROMISE: due 25 February, promises on 2 March to pay by 9 March, and does.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from typing import Any

import pytest

from dunning.adapters.ladders import DynamoLadders
from dunning.domain.notices import NoticeId
from dunning.local.embedded_aws import LEGAL_BUCKET
from tests.support.collections import World, world
from tests.support.faults import (
    CRASH_POINTS,
    END,
    START,
    LambdaFaults,
    SesFaults,
    check_promises,
    portfolio,
)


def test_without_faults_the_portfolio_behaves() -> None:
    with world(START) as w:
        portfolio(w)
        w.run_through(END)
        counts = check_promises(w)
        assert counts["unconfirmed"] == 0
        assert [stage for stage, _ in w.notices("NEVER")] == ["demand_letter", "final_notice"]
        # The second reminder was due at 09:00 Tokyo on the 8th, the instant the payment took effect.
        assert [stage for stage, _ in w.notices("TOKYO")] == ["pre_due", "reminder"]
        assert w.events("PROMISE", "promise_kept")


@pytest.mark.parametrize("kind", ["timeout_after_accept", "reset_after_accept", "http500_after_accept"])
def test_an_answer_lost_after_ses_accepted_never_duplicates(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = SesFaults(kind)
    with world(START) as w:
        faults.install(monkeypatch)
        portfolio(w)
        w.run_through(END)
        counts = check_promises(w)
        assert faults.injected >= 8
        # Each notice whose answer was lost is reported for a person to check, and the ladder went on.
        assert counts["unconfirmed"] >= 6
        assert [stage for stage, _ in w.notices("NEVER")] == []
        unconfirmed = {e["stage"] for e in w.events("NEVER", "notice_unconfirmed")}
        assert unconfirmed == {"demand_letter", "final_notice", "legal_handoff"}
        # Nobody knows for sure whether the final warning went out: the case opens, saying so.
        final = DynamoLadders(w.ledger).notice_status(NoticeId("NEVER", "EUR", 0, "final_notice")) or {}
        assert final.get("status") == "unconfirmed"
        [case] = w.events("NEVER", "case_opened")
        body = w.aws.s3.get_object(Bucket=LEGAL_BUCKET, Key=f"cases/{case['packet']}")["Body"].read()
        names = zipfile.ZipFile(io.BytesIO(body)).namelist()
        assert any(name.startswith("notices/") and "final_notice" in name for name in names)


@pytest.mark.parametrize("kind", ["throttled", "no_connection"])
def test_refusals_that_prove_nothing_was_accepted_are_retried_until_sent(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = SesFaults(kind, rate=0.3, first_attempt_only=False)
    with world(START) as w:
        faults.install(monkeypatch)
        portfolio(w)
        w.run_through(END)
        counts = check_promises(w)
        assert faults.injected >= 2 and counts["unconfirmed"] == 0
        assert [stage for stage, _ in w.notices("NEVER")] == ["demand_letter", "final_notice"]


@pytest.mark.parametrize("kind", ["lost", "throttled"])
def test_lambda_answers_lost_or_throttled_on_every_task(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    faults = LambdaFaults(kind, rate=0.5)
    with world(START) as w:
        faults.install(monkeypatch)
        portfolio(w)
        w.run_through(END)
        check_promises(w)
        assert faults.injected >= 10
        steps = {f"{_function(key.split('#')[0])}:{key.split('#')[1]}" for key in faults.calls}
        assert {"dunning-send-notice:step", "dunning-escalate:step"} <= steps, "both functions' steps"
        assert [stage for stage, _ in w.notices("NEVER")] in (
            ["demand_letter", "final_notice"],
            ["demand_letter"],  # a lost answer on the final notice's send: unconfirmed, not resent
            ["final_notice"],
        )


def _function(arn: str) -> str:
    return arn.rsplit(":function:", 1)[-1].split(":", 1)[0]


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_a_crash_at_each_point_loses_nothing_and_duplicates_nothing(
    point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with world(START) as w:
        crashed = CRASH_POINTS[point].install(monkeypatch)
        portfolio(w)
        w.run_through(END)
        check_promises(w)
        assert crashed, "the crash point was never reached"


def test_extra_scans_and_redelivered_uploads_change_nothing() -> None:
    def during(w: World) -> None:
        while w.day <= END:
            w.sim.run_day(w.day)
            # Two more scans at odd moments of the day: midnight and a minute later.
            w.aws.scan()
            w.aws.scan()
            w.day = date.fromordinal(w.day.toordinal() + 1)
        w.aws.run_until(w.sim.at(w.day))

    with world(START) as w:
        portfolio(w)
        original = w.aws.upload

        def thrice(kind: str, name: str, body: bytes, at: datetime | None = None) -> dict[str, Any]:
            result = original(kind, name, body, at)
            event = w.aws.upload_event(f"incoming/{kind}/{name}", at or w.aws.now())
            from dunning.local.embedded_aws import invoke_handler
            from functions.ingest import app

            for _ in range(2):  # S3 -> EventBridge delivers at least once
                invoke_handler(app.handler, event, "dunning-ingest")
            return result

        w.aws.upload = thrice  # type: ignore[method-assign]
        during(w)
        check_promises(w)


def test_two_executions_for_one_account_send_each_notice_once() -> None:
    with world(START) as w:
        portfolio(w)
        w.run_through(date(2027, 3, 3))
        # A second execution for the same account, as a duplicate start would make.
        w.aws.sfn.start_execution(
            stateMachineArn=w.aws.state_machine_arn,
            name="NEVER-duplicate",
            input='{"account_id": "NEVER", "currency": "EUR", "round": 0}',
        )
        w.aws.scheduler.settle()
        w.run_through(END)
        check_promises(w)


def test_a_payment_a_minute_before_the_send_stops_it() -> None:
    with world(START) as w:
        portfolio(w)
        w.run_through(date(2027, 3, 9))
        # PAYS's second reminder is due 10 March 09:00; the payment lands at 08:59 (the feed, mid-day).
        w.aws.run_until(datetime(2027, 3, 10, 8, 59, tzinfo=UTC))
        from tests.support.collections import PAYMENT_HEADER
        from tests.support.files import csv_bytes

        body = csv_bytes(PAYMENT_HEADER, [["PAYS", "P-1", "250.00", "2027-03-10"]])
        w.aws.upload("payments", "early-pays.csv", body)
        w.run_through(END)
        stages = [stage for stage, _ in w.notices("PAYS")]
        assert "second_reminder" not in stages
