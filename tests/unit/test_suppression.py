"""The suppression list and the reading of SES event records, on a moto table made from the template."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from dunning.adapters.keys import delivery_report_key, suppressed_key
from dunning.adapters.ledger import Ledger
from dunning.adapters.suppressions import DynamoSuppressions
from dunning.domain.models import normalize_address
from dunning.runtime.wiring import ledger_books
from dunning.services.suppression import (
    BOUNCE,
    COMPLAINT,
    TRANSIENT,
    SesEventRecord,
    lift,
    record_ses_event,
    reports,
    suppress,
    suppressed,
)


def suppression_key(address: str) -> tuple[str, str]:
    return suppressed_key(normalize_address(address))


def delivery_key(message_id: str, reason: str, address: str) -> tuple[str, str]:
    return delivery_report_key(message_id, reason, normalize_address(address))


def _on(ledger: Ledger) -> DynamoSuppressions:
    return DynamoSuppressions(ledger)


BOUNCED_AT = datetime(2027, 2, 1, 9, 30, 12, 345000, tzinfo=UTC)
ACME = "ACME"
MESSAGE_ID = "0102018d2f6a5c1e-6b1c9a55-1f0e-4c51-9d2b-6a9f2d0c1a77-000000"


def _record(
    event_type: str, body_key: str | None = None, body: dict[str, Any] | None = None, **mail: Any
) -> SesEventRecord:
    detail: dict[str, Any] = {
        "eventType": event_type,
        "mail": {
            "timestamp": "2027-02-01T09:30:00.000Z",
            "messageId": MESSAGE_ID,
            "destination": ["jane@example.com"],
            "tags": {"account_id": ["ACME"], "ses:configuration-set": ["dunning-notices"]},
            **mail,
        },
    }
    if body_key:
        detail[body_key] = body
    return SesEventRecord.model_validate(detail)


def _bounce(
    bounce_type: str, sub_type: str, *addresses: str, at: str = "2027-02-01T09:30:12.345Z"
) -> SesEventRecord:
    recipients = [{"emailAddress": address, "action": "failed", "status": "5.1.1"} for address in addresses]
    body = {
        "bounceType": bounce_type,
        "bounceSubType": sub_type,
        "bouncedRecipients": recipients,
        "timestamp": at,
    }
    return _record("Bounce", "bounce", body)


# --- addresses -------------------------------------------------------------------------------------------


def test_addresses_are_normalised_to_the_bare_lower_case_address() -> None:
    assert normalize_address("  Jane.Doe@Example.COM ") == "jane.doe@example.com"
    assert normalize_address('"Doe, Jane" <Jane.Doe@Example.com>') == "jane.doe@example.com"
    assert suppression_key("Jane@Example.com") == ("SUPPRESSED#jane@example.com", "SUPPRESSED")


# --- the suppression list --------------------------------------------------------------------------------


def test_a_suppressed_address_is_reported_whatever_its_case(ledger: Ledger) -> None:
    assert suppress(_on(ledger), "Jane@Example.com", BOUNCE, "General", BOUNCED_AT, MESSAGE_ID, ACME) is True

    found = suppressed(_on(ledger), ["jane@example.com", "JANE@EXAMPLE.COM", "john@example.com"])

    assert found == {"jane@example.com", "JANE@EXAMPLE.COM"}
    item = ledger.get(*suppression_key("jane@example.com"))
    assert item is not None
    assert {key: item[key] for key in ("address", "reason", "detail", "at", "message_id", "account_id")} == {
        "address": "jane@example.com",
        "reason": "bounce",
        "detail": "General",
        "at": "2027-02-01T09:30:12.345000Z",
        "message_id": MESSAGE_ID,
        "account_id": "ACME",
    }


def test_suppressing_twice_writes_once_and_keeps_the_first_reason(ledger: Ledger) -> None:
    assert suppress(_on(ledger), "jane@example.com", BOUNCE, "General", BOUNCED_AT, MESSAGE_ID, ACME) is True
    later = BOUNCED_AT + timedelta(days=1)
    assert (
        suppress(_on(ledger), "jane@example.com", COMPLAINT, "abuse", later, "other-message", ACME) is False
    )

    item = ledger.get(*suppression_key("jane@example.com"))
    assert item is not None
    assert (item["reason"], item["message_id"]) == ("bounce", MESSAGE_ID)


def test_transient_failures_do_not_suppress(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="transient"):
        suppress(_on(ledger), "jane@example.com", TRANSIENT, "MailboxFull", BOUNCED_AT, MESSAGE_ID, "ACME")


def test_nothing_is_suppressed_in_an_empty_table_or_for_no_addresses(ledger: Ledger) -> None:
    assert suppressed(_on(ledger), []) == set()
    assert suppressed(_on(ledger), ["jane@example.com", ""]) == set()


def test_the_lookup_reads_more_addresses_than_one_batch_holds(ledger: Ledger) -> None:
    addresses = [f"person{n}@example.com" for n in range(250)]
    for address in addresses[::50]:
        suppress(_on(ledger), address, COMPLAINT, "abuse", BOUNCED_AT, MESSAGE_ID, None)

    assert suppressed(_on(ledger), addresses) == set(addresses[::50])


def test_a_lifted_address_is_mailed_again(ledger: Ledger) -> None:
    suppress(_on(ledger), "jane@example.com", BOUNCE, "General", BOUNCED_AT, MESSAGE_ID, ACME)

    assert lift(_on(ledger), "Jane@Example.com", at=BOUNCED_AT + timedelta(days=2)) is True

    assert suppressed(_on(ledger), ["jane@example.com"]) == set()
    assert lift(_on(ledger), "jane@example.com", at=BOUNCED_AT + timedelta(days=3)) is False
    assert lift(_on(ledger), "never@example.com") is False


def test_an_old_report_delivered_again_after_the_lift_does_not_suppress_again(ledger: Ledger) -> None:
    suppress(_on(ledger), "jane@example.com", BOUNCE, "General", BOUNCED_AT, MESSAGE_ID, ACME)
    lift(_on(ledger), "jane@example.com", at=BOUNCED_AT + timedelta(days=2))

    assert suppress(_on(ledger), "jane@example.com", BOUNCE, "General", BOUNCED_AT, MESSAGE_ID, ACME) is False
    assert suppressed(_on(ledger), ["jane@example.com"]) == set()

    # A bounce after the lift is news: the address is suppressed again.
    newer = BOUNCED_AT + timedelta(days=5)
    assert suppress(_on(ledger), "jane@example.com", BOUNCE, "NoEmail", newer, "newer-message", ACME) is True
    assert suppressed(_on(ledger), ["jane@example.com"]) == {"jane@example.com"}
    item = ledger.get(*suppression_key("jane@example.com"))
    assert item is not None
    assert "lifted_at" not in item
    assert (item["detail"], item["message_id"]) == ("NoEmail", "newer-message")


# --- reading SES event records ---------------------------------------------------------------------------


def test_a_permanent_bounce_reports_each_recipient_once() -> None:
    record = _bounce("Permanent", "General", "Jane@Example.com", "jane@example.com", "john@example.com")

    found = reports(record)

    assert [(r.address, r.reason, r.detail, r.at, r.account_id) for r in found] == [
        ("jane@example.com", BOUNCE, "General", BOUNCED_AT, "ACME"),
        ("john@example.com", BOUNCE, "General", BOUNCED_AT, "ACME"),
    ]
    assert all(r.suppresses for r in found)


@pytest.mark.parametrize(
    ("bounce_type", "sub_type"), [("Transient", "MailboxFull"), ("Undetermined", "Undetermined")]
)
def test_bounces_not_known_to_be_permanent_are_transient(bounce_type: str, sub_type: str) -> None:
    (report,) = reports(_bounce(bounce_type, sub_type, "jane@example.com"))
    assert (report.reason, report.detail, report.suppresses) == (TRANSIENT, sub_type, False)


def test_a_complaint_names_its_feedback_type() -> None:
    body = {
        "complainedRecipients": [{"emailAddress": "jane@example.com"}],
        "timestamp": "2027-02-01T10:00:00Z",
        "complaintFeedbackType": "abuse",
        "feedbackId": "0102018d-feedback",
    }
    (report,) = reports(_record("Complaint", "complaint", body))
    assert (report.reason, report.detail, report.suppresses) == (COMPLAINT, "abuse", True)


def test_a_delivery_delay_is_a_transient_problem() -> None:
    body = {
        "delayType": "MailboxFull",
        "expirationTime": "2027-02-01T21:30:00Z",
        "delayedRecipients": [{"emailAddress": "jane@example.com", "status": "4.2.2"}],
        "timestamp": "2027-02-01T09:45:00Z",
    }
    (report,) = reports(_record("DeliveryDelay", "deliveryDelay", body))
    assert (report.reason, report.detail, report.suppresses) == (TRANSIENT, "MailboxFull", False)


def test_other_events_report_nothing() -> None:
    delivery = {"timestamp": "2027-02-01T09:30:02Z", "recipients": ["jane@example.com"]}
    assert reports(_record("Delivery", "delivery", delivery)) == []
    # A record that says Bounce but carries no bounce is not one either.
    assert reports(_record("Bounce")) == []


def test_a_record_without_a_time_zone_is_rejected() -> None:
    with pytest.raises(ValidationError):
        _bounce("Permanent", "General", "jane@example.com", at="2027-02-01T09:30:12")


# --- recording -------------------------------------------------------------------------------------------


def test_the_same_record_twice_suppresses_and_logs_once(ledger: Ledger) -> None:
    record = _bounce("Permanent", "General", "Jane@Example.com")

    first = record_ses_event(ledger_books(ledger), record)
    again = record_ses_event(ledger_books(ledger), record)

    assert (first.reports, first.new_reports, first.suppressed, first.logged) == (1, 1, 1, 1)
    assert (again.reports, again.new_reports, again.suppressed) == (1, 0, 0)
    assert ledger.events("ACME") == [
        {
            "at": "2027-02-01T09:30:12.345000Z",
            "type": "delivery_failed",
            "account_id": "ACME",
            "address": "jane@example.com",
            "reason": "bounce",
            "detail": "General",
            "message_id": MESSAGE_ID,
        }
    ]


def test_a_transient_problem_reported_again_later_is_logged_once_at_its_first_time(ledger: Ledger) -> None:
    record_ses_event(ledger_books(ledger), _bounce("Transient", "MailboxFull", "jane@example.com"))
    later = _bounce("Transient", "General", "jane@example.com", at="2027-02-01T13:30:00Z")
    outcome = record_ses_event(ledger_books(ledger), later)

    assert (outcome.new_reports, outcome.suppressed) == (0, 0)
    events = ledger.events("ACME")
    assert [(e["reason"], e["detail"], e["at"]) for e in events] == [
        ("transient", "MailboxFull", "2027-02-01T09:30:12.345000Z")
    ]
    assert suppressed(_on(ledger), ["jane@example.com"]) == set()
    stored = ledger.get(*delivery_key(MESSAGE_ID, TRANSIENT, "jane@example.com"))
    assert stored is not None
    assert stored["at"] == "2027-02-01T09:30:12.345000Z"


def test_a_message_without_the_account_tag_still_suppresses(ledger: Ledger) -> None:
    record = _record(
        "Bounce",
        "bounce",
        {
            "bounceType": "Permanent",
            "bounceSubType": "NoEmail",
            "bouncedRecipients": [{"emailAddress": "jane@example.com"}],
            "timestamp": "2027-02-01T09:30:12Z",
        },
        tags={"ses:configuration-set": ["dunning-notices"]},
    )

    outcome = record_ses_event(ledger_books(ledger), record)

    assert (outcome.account_id, outcome.suppressed, outcome.logged) == (None, 1, 0)
    assert suppressed(_on(ledger), ["jane@example.com"]) == {"jane@example.com"}
    assert ledger.all_events() == []
