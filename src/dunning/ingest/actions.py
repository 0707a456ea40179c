"""Action uploads: what the customer said or asked (promises, disputes, pauses, email opt-outs), and the
calls a collector made."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

from dunning.domain.account import AccountSnapshot
from dunning.domain.events import EventType
from dunning.domain.models import Action, ActionKind
from dunning.domain.money import format_amount, to_minor_units
from dunning.domain.owed import principal_owed
from dunning.domain.plans import Plan, PlanError, parse_instalments
from dunning.domain.tasks import task_kind
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
            if problem is None:
                problem = _record_action(run, row, occurrences)
            if problem is not None:
                run.reject(problem)
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


def _record_action(run: Run, row: formats.ActionRow, occurrences: Counter[str]) -> formats.Rejection | None:
    """Record the row (once, however often the file is uploaded) and log its event; the row's rejection when
    what it says does not fit the account (a plan that does not add up, an approval of no pending task)."""
    action = row.action
    content = action.model_dump_json()
    occurrences[content] += 1
    action_id = hashlib.sha256(f"{content}#{occurrences[content]}".encode()).hexdigest()[:24]
    extra: dict[str, Any] = {}
    if action.action in (ActionKind.PLAN, ActionKind.PROMISE, ActionKind.APPROVE, ActionKind.REJECT):
        account = run.ledger.account(action.account_id)
        checked = _agreement(row, account, action_id)
        if isinstance(checked, formats.Rejection):
            return checked
        extra = checked
    elif action.action is ActionKind.POSTED:
        letters = _tasks(run, action.account_id, "letter")
        task_id = action.task_id or (letters[-1] if letters else None)
        if task_id not in letters:
            error = "no letter task with this id on this account" if action.task_id else "no letter to post"
            return formats.Rejection(row.line, "task_id", action.task_id or "", error, action.account_id)
        extra = {"task_id": task_id}
    if not run.ledger.add_action(action_id, {**records.action(run.source, row), **extra}):
        run.summary.unchanged += 1
        return None
    run.summary.imported += 1
    type_, data = _action_event(action, extra)
    if action.action is ActionKind.CALL:
        calls = _tasks(run, action.account_id, "call")
        data = {**data, "task_id": action.task_id or (calls[-1] if calls else None)}
    run.event(type_, action.account_id, row.line, on=action.on.isoformat(), **data)
    # What the customer said or the business decided is the ladder's to act on now (a confirmation the
    # same day, a hold, an approved notice): the next scan looks at the account's ladders.
    run.ledger.wake_ladders(action.account_id)
    return None


def _agreement(
    row: formats.ActionRow, account: AccountSnapshot, action_id: str
) -> dict[str, Any] | formats.Rejection:
    """What a promise, plan, approve or reject row stores beyond its columns: the currency it is in and a
    plan's id and instalments, checked against the account; the row's rejection when they do not fit."""
    action = row.action

    def reject(field: str, value: str, error: str) -> formats.Rejection:
        return formats.Rejection(row.line, field, value, error, action.account_id)

    if action.action in (ActionKind.APPROVE, ActionKind.REJECT):
        assert action.task_id is not None
        known = account.has_logged(EventType.TASK_CREATED, action.task_id)
        if not known or task_kind(action.task_id) != "approval":
            return reject("task_id", action.task_id, "no approval task with this id on this account")
        return {}
    if action.action is ActionKind.PROMISE and action.amount is None:
        return {}
    owed_in = account.currencies()
    currency = action.currency or (owed_in[0] if len(owed_in) == 1 else None)
    if currency is None:
        error = (
            f"the account owes in {' and '.join(owed_in)}: give the currency"
            if owed_in
            else "the account owes nothing: give the currency"
        )
        return reject("currency", "", error)
    if action.action is ActionKind.PROMISE:
        assert action.amount is not None
        try:
            return {"currency": currency, "amount": str(to_minor_units(action.amount, currency))}
        except ValueError as exc:
            return reject("amount", str(action.amount), str(exc))
    try:
        plan = Plan(action.on, currency, parse_instalments(action.instalments or "", currency))
        plan.check_covers(
            principal_owed(account, currency, action.on, due_only=True).amount_due,
            principal_owed(account, currency, action.on).amount_due,
        )
    except PlanError as exc:
        return reject("instalments", action.instalments or "", str(exc))
    if plan.instalments[0].due_on < action.on:
        return reject(
            "instalments", action.instalments or "", "the first instalment is before the plan's date"
        )
    return {
        "currency": currency,
        "plan_id": f"P-{action_id[:12]}",
        "instalments": ";".join(
            f"{i.due_on.isoformat()}={format_amount(i.amount, currency)}" for i in plan.instalments
        ),
        "plan_total": format_amount(plan.total, currency),
    }


def _tasks(run: Run, account_id: str, kind: str) -> list[str]:
    """The account's tasks of `kind`, oldest first: a row that names no task ends the latest (a call nobody
    was asked to make is still recorded)."""
    rungs = [r for r in run.ledger.account_tasks(account_id) if task_kind(str(r.get("task_id", ""))) == kind]
    return [str(rung["task_id"]) for rung in sorted(rungs, key=lambda rung: str(rung.get("started_at", "")))]


def _action_event(action: Action, extra: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if action.action is ActionKind.PLAN:
        return EventType.PLAN_AGREED, _plan_event(extra)
    until = {"until": action.until.isoformat()} if action.until else {}
    invoice = {"invoice_id": action.invoice_id} if action.invoice_id else {}
    call: dict[str, Any] = {"kind": "call", "outcome": action.outcome}
    if action.note:
        call["note"] = action.note
    promised = {"amount": extra["amount"], "currency": extra["currency"]} if "amount" in extra else {}
    decided = {"task_id": action.task_id, "kind": "approval"}
    events: dict[ActionKind, tuple[str, dict[str, Any]]] = {
        ActionKind.PROMISE: (EventType.PROMISE_RECORDED, {**until, **invoice, **promised}),
        ActionKind.APPROVE: (EventType.TASK_DONE, {**decided, "outcome": "approved"}),
        ActionKind.REJECT: (EventType.TASK_DONE, {**decided, "outcome": "rejected"}),
        ActionKind.DISPUTE: (EventType.DISPUTE_OPENED, invoice),
        ActionKind.RESOLVE: (EventType.DISPUTE_RESOLVED, invoice),
        ActionKind.PAUSE: (EventType.ACCOUNT_PAUSED, until),
        ActionKind.RESUME: (EventType.ACCOUNT_RESUMED, {}),
        ActionKind.OPT_OUT: (EventType.EMAIL_OPT_OUT, {}),
        ActionKind.OPT_IN: (EventType.EMAIL_OPT_IN, {}),
        ActionKind.CALL: (EventType.TASK_DONE, call),
        ActionKind.POSTED: (EventType.TASK_DONE, {**extra, "kind": "letter", "outcome": "posted"}),
    }
    return events[action.action]


def _plan_event(extra: dict[str, Any]) -> dict[str, Any]:
    instalments = [
        {"due_on": due_on, "amount": amount}
        for due_on, _, amount in (part.partition("=") for part in extra["instalments"].split(";"))
    ]
    return {
        "plan_id": extra["plan_id"],
        "currency": extra["currency"],
        "total": extra["plan_total"],
        "instalments": instalments,
    }
