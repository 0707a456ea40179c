"""Collector tasks (CONTRACT 9): the human steps of collections (a call, a printed letter to post, a review, a
reply to answer, an approval), who owns each, when it is due, and the order a collector works them in.

Pure: no AWS, no clock. The ladder creates tasks and the ledger keeps them (issue 13, in progress: this
module is the model and the priority; the ladder, the ledger and the worklist use it as they come).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Literal, get_args

from dunning.domain.models import CallOutcome

TaskKind = Literal["call", "letter", "review", "reply", "approval"]
TaskStatus = Literal["open", "done"]
TASK_KINDS: tuple[str, ...] = get_args(TaskKind)
CALL_OUTCOMES: tuple[str, ...] = get_args(CallOutcome)

# A task not done this many days after it fell due is flagged overdue; it never stalls the ladder unless its
# stage says so (CONTRACT 9, policy `task_overdue_days`).
TASK_OVERDUE_DAYS = 3


def task_id_for(account_id: str, currency: str, episode: int, stage: str, kind: str) -> str:
    """One task per ladder, episode, stage and kind: a step retried, or run again, creates it once."""
    if kind not in TASK_KINDS:
        raise ValueError(f"unknown task kind {kind!r}: one of {', '.join(TASK_KINDS)}")
    digest = hashlib.sha256(
        f"{account_id}\x1f{currency}\x1f{episode}\x1f{stage}\x1f{kind}".encode()
    ).hexdigest()
    return f"T-{kind}-{digest[:12]}"


def task_kind(task_id: str) -> str | None:
    """The kind a task id (task_id_for) names; None for a text that is no task id."""
    prefix, _, rest = task_id.partition("-")
    kind, _, _digest = rest.partition("-")
    return kind if prefix == "T" and kind in TASK_KINDS else None


@dataclass(frozen=True)
class Task:
    task_id: str
    kind: str
    account_id: str
    currency: str
    stage: str
    due_on: date
    owner: str | None
    status: TaskStatus = "open"
    outcome: str | None = None
    # A letter task's printed letter: its key in the notices' archive.
    letter: str | None = None

    def done(self, outcome: str) -> Task:
        """The task ended with `outcome` (a call's: one of CALL_OUTCOMES)."""
        if self.kind == "call" and outcome not in CALL_OUTCOMES:
            raise ValueError(f"a call's outcome is one of {', '.join(CALL_OUTCOMES)}, not {outcome!r}")
        return replace(self, status="done", outcome=outcome)

    def is_overdue(self, on: date, overdue_days: int = TASK_OVERDUE_DAYS) -> bool:
        return self.status == "open" and (on - self.due_on).days >= overdue_days


# --- priority ---------------------------------------------------------------------------------------------

# The segments a business ranks first, and by how much (the shipped segments' names, CONTRACT 7).
SEGMENT_POINTS: Mapping[str, int] = {"key_account": 10, "new_customer": 5}


@dataclass(frozen=True)
class Standing:
    """What ranks an account's task: its debt in the task's currency and how it has behaved."""

    amount_overdue: Decimal
    currency: str
    days_overdue: int
    broken_promises: int  # in a row, the latest first: a kept promise resets it
    segment: str = "default"


def priority(standing: Standing, ranking_rates: Mapping[str, Decimal] | None = None) -> int:
    """The worklist's order, highest first: points for the amount, its age, broken promises and the segment.

        amount   min(40, round(10 * log10(1 + amount / 100)))   100: 3, 1,000: 10, 10,000: 20, 100,000: 30
        age      min(30, days_overdue // 3)                     a point every three days, all 30 at 90
        promises min(30, 15 * broken promises in a row)
        segment  SEGMENT_POINTS (key_account 10, new_customer 5)

    Amounts of different currencies are only compared, never summed: `ranking_rates` (units of one ranking
    currency per unit of each currency, e.g. from the business's books) puts them on one scale; a currency
    without a rate counts at face value."""
    rate = (ranking_rates or {}).get(standing.currency, Decimal(1))
    amount = max(Decimal(0), standing.amount_overdue * rate)
    amount_points = min(40, round(10 * math.log10(1 + float(amount) / 100)))
    age_points = min(30, max(0, standing.days_overdue) // 3)
    promise_points = min(30, 15 * max(0, standing.broken_promises))
    return amount_points + age_points + promise_points + SEGMENT_POINTS.get(standing.segment, 0)


def worklist_order(tasks: Iterable[tuple[Task, int]]) -> list[tuple[Task, int]]:
    """Open tasks with their priority, as a collector works them: highest priority first, then the one due
    longest, then by account (a stable order for a printed list)."""
    open_tasks = [(task, score) for task, score in tasks if task.status == "open"]
    return sorted(
        open_tasks, key=lambda pair: (-pair[1], pair[0].due_on, pair[0].account_id, pair[0].task_id)
    )
