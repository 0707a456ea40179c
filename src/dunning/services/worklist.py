"""The collector's worklist (CONTRACT 9): the open tasks, by priority, with what a person needs to make the
call: the customer, the phone, what is owed and for how long, and the call script.

A task is open from `task_created` until its `task_done`; a task whose ladder no longer owes anything (paid,
all disputed) or that went to the legal team is dropped: nobody calls a customer who paid. Reads events and
account snapshots, writes nothing: `dunning simulate` writes its rows as OUT/worklist.csv.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dunning.domain.account import AccountSnapshot
from dunning.domain.calendar import add_business_days
from dunning.domain.events import EventType
from dunning.domain.models import safe_cell
from dunning.domain.money import format_amount
from dunning.domain.owed import owed
from dunning.domain.policy import Policy
from dunning.domain.tasks import Standing, Task, priority, worklist_order
from dunning.notices.scripts import CallScriptContext

COLUMNS = (
    "due_on",
    "priority",
    "account_id",
    "customer_name",
    "kind",
    "stage",
    "amount_due",
    "currency",
    "days_overdue",
    "phone",
    "owner",
    "task_id",
    # Beyond CONTRACT 9's columns: flagged when not done task_overdue_days after its day, the call script,
    # and a letter task's printed letter (the PDF to print and post).
    "overdue",
    "script",
    "letter",
)


@dataclass(frozen=True)
class WorkItem:
    task: Task
    priority: int
    snapshot: AccountSnapshot
    amount_due: str
    days_overdue: int
    overdue: bool

    def row(self, script: str, letter: str = "") -> dict[str, str]:
        profile = self.snapshot.profile
        return {
            "due_on": self.task.due_on.isoformat(),
            "priority": str(self.priority),
            "account_id": self.task.account_id,
            "customer_name": str(profile.get("customer_name", "")),
            "kind": self.task.kind,
            "stage": self.task.stage,
            "amount_due": self.amount_due,
            "currency": self.task.currency,
            "days_overdue": str(self.days_overdue),
            "phone": str(profile.get("phone", "")),
            "owner": self.task.owner or "",
            "task_id": self.task.task_id,
            "overdue": "yes" if self.overdue else "",
            "script": script,
            "letter": letter,
        }


def open_tasks(events: Iterable[Mapping[str, Any]], through: datetime) -> list[Task]:
    """The tasks created up to `through` and not done by then, in the order they were created."""
    created: dict[str, Task] = {}
    done: set[str] = set()
    for event in events:
        if _at(event) > through:
            continue
        if event["type"] == EventType.TASK_CREATED:
            created[event["task_id"]] = Task(
                task_id=event["task_id"],
                kind=event["kind"],
                account_id=event["account_id"],
                currency=event["currency"],
                stage=event["stage"],
                due_on=date.fromisoformat(event["due_on"]),
                owner=event.get("owner"),
                letter=event.get("letter"),
            )
        elif event["type"] == EventType.TASK_DONE:
            done.add(event["task_id"])
    return [task for task_id, task in created.items() if task_id not in done]


def _at(event: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["at"]))  # RFC 3339 with Z: Python 3.11 reads it


def broken_in_a_row(events: Iterable[Mapping[str, Any]], account_id: str, through: datetime) -> int:
    """The account's broken promises since its last kept one (events in time order)."""
    count = 0
    for event in events:
        if event["account_id"] != account_id:
            continue
        if _at(event) > through:
            break
        if event["type"] == EventType.PROMISE_BROKEN:
            count += 1
        elif event["type"] == EventType.PROMISE_KEPT:
            count = 0
    return count


def worklist(
    tasks: Sequence[Task],
    snapshot_of: Callable[[str, str], AccountSnapshot],
    broken_promises: Callable[[str], int],
    policy: Policy,
    on: date,
) -> list[WorkItem]:
    """The open tasks a collector works on day `on`, highest priority first (domain.tasks.priority)."""
    scored = []
    for task in tasks:
        snapshot = snapshot_of(task.account_id, task.currency)
        if snapshot.state.status == "legal":
            continue
        debt = owed(snapshot, task.currency, on=on, policy=policy)
        if debt.amount_due <= 0:
            continue
        chaseable = [i for i in snapshot.chaseable_invoices(on) if i.currency == task.currency]
        days = max(0, (on - min(invoice.due_on for invoice in chaseable)).days) if chaseable else 0
        standing = Standing(
            debt.amount_due, task.currency, days, broken_promises(task.account_id), snapshot.segment
        )
        item = WorkItem(
            task=task,
            priority=priority(standing, policy.ranking_rates),
            snapshot=snapshot,
            amount_due=format_amount(debt.amount_due, task.currency),
            days_overdue=days,
            overdue=task.is_overdue(on, policy.task_overdue_days),
        )
        scored.append((task, item.priority, item))
    ordered = worklist_order((task, score) for task, score, _ in scored)
    by_id = {task.task_id: item for task, _, item in scored}
    return [by_id[task.task_id] for task, _ in ordered]


def script_context(item: WorkItem, policy: Policy, on: date) -> CallScriptContext:
    """What the task's call script says (notices.scripts), from the account as it stands on `on`."""
    snapshot = item.snapshot
    chaseable = [i for i in snapshot.chaseable_invoices(on) if i.currency == item.task.currency]
    emails = snapshot.profile.get("emails") or []
    return CallScriptContext(
        stage=item.task.stage,
        locale=str(snapshot.profile.get("locale", policy.default_locale)),
        account_id=item.task.account_id,
        customer_name=str(snapshot.profile.get("customer_name", item.task.account_id)),
        customer_email=", ".join(str(email) for email in emails),
        business_name=policy.business.name,
        # The collector says their own name: the policy's signature when it names one, else a blank to fill.
        caller=policy.business.signature or "____",
        currency=item.task.currency,
        amount_due=owed(snapshot, item.task.currency, on=on, policy=policy).amount_due,
        invoice_ids=tuple(invoice.invoice_id for invoice in chaseable),
        oldest_due_on=min(invoice.due_on for invoice in chaseable),
        days_overdue=item.days_overdue,
        call_back_on=add_business_days(on, 2, snapshot.country),
    )


def csv_text(
    items: Sequence[WorkItem],
    script_of: Callable[[WorkItem], str],
    letter_of: Callable[[WorkItem], str] = lambda item: "",
) -> str:
    """The worklist as CSV, every cell safe to open in a spreadsheet (no formula runs)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in items:
        row = item.row(script_of(item), letter_of(item))
        writer.writerow({column: safe_cell(value) for column, value in row.items()})
    return out.getvalue()


def local_day_end(day: date, policy: Policy) -> datetime:
    """The last instant of `day` in the business time zone."""
    start = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(policy.business_timezone))
    return start - timedelta(microseconds=1)


def script_path(task: Task) -> Path:
    return Path("scripts") / f"{task.task_id}.txt"


def letter_path(task: Task) -> Path | None:
    """Where a letter task's PDF is written beside the worklist (None: no letter to print)."""
    return None if task.letter is None else Path("letters") / f"{task.task_id}.pdf"
