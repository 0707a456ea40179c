"""The daily digest (services.digest), on the fakes: each owner's tasks due and overdue by priority, the
promises due today, broken promises and failures since the last digest; nothing sent when there is nothing to
say, and never twice on one day."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, time
from typing import Any

from dunning.domain.account import AccountSnapshot
from dunning.domain.events import Event, EventType
from dunning.domain.policy import COLLECTOR_CALL, DEFAULT_POLICY
from dunning.notices.render import shipped_template_dir
from dunning.services import digest
from dunning.services.tasks import open_task
from tests.support.given import World, at, customer, invoice

COLLECTOR = "collections@example.com"
POLICY = DEFAULT_POLICY.model_copy(update={"collector": COLLECTOR})
DAY = date(2027, 2, 22)
MORNING = datetime(2027, 2, 22, 9, 5, tzinfo=UTC)  # the window opens at 09:00 (UTC)


def _world() -> World:
    world = World(policy=POLICY).given(
        customer("ACME", phone="+44 20 7946 0958", customer_name="Acme <b>Ltd</b>"),
        invoice("A-1", "1000.00", date(2027, 2, 10), account_id="ACME"),
        customer("BETA"),
        invoice("B-1", "100.00", date(2027, 2, 10), account_id="BETA"),
    )
    open_task(world.books, POLICY, world.books.ladders.load("ACME", "EUR"), COLLECTOR_CALL, at(DAY, 9))
    log = world.books.log
    yesterday = datetime(2027, 2, 21, 15, 0, tzinfo=UTC)
    log.log(
        "BETA", yesterday, [Event(yesterday, EventType.PROMISE_RECORDED, "BETA", {"until": "2027-02-22"})]
    )
    log.log("ACME", yesterday, [Event(yesterday, EventType.PROMISE_BROKEN, "ACME", {"until": "2027-02-20"})])
    failed = {"stage": "reminder", "reason": "MessageRejected: bad address"}
    log.log("BETA", yesterday, [Event(yesterday, EventType.NOTICE_FAILED, "BETA", failed)])
    old = datetime(2027, 2, 10, 15, 0, tzinfo=UTC)  # before the day before: not news
    log.log("BETA", old, [Event(old, EventType.WORKFLOW_FAILED, "BETA", {"reason": "old"})])
    return world


def _events(world: World) -> list[dict[str, Any]]:
    events = [e for a in ("ACME", "BETA", digest.DIGEST_ACCOUNT) for e in world.books.log.events(a)]
    return sorted(events, key=lambda event: str(event["at"]))


def _snapshot_of(world: World) -> Any:
    def snapshot_of(account_id: str, currency: str | None) -> AccountSnapshot:
        return world.books.ladders.load(account_id, currency or "EUR")

    return snapshot_of


def _run(world: World, now: datetime = MORNING) -> dict[str, Any]:
    return digest.daily_digest(
        lambda: _events(world),
        _snapshot_of(world),
        policy=POLICY,
        scheduled=now,
        now=now,
        mailer=world.mailer,
        archive=world.archive,
        log=world.books.log,
        template_dirs=[shipped_template_dir()],
    )


def test_the_owners_digest_holds_tasks_promises_and_failures() -> None:
    world = _world()
    [owned] = digest.build_digests(_events(world), _snapshot_of(world), POLICY, DAY, MORNING)

    assert owned.owner == COLLECTOR
    assert [(t.account_id, t.kind, t.amount_due, t.phone) for t in owned.tasks] == [
        ("ACME", "call", "1000.00", "+44 20 7946 0958")
    ]
    assert [(line.account_id, line.detail) for line in owned.promises_due] == [
        ("BETA", "promised by 2027-02-22")
    ]
    assert [line.account_id for line in owned.promises_broken] == ["ACME"]
    assert [(line.account_id, line.detail) for line in owned.failures] == [
        ("BETA", "reminder: MessageRejected: bad address")
    ], "the old workflow_failed was before the last day: not news"


def test_the_digest_is_emailed_once_escaped_and_logged() -> None:
    world = _world()
    assert _run(world)["sent"] == 1
    [(sender, to, raw)] = world.mailer.sent
    assert (sender, to) == (POLICY.sender, (COLLECTOR,))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Acme &lt;b&gt;Ltd&lt;/b&gt;" in html and "<b>Ltd" not in html, "autoescaped"
    assert "1000.00 EUR" in text and "+44 20 7946 0958" in text and "MessageRejected" in text
    [logged] = world.books.log.events(digest.DIGEST_ACCOUNT)
    assert (logged["type"], logged["owner"], logged["day"], logged["tasks"]) == (
        "digest_sent",
        COLLECTOR,
        "2027-02-22",
        1,
    )
    assert f"notices/{logged['eml']}" in world.archive.objects

    # A retried run (a late delivery of the same hour's schedule) sends nothing again.
    again = datetime.combine(DAY, time(9, 40), tzinfo=UTC)
    assert _run(world, again)["already_sent"] == 1
    assert len(world.mailer.sent) == 1


def test_nothing_to_say_sends_nothing_and_other_hours_read_nothing() -> None:
    world = World(policy=POLICY).given(customer("ACME"), invoice("A-1", "100.00", date(2027, 3, 10)))
    assert _run(world) == {
        "day": "2027-02-22",
        "sent": 0,
        "already_sent": 0,
        "nothing_to_say": 0,
        "refused": 0,
    }
    assert world.mailer.sent == []

    def unread() -> list[dict[str, Any]]:
        raise AssertionError("an hour that is not the digest's reads nothing")

    ten = datetime(2027, 2, 22, 10, 5, tzinfo=UTC)
    result = digest.daily_digest(
        unread,
        _snapshot_of(world),
        policy=POLICY,
        scheduled=ten,
        now=ten,
        mailer=world.mailer,
        archive=world.archive,
        log=world.books.log,
        template_dirs=[shipped_template_dir()],
    )
    assert result == {"day": None, "sent": 0}


def test_the_digest_goes_out_at_the_hourly_runs_first_in_the_window() -> None:
    london = POLICY.model_copy(update={"business_timezone": "Europe/London"})
    assert digest.digest_time(DAY, london, 5) == datetime(2027, 2, 22, 9, 5, tzinfo=UTC)
    late = type(london).model_validate(
        {**london.model_dump(), "sending_window": {"start": "09:30", "end": "17:00"}}
    )
    assert digest.digest_time(DAY, late, 5).astimezone(UTC).time() == time(10, 5)
    assert digest.digest_due(datetime(2027, 2, 22, 10, 5, tzinfo=UTC), late) == DAY
    assert digest.digest_due(datetime(2027, 2, 22, 9, 5, tzinfo=UTC), late) is None
