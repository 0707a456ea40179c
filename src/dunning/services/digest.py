"""The daily digest (one email a day to each task owner): what the collector's day holds.

At the start of the business day (the policy's sending window opens, in its business time zone) each owner
of tasks (a task's `owner`, else the policy's `collector`) gets one email with:
- the tasks due today or overdue, by priority (services.worklist: the same rows as the worklist), with the
  amount and the phone number;
- the promises to pay due today (`promise_recorded` with until = today, neither kept nor broken yet);
- the promises broken, the customers' replies (`reply_received`) and the failures (`notice_failed`,
  `workflow_failed`, `notice_unconfirmed`) since the owner's last digest (the day before, for a first one).
An account's events go to the owner of its latest task, else to the policy's collector. Nothing to say:
no email.

Idempotent per owner per day: each digest sent is logged `digest_sent` {owner, day, tasks, eml, message_id}
under the pseudo-account DIGEST_ACCOUNT, with the identity `digest#<owner>#<day>`; a run that finds it
sends nothing to that owner again that day (a retried run only sends those it had not sent). The message is
archived under notices/ like every email handed to SES (`eml` names it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dunning.domain.account import AccountSnapshot
from dunning.domain.events import Event, EventType
from dunning.domain.naming import eml_name, slug
from dunning.domain.policy import Policy
from dunning.notices.mime import build_message
from dunning.notices.render import RenderedNotice
from dunning.ports import Archive, ContactLog, Mailer, SendRejected, SendThrottled, SendUnconfirmed
from dunning.services import worklist

logger = logging.getLogger(__name__)

# The digests' own log: not an account (CONTRACT 5 needs an account_id; readers that list accounts skip it).
DIGEST_ACCOUNT = "_digest"
# CONTRACT 11 (customers answer back): logged by the reply intake, when a stack has one.
REPLY_RECEIVED = "reply_received"
FAILURES = (EventType.NOTICE_FAILED, EventType.WORKFLOW_FAILED, EventType.NOTICE_UNCONFIRMED)
TEMPLATE_DIR = "_digest"


@dataclass(frozen=True)
class TaskLine:
    priority: int
    due_on: str
    account_id: str
    customer_name: str
    kind: str
    stage: str
    amount_due: str
    currency: str
    days_overdue: int
    phone: str
    overdue: bool
    task_id: str


@dataclass(frozen=True)
class EventLine:
    at: str  # local time in the business time zone, "YYYY-MM-DD HH:MM"
    type: str
    account_id: str
    customer_name: str
    detail: str


@dataclass(frozen=True)
class Digest:
    owner: str  # lower-case email address
    day: date
    tasks: tuple[TaskLine, ...] = ()
    promises_due: tuple[EventLine, ...] = ()
    promises_broken: tuple[EventLine, ...] = ()
    replies: tuple[EventLine, ...] = ()
    failures: tuple[EventLine, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.tasks or self.promises_due or self.promises_broken or self.replies or self.failures)

    @property
    def identity(self) -> str:
        return digest_identity(self.owner, self.day)


def digest_identity(owner: str, day: date) -> str:
    return f"digest#{owner.strip().lower()}#{day.isoformat()}"


def _at(event: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["at"]))


def _address(owner: str | None) -> str | None:
    address = parseaddr(owner or "")[1].strip().lower()
    return address or None


@dataclass
class _Owners:
    """Who an account's events go to: the owner of its latest task (by then), else the policy's collector."""

    collector: str | None
    by_account: dict[str, str] = field(default_factory=dict)

    def of(self, account_id: str) -> str | None:
        return self.by_account.get(account_id) or self.collector


def last_digests(events: Iterable[Mapping[str, Any]], before: date) -> dict[str, datetime]:
    """Each owner's last digest sent before day `before`."""
    last: dict[str, datetime] = {}
    for event in events:
        if event["type"] != EventType.DIGEST_SENT or date.fromisoformat(str(event["day"])) >= before:
            continue
        owner = _address(str(event.get("owner", "")))
        if owner and (owner not in last or _at(event) > last[owner]):
            last[owner] = _at(event)
    return last


def sent_on(events: Iterable[Mapping[str, Any]], day: date) -> set[str]:
    """The owners whose digest of `day` is already logged."""
    return {
        str(_address(str(event.get("owner", ""))))
        for event in events
        if event["type"] == EventType.DIGEST_SENT and event.get("day") == day.isoformat()
    }


def build_digests(
    events: Sequence[Mapping[str, Any]],
    snapshot_of: Callable[[str, str | None], AccountSnapshot],
    policy: Policy,
    day: date,
    now: datetime,
) -> list[Digest]:
    """Each owner's digest of `day`, as of instant `now` (events in time order, the digests' own included);
    owners with nothing to say included (`Digest.empty`), in order of their address."""
    upto = [event for event in events if _at(event) <= now]
    owners = _Owners(_address(policy.collector))
    for event in upto:
        if event["type"] == EventType.TASK_CREATED and _address(event.get("owner")):
            owners.by_account[str(event["account_id"])] = str(_address(event.get("owner")))
    names = _Names(snapshot_of)
    tasks = _task_lines(upto, snapshot_of, policy, day, now, owners, names)
    sections = _event_lines(upto, policy, day, now, owners, names)
    digests = []
    for owner in sorted({*tasks, *sections}):
        found = sections.get(owner, {})
        digests.append(
            Digest(
                owner=owner,
                day=day,
                tasks=tuple(tasks.get(owner, [])),
                promises_due=tuple(found.get("promises_due", [])),
                promises_broken=tuple(found.get("promises_broken", [])),
                replies=tuple(found.get("replies", [])),
                failures=tuple(found.get("failures", [])),
            )
        )
    return digests


@dataclass
class _Names:
    """Customer names by account, read once."""

    snapshot_of: Callable[[str, str | None], AccountSnapshot]
    names: dict[str, str] = field(default_factory=dict)

    def of(self, account_id: str, currency: str | None = None) -> str:
        if account_id not in self.names:
            profile = self.snapshot_of(account_id, currency).profile
            self.names[account_id] = str(profile.get("customer_name", "") or account_id)
        return self.names[account_id]


def _task_lines(
    upto: Sequence[Mapping[str, Any]],
    snapshot_of: Callable[[str, str | None], AccountSnapshot],
    policy: Policy,
    day: date,
    now: datetime,
    owners: _Owners,
    names: _Names,
) -> dict[str, list[TaskLine]]:
    """The open tasks due by `day`, by owner, in worklist order (the worklist's rows)."""
    due = [task for task in worklist.open_tasks(upto, now) if task.due_on <= day]

    def broken(account_id: str) -> int:
        return worklist.broken_in_a_row(upto, account_id, now)

    tasks: dict[str, list[TaskLine]] = {}
    for item in worklist.worklist(due, snapshot_of, broken, policy, day):
        owner = _address(item.task.owner) or owners.collector
        if owner is None:
            continue
        row = item.row("")
        names.names.setdefault(item.task.account_id, row["customer_name"] or item.task.account_id)
        tasks.setdefault(owner, []).append(
            TaskLine(
                priority=item.priority,
                due_on=row["due_on"],
                account_id=row["account_id"],
                customer_name=row["customer_name"],
                kind=row["kind"],
                stage=row["stage"],
                amount_due=row["amount_due"],
                currency=row["currency"],
                days_overdue=item.days_overdue,
                phone=row["phone"],
                overdue=item.overdue,
                task_id=row["task_id"],
            )
        )
    return tasks


def _event_lines(
    upto: Sequence[Mapping[str, Any]],
    policy: Policy,
    day: date,
    now: datetime,
    owners: _Owners,
    names: _Names,
) -> dict[str, dict[str, list[EventLine]]]:
    """The promises due `day`, and the broken promises, replies and failures since each owner's last digest
    (the day before for a first one), by owner and section."""
    zone = ZoneInfo(policy.business_timezone)
    last = last_digests(upto, day)
    default_since = now - timedelta(days=1)
    resolved = {
        (str(e["account_id"]), str(e.get("until", "")))
        for e in upto
        if e["type"] in (EventType.PROMISE_KEPT, EventType.PROMISE_BROKEN)
    }
    sections: dict[str, dict[str, list[EventLine]]] = {}
    seen: set[tuple[str, str, str]] = set()

    def add(section: str, event: Mapping[str, Any], detail: str, key: str | None = None) -> None:
        account_id = str(event["account_id"])
        owner = owners.of(account_id)
        if owner is None or (key is not None and (account_id, section, key) in seen):
            return
        seen.add((account_id, section, key or ""))
        local = _at(event).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        name = names.of(account_id, event.get("currency"))
        line = EventLine(local, str(event["type"]), account_id, name, detail)
        sections.setdefault(owner, {}).setdefault(section, []).append(line)

    today = day.isoformat()
    for event in upto:
        account_id, kind = str(event["account_id"]), str(event["type"])
        if account_id == DIGEST_ACCOUNT:
            continue
        if kind == EventType.PROMISE_RECORDED and event.get("until") == today:
            if (account_id, today) not in resolved:
                add("promises_due", event, _promise_detail(event), key=today)
        elif _at(event) <= last.get(owners.of(account_id) or "", default_since):
            continue
        elif kind == EventType.PROMISE_BROKEN:
            # One line per promise, not one per currency's ladder.
            until = str(event.get("until", "?"))
            add("promises_broken", event, f"promised by {until}", key=until)
        elif kind == REPLY_RECEIVED:
            add("replies", event, _reply_detail(event))
        elif kind in FAILURES:
            add("failures", event, _failure_detail(event))
    return sections


def _promise_detail(event: Mapping[str, Any]) -> str:
    amount = f" {event['amount']} {event.get('currency', '')}".rstrip() if event.get("amount") else ""
    return f"promised{amount} by {event.get('until', '?')}"


def _reply_detail(event: Mapping[str, Any]) -> str:
    for key in ("subject", "summary", "kind", "from"):
        if event.get(key):
            return str(event[key])[:200]
    return "a reply"


def _failure_detail(event: Mapping[str, Any]) -> str:
    parts = [str(event[key]) for key in ("stage", "reason") if event.get(key)]
    return ": ".join(parts)[:300] or str(event["type"])


# --- the email ----------------------------------------------------------------------------------------


def render_digest(digest: Digest, policy: Policy, template_dirs: Sequence[Path]) -> RenderedNotice:
    """The digest as an email (English: it is for the business's own staff), HTML autoescaped."""
    from dunning.notices import templating

    env = templating.environment(tuple(template_dirs))
    context = {
        "digest": digest,
        "business_name": policy.business.name,
        "day": digest.day.isoformat(),
        "timezone": policy.business_timezone,
    }

    def render(name: str) -> str:
        return env.get_template(f"{TEMPLATE_DIR}/{name}").render(context)

    subject = " ".join(render("digest.subject.j2").split())
    return RenderedNotice(subject, render("digest.txt.j2"), render("digest.html.j2"), "en", "ltr")


@dataclass(frozen=True)
class DigestRun:
    sent: tuple[str, ...] = ()
    already_sent: tuple[str, ...] = ()
    nothing_to_say: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()


def send_digests(
    digests: Sequence[Digest],
    already: set[str],
    *,
    policy: Policy,
    mailer: Mailer,
    archive: Archive,
    log: ContactLog,
    template_dirs: Sequence[Path],
    now: datetime,
) -> DigestRun:
    """Send each digest with something to say whose owner has none logged for the day (`already`), from the
    policy's sender; each one sent is logged `digest_sent` at once. SES throttling ends the run (raised: the
    caller's retry sends the rest); a refused digest is logged as an error and skipped."""
    sent, skipped, empty, refused = [], [], [], []
    for digest in digests:
        if digest.empty:
            empty.append(digest.owner)
            continue
        if digest.owner in already:
            skipped.append(digest.owner)
            continue
        name = eml_name(now, DIGEST_ACCOUNT, "ALL", f"digest-{slug(digest.owner)}")
        raw = build_message(
            rendered=render_digest(digest, policy, template_dirs),
            sender=policy.sender,
            to=[digest.owner],
            reply_to=None,
            sent_at=now,
            message_id=f"<{name.removesuffix('.eml')}@dunning>",
            headers={"X-Dunning-Digest": digest.day.isoformat()},
        )
        archive.put(f"notices/{name}", raw)
        data: dict[str, Any] = {
            "owner": digest.owner,
            "day": digest.day.isoformat(),
            "tasks": len(digest.tasks),
        }
        try:
            message_id = mailer.send(policy.sender, [digest.owner], raw, None)
        except SendThrottled:
            raise
        except SendRejected as exc:
            logger.error("The digest was refused", extra={"owner": digest.owner, "reason": str(exc)[:500]})
            refused.append(digest.owner)
            continue
        except SendUnconfirmed as exc:
            # SES may have it: never sent again (a person checks the archived copy).
            message_id = ""
            data["unconfirmed"] = str(exc)[:300]
        data |= {"eml": name, "message_id": message_id}
        log.log(
            DIGEST_ACCOUNT,
            now,
            [Event(now, EventType.DIGEST_SENT, DIGEST_ACCOUNT, data, identity=digest.identity)],
        )
        sent.append(digest.owner)
    return DigestRun(tuple(sent), tuple(skipped), tuple(empty), tuple(refused))


def digest_due(scheduled: datetime, policy: Policy, every: timedelta = timedelta(hours=1)) -> date | None:
    """The day whose digest a run scheduled at `scheduled` sends: the run is the first of the schedule (one
    every `every`) at or after the sending window's opening, in the business time zone. Otherwise None."""
    local = scheduled.astimezone(ZoneInfo(policy.business_timezone))
    opening = datetime.combine(local.date(), policy.sending_window.start, tzinfo=local.tzinfo)
    return local.date() if opening <= local < opening + every else None


def digest_time(day: date, policy: Policy, minute: int) -> datetime:
    """When an hourly schedule at `minute` past each hour first runs at or after the window's opening on
    `day` (business time zone): when the digest of `day` goes out."""
    zone = ZoneInfo(policy.business_timezone)
    opening = datetime.combine(day, policy.sending_window.start, tzinfo=zone)
    at = opening.replace(minute=minute, second=0, microsecond=0)
    return at if at >= opening else at + timedelta(hours=1)


def daily_digest(
    read_events: Callable[[], Sequence[Mapping[str, Any]]],
    snapshot_of: Callable[[str, str | None], AccountSnapshot],
    *,
    policy: Policy,
    scheduled: datetime,
    now: datetime,
    mailer: Mailer,
    archive: Archive,
    log: ContactLog,
    template_dirs: Sequence[Path],
    force: bool = False,
) -> dict[str, Any]:
    """One run of the hourly schedule: the digests of the day when this run is the day's first in the
    sending window (`digest_due`; `force`: now, whatever the hour) and the policy names a collector (tasks
    are owned by the collector), otherwise nothing (not even a read)."""
    day = digest_due(scheduled, policy)
    if force:
        day = scheduled.astimezone(ZoneInfo(policy.business_timezone)).date()
    if day is None or policy.collector is None:
        # Not the day's run; or no collector named: every task is unassigned (services.tasks), nobody to
        # write to.
        return {"day": None if day is None else day.isoformat(), "sent": 0}
    events = read_events()
    digests = build_digests(events, snapshot_of, policy, day, now)
    run = send_digests(
        digests,
        sent_on(events, day),
        policy=policy,
        mailer=mailer,
        archive=archive,
        log=log,
        template_dirs=template_dirs,
        now=now,
    )
    return {
        "day": day.isoformat(),
        "sent": len(run.sent),
        "already_sent": len(run.already_sent),
        "nothing_to_say": len(run.nothing_to_say),
        "refused": len(run.refused),
    }
