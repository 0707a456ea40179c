"""What SES reports after a send (services.suppression.record_ses_event), on the fakes: a hard bounce or a
complaint stops the address for good, a soft one only tells the account, a re-delivered record changes
nothing. tests/integration/test_ses_events.py runs the handler on moto."""

from __future__ import annotations

from typing import Any

from dunning.services.suppression import SesEventRecord, record_ses_event
from tests.support.given import ACCOUNT, World

MESSAGE = "0102018d2f6a5c1e-000000"


def _record(
    event_type: str, body: dict[str, Any] | None = None, key: str = "", **mail: Any
) -> SesEventRecord:
    detail: dict[str, Any] = {
        "eventType": event_type,
        "mail": {
            "timestamp": "2027-02-01T09:30:00.000Z",
            "messageId": MESSAGE,
            "destination": ["jane@example.com"],
            "tags": {"account_id": [ACCOUNT]},
            **mail,
        },
    }
    if key:
        detail[key] = body
    return SesEventRecord.model_validate(detail)


def _bounce(kind: str, sub_type: str = "General") -> SesEventRecord:
    body = {
        "bounceType": kind,
        "bounceSubType": sub_type,
        "bouncedRecipients": [{"emailAddress": "Jane <Jane@Example.com>"}],
        "timestamp": "2027-02-01T09:30:12Z",
    }
    return _record("Bounce", body, "bounce")


def test_a_hard_bounce_stops_the_address_and_tells_the_account_once() -> None:
    world = World()

    first = record_ses_event(world.books, _bounce("Permanent"))
    again = record_ses_event(world.books, _bounce("Permanent"))

    assert (first.suppressed, first.logged, again.suppressed, again.new_reports) == (1, 1, 0, 0)
    assert world.books.suppressions.suppressed(["jane@example.com"]) == {"jane@example.com"}
    [failed] = world.events("delivery_failed")
    assert (failed["address"], failed["reason"], failed["detail"]) == (
        "jane@example.com",
        "bounce",
        "General",
    )


def test_a_soft_bounce_is_told_but_the_address_is_still_mailed() -> None:
    world = World()

    outcome = record_ses_event(world.books, _bounce("Transient", "MailboxFull"))

    assert (outcome.suppressed, outcome.logged) == (0, 1)
    assert world.books.suppressions.suppressed(["jane@example.com"]) == set()
    assert [event["reason"] for event in world.events("delivery_failed")] == ["transient"]


def test_a_complaint_stops_the_address() -> None:
    world = World()
    complaint = {
        "complainedRecipients": [{"emailAddress": "jane@example.com"}],
        "timestamp": "2027-02-01T10:00:00Z",
    }

    record_ses_event(world.books, _record("Complaint", complaint, "complaint"))

    assert world.books.suppressions.suppressed(["JANE@example.com"]) == {"JANE@example.com"}
