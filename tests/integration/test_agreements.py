"""Agreements on the deployed state machine (CONTRACT 9, 10): a promise of part of the balance, payment
plans with their instalment reminders, grace and break, and notices that wait for approval. Every run is the
real ASL in the embedded AWS, each function under its own role, with the fake clock."""

from __future__ import annotations

from datetime import date

from tests.support.collections import world
from tests.support.files import invoice_row

POLICY = "collector: collections@example.com\n"


def test_a_reached_call_with_a_partial_promise_is_confirmed_the_same_day_holds_the_ladder_and_is_kept() -> (
    None
):
    with world(date(2027, 2, 1), POLICY) as w:
        w.invoices(
            invoice_row("A-1", amount="900.00", due_on="2027-02-10", locale="ro", timezone="Europe/Bucharest")
        )
        # The collector's call at +10 (Saturday 20th: Monday 22nd) reaches the customer, who promises 300 by
        # 5 March; they pay it on the 3rd.
        w.action("ACME", "call", date(2027, 2, 22), outcome="reached")
        w.action("ACME", "promise", date(2027, 2, 22), until="2027-03-05", amount="300.00")
        w.payment("ACME", "A-1", "300.00", date(2027, 3, 3))
        w.run_through(date(2027, 3, 12))

        [(stage, at)] = w.agreement_emails("ACME")
        assert (stage, at[:10]) == ("agreement_confirmation", "2027-02-22"), "confirmed the day it was agreed"
        [email] = [m for m in w.sent_emails() if "/agreement_" in str(m["X-Dunning-Notice"])]
        html = email.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert 'lang="ro"' in html and "300,00" in html and "5 martie 2027" in html, (
            "in Romanian, what was agreed"
        )
        [recorded] = w.events("ACME", "promise_recorded")
        assert (recorded["until"], recorded["amount"], recorded["currency"]) == (
            "2027-03-05",
            "300.00",
            "EUR",
        )
        ladder = w.notices("ACME")
        assert [s for s, _ in ladder] == [
            "pre_due",
            "reminder",
            "second_reminder",
            "firm_notice",
            "demand_letter",
        ], ladder
        held = [at for s, at in ladder if "2027-02-22" <= at[:10] <= "2027-03-05"]
        assert held == [], "no dunning notice while the promise holds"
        [kept] = w.events("ACME", "promise_kept")
        assert kept["at"].startswith("2027-03-03"), "kept the day the amount arrived"
        assert not w.events("ACME", "promise_broken")
        # The rest (600.00) is still owed: after the promised date the ladder goes on for it.
        [after] = [e for e in w.events("ACME", "notice_sent") if e["stage"] == "firm_notice"]
        assert after["at"] >= "2027-03-06" and after["amount_due"] == "600.00"


def test_a_three_instalment_plan_with_one_late_and_one_missed_instalment_breaks_and_the_ladder_resumes() -> (
    None
):
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="900.00", due_on="2027-02-10"))
        plan = "2027-03-01=300.00;2027-04-01=300.00;2027-05-01=300.00"
        w.action("ACME", "call", date(2027, 2, 22), outcome="reached")
        w.action("ACME", "plan", date(2027, 2, 22), instalments=plan)
        w.payment("ACME", "A-1", "300.00", date(2027, 3, 1))  # on time
        w.payment("ACME", "A-1", "300.00", date(2027, 4, 5))  # four days late, inside the grace
        w.run_through(date(2027, 5, 20))  # the third is never paid

        [agreed] = w.events("ACME", "plan_agreed")
        assert agreed["total"] == "900.00" and [i["due_on"] for i in agreed["instalments"]] == [
            "2027-03-01",
            "2027-04-01",
            "2027-05-01",
        ]
        emails = w.agreement_emails("ACME")
        assert [(stage, at[:10]) for stage, at in emails] == [
            ("agreement_confirmation", "2027-02-22"),
            ("instalment_reminder", "2027-02-26"),  # three days before the first
            ("instalment_reminder", "2027-03-29"),  # before the second
            ("instalment_reminder", "2027-04-02"),  # the day after the second, still unpaid
            ("instalment_reminder", "2027-04-28"),  # before the third
            ("instalment_reminder", "2027-05-03"),  # after the third (the 2nd is a Sunday)
        ]
        paid = w.events("ACME", "instalment_paid")
        assert [(e["due_on"], e["at"][:10]) for e in paid] == [
            ("2027-03-01", "2027-03-01"),
            ("2027-04-01", "2027-04-05"),
        ]
        [broken] = w.events("ACME", "plan_broken")
        assert (broken["due_on"], broken["short"], broken["at"][:10]) == (
            "2027-05-01",
            "300.00",
            "2027-05-07",
        )
        assert not w.events("ACME", "plan_completed")
        ladder = w.notices("ACME")
        assert not [at for _, at in ladder if "2027-02-22" <= at[:10] < "2027-05-07"], (
            "held while the plan ran"
        )
        after = [
            e
            for e in w.events("ACME", "notice_sent")
            if e["at"][:10] >= "2027-05-07" and e["stage"] != "instalment_reminder"
        ]
        assert after[0]["stage"] == "demand_letter", "at most the demand letter next, never the final warning"
        assert after[0]["amount_due"] == "300.00", "for the whole remaining balance"


def test_a_plan_paid_in_full_completes_and_settles_the_account() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="500.00", due_on="2027-02-10"))
        w.action("ACME", "plan", date(2027, 2, 15), instalments="2027-03-01=250.00;2027-03-15=250.00")
        w.payment("ACME", "A-1", "250.00", date(2027, 2, 27))
        w.payment("ACME", "A-1", "250.00", date(2027, 3, 12))
        w.run_through(date(2027, 3, 31))

        types = [e["type"] for e in w.events("ACME", "instalment_paid", "plan_completed", "account_settled")]
        assert types == ["instalment_paid", "instalment_paid", "plan_completed", "account_settled"]
        reminders = [at[:10] for stage, at in w.agreement_emails("ACME") if stage == "instalment_reminder"]
        # The first's reminder went before it was paid; the second was paid on its reminder's day, before
        # anything went out; nothing was late.
        assert reminders == ["2027-02-26"]


APPROVAL_POLICY = """
ladder:
  stages:
    - {name: reminder, day: 1}
    - {name: firm_notice, day: 14}
    - {name: demand_letter, day: 30, letter: true, approve_above: "500"}
    - {name: final_notice, day: 45, letter: true}
"""


def test_a_demand_letter_over_the_approval_limit_waits_until_approved_and_is_never_sent_when_rejected() -> (
    None
):
    with world(date(2027, 2, 1), APPROVAL_POLICY) as w:
        w.invoices(
            invoice_row("B-1", account_id="BIG", amount="900.00", due_on="2027-02-10"),
            invoice_row("H-1", account_id="HUGE", amount="2000.00", due_on="2027-02-10"),
            invoice_row("S-1", account_id="SMALL", amount="100.00", due_on="2027-02-10"),
        )
        w.run_through(date(2027, 3, 15))  # the demand letters fall due on Friday 12 March

        def letters(account: str) -> list[str]:
            return [at[:10] for stage, at in w.notices(account) if stage == "demand_letter"]

        assert letters("SMALL") == ["2027-03-12"], "under the limit: no approval needed"
        approvals = {}
        for account in ("BIG", "HUGE"):
            assert letters(account) == [], "waits for approval"
            [task] = w.events(account, "task_created")
            assert (task["kind"], task["stage"], task["due_on"]) == (
                "approval",
                "demand_letter",
                "2027-03-12",
            )
            approvals[account] = task["task_id"]
        w.action("BIG", "approve", date(2027, 3, 16), task_id=approvals["BIG"])
        w.action("HUGE", "reject", date(2027, 3, 16), task_id=approvals["HUGE"])
        w.run_through(date(2027, 3, 24))

        assert letters("BIG") == ["2027-03-16"], "sent the day it was approved"
        assert letters("HUGE") == [], "rejected: never sent"
        [skipped] = [e for e in w.events("HUGE", "notice_skipped") if e["stage"] == "demand_letter"]
        assert skipped["reason"] == "rejected"
        outcomes = {a: [e["outcome"] for e in w.events(a, "task_done")] for a in ("BIG", "HUGE")}
        assert outcomes == {"BIG": ["approved"], "HUGE": ["rejected"]}


def test_two_promises_broken_in_a_row_skip_the_next_gentle_stage() -> None:
    with world(date(2027, 2, 1)) as w:
        w.invoices(invoice_row("A-1", amount="400.00", due_on="2027-02-10"))
        w.action("ACME", "promise", date(2027, 2, 1), until="2027-02-03")
        w.action("ACME", "promise", date(2027, 2, 4), until="2027-02-06")
        w.run_through(date(2027, 2, 20))

        assert [e["until"] for e in w.events("ACME", "promise_broken")] == ["2027-02-03", "2027-02-06"]
        ladder = [stage for stage, _ in w.notices("ACME")]
        assert ladder[:2] == ["reminder", "second_reminder"], "the courtesy reminder is left out"
