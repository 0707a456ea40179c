"""The contact log (CONTRACT section 5): one JSON object per event, identified so that writing it twice
stores it once."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dunning.domain.clock import rfc3339


class EventType:
    INVOICE_IMPORTED = "invoice_imported"
    ROW_REJECTED = "row_rejected"
    PAYMENT_APPLIED = "payment_applied"
    PAYMENT_CORRECTED = "payment_corrected"  # a row with a payment_id seen before replaced that payment
    PAYMENT_REVERSED = "payment_reversed"  # a `type` reversal row undid a payment
    CREDIT_RECORDED = "credit_recorded"
    NOTICE_SENT = "notice_sent"
    NOTICE_SKIPPED = "notice_skipped"
    # SES refused the notice (or the function was denied sending it): not a rung done; tried again.
    NOTICE_FAILED = "notice_failed"
    # SES may or may not have accepted the notice (its answer was lost, or the attempt died after reserving
    # it): never sent again; a person checks (README "Exactly once"). The rung counts as done.
    NOTICE_UNCONFIRMED = "notice_unconfirmed"
    # SES's own Send event later showed an unconfirmed notice was accepted: it is `notice_sent` after all.
    NOTICE_CONFIRMED = "notice_confirmed"
    # Local runs only: a call the function's deployed role could not have made (the embedded IAM refused it).
    ACCESS_DENIED = "access_denied"
    PROMISE_RECORDED = "promise_recorded"
    PROMISE_KEPT = "promise_kept"
    PROMISE_BROKEN = "promise_broken"
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_RESOLVED = "dispute_resolved"
    ACCOUNT_PAUSED = "account_paused"
    ACCOUNT_RESUMED = "account_resumed"
    EMAIL_OPT_OUT = "email_opt_out"
    EMAIL_OPT_IN = "email_opt_in"
    DELIVERY_FAILED = "delivery_failed"
    ACCOUNT_SETTLED = "account_settled"
    CASE_OPENED = "case_opened"
    # Interest for some days was left out of a notice or case: no reference rate is known for them.
    CHARGES_INCOMPLETE = "charges_incomplete"
    LEGAL_NOTIFIED = "legal_notified"
    # An execution could not go on (a step kept failing); the account is freed for the next scan.
    WORKFLOW_FAILED = "workflow_failed"
    # A task for a person (a call, a letter to post...: CONTRACT 9) was created, and was done.
    TASK_CREATED = "task_created"
    TASK_DONE = "task_done"
    # Payment plans (CONTRACT 10): agreed, each instalment paid, broken after its grace, completed.
    PLAN_AGREED = "plan_agreed"
    INSTALMENT_PAID = "instalment_paid"
    PLAN_BROKEN = "plan_broken"
    PLAN_COMPLETED = "plan_completed"
    # A task owner's daily digest went out (services.digest; logged under its pseudo-account).
    DIGEST_SENT = "digest_sent"


@dataclass(frozen=True)
class Event:
    at: datetime
    type: str
    account_id: str
    data: Mapping[str, Any] = field(default_factory=dict)
    # What makes this event unique (e.g. the source file version and row): the same identity written
    # twice is stored once, which keeps re-delivered S3 events and retried tasks from duplicating the log.
    identity: str = ""
    # Orders events that share one instant (e.g. payment_applied before account_settled).
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"at": rfc3339(self.at), "type": self.type, "account_id": self.account_id, **self.data}

    @property
    def event_id(self) -> str:
        basis = "\x1f".join((self.type, self.account_id, self.identity or repr(sorted(self.data.items()))))
        return hashlib.sha256(basis.encode()).hexdigest()[:20]
