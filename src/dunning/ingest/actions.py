"""Action uploads: what the customer said or asked (promises, disputes, pauses, email opt-outs), and the
calls a collector made."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

from dunning.domain.events import EventType
from dunning.domain.models import Action, ActionKind
from dunning.ingest import formats, records
from dunning.ingest.run import Run, chunks


def import_actions(run: Run, rows: Iterator[formats.ActionRow]) -> None:
    occurrences: Counter[str] = Counter()
    for chunk in chunks(rows):
        accounts, invoices = run.ledger.known(
            {row.action.account_id for row in chunk},
            {(row.action.account_id, row.action.invoice_id) for row in chunk if row.action.invoice_id},
        )
        for row in chunk:
            problem = _unknown(row, accounts, invoices)
            if problem is not None:
                run.reject(problem)
            else:
                _record_action(run, row, occurrences)
        run.flush_events()


def _unknown(
    row: formats.ActionRow, accounts: set[str], invoices: set[tuple[str, str]]
) -> formats.Rejection | None:
    """The row's rejection when its account, or the invoice it names, is not in the ledger."""
    action = row.action
    if action.account_id not in accounts:
        return formats.Rejection(
            row.line,
            "account_id",
            action.account_id,
            "no account with this id; import its invoices first",
            action.account_id,
        )
    if action.invoice_id and (action.account_id, action.invoice_id) not in invoices:
        return formats.Rejection(
            row.line,
            "invoice_id",
            action.invoice_id,
            f"account {action.account_id} has no invoice {action.invoice_id}",
            action.account_id,
        )
    return None


def _record_action(run: Run, row: formats.ActionRow, occurrences: Counter[str]) -> None:
    action = row.action
    content = action.model_dump_json()
    occurrences[content] += 1
    action_id = hashlib.sha256(f"{content}#{occurrences[content]}".encode()).hexdigest()[:24]
    if not run.ledger.add_action(action_id, records.action(run.source, row)):
        run.summary.unchanged += 1
        return
    run.summary.imported += 1
    type_, data = _action_event(action)
    if action.action is ActionKind.CALL:
        data = {**data, "task_id": _call_task(run, action.account_id)}
    run.event(type_, action.account_id, row.line, on=action.on.isoformat(), **data)


def _call_task(run: Run, account_id: str) -> str | None:
    """The call task a call row ends: the account's latest (None: a call nobody was asked to make, still
    recorded)."""
    tasks = run.ledger.account_tasks(account_id)
    calls = [rung for rung in tasks if str(rung.get("task_id", "")).startswith("T-call-")]
    latest = max(calls, key=lambda rung: str(rung.get("started_at", "")), default=None)
    return str(latest["task_id"]) if latest else None


def _action_event(action: Action) -> tuple[str, dict[str, Any]]:
    until = {"until": action.until.isoformat()} if action.until else {}
    invoice = {"invoice_id": action.invoice_id} if action.invoice_id else {}
    call: dict[str, Any] = {"kind": "call", "outcome": action.outcome}
    if action.note:
        call["note"] = action.note
    events: dict[ActionKind, tuple[str, dict[str, Any]]] = {
        ActionKind.PROMISE: (EventType.PROMISE_RECORDED, {**until, **invoice}),
        ActionKind.DISPUTE: (EventType.DISPUTE_OPENED, invoice),
        ActionKind.RESOLVE: (EventType.DISPUTE_RESOLVED, invoice),
        ActionKind.PAUSE: (EventType.ACCOUNT_PAUSED, until),
        ActionKind.RESUME: (EventType.ACCOUNT_RESUMED, {}),
        ActionKind.OPT_OUT: (EventType.EMAIL_OPT_OUT, {}),
        ActionKind.OPT_IN: (EventType.EMAIL_OPT_IN, {}),
        ActionKind.CALL: (EventType.TASK_DONE, call),
    }
    return events[action.action]
