"""What the customer agreed, and the emails about it (CONTRACT 9, 10): a promise (to pay by a date, all or
part of the balance) or a payment plan (instalments on their dates).

While an agreement is kept the ladder is held. The agreement is confirmed to the customer in writing the
day it is recorded (`agreement_confirmation`); each instalment of a plan gets a reminder a few days before
its date and one the day after it if it is unpaid (`instalment_reminder`). These emails are no rungs of the
ladder: each has a record of its own (its stage name carries a digest of what it is about), so that it is
sent once, and they neither count for nor wait for the gap between two ladder notices.

Pure: the ladder (domain/ladder.py) asks what is due and when.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from dunning.domain.account import (
    AGREEMENT_CONFIRMATION,
    AGREEMENT_RECORD_PREFIXES,
    INSTALMENT_REMINDER,
    AccountSnapshot,
    ActionRecord,
    AgreedPlan,
)
from dunning.domain.models import ActionKind
from dunning.domain.plans import InstalmentStanding, PlanStanding
from dunning.domain.policy import Stage

# The reminder of an instalment goes this many days before its date, and again the day after it if unpaid.
REMINDER_DAYS_BEFORE = 3
LATE_REMINDER_DAYS_AFTER = 1
# An agreement is confirmed when it is recorded: within this many days of its date (an agreement imported
# weeks late, from the books' history, is not confirmed out of the blue).
CONFIRM_WITHIN_DAYS = 3
# What holds a ladder that sleeps (its state's `holding`): a payment wakes such a ladder (it may keep the
# promise or pay an instalment).
HELD_BY_AGREEMENT = ("promise", "plan")

AgreementKind = Literal["promise", "plan"]


@dataclass(frozen=True)
class AgreementNotice:
    """An email about an agreement: its confirmation, or an instalment's reminder."""

    template: str  # AGREEMENT_CONFIRMATION | INSTALMENT_REMINDER
    about: str  # what makes it one of its kind: the agreement, the instalment and before/after
    kind: AgreementKind
    agreed_on: date
    until: date | None = None
    amount: Decimal | None = None
    instalments: tuple[InstalmentStanding, ...] = ()
    instalment: InstalmentStanding | None = None
    late: bool = False

    @property
    def stage(self) -> Stage:
        digest = hashlib.sha256(self.about.encode()).hexdigest()[:10]
        return Stage(
            name=f"{AGREEMENT_RECORD_PREFIXES[self.template]}{digest}", day=0, template=self.template
        )


def confirmation(agreement: ActionRecord, plan: PlanStanding | None) -> AgreementNotice:
    if agreement.action is ActionKind.PLAN:
        assert plan is not None
        return AgreementNotice(
            AGREEMENT_CONFIRMATION,
            f"{agreement.identity}#confirmation",
            "plan",
            agreement.on,
            instalments=plan.instalments,
        )
    return AgreementNotice(
        AGREEMENT_CONFIRMATION,
        f"{agreement.identity}#confirmation",
        "promise",
        agreement.on,
        until=agreement.until,
        amount=agreement.amount,
    )


def instalment_reminders(
    plan: AgreedPlan, standing: PlanStanding, today: date
) -> list[tuple[date, AgreementNotice]]:
    """The reminders the running plan still owes its instalments, by the day each is due: before an unpaid
    instalment's date (not once that date has passed), and the day after it while it is still unpaid."""
    due: list[tuple[date, AgreementNotice]] = []
    for each in standing.instalments:
        if each.settled:
            continue
        day = each.instalment.due_on
        before = day - timedelta(days=REMINDER_DAYS_BEFORE)
        if today <= day:
            due.append((before, _reminder(plan, standing, each, late=False)))
        due.append(
            (day + timedelta(days=LATE_REMINDER_DAYS_AFTER), _reminder(plan, standing, each, late=True))
        )
    return sorted(due, key=lambda pair: pair[0])


def _reminder(
    plan: AgreedPlan, standing: PlanStanding, each: InstalmentStanding, *, late: bool
) -> AgreementNotice:
    when = "after" if late else "before"
    return AgreementNotice(
        INSTALMENT_REMINDER,
        f"{plan.identity}#{each.instalment.due_on.isoformat()}#{when}",
        "plan",
        plan.plan.agreed_on,
        instalments=standing.instalments,
        instalment=each,
        late=late,
    )


def plan_standing(snapshot: AccountSnapshot, plan: AgreedPlan, today: date) -> PlanStanding:
    """The plan on `today`: what was received since it was agreed fills its instalments in date order."""
    return plan.plan.standing([snapshot.received(plan.plan.agreed_on, today)], today)


def confirmation_due(snapshot: AccountSnapshot, notice: AgreementNotice, today: date) -> bool:
    """The agreement still needs its confirmation: recorded lately, and not confirmed yet."""
    return (today - notice.agreed_on).days <= CONFIRM_WITHIN_DAYS and not sent(snapshot, notice)


def sent(snapshot: AccountSnapshot, notice: AgreementNotice) -> bool:
    """The email went out, or was passed over for good (an opted-out customer): never again."""
    name = notice.stage.name
    return any(record.stage == name and record.done for record in snapshot.notices)
