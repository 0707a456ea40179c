"""The ladder's decisions: for one account at one moment, what happens next and when.

Pure: it reads an AccountSnapshot, the policy and `now`, and returns a Decision. The state machine asks it
before every wait (escalate) and send_notice asks it again right before sending, so a payment, promise,
dispute or pause that arrived during the wait is always seen.

Timing rules (CONTRACT 7): a stage falls due `day` days after the due date of the account's earliest
unpaid, undisputed invoice; an account that is already further along starts at the stage its age gives
(no burst of earlier notices); at least `min_gap_days` between two notices; notices go out on business
days of the customer's country inside the sending window of their time zone.

A notice SES refused (`failed`) is not a rung done: the stage is tried again from the next day (the next
business day inside the window), never twice in one day. The legal hand-off needs the final notice (the
stage before it) sent and not hard-bounced; until then the account waits, re-checked every day.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dunning.domain import agreements
from dunning.domain.account import (
    AccountSnapshot,
    ActionRecord,
    AgreedPlan,
    InvoiceState,
    NoticeRecord,
    Promise,
)
from dunning.domain.calendar import add_business_days, local_date, next_send_slot, spread_send_slot
from dunning.domain.events import EventType
from dunning.domain.models import ActionKind
from dunning.domain.money import format_amount
from dunning.domain.plans import PlanStanding
from dunning.domain.policy import Ladder, Policy, Stage
from dunning.domain.tasks import task_id_for

# Demand letters and final notices give the customer this many business days to pay; the hand-off to the
# legal team never comes before the final notice's deadline has passed.
DEADLINE_BUSINESS_DAYS = 10
# Pre-Action Protocol for Debt Claims, paragraph 5.1: the debtor has 30 days to reply to a Letter of Claim.
PRE_ACTION_REPLY_DAYS = 30

Action = Literal["wait", "done"]
# task: open a rung's task for a person; approval: open the approval task a notice waits for; skip: pass
# over a rung whose notice was rejected.
Next = Literal["send", "handoff", "decide", "task", "approval", "skip"]
# Why the ladder is not sending: also the `reason` of notice_skipped when a send is re-checked.
Reason = Literal[
    "ladder",
    "settled",
    "legal",
    "disputed",
    "paused",
    "promise",
    "plan",
    "undelivered",
    "approval",
    "rejected",
]


@dataclass(frozen=True)
class LogEntry:
    """An event the decision wants in the contact log, with the identity that keeps it unique."""

    type: str
    identity: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: Reason
    next: Next | None = None
    at: datetime | None = None
    stage: Stage | None = None
    invoices: tuple[InvoiceState, ...] = ()
    log: tuple[LogEntry, ...] = ()
    # The email is about an agreement (its confirmation, an instalment's reminder), not a rung.
    agreement: agreements.AgreementNotice | None = None


def payment_deadline(sent_on: date, country: str | None) -> date:
    return add_business_days(sent_on, DEADLINE_BUSINESS_DAYS, country)


def decide(snapshot: AccountSnapshot, policy: Policy, now: datetime) -> Decision:
    today = local_date(now, snapshot.timezone)
    if snapshot.state.status == "legal":
        return Decision("done", "legal")
    agreement = snapshot.latest_agreement(today)
    plan = snapshot.agreed_plan(agreement) if agreement and agreement.action is ActionKind.PLAN else None
    standing = agreements.plan_standing(snapshot, plan, today) if plan else None
    # A plan agreed after a promise replaces it: the promise is neither kept nor broken any more.
    promise = snapshot.latest_promise(today) if plan is None else None
    log: list[LogEntry] = _plan_progress(snapshot, plan, standing) if plan and standing else []
    log += _superseded_promises(snapshot, today)
    if not snapshot.open_invoices():
        if promise and not _promise_resolved(snapshot, promise.identity):
            log.append(_promise_entry(EventType.PROMISE_KEPT, snapshot, promise))
        log.append(_settled(snapshot))
        return Decision("done", "settled", log=tuple(log))
    if _episode_debts_paid(snapshot):
        # Everything this episode's notices demanded was paid while the execution waited, and a new invoice
        # arrived before it woke: that episode ended settled; the new debt starts its own ladder.
        log.append(_settled(snapshot))
        return Decision("done", "settled", log=tuple(log))

    chaseable = snapshot.chaseable_invoices(today)
    if not chaseable:
        return Decision("wait", "disputed", "decide", _next_scan(policy, now), log=tuple(log))
    paused, until = snapshot.pause(today)
    if paused:
        resume_day = until if until else today + timedelta(days=1)
        return Decision(
            "wait", "paused", "decide", _wake_on(resume_day, snapshot, policy, now), log=tuple(log)
        )
    if plan and standing and standing.status == "running":
        assert agreement is not None
        return _held_by_plan(snapshot, policy, now, agreement, plan, standing, tuple(log))
    if promise:
        assert agreement is not None
        held = _held_by_promise(snapshot, policy, now, agreement, promise, log)
        if held is not None:
            return held

    return _next_rung(snapshot, policy, now, chaseable, tuple(log))


def _held_by_promise(
    snapshot: AccountSnapshot,
    policy: Policy,
    now: datetime,
    agreement: ActionRecord,
    promise: Promise,
    log: list[LogEntry],
) -> Decision | None:
    """Until its date a promise holds the ladder (after its confirmation); kept once its amount arrived (or,
    without an amount, once nothing is owed), broken when its date passed without. None: the ladder goes
    on (`log` has what to say of the promise)."""
    today = local_date(now, snapshot.timezone)
    kept = _promise_kept(snapshot, promise, today)
    resolved = _promise_resolved(snapshot, promise.identity)
    if kept and not resolved:
        log.append(_promise_entry(EventType.PROMISE_KEPT, snapshot, promise))
    if today <= promise.until:
        confirm = agreements.confirmation(agreement, None)
        if agreements.confirmation_due(snapshot, confirm, today):
            return _agreement_email(snapshot, policy, now, confirm, "promise", tuple(log))
        day_after = promise.until + timedelta(days=1)
        return Decision(
            "wait", "promise", "decide", _wake_on(day_after, snapshot, policy, now), log=tuple(log)
        )
    if not kept and not resolved:
        log.append(_promise_entry(EventType.PROMISE_BROKEN, snapshot, promise))
    return None


def _superseded_promises(snapshot: AccountSnapshot, today: date) -> list[LogEntry]:
    """A promise whose date passed before the customer promised again (before the ladder looked at it):
    broken, unless the amount it promised arrived by its date; one replaced while it still ran is neither."""
    promises = snapshot.promises(today)
    entries = []
    for earlier, later in itertools.pairwise(promises):
        promise = earlier.promise()
        if promise.until >= later.on or _promise_resolved(snapshot, promise.identity):
            continue
        kept = _promise_kept(snapshot, promise, promise.until)
        entries.append(
            _promise_entry(EventType.PROMISE_KEPT if kept else EventType.PROMISE_BROKEN, snapshot, promise)
        )
    return entries


def _promise_kept(snapshot: AccountSnapshot, promise: Promise, today: date) -> bool:
    """A promise of an amount is kept once that much arrived between the promise and its date; a promise of
    the whole balance, once nothing is owed (decide's settled branch)."""
    if promise.amount is None:
        return False
    return snapshot.received(promise.on, min(today, promise.until)) >= promise.amount


def _plan_progress(snapshot: AccountSnapshot, plan: AgreedPlan, standing: PlanStanding) -> list[LogEntry]:
    """instalment_paid for each instalment paid in full, then plan_completed or plan_broken, each once."""
    currency = plan.plan.currency
    entries = []
    for each in standing.instalments:
        if each.settled:
            data = {
                "plan_id": plan.plan_id,
                "due_on": each.instalment.due_on.isoformat(),
                "amount": format_amount(each.instalment.amount, currency),
                "currency": currency,
            }
            identity = f"{plan.plan_id}#{each.instalment.due_on.isoformat()}"
            entries.append(LogEntry(EventType.INSTALMENT_PAID, identity, data))
    if standing.status == "completed":
        entries.append(
            LogEntry(
                EventType.PLAN_COMPLETED,
                f"{plan.plan_id}#completed",
                {"plan_id": plan.plan_id, "currency": currency},
            )
        )
    elif standing.status == "broken":
        assert standing.broken_by is not None
        short = next(s.short for s in standing.instalments if s.instalment == standing.broken_by)
        data = {
            "plan_id": plan.plan_id,
            "due_on": standing.broken_by.due_on.isoformat(),
            "short": format_amount(short, currency),
            "currency": currency,
        }
        entries.append(LogEntry(EventType.PLAN_BROKEN, f"{plan.plan_id}#broken", data))
    return [entry for entry in entries if not snapshot.has_logged(entry.type, entry.identity)]


def _held_by_plan(
    snapshot: AccountSnapshot,
    policy: Policy,
    now: datetime,
    agreement: ActionRecord,
    plan: AgreedPlan,
    standing: PlanStanding,
    log: tuple[LogEntry, ...],
) -> Decision:
    """A running plan holds the ladder: its confirmation, then each instalment's reminders on their days;
    otherwise the ladder looks again at the next of them, or when an unpaid instalment's grace runs out."""
    today = local_date(now, snapshot.timezone)
    confirm = agreements.confirmation(agreement, standing)
    if agreements.confirmation_due(snapshot, confirm, today):
        return _agreement_email(snapshot, policy, now, confirm, "plan", log)
    upcoming = [
        (day, notice)
        for day, notice in agreements.instalment_reminders(plan, standing, today)
        if not agreements.sent(snapshot, notice)
    ]
    if upcoming and upcoming[0][0] <= today:
        return _agreement_email(snapshot, policy, now, upcoming[0][1], "plan", log)
    looks = [day for day, _ in upcoming]
    if standing.next_due is not None:
        looks.append(standing.next_due.due_on + timedelta(days=plan.plan.grace_days + 1))
    wake = _wake_on(min(looks), snapshot, policy, now) if looks else _next_scan(policy, now)
    return Decision("wait", "plan", "decide", wake, log=log)


def _agreement_email(
    snapshot: AccountSnapshot,
    policy: Policy,
    now: datetime,
    notice: agreements.AgreementNotice,
    reason: Reason,
    log: tuple[LogEntry, ...],
) -> Decision:
    """An email about the agreement, as soon as the customer's window opens (the same business day when
    the agreement is recorded during it)."""
    window = policy.window_for(snapshot.customer_type)
    at = next_send_slot(now, snapshot.timezone, snapshot.country, window)
    today = local_date(now, snapshot.timezone)
    invoices = tuple(snapshot.chaseable_invoices(today))
    return Decision("wait", reason, "send", at, notice.stage, invoices, log, agreement=notice)


def _next_rung(
    snapshot: AccountSnapshot,
    policy: Policy,
    now: datetime,
    chaseable: list[InvoiceState],
    log: tuple[LogEntry, ...],
) -> Decision:
    ladder = policy.ladder_for(snapshot.segment)
    today = local_date(now, snapshot.timezone)
    anchor = chaseable[0].due_on
    attempts = [n for n in snapshot.notices_in(snapshot.state.episode) if not n.about_agreement]
    sent = [notice for notice in attempts if notice.done]
    # Every notice the account ever got counts for the gap between two notices, whichever episode or
    # currency it was.
    everything = snapshot.account_notices or snapshot.notices
    # A task (a call, a letter to post) is no email, and an agreement's confirmation or an instalment's
    # reminder is no dunning notice: neither holds the next notice back.
    emailed = [
        datetime.fromisoformat(n.at) for n in everything if n.done and not n.is_task and not n.about_agreement
    ]
    last_at = max(emailed, default=None)
    last_index = max((_index(ladder, notice.stage) for notice in sent), default=-1)
    due_index = max(
        (i for i, stage in enumerate(ladder.stages) if anchor + timedelta(stage.day) <= today), default=-1
    )

    if due_index > last_index:
        # Already this far along (imported late, re-timed, held by a pause, promise or plan, or a missed
        # day): go straight to that stage, without the earlier ones, but never straight to a final warning
        # or the hand-off: the first notice after the jump is at most the demand letter (CONTRACT 7).
        target, earliest = min(due_index, max(last_index + 1, first_notice_cap(ladder))), now
    elif last_index + 1 < len(ladder.stages):
        target = last_index + 1
        earliest = max(now, _local_midnight(anchor + timedelta(ladder.stages[target].day), snapshot.timezone))
    else:
        # A ladder that ends without a legal hand-off: nothing more to send, keep watching for payment.
        return Decision("wait", "ladder", "decide", _next_scan(policy, now), log=log)

    if target < len(ladder.stages) - 1 and _skips_a_soft_stage(
        snapshot, ladder.stages[target], sent, today, log
    ):
        # Two promises broken in a row: the gentle words did not work; the next gentle stage is left out.
        target += 1
    last_rung_at = max((datetime.fromisoformat(notice.at) for notice in sent), default=None)
    previous = ladder.stages[last_index] if last_index >= 0 else None
    if previous is not None and last_rung_at is not None:
        earliest = max(earliest, _after_previous_rung(snapshot, previous, last_rung_at))
    if ladder.stages[target].is_handoff and target > 0:
        # Never hand a debt to the lawyers without the final warning first, and give that warning the
        # time the ladder gives it, however late the account arrived.
        if last_index < target - 1:
            target -= 1
            earliest = now
        elif not _final_notice_delivered(snapshot, ladder.stages[target - 1].name, sent):
            # Refused, bounced or never emailed: no case opens; a person fixes the address meanwhile.
            return Decision("wait", "undelivered", "decide", _next_scan(policy, now), log=log)
        else:
            earliest = max(earliest, _reply_period_end(snapshot, ladder, sent))
    if last_at is not None and policy.min_gap_days:
        earliest = max(earliest, last_at + timedelta(days=policy.min_gap_days))
    refused = [notice for notice in attempts if not notice.done]
    if refused:
        # SES refused an attempt: nothing more that day (no burst of retries); the next business day.
        last_refused = max(datetime.fromisoformat(notice.at) for notice in refused)
        retry_day = local_date(last_refused, snapshot.timezone) + timedelta(days=1)
        earliest = max(earliest, _local_midnight(retry_day, snapshot.timezone))
    return _rung(snapshot, policy, now, ladder.stages[target], earliest, chaseable, log)


def _rung(
    snapshot: AccountSnapshot,
    policy: Policy,
    now: datetime,
    stage: Stage,
    earliest: datetime,
    chaseable: list[InvoiceState],
    log: tuple[LogEntry, ...],
) -> Decision:
    """The rung `stage`, at the first moment from `earliest` its channel allows."""
    if stage.is_handoff:
        # The hand-off goes to the business's own legal team: their working hours, not the customer's.
        at = next_send_slot(earliest, policy.business_timezone, None, policy.sending_window)
        return Decision("wait", "ladder", "handoff", at, stage, tuple(chaseable), log)
    window = policy.window_for(snapshot.customer_type)
    at = next_send_slot(earliest, snapshot.timezone, snapshot.country, window)
    if stage.channel == "call":
        # A task for a person (CONTRACT 9): created at the customer's first contact time of the day. A letter
        # to post goes the way of a notice: the send step prints it, then opens its task.
        return Decision("wait", "ladder", "task", at, stage, tuple(chaseable), log)
    spread = timedelta(minutes=policy.send_spread_minutes)
    at = spread_send_slot(at, snapshot.account_id, snapshot.timezone, window, spread)
    invoices = tuple(_in_notice(chaseable, stage, at, snapshot))
    if stage.approve_above is not None and sum(i.outstanding for i in invoices) > stage.approve_above:
        return _approval(snapshot, policy, now, stage, at, invoices, log)
    return Decision("wait", "ladder", "send", at, stage, invoices, log)


def _after_previous_rung(snapshot: AccountSnapshot, previous: Stage, at: datetime) -> datetime:
    """What the last rung holds the next one back for: a letter's payment deadline; a blocking call, until a
    call row is recorded or skip_after_days have passed."""
    earliest = at
    waits = previous.blocks and previous.skip_after_days is not None
    if waits and not snapshot.called_since(local_date(at, snapshot.timezone)):
        earliest = max(earliest, at + timedelta(days=previous.skip_after_days or 0))
    if previous.letter:
        # A letter set a payment deadline: nothing stronger before it has passed.
        deadline = payment_deadline(local_date(at, snapshot.timezone), snapshot.country)
        earliest = max(earliest, _local_midnight(deadline + timedelta(days=1), snapshot.timezone))
    return earliest


def approval_task_id(snapshot: AccountSnapshot, stage: Stage) -> str:
    assert snapshot.currency is not None
    return task_id_for(snapshot.account_id, snapshot.currency, snapshot.state.episode, stage.name, "approval")


def _approval(
    snapshot: AccountSnapshot,
    policy: Policy,
    now: datetime,
    stage: Stage,
    at: datetime,
    invoices: tuple[InvoiceState, ...],
    log: tuple[LogEntry, ...],
) -> Decision:
    """A notice over the stage's approve_above waits as an approval task: sent once approved, passed over
    (never sent) once rejected; until then the ladder looks again at each scan (an approve or reject row
    wakes it at once)."""
    task_id = approval_task_id(snapshot, stage)
    decided = snapshot.decision_on(task_id, local_date(now, snapshot.timezone))
    if decided is ActionKind.APPROVE:
        return Decision("wait", "ladder", "send", at, stage, invoices, log)
    if decided is ActionKind.REJECT:
        return Decision("wait", "rejected", "skip", now, stage, invoices, log)
    if not snapshot.has_logged(EventType.TASK_CREATED, task_id):
        return Decision("wait", "approval", "approval", at, stage, invoices, log)
    return Decision("wait", "approval", "decide", _next_scan(policy, now), stage, invoices, log)


def _skips_a_soft_stage(
    snapshot: AccountSnapshot, stage: Stage, sent: list[NoticeRecord], today: date, log: tuple[LogEntry, ...]
) -> bool:
    """Two promises broken in a row, no rung since the latest broke, and the next rung is a gentle one."""
    breaking = frozenset(entry.identity for entry in log if entry.type == EventType.PROMISE_BROKEN)
    if not stage.is_soft or snapshot.broken_promises_in_a_row(today, breaking) < 2:
        return False
    broken = [
        a.until for a in snapshot.actions if a.action is ActionKind.PROMISE and a.until and a.until < today
    ]
    latest = max(broken, default=None)
    return latest is not None and not any(
        local_date(datetime.fromisoformat(n.at), snapshot.timezone) > latest for n in sent
    )


def first_notice_cap(ladder: Ladder) -> int:
    """The strongest stage a notice may be when it is the first after a jump: the demand letter (the first
    letter of the ladder), else the stage before the final warning."""
    for index, stage in enumerate(ladder.stages):
        if stage.letter and not stage.is_handoff:
            return index
    final = len(ladder.stages) - (2 if ladder.stages[-1].is_handoff else 1)
    return max(final - 1, 0)


def letter_of_claim(snapshot: AccountSnapshot, ladder: Ladder, stage: Stage) -> bool:
    """A UK consumer's demand letter is a Letter of Claim under the Pre-Action Protocol for Debt Claims:
    it gives the debtor 30 days to reply, and the debt goes to the legal team only after them."""
    if snapshot.customer_type != "consumer" or (snapshot.country or "").upper() != "GB":
        return False
    return ladder.stages.index(stage) == first_notice_cap(ladder) and stage.letter


def _reply_period_end(snapshot: AccountSnapshot, ladder: Ladder, sent: list[NoticeRecord]) -> datetime:
    """When a Letter of Claim's 30 days to reply are over (UTC midnight of the 31st day where the customer
    is); the distant past when no such letter was sent."""
    claims = [
        notice
        for notice in sent
        if (index := _index(ladder, notice.stage)) >= 0
        and letter_of_claim(snapshot, ladder, ladder.stages[index])
    ]
    if not claims:
        return datetime.min.replace(tzinfo=UTC)
    day = max(local_date(datetime.fromisoformat(notice.at), snapshot.timezone) for notice in claims)
    return _local_midnight(day + timedelta(days=PRE_ACTION_REPLY_DAYS + 1), snapshot.timezone)


def _in_notice(
    chaseable: list[InvoiceState], stage: Stage, at: datetime, snapshot: AccountSnapshot
) -> list[InvoiceState]:
    """Every chaseable invoice already due on the send day; before anything is due (pre_due), those that
    fall due within the stage's lead time."""
    send_day = local_date(at, snapshot.timezone)
    horizon = send_day + timedelta(days=max(0, -stage.day))
    return [invoice for invoice in chaseable if invoice.due_on <= horizon]


def _episode_debts_paid(snapshot: AccountSnapshot) -> bool:
    """The episode has notices, none of the invoices they demanded is still open, and every open invoice
    was issued after the last of them: a new debt, not one that was waiting to join the next notice."""
    notices = [n for n in snapshot.notices_in(snapshot.state.episode) if n.done and not n.about_agreement]
    demanded = [notice.invoice_ids for notice in notices]
    if not notices or any(ids is None for ids in demanded):
        return False  # nothing sent yet, or notices recorded before they kept their invoices
    open_invoices = snapshot.open_invoices()
    open_ids = {invoice.invoice_id for invoice in open_invoices}
    if any(ids & open_ids for ids in demanded if ids is not None):
        return False
    last = max(local_date(datetime.fromisoformat(notice.at), snapshot.timezone) for notice in notices)
    return all(invoice.issued_on > last for invoice in open_invoices)


def _final_notice_delivered(snapshot: AccountSnapshot, stage_name: str, sent: list[NoticeRecord]) -> bool:
    return any(notice.stage == stage_name and snapshot.delivered(notice) for notice in sent)


def _index(ladder: Ladder, stage_name: str) -> int:
    for index, stage in enumerate(ladder.stages):
        if stage.name == stage_name:
            return index
    return -1  # a stage of another segment's ladder (the segment changed): counts as nothing sent


def _promise_resolved(snapshot: AccountSnapshot, identity: str) -> bool:
    tagged = snapshot.tagged(identity)
    return snapshot.has_logged(EventType.PROMISE_KEPT, tagged) or snapshot.has_logged(
        EventType.PROMISE_BROKEN, tagged
    )


def _promise_entry(kind: str, snapshot: AccountSnapshot, promise: Promise) -> LogEntry:
    # A promise covers the account; each currency's ladder says whether it was kept for its own debt.
    data: dict[str, Any] = {"until": promise.until.isoformat()}
    if snapshot.currency:
        data["currency"] = snapshot.currency
    return LogEntry(kind, snapshot.tagged(promise.identity), data)


def _settled(snapshot: AccountSnapshot) -> LogEntry:
    data = {"currency": snapshot.currency} if snapshot.currency else {}
    return LogEntry(EventType.ACCOUNT_SETTLED, snapshot.tagged(f"episode-{snapshot.state.episode}"), data)


def _local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def _at_scan_time(policy: Policy, day: date, now: datetime) -> datetime:
    # policy.scan_time is the stack's ScanSchedule: the runtime hands out the policy with it (Runtime.policy).
    at = datetime.combine(day, policy.scan_time, tzinfo=ZoneInfo(policy.business_timezone)).astimezone(UTC)
    return max(at, _after(now))


def _wake_on(day: date, snapshot: AccountSnapshot, policy: Policy, now: datetime) -> datetime:
    """When to look again at a hold that ends on the customer's `day`: the business's scan time that day,
    but never before `day` has begun where the customer is (west of the business it begins later; waking
    earlier would find the hold still on and wait for "now" again and again)."""
    return max(_at_scan_time(policy, day, now), _local_midnight(day, snapshot.timezone))


def scan_after(policy: Policy, now: datetime) -> datetime:
    """The first daily scan strictly after `now` (policy.scan_time is the stack's ScanSchedule): a ladder
    whose next look falls at or after it sleeps in the wake index instead of waiting in an execution."""
    zone = ZoneInfo(policy.business_timezone)
    today = local_date(now, policy.business_timezone)
    return next(
        at
        for day in (today - timedelta(days=1), today, today + timedelta(days=1), today + timedelta(days=2))
        if (at := datetime.combine(day, policy.scan_time, tzinfo=zone).astimezone(UTC)) > now
    )


def _next_scan(policy: Policy, now: datetime) -> datetime:
    today = local_date(now, policy.business_timezone)
    return _at_scan_time(policy, today + timedelta(days=1), now)


def _after(at: datetime) -> datetime:
    """The next whole minute strictly after `at`: a wait to decide again always lets time pass."""
    return at.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
