"""The ladder's decisions, as pure functions of an account snapshot, the policy and the time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from dunning.domain.account import AccountSnapshot
from dunning.domain.ladder import decide, payment_deadline
from dunning.domain.policy import DEFAULT_POLICY, parse_policy


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Account:
    """Builds ledger items the way the ingest and the workflow write them."""

    def __init__(self, **profile: Any) -> None:
        self.items: list[dict[str, Any]] = [
            {
                "kind": "account",
                "PK": "ACCOUNT#A",
                "SK": "PROFILE",
                "timezone": "UTC",
                "customer_type": "business",
                "segment": "default",
                **profile,
            }
        ]

    def invoice(self, invoice_id: str, due_on: str, amount: str = "100.00", **extra: Any) -> Account:
        self.items.append(
            {
                "kind": "invoice",
                "invoice_id": invoice_id,
                "currency": "EUR",
                "amount": amount,
                "amount_paid": "0",
                "status": "open",
                "issued_on": "2027-01-01",
                "due_on": due_on,
                **extra,
            }
        )
        return self

    def paid(self, invoice_id: str, amount: str) -> Account:
        self.items.append({"kind": "payment", "invoice_id": invoice_id, "amount": amount})
        return self

    def action(
        self, action: str, on: str, until: str | None = None, invoice_id: str | None = None
    ) -> Account:
        self.items.append(
            {
                "kind": "action",
                "action": action,
                "on": on,
                "until": until,
                "invoice_id": invoice_id,
                "recorded_at": on,
                "SK": f"ACTION#{on}#{len(self.items)}",
            }
        )
        return self

    def sent(self, stage: str, at: str, episode: int = 0) -> Account:
        self.items.append(
            {"kind": "notice", "episode": episode, "stage": stage, "status": "sent", "started_at": at}
        )
        return self

    def logged(self, event_type: str, identity: str) -> Account:
        self.items.append({"kind": "event", "identity": identity, "event": {"type": event_type}})
        return self

    def state(self, **fields: Any) -> Account:
        self.items.append({"kind": "state", **fields})
        return self

    def snapshot(self) -> AccountSnapshot:
        return AccountSnapshot.from_items("A", self.items)


def _next(
    account: Account, now: str, policy: Any = DEFAULT_POLICY
) -> tuple[str, str | None, str | None, str]:
    decision = decide(account.snapshot(), policy, _at(now))
    at = decision.at.strftime("%Y-%m-%d %H:%M") if decision.at else None
    return decision.action, decision.next, at, decision.stage.name if decision.stage else decision.reason


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Due Wednesday 10 Feb 2027. Before the pre-due day: wait for it (Sunday 7 -> Monday 8, 09:00).
        ("2027-02-05 07:00", ("wait", "send", "2027-02-08 09:00", "pre_due")),
        # Inside the window on a business day the due stage goes now (rounded up to the minute).
        ("2027-02-08 10:30", ("wait", "send", "2027-02-08 10:30", "pre_due")),
        # After 17:00 it waits for the next morning.
        ("2027-02-08 17:00", ("wait", "send", "2027-02-09 09:00", "pre_due")),
        # Imported 20 days late: straight to firm_notice (+14), with no burst of the three before it.
        ("2027-03-02 07:00", ("wait", "send", "2027-03-02 09:00", "firm_notice")),
        # 40 days late: the demand letter.
        ("2027-03-22 07:00", ("wait", "send", "2027-03-22 09:00", "demand_letter")),
        # 70 days late, nothing sent yet: never straight to the lawyers, nor a final warning as the first
        # notice (CONTRACT 7): the demand letter.
        ("2027-04-21 07:00", ("wait", "send", "2027-04-21 09:00", "demand_letter")),
        # 55 days late (the final notice's day has passed): still the demand letter first.
        ("2027-04-06 07:00", ("wait", "send", "2027-04-06 09:00", "demand_letter")),
    ],
)
def test_the_stage_its_age_gives(now: str, expected: tuple[str, str, str, str]) -> None:
    assert _next(Account().invoice("I-1", "2027-02-10"), now) == expected


def test_next_rung_waits_for_its_day_and_the_minimum_gap() -> None:
    account = Account().invoice("I-1", "2027-02-10").sent("pre_due", "2027-02-09T09:00:00+00:00")
    # reminder is due +1 (11 Feb) but the gap after 9 Feb 09:00 runs to 12 Feb 09:00.
    assert _next(account, "2027-02-09 10:00") == ("wait", "send", "2027-02-12 09:00", "reminder")


def test_hand_off_waits_for_the_final_notices_deadline() -> None:
    account = Account().invoice("I-1", "2027-01-01").sent("final_notice", "2027-03-01T09:00:00+00:00")
    deadline = payment_deadline(date(2027, 3, 1), None)
    assert deadline == date(2027, 3, 15)  # 10 business days
    assert _next(account, "2027-03-02 07:00") == ("wait", "handoff", "2027-03-16 09:00", "legal_handoff")


def test_settled_account_is_done_and_logs_settlement_once() -> None:
    account = Account().invoice("I-1", "2027-02-10").paid("I-1", "100.00")
    decision = decide(account.snapshot(), DEFAULT_POLICY, _at("2027-02-20 07:00"))
    assert (decision.action, decision.reason) == ("done", "settled")
    assert [entry.type for entry in decision.log] == ["account_settled"]


def test_amount_paid_reported_by_the_export_counts() -> None:
    account = Account().invoice("I-1", "2027-02-10", amount_paid="100.00")
    assert _next(account, "2027-02-20 07:00")[3] == "settled"


@pytest.mark.parametrize(
    ("actions", "now", "expected"),
    [
        (
            [("pause", "2027-02-01", "2027-03-01", None)],
            "2027-02-20 07:00",
            ("wait", "decide", "2027-03-01 07:00", "paused"),
        ),
        (
            [("pause", "2027-02-01", None, None)],
            "2027-02-20 07:00",
            ("wait", "decide", "2027-02-21 07:00", "paused"),
        ),
        (
            [("pause", "2027-02-01", None, None), ("resume", "2027-02-15", None, None)],
            "2027-02-20 07:00",
            ("wait", "send", "2027-02-22 09:00", "second_reminder"),
        ),
        (
            [("promise", "2027-02-12", "2027-02-25", None)],
            "2027-02-20 07:00",
            ("wait", "decide", "2027-02-26 07:00", "promise"),
        ),
        (
            [("dispute", "2027-02-01", None, "I-1")],
            "2027-02-20 07:00",
            ("wait", "decide", "2027-02-21 07:00", "disputed"),
        ),
        (
            [("dispute", "2027-02-01", None, "I-1"), ("resolve", "2027-02-10", None, "I-1")],
            "2027-02-20 07:00",
            ("wait", "send", "2027-02-22 09:00", "second_reminder"),
        ),
        # An action dated in the future has no effect yet.
        (
            [("pause", "2027-03-01", None, None)],
            "2027-02-20 07:00",
            ("wait", "send", "2027-02-22 09:00", "second_reminder"),
        ),
    ],
)
def test_pauses_promises_and_disputes(
    actions: list[tuple[str, str, str | None, str | None]], now: str, expected: tuple[str, str, str, str]
) -> None:
    account = Account().invoice("I-1", "2027-02-10")
    for action in actions:
        account.action(*action)
    assert _next(account, now) == expected


def test_broken_promise_is_logged_once_and_the_ladder_resumes() -> None:
    account = Account().invoice("I-1", "2027-02-10").action("promise", "2027-02-12", "2027-02-19")
    decision = decide(account.snapshot(), DEFAULT_POLICY, _at("2027-02-20 07:00"))
    assert [entry.type for entry in decision.log] == ["promise_broken"]
    assert decision.stage is not None and decision.stage.name == "second_reminder"
    account.logged("promise_broken", decision.log[0].identity)
    assert decide(account.snapshot(), DEFAULT_POLICY, _at("2027-02-21 07:00")).log == ()


def test_only_undisputed_invoices_set_the_anchor_and_join_the_notice() -> None:
    account = (
        Account()
        .invoice("OLD", "2027-01-01")
        .invoice("NEW", "2027-02-10")
        .invoice("LATER", "2027-03-30")
        .action("dispute", "2027-01-05", invoice_id="OLD")
    )
    decision = decide(account.snapshot(), DEFAULT_POLICY, _at("2027-02-20 07:00"))
    assert decision.stage is not None and decision.stage.name == "second_reminder"  # from NEW, not OLD
    assert [invoice.invoice_id for invoice in decision.invoices] == ["NEW"]  # LATER is not due yet


def test_consumers_and_business_windows_in_the_customer_time_zone() -> None:
    policy = parse_policy('sending_window: {start: "06:00", end: "23:00"}')
    business = Account(timezone="Asia/Tokyo").invoice("I-1", "2027-02-10")
    consumer = Account(timezone="Asia/Tokyo", customer_type="consumer").invoice("I-1", "2027-02-10")
    # Monday 8 Feb 2027, 06:00 in Tokyo is Sunday 21:00 UTC; a consumer waits for 08:00 Tokyo (23:00 UTC).
    assert _next(business, "2027-02-07 12:00", policy)[2] == "2027-02-07 21:00"
    assert _next(consumer, "2027-02-07 12:00", policy)[2] == "2027-02-07 23:00"


def test_segments_choose_their_own_ladder() -> None:
    account = (
        Account(segment="new_customer")
        .invoice("I-1", "2027-02-10")
        .sent("reminder", "2027-02-11T09:00:00+00:00")
    )
    # new_customer goes reminder (+1) -> firm_notice (+7) -> demand_letter (+21).
    assert _next(account, "2027-02-12 07:00") == ("wait", "send", "2027-02-17 09:00", "firm_notice")


def test_legal_accounts_are_left_alone() -> None:
    account = Account().invoice("I-1", "2027-01-01").state(status="legal", episode=0)
    assert _next(account, "2027-04-01 07:00")[0] == "done"


def test_a_new_episode_starts_from_the_first_rung() -> None:
    account = (
        Account().invoice("I-2", "2027-06-10").sent("final_notice", "2027-03-01T09:00:00+00:00", episode=0)
    )
    account.state(status="idle", episode=1)
    assert _next(account, "2027-06-05 07:00") == ("wait", "send", "2027-06-07 09:00", "pre_due")


def _attempt(account: Account, stage: str, at: str, status: str, **extra: Any) -> Account:
    account.items.append(
        {"kind": "notice", "episode": 0, "stage": stage, "status": status, "started_at": at, **extra}
    )
    return account


def test_a_refused_notice_is_not_a_rung_done_and_is_tried_the_next_business_day() -> None:
    # Refused on Friday 12 Feb: tried again on Monday 15 Feb, not later the same Friday.
    account = _attempt(
        Account().invoice("I-1", "2027-02-10"), "reminder", "2027-02-12T09:00:00+00:00", "failed"
    )
    account.sent("pre_due", "2027-02-08T09:00:00+00:00")
    assert _next(account, "2027-02-12 09:01") == ("wait", "send", "2027-02-15 09:00", "reminder")


def test_a_refused_notice_does_not_count_toward_the_minimum_gap() -> None:
    account = Account().invoice("I-1", "2027-02-10").sent("pre_due", "2027-02-05T09:00:00+00:00")
    _attempt(account, "reminder", "2027-02-11T09:00:00+00:00", "failed")
    assert _next(account, "2027-02-11 10:00") == ("wait", "send", "2027-02-12 09:00", "reminder")


def test_no_hand_off_after_a_refused_final_notice() -> None:
    account = Account().invoice("I-1", "2027-01-01").sent("demand_letter", "2027-02-01T09:00:00+00:00")
    _attempt(account, "final_notice", "2027-03-19T09:00:00+00:00", "failed")
    # +60 has passed; the account stays at the final notice, tried again on Monday.
    assert _next(account, "2027-03-19 10:00") == ("wait", "send", "2027-03-22 09:00", "final_notice")


def test_no_hand_off_without_a_delivered_final_notice() -> None:
    account = Account().invoice("I-1", "2027-01-01")
    _attempt(account, "final_notice", "2027-03-01T09:00:00+00:00", "skipped")  # opted out, suppressed
    decision = decide(account.snapshot(), DEFAULT_POLICY, _at("2027-04-01 07:00"))
    assert (decision.action, decision.reason, decision.next) == ("wait", "undelivered", "decide")


def test_an_unconfirmed_final_notice_still_reaches_the_legal_team() -> None:
    # SES's answer was lost: most likely sent; holding the account for good would lose the case. The packet
    # and the legal team's email say the notice is unconfirmed.
    account = Account().invoice("I-1", "2027-01-01")
    _attempt(account, "final_notice", "2027-03-01T09:00:00+00:00", "unconfirmed")
    assert _next(account, "2027-04-01 07:00") == ("wait", "handoff", "2027-04-01 09:00", "legal_handoff")


def test_no_hand_off_after_the_final_notice_bounced_for_every_address() -> None:
    account = Account().invoice("I-1", "2027-01-01")
    _attempt(account, "final_notice", "2027-03-01T09:00:00+00:00", "sent", message_id="m-1", recipients=2)
    account.logged("delivery_failed", "m-1#bounce#a@x.example")
    assert _next(account, "2027-03-17 07:00") == ("wait", "handoff", "2027-03-17 09:00", "legal_handoff")
    account.logged("delivery_failed", "m-1#bounce#b@x.example")
    decision = decide(account.snapshot(), DEFAULT_POLICY, _at("2027-03-17 07:00"))
    assert (decision.reason, decision.next) == ("undelivered", "decide")


@pytest.mark.parametrize(
    ("hold", "now", "wakes_after"),
    [
        # Paused until 20 Feb in Los Angeles, business in London (scan at 06:00 London = 22:00 the day
        # before in LA): waking at the business's scan time would find the pause still on, again and again.
        (("pause", "2027-02-12", "2027-02-20"), "2027-02-20 06:00", "2027-02-20 08:00"),
        # A promise to pay by 19 Feb: the ladder looks again once 20 Feb has begun in Los Angeles.
        (("promise", "2027-02-12", "2027-02-19"), "2027-02-20 06:00", "2027-02-20 08:00"),
    ],
)
def test_a_hold_ending_west_of_the_business_wakes_when_the_customers_day_begins(
    hold: tuple[str, str, str], now: str, wakes_after: str
) -> None:
    account = Account(timezone="America/Los_Angeles").invoice("I-1", "2027-02-01").action(*hold)
    decision = decide(account.snapshot(), DEFAULT_POLICY, _at(now))
    assert decision.action == "wait" and decision.next == "decide" and decision.at is not None
    assert decision.at >= _at(wakes_after), "woke before the customer's day began: a busy loop"


def test_a_wait_to_decide_again_always_lets_time_pass() -> None:
    # After the scan time, on a whole minute, while the customer's day has not begun: the answer is never
    # "now" (a Wait that ends at once, then the same answer again).
    account = Account(timezone="America/Los_Angeles").invoice("I-1", "2027-02-01")
    account.action("pause", "2027-02-12", "2027-02-20")
    now = _at("2027-02-20 07:00")
    decision = decide(account.snapshot(), DEFAULT_POLICY, now)
    assert decision.at is not None and decision.at > now


def _demanded(account: Account, stage: str, at: str, *invoice_ids: str) -> Account:
    return _attempt(account, stage, at, "sent", notice={"invoice_ids": list(invoice_ids)})


def test_an_episode_whose_debts_were_paid_ends_settled_even_if_a_new_invoice_arrived_meanwhile() -> None:
    account = Account().invoice("A-1", "2027-02-10").paid("A-1", "100.00")
    _demanded(account, "reminder", "2027-02-11T09:00:00+00:00", "A-1")
    # Issued and imported after the reminder, before the execution woke for the second reminder.
    account.invoice("B-1", "2027-03-20", issued_on="2027-02-15")
    decision = decide(account.snapshot(), DEFAULT_POLICY, _at("2027-02-17 09:00"))
    assert (decision.action, decision.reason) == ("done", "settled")
    assert [entry.type for entry in decision.log] == ["account_settled"]


def test_an_invoice_that_existed_during_the_episode_joins_it_instead() -> None:
    account = Account().invoice("A-1", "2027-02-10").paid("A-1", "100.00")
    _demanded(account, "reminder", "2027-02-11T09:00:00+00:00", "A-1")
    account.invoice("B-1", "2027-02-12", issued_on="2027-01-05")  # not yet due at the reminder
    # Re-timed from B-1 (due 12 Feb): the second reminder (+7) on the 19th, as the next rung.
    assert _next(account, "2027-02-17 07:00") == ("wait", "send", "2027-02-19 09:00", "second_reminder")


def test_with_a_send_spread_the_notice_goes_at_the_accounts_own_moment_of_the_window() -> None:
    account = Account().invoice("I-1", "2027-02-10")
    spread = DEFAULT_POLICY.model_copy(update={"send_spread_minutes": 240})

    plain = decide(account.snapshot(), DEFAULT_POLICY, _at("2027-03-02 07:00"))
    spread_out = decide(account.snapshot(), spread, _at("2027-03-02 07:00"))
    again = decide(account.snapshot(), spread, _at("2027-03-02 08:00"))

    assert plain.at == _at("2027-03-02 09:00")
    assert spread_out.at is not None and _at("2027-03-02 09:00") < spread_out.at < _at("2027-03-02 13:00")
    assert again.at == spread_out.at, "the same moment, however often it is decided"
    assert spread_out.stage == plain.stage
