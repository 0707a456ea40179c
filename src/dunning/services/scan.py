"""The daily scan: start one execution for each ladder that needs a look before the next scan.

It reads only the sparse `wake` index, up to the next scan: a ladder sleeps there until its next action
(its execution put it there and ended), and an upload that changes what a ladder chases puts it there for
the next scan. So the scan's work, and the executions open at any time, follow the ladders acting that day,
not every account on the ladder (docs/scale.md).

The schedule's invocation only plans: one page per shard of the index onto the scan queue. Each page is a
separate invocation that starts at most PAGE_SIZE executions and, if the shard has more, queues the next page
with its cursor (the checkpoint). No invocation holds or loops over everything; a page that fails is retried
by the queue on its own, and starves no other. Execution names are the ladder and the day: a page run again
(or a scan run twice in a day) starts nothing twice, with no DescribeExecution. A ladder whose execution
died is still in the index (its wake instant has passed) and is taken over the next day, when that
execution's lease has run out. A missed day is caught up the next: the ladder is computed from dates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from dunning.domain.calendar import local_date
from dunning.domain.clock import Clock, rfc3339
from dunning.domain.ladder import scan_after
from dunning.domain.naming import daily_execution_name
from dunning.domain.policy import Policy
from dunning.ports import Ladders, ScanPages, Workflows
from dunning.services.executions import step_input

logger = Logger(service="dunning", child=True)

# Executions one page starts: at Step Functions' StartExecution refill rate (150-300 a second) a page is a
# few seconds of a 300-second function.
PAGE_SIZE = 500


@dataclass(frozen=True)
class ShardPage:
    """One page of the day's scan: ladders of `shard` waking before `before`, from `cursor` on."""

    shard: int
    before: str  # RFC 3339: the next scan
    day: str  # the scan's date in the business time zone: names the day's executions
    cursor: str | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ShardPage:
        return cls(int(body["shard"]), str(body["before"]), str(body["day"]), body.get("cursor"))


@dataclass
class ScanPlan:
    scanned_before: str
    pages: int
    # On a stack from before the wake index: the ladders put in it from the due index, once.
    indexed: int = 0


@dataclass
class PageSummary:
    shard: int
    items_read: int = 0
    started: list[str] = field(default_factory=list)
    # Already started today (a page or a scan run again).
    already_started: int = 0
    more: bool = False


def plan_scan(ladders: Ladders, pages: ScanPages, policy: Policy, clock: Clock) -> ScanPlan:
    """The schedule's invocation: the first page of every shard onto the scan queue."""
    now = clock.now()
    today = local_date(now, policy.business_timezone)
    before = rfc3339(scan_after(policy, now))
    plan = ScanPlan(scanned_before=before, pages=ladders.wake_shards())
    if not ladders.wake_index_built():
        plan.indexed = build_wake_index(ladders, today + timedelta(days=policy.longest_lead_days))
    pages.send_all([asdict(ShardPage(shard, before, today.isoformat())) for shard in range(plan.pages)])
    logger.info("Scan planned", extra={"plan": asdict(plan)})
    return plan


def scan_page(
    ladders: Ladders,
    workflows: Workflows,
    pages: ScanPages,
    page: ShardPage,
    clock: Clock,
    step_function: str,
    limit: int = PAGE_SIZE,
) -> PageSummary:
    """One page: start today's execution of each ladder on it, then queue the next page, if any. Each waits
    until its ladder's wake instant (at once for one already past, or woken by an upload), then
    `step_function` (send_notice's alias) takes the ladder's step (services.stepping)."""
    waking, cursor = ladders.waking_page(page.shard, datetime.fromisoformat(page.before), page.cursor, limit)
    summary = PageSummary(shard=page.shard, items_read=len(waking), more=cursor is not None)
    day = date.fromisoformat(page.day)
    now = clock.now()
    for ladder in waking:
        name = daily_execution_name(ladder.account_id, ladder.currency, day)
        at = max(ladder.wake_at, now) if ladder.wake_at is not None else now
        payload = step_input(ladder.account_id, ladder.currency, at, step_function)
        if workflows.start(name, payload):
            summary.started.append(name)
        else:
            summary.already_started += 1
    if cursor is not None:
        # Queued after this page's starts: if this invocation dies first, the queue retries this page.
        pages.send(asdict(replace(page, cursor=cursor)))
    logger.info("Scan page done", extra={"page": asdict(summary) | {"started": len(summary.started)}})
    return summary


def build_wake_index(ladders: Ladders, through: date) -> int:
    """A stack deployed before the wake index has its ladders only in the due index (their executions
    waited in Step Functions): once, every ladder with an invoice due through `through` is put in the wake
    index for this scan; an execution still waiting from before keeps its ladder until it wakes."""
    due = {(entry.account_id, entry.currency) for entry in ladders.due_through(through)}
    for account_id, currency in sorted(due):
        ladders.wake_soon(account_id, currency)
    ladders.mark_wake_index_built()
    return len(due)
