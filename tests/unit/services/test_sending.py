"""Sending one notice (services.sending), on the fakes: exactly once, re-checked before SES, every failure
loud. The moto tier (tests/integration/test_exactly_once.py, test_fault_matrix.py) runs the same send
under the deployed state machine."""

from __future__ import annotations

from datetime import date
from email import message_from_bytes
from typing import Any

import pytest

from dunning.domain.notices import FAILED, SENT, UNCONFIRMED, NoticeId
from dunning.notices.render import shipped_template_dir
from dunning.ports import NOTICE_FAILED, NOTICE_UNCONFIRMED, SendThrottled
from dunning.services.sending import Collaborators, SendRequest, send_notice
from dunning.services.suppression import confirm_sent
from tests.support.fakes import FakePacer
from tests.support.given import ACCOUNT, FixedClock, World, action, at, customer, invoice, payment

REMINDER_DAY = date(2027, 2, 11)  # the day after A-1 fell due: the reminder's day


def _world(*extra: dict[str, Any]) -> World:
    return World().given(customer(), invoice("A-1", "100.00", date(2027, 2, 10)), *extra)


def _send(
    world: World,
    day: date = REMINDER_DAY,
    stage: str = "reminder",
    hour: int = 10,
    pacer: FakePacer | None = None,
    account_id: str = ACCOUNT,
) -> dict[str, Any]:
    clock = FixedClock(at(day, hour))
    outside = (world.mailer, world.archive, world.documents)
    deps = Collaborators(world.books, *outside, world.policy, clock, [shipped_template_dir()], pacer)
    return send_notice(SendRequest(account_id, 0, stage, "exec-1", "EUR"), deps)


def _status(world: World, stage: str = "reminder") -> str | None:
    record = world.books.ladders.notice_status(NoticeId(ACCOUNT, "EUR", 0, stage))
    return record["status"] if record else None


def test_a_due_reminder_goes_out_once_with_the_invoice_attached() -> None:
    world = _world()

    first = _send(world)
    again = _send(world)

    assert first["sent"] and again == {"sent": False, "reason": "already_sent"}
    [(_, to, raw)] = world.mailer.sent
    message = message_from_bytes(raw)
    assert to == ("ap@acme.example.com",) and message["X-Dunning-Notice"] == "EUR/0/reminder"
    assert any(part.get_filename() == "A-1-copy.pdf" for part in message.walk())
    assert world.archive.objects[f"notices/{first['eml']}"] == raw, "archived exactly as SES got it"
    [sent] = world.events("notice_sent")
    assert (sent["stage"], sent["amount_due"], sent["invoice_ids"]) == ("reminder", "100.00", ["A-1"])
    assert _status(world) == SENT


def test_a_paid_account_gets_nothing() -> None:
    world = _world(payment("A-1", "100.00", date(2027, 2, 10)))

    assert _send(world) == {"sent": False, "reason": "paid"}
    assert world.mailer.sent == [] and _status(world) is None


def test_a_disputed_invoice_is_not_chased() -> None:
    world = _world(action("dispute", date(2027, 2, 10), invoice_id="A-1"))

    assert _send(world) == {"sent": False, "reason": "disputed"}
    assert world.mailer.sent == []


def test_a_payment_recorded_while_the_notice_was_rendered_stops_it_before_ses() -> None:
    world = _world()

    class PayWhileArchiving:
        def put(self, key: str, raw: bytes) -> None:
            world.given(payment("A-1", "100.00", REMINDER_DAY))

    world.archive = PayWhileArchiving()  # type: ignore[assignment]

    assert _send(world) == {"sent": False, "reason": "paid"}
    assert world.mailer.sent == [] and _status(world) is None, "the reservation is dropped"
    assert [event["reason"] for event in world.events("notice_skipped")] == ["paid"]


def test_throttled_by_ses_nothing_is_reserved_and_the_retry_sends() -> None:
    world = _world()
    world.mailer.throttle()

    with pytest.raises(SendThrottled):  # for the state machine's retry
        _send(world)
    assert _status(world) is None
    assert _send(world)["sent"] and len(world.mailer.sent) == 1


def test_refused_by_ses_the_notice_fails_loudly_and_may_be_tried_again() -> None:
    world = _world()
    world.mailer.refuse("Email address is not verified")

    outcome = _send(world)

    assert outcome["failed"] and _status(world) == FAILED
    assert world.counted(NOTICE_FAILED) == 1
    assert [event["reason"] for event in world.events("notice_failed")] == ["Email address is not verified"]
    assert _send(world, date(2027, 2, 12))["sent"], "the next business day's attempt takes the reservation"


def test_a_lost_answer_is_never_sent_again_and_raises_the_alarm() -> None:
    world = _world()
    world.mailer.lose_answer()

    assert _send(world) == {"sent": False, "reason": "unconfirmed"}
    assert _send(world, date(2027, 2, 12)) == {"sent": False, "reason": "already_unconfirmed"}
    assert world.mailer.sent == [] and _status(world) == UNCONFIRMED
    assert world.counted(NOTICE_UNCONFIRMED) == 1
    [unconfirmed] = world.events("notice_unconfirmed")
    assert unconfirmed["to"] == ["ap@acme.example.com"] and unconfirmed["eml"].endswith("-reminder.eml")


def test_ses_confirming_a_lost_answer_settles_it_as_sent() -> None:
    world = _world()
    world.mailer.lose_answer()
    _send(world)

    confirmed = confirm_sent(
        world.books, NoticeId(ACCOUNT, "EUR", 0, "reminder"), "ses-1", at(REMINDER_DAY, 11)
    )

    assert confirmed and _status(world) == SENT
    assert [event["message_id"] for event in world.events("notice_sent")] == ["ses-1"]
    assert len(world.events("notice_confirmed")) == 1
    assert not confirm_sent(
        world.books, NoticeId(ACCOUNT, "EUR", 0, "reminder"), "ses-1", at(REMINDER_DAY, 12)
    )


def test_a_suppressed_address_passes_the_stage_over() -> None:
    world = _world()
    world.books.suppressions.suppress(
        "ap@acme.example.com", {"reason": "bounce"}, "2027-02-01T00:00:00.000000Z"
    )

    assert _send(world) == {"sent": False, "reason": "suppressed"}
    assert world.mailer.sent == [] and _status(world) == "skipped"


def test_outside_the_sending_window_nothing_goes_out() -> None:
    world = _world()

    outcome = _send(world, hour=20)

    assert outcome == {"sent": False, "reason": "not_due"} and world.mailer.sent == []


def test_sends_over_the_accounts_sending_rate_wait_and_nothing_is_lost() -> None:
    world = _world(customer("BETA"), invoice("B-1", "80.00", date(2027, 2, 10), account_id="BETA"))
    pacer = FakePacer(per_second=1)

    first = _send(world, pacer=pacer)
    with pytest.raises(SendThrottled):
        _send(world, pacer=pacer, account_id="BETA")  # the same second: that second's one place is taken
    throttled = world.books.ladders.notice_status(NoticeId("BETA", "EUR", 0, "reminder"))
    later = _send(world, pacer=pacer, account_id="BETA", hour=11)

    assert first["sent"] and throttled is None, "throttled: no reservation left behind, nothing sent"
    assert later["sent"] and len(world.mailer.sent) == 2
