"""Opening a collector task (CONTRACT 9): the ladder reached a rung whose channel is a person's (a call, a
letter to post). The task is logged `task_created` and the rung recorded as done: a task never stalls the
ladder. Idempotent: a step retried, or run again, finds the rung recorded and opens nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dunning.domain.account import AccountSnapshot
from dunning.domain.calendar import local_date
from dunning.domain.events import EventType
from dunning.domain.ladder import LogEntry
from dunning.domain.notices import NoticeId
from dunning.domain.policy import Policy, Stage
from dunning.domain.tasks import Task, task_id_for
from dunning.ports import Books


def open_task(
    books: Books,
    policy: Policy,
    snapshot: AccountSnapshot,
    stage: Stage,
    now: datetime,
    kind: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Task:
    """The task of `stage` for this ladder's episode, due today in the customer's calendar, owned by the
    segment's collector (None: nobody named, the worklist shows it unassigned). `kind` defaults to the
    stage's channel (a call, a letter): the rung is then done. An `approval` task leaves the rung to the
    notice it holds back (sent once approved). `details` go into task_created as they are (a letter's PDF
    and what it demands)."""
    assert snapshot.currency is not None
    episode = snapshot.state.episode
    kind = kind or stage.channel
    task = Task(
        task_id=task_id_for(snapshot.account_id, snapshot.currency, episode, stage.name, kind),
        kind=kind,
        account_id=snapshot.account_id,
        currency=snapshot.currency,
        stage=stage.name,
        due_on=local_date(now, snapshot.timezone),
        owner=policy.collector_for(snapshot.segment),
        letter=None if details is None else details.get("letter"),
    )
    data: dict[str, Any] = {
        "task_id": task.task_id,
        "kind": task.kind,
        "due_on": task.due_on.isoformat(),
        "owner": task.owner,
        "stage": task.stage,
        "currency": task.currency,
        **(details or {}),
    }
    # Logged first, then the rung: a crash between the two opens it again, and the log keeps it once.
    books.log.log(snapshot.account_id, now, [LogEntry(EventType.TASK_CREATED, task.task_id, data)])
    if kind != "approval":
        books.ladders.record_task(
            NoticeId(snapshot.account_id, snapshot.currency, episode, stage.name), now, task.task_id
        )
    return task


def letter_key(task_id: str) -> str:
    """Where a letter task's PDF is archived (the notices' bucket; OUT/letters/ in a simulation)."""
    return f"notices/letters/{task_id}.pdf"


def pass_over_rejected(books: Books, snapshot: AccountSnapshot, stage: Stage, now: datetime) -> None:
    """A notice whose approval was rejected never goes out: its rung is recorded as passed over (the ladder
    goes on to its later rungs), and notice_skipped says why."""
    assert snapshot.currency is not None
    notice = NoticeId(snapshot.account_id, snapshot.currency, snapshot.state.episode, stage.name)
    entry = LogEntry(
        EventType.NOTICE_SKIPPED, f"{notice.identity}#rejected", {"stage": stage.name, "reason": "rejected"}
    )
    books.log.log(snapshot.account_id, now, [entry])
    if books.ladders.begin_send(notice, now, archive_key=""):
        books.ladders.finish_send(notice, "skipped", reason="rejected")
