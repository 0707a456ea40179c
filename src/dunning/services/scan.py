"""The daily scan: find the accounts with invoices due (or about to be), start one execution for each.

It reads only the sparse `due` index, up to today plus the longest pre-due lead of the policy's ladders,
and nothing else in the common case: the execution name is derived from the account and its earliest
due invoice, so starting an account that is already being walked is a harmless no-op (same name), and a
scan run twice in a day, or retried, starts nothing new. The ladder is computed from dates, not from the
number of runs, so a missed day is simply caught up by the next run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from dunning.domain.calendar import local_date
from dunning.domain.clock import Clock
from dunning.domain.naming import execution_name
from dunning.domain.policy import Policy
from dunning.ports import DueEntry, Ladders, Workflows

logger = Logger(service="dunning", child=True)


@dataclass
class ScanSummary:
    scanned_through: str
    items_read: int = 0
    accounts: int = 0
    started: list[str] = field(default_factory=list)
    already_running: int = 0
    left_alone: int = 0


Ladder = tuple[str, str]  # (account_id, currency): one ladder each


def due_invoices(ladders: Ladders, through: date) -> tuple[dict[Ladder, list[DueEntry]], int]:
    """Index entries due on or before `through`, grouped by account and currency, and how many items were
    read."""
    by_ladder: dict[Ladder, list[DueEntry]] = defaultdict(list)
    read = 0
    for entry in ladders.due_through(through):
        read += 1
        by_ladder[(entry.account_id, entry.currency)].append(entry)
    return by_ladder, read


def run_scan(ladders: Ladders, workflows: Workflows, policy: Policy, clock: Clock) -> ScanSummary:
    today = local_date(clock.now(), policy.business_timezone)
    through = today + timedelta(days=policy.longest_lead_days)
    due, read = due_invoices(ladders, through)
    summary = ScanSummary(
        scanned_through=through.isoformat(),
        items_read=read,
        accounts=len({account_id for account_id, _ in due}),
    )
    for account_id, currency in sorted(due):
        anchor = min(due[(account_id, currency)], key=lambda entry: (entry.due_on, entry.invoice_id))
        name = execution_name(account_id, currency, anchor.due_on, anchor.invoice_id)
        payload = {"account_id": account_id, "currency": currency, "round": 0}
        if workflows.start(name, payload):
            summary.started.append(name)
        elif workflows.is_running(name):
            summary.already_running += 1
        else:
            _restart_if_orphaned(ladders, workflows, (account_id, currency), name, today, payload, summary)
    logger.info("Scan finished", extra={"summary": summary.__dict__ | {"started": len(summary.started)}})
    return summary


def _restart_if_orphaned(
    ladders: Ladders,
    workflows: Workflows,
    ladder: Ladder,
    name: str,
    today: date,
    payload: dict[str, Any],
    summary: ScanSummary,
) -> None:
    """The execution of this name has ended but the account still has invoices due: it is either with the
    legal team, owned by another live execution, or its execution failed; only the last is restarted. A
    hand-off to the legal team keeps the account in the due index until it is finished, so one whose
    execution failed half-way is found here and restarted straight at the hand-off."""
    account_id, currency = ladder
    state = ladders.state(account_id, currency)
    owner, legal = state.owner, state.legal
    if (legal and not state.handoff_open) or (owner and workflows.is_running(owner)):
        summary.left_alone += 1
        return
    restart = f"{name[:68]}-r{today.strftime('%Y%m%d')}"
    if legal:
        if ladders.take_over_handoff(account_id, currency, owner, restart) and workflows.start(
            restart, {**payload, "resume": "handoff"}
        ):
            summary.started.append(restart)
        else:
            summary.left_alone += 1
        return
    if owner:
        ladders.release_dead_owner(account_id, currency, owner)
    if workflows.start(restart, payload):
        summary.started.append(restart)
    else:
        summary.left_alone += 1
