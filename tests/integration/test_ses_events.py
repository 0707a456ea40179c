"""The deployed SES events handler, invoked in-process on the events EventBridge delivers from SES."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from dunning.adapters.ledger import Ledger
from dunning.adapters.suppressions import DynamoSuppressions
from dunning.local.embedded_aws import EmbeddedAws, invoke_handler, load_template
from dunning.services.suppression import suppressed
from functions.ses_events import app

CONFIGURATION_SET = "dunning-notices"
MESSAGE_ID = "0102018d2f6a5c1e-6b1c9a55-1f0e-4c51-9d2b-6a9f2d0c1a77-000000"
SENT_AT = "2027-02-01T09:30:00.120Z"


def _mail(to: str, account_id: str | None = "ACME", message_id: str = MESSAGE_ID) -> dict[str, Any]:
    tags = {
        "ses:configuration-set": [CONFIGURATION_SET],
        "ses:source-ip": ["52.94.0.10"],
        "ses:from-domain": ["example.com"],
        "ses:caller-identity": ["dunning-send-notice"],
        "ses:outgoing-ip": ["54.240.0.21"],
    }
    if account_id is not None:
        tags["account_id"] = [account_id]
    return {
        "timestamp": SENT_AT,
        "source": "Accounts <accounts@example.com>",
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
        "sendingAccountId": "123456789012",
        "messageId": message_id,
        "destination": [to],
        "headersTruncated": False,
        "headers": [{"name": "To", "value": to}, {"name": "Subject", "value": "Invoice A-1 is overdue"}],
        "commonHeaders": {"from": ["Accounts <accounts@example.com>"], "to": [to], "subject": "Invoice A-1"},
        "tags": tags,
    }


def _eventbridge(detail_type: str, detail: dict[str, Any], at: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{detail_type}#{at}#{detail['mail']['messageId']}")),
        "detail-type": detail_type,
        "source": "aws.ses",
        "account": "123456789012",
        "time": at,
        "region": "eu-west-1",
        "resources": [f"arn:aws:ses:eu-west-1:123456789012:configuration-set/{CONFIGURATION_SET}"],
        "detail": detail,
    }


def bounce_event(
    to: str,
    bounce_type: str = "Permanent",
    sub_type: str = "General",
    at: str = "2027-02-01T09:30:01.456Z",
    **mail: Any,
) -> dict[str, Any]:
    detail = {
        "eventType": "Bounce",
        "bounce": {
            "feedbackId": "0102018d2f6a6e4b-2c1d6e0a-6f0e-4a3e-9b61-3f4a0d6c2b19-000000",
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [
                {
                    "emailAddress": to,
                    "action": "failed",
                    "status": "5.1.1" if bounce_type == "Permanent" else "4.2.2",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": at,
            "reportingMTA": "dns; a1-23.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": _mail(to, **mail),
    }
    return _eventbridge("Email Bounced", detail, at)


def complaint_event(to: str, at: str = "2027-02-02T18:04:11.000Z") -> dict[str, Any]:
    detail = {
        "eventType": "Complaint",
        "complaint": {
            "feedbackId": "0102018d3a1f2b3c-8e5d2c1b-4a9f-4c8e-b1d2-7e6f5a4b3c2d-000000",
            "complaintSubType": None,
            "complainedRecipients": [{"emailAddress": to}],
            "timestamp": at,
            "userAgent": "Mozilla/5.0",
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2027-02-02T18:04:00.000Z",
        },
        "mail": _mail(to),
    }
    return _eventbridge("Email Complaint Received", detail, at)


def delay_event(to: str, at: str = "2027-02-01T10:30:00.000Z") -> dict[str, Any]:
    detail = {
        "eventType": "DeliveryDelay",
        "deliveryDelay": {
            "timestamp": at,
            "delayType": "MailboxFull",
            "expirationTime": "2027-02-01T21:30:00.000Z",
            "delayedRecipients": [
                {"emailAddress": to, "status": "4.2.2", "diagnosticCode": "smtp; 452 4.2.2 Mailbox full"}
            ],
        },
        "mail": _mail(to),
    }
    return _eventbridge("Email Delivery Delayed", detail, at)


def _handle(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = invoke_handler(app.handler, event, "dunning-ses-events")
    return result


def _delivery_failures(ledger: Ledger, account_id: str = "ACME") -> list[dict[str, Any]]:
    return [event for event in ledger.events(account_id) if event["type"] == "delivery_failed"]


def test_a_hard_bounce_suppresses_the_address_and_tells_the_account(aws: EmbeddedAws, ledger: Ledger) -> None:
    result = _handle(bounce_event("Jane.Doe@Example.com"))

    assert result == {
        "event_type": "Bounce",
        "message_id": MESSAGE_ID,
        "account_id": "ACME",
        "reports": 1,
        "new_reports": 1,
        "suppressed": 1,
        "logged": 1,
        "confirmed": False,
    }
    # The sending side looks addresses up as the profile spells them.
    assert suppressed(
        DynamoSuppressions(ledger), ["jane.doe@example.com", "JANE.DOE@EXAMPLE.COM", "john@example.com"]
    ) == {
        "jane.doe@example.com",
        "JANE.DOE@EXAMPLE.COM",
    }
    assert _delivery_failures(ledger) == [
        {
            "at": "2027-02-01T09:30:01.456000Z",
            "type": "delivery_failed",
            "account_id": "ACME",
            "address": "jane.doe@example.com",
            "reason": "bounce",
            "detail": "General",
            "message_id": MESSAGE_ID,
        }
    ]


def test_an_event_delivered_twice_is_recorded_once(aws: EmbeddedAws, ledger: Ledger) -> None:
    event = bounce_event("jane@example.com")
    _handle(event)
    before = aws.dynamodb.Table(aws.table_name).scan()["Items"]

    again = _handle(event)

    assert (again["new_reports"], again["suppressed"]) == (0, 0)
    assert aws.dynamodb.Table(aws.table_name).scan()["Items"] == before
    assert len(_delivery_failures(ledger)) == 1


def test_a_complaint_suppresses_the_address(aws: EmbeddedAws, ledger: Ledger) -> None:
    _handle(complaint_event("jane@example.com"))
    _handle(complaint_event("jane@example.com"))

    assert suppressed(DynamoSuppressions(ledger), ["jane@example.com"]) == {"jane@example.com"}
    assert [(e["reason"], e["detail"], e["at"]) for e in _delivery_failures(ledger)] == [
        ("complaint", "abuse", "2027-02-02T18:04:11Z")
    ]


def test_a_transient_problem_is_logged_once_and_does_not_suppress(aws: EmbeddedAws, ledger: Ledger) -> None:
    # SES reports a delay while it retries, then gives up with a transient bounce: one problem to a person.
    _handle(delay_event("jane@example.com"))
    _handle(delay_event("jane@example.com", at="2027-02-01T14:30:00.000Z"))
    result = _handle(
        bounce_event("jane@example.com", "Transient", "MailboxFull", at="2027-02-01T21:30:05.000Z")
    )

    assert (result["reports"], result["new_reports"], result["suppressed"]) == (1, 0, 0)
    assert suppressed(DynamoSuppressions(ledger), ["jane@example.com"]) == set()
    assert [(e["reason"], e["detail"], e["at"]) for e in _delivery_failures(ledger)] == [
        ("transient", "MailboxFull", "2027-02-01T10:30:00Z")
    ]


def test_a_hard_bounce_after_a_transient_one_still_suppresses(aws: EmbeddedAws, ledger: Ledger) -> None:
    _handle(bounce_event("jane@example.com", "Transient", "General"))
    _handle(bounce_event("jane@example.com", "Permanent", "NoEmail", at="2027-02-01T12:00:00.000Z"))

    assert suppressed(DynamoSuppressions(ledger), ["jane@example.com"]) == {"jane@example.com"}
    assert [e["reason"] for e in _delivery_failures(ledger)] == ["transient", "bounce"]


def test_each_account_hears_of_its_own_messages_only(aws: EmbeddedAws, ledger: Ledger) -> None:
    _handle(bounce_event("jane@example.com", account_id="ACME", message_id="message-1"))
    _handle(bounce_event("ops@globex.example", account_id="GLOBEX", message_id="message-2"))

    assert [e["address"] for e in _delivery_failures(ledger, "ACME")] == ["jane@example.com"]
    assert [e["address"] for e in _delivery_failures(ledger, "GLOBEX")] == ["ops@globex.example"]


def test_a_message_sent_without_the_account_tag_is_suppressed_but_logged_nowhere(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    result = _handle(bounce_event("jane@example.com", account_id=None))

    assert (result["account_id"], result["suppressed"], result["logged"]) == (None, 1, 0)
    assert suppressed(DynamoSuppressions(ledger), ["jane@example.com"]) == {"jane@example.com"}
    assert ledger.all_events() == []


def test_other_ses_events_are_ignored(aws: EmbeddedAws, ledger: Ledger) -> None:
    delivered = {
        "eventType": "Delivery",
        "delivery": {
            "timestamp": "2027-02-01T09:30:02.000Z",
            "processingTimeMillis": 1880,
            "recipients": ["jane@example.com"],
            "smtpResponse": "250 2.0.0 OK",
            "reportingMTA": "a1-23.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": _mail("jane@example.com"),
    }

    result = _handle(_eventbridge("Email Delivered", delivered, "2027-02-01T09:30:02.000Z"))

    assert (result["event_type"], result["reports"]) == ("Delivery", 0)
    assert aws.dynamodb.Table(aws.table_name).scan()["Items"] == []


# Powertools warns that the failed invocation published no metrics.
@pytest.mark.filterwarnings("ignore:No application metrics:UserWarning")
def test_an_event_that_is_not_an_ses_record_fails_so_it_is_retried_and_kept(aws: EmbeddedAws) -> None:
    event = bounce_event("jane@example.com")
    del event["detail"]["mail"]["messageId"]

    with pytest.raises(ValidationError):
        _handle(event)


def test_the_handler_calls_exactly_what_the_template_grants_it(aws: EmbeddedAws) -> None:
    """Least privilege: every DynamoDB call the function makes is granted to it (the embedded IAM refuses
    anything else), and every grant is used."""
    enforcer = aws.containers.enforcer
    enforcer.record_decisions = True

    for event in (
        bounce_event("jane@example.com"),
        bounce_event("jane@example.com"),
        complaint_event("john@example.com"),
        delay_event("ops@example.com"),
    ):
        _handle(event)

    called = {
        d.check.action
        for d in enforcer.decisions
        if d.principal == "SesEventsFunctionRole" and d.check.action.startswith("dynamodb:")
    }
    assert aws.denied_calls == []
    statements = load_template()["Resources"]["SesEventsFunction"]["Properties"]["Policies"][0]["Statement"]
    granted = {
        action
        for statement in statements
        if statement["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
        for action in statement["Action"]
    }
    assert called == granted
