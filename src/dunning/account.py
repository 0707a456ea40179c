"""One account as the ladder sees it: everything in its ledger partition, read at one moment.

Balances, disputes, pauses and promises are all derived here from the stored facts; nothing about them is
stored as a running flag, so a decision made from a fresh snapshot is always current.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from dunning import balances
from dunning.models import ActionKind, InvoiceStatus


@dataclass(frozen=True)
class InvoiceState:
    invoice_id: str
    currency: str
    amount: Decimal
    reported_paid: Decimal
    payments_total: Decimal
    status: str
    issued_on: date
    due_on: date
    reference: str | None
    document: str | None
    # (paid_on, amount) of each payment from the payments feed, oldest first.
    payments: tuple[tuple[date, Decimal], ...] = ()

    @property
    def outstanding(self) -> Decimal:
        return balances.outstanding(self.amount, self.reported_paid, self.payments_total, self.status)


@dataclass(frozen=True)
class ActionRecord:
    action: ActionKind
    on: date
    until: date | None
    invoice_id: str | None
    order: str  # sort key: actions of one day apply in the order they were recorded


@dataclass(frozen=True)
class Promise:
    on: date
    until: date
    identity: str


@dataclass(frozen=True)
class NoticeRecord:
    episode: int
    stage: str
    status: str  # sending | sent | unconfirmed | skipped | failed
    at: str  # RFC 3339, when the (latest) send attempt began
    message_id: str | None = None  # SES's, once sent
    recipients: int | None = None  # how many addresses it went to, once sent
    # The invoices it demanded; None for records kept before notices recorded them.
    invoice_ids: frozenset[str] | None = None

    @property
    def done(self) -> bool:
        """Counts as a rung of the ladder: anything but an attempt SES refused (nothing went out)."""
        return self.status != "failed"


@dataclass(frozen=True)
class AccountState:
    """The workflow's own record for the account (SK = STATE)."""

    episode: int = 0
    status: str = "idle"  # idle | active | legal
    owner: str | None = None
    case_id: str | None = None
    # The execution that last ended an episode with the account settled (a retried Decide must not end
    # the next one too).
    settled_by: str | None = None


@dataclass(frozen=True)
class AccountSnapshot:
    account_id: str
    profile: Mapping[str, Any]
    invoices: tuple[InvoiceState, ...]
    actions: tuple[ActionRecord, ...]
    notices: tuple[NoticeRecord, ...]
    state: AccountState
    event_types: frozenset[tuple[str, str]]  # (type, identity) of events already logged

    @classmethod
    def from_items(cls, account_id: str, items: Iterable[Mapping[str, Any]]) -> AccountSnapshot:
        profile: Mapping[str, Any] = {}
        invoices: dict[str, Mapping[str, Any]] = {}
        paid: dict[str, list[tuple[date, Decimal]]] = {}
        actions: list[ActionRecord] = []
        notices: list[NoticeRecord] = []
        state = AccountState()
        logged: set[tuple[str, str]] = set()
        for item in items:
            kind = item.get("kind")
            if kind == "account":
                profile = item
            elif kind == "invoice":
                invoices[item["invoice_id"]] = item
            elif kind == "payment":
                paid.setdefault(item["invoice_id"], []).append(
                    (date.fromisoformat(item.get("paid_on", "1970-01-01")), Decimal(item["amount"]))
                )
            elif kind == "action":
                actions.append(_action(item))
            elif kind == "notice":
                notices.append(
                    NoticeRecord(
                        int(item["episode"]),
                        item["stage"],
                        item["status"],
                        item["started_at"],
                        item.get("message_id"),
                        int(item["recipients"]) if item.get("recipients") is not None else None,
                        _invoice_ids(item),
                    )
                )
            elif kind == "state":
                state = AccountState(
                    int(item.get("episode", 0)),
                    item.get("status", "idle"),
                    item.get("owner"),
                    item.get("case_id"),
                    item.get("settled_by"),
                )
            elif kind == "event" and item.get("identity"):
                logged.add((item["event"]["type"], item["identity"]))
        return cls(
            account_id=account_id,
            profile=profile,
            invoices=tuple(
                _invoice(item, sorted(paid.get(invoice_id, []))) for invoice_id, item in invoices.items()
            ),
            actions=tuple(sorted(actions, key=lambda action: (action.on, action.order))),
            notices=tuple(notices),
            state=state,
            event_types=frozenset(logged),
        )

    # --- what is owed --------------------------------------------------------------------------------

    def open_invoices(self) -> list[InvoiceState]:
        return sorted((i for i in self.invoices if i.outstanding > 0), key=lambda i: (i.due_on, i.invoice_id))

    def chaseable_invoices(self, today: date) -> list[InvoiceState]:
        """Open invoices that are not disputed on `today`."""
        disputed = self.disputed_invoice_ids(today)
        return [invoice for invoice in self.open_invoices() if invoice.invoice_id not in disputed]

    # --- what the customer and the business said ----------------------------------------------------

    def disputed_invoice_ids(self, today: date) -> set[str]:
        disputed: set[str] = set()
        for action in self.actions:
            if action.on > today or action.invoice_id is None:
                continue
            if action.action is ActionKind.DISPUTE:
                disputed.add(action.invoice_id)
            elif action.action is ActionKind.RESOLVE:
                disputed.discard(action.invoice_id)
        return disputed

    def pause(self, today: date) -> tuple[bool, date | None]:
        """(paused, until): paused while today < until, or until a later resume when there is no until."""
        latest = None
        for action in self.actions:
            if action.on <= today and action.action in (ActionKind.PAUSE, ActionKind.RESUME):
                latest = action
        if latest is None or latest.action is ActionKind.RESUME:
            return False, None
        if latest.until is not None and today >= latest.until:
            return False, None
        return True, latest.until

    def opted_out(self, today: date) -> bool:
        """The customer asked not to be emailed (and has not asked to be again)."""
        latest = None
        for action in self.actions:
            if action.on <= today and action.action in (ActionKind.OPT_OUT, ActionKind.OPT_IN):
                latest = action.action
        return latest is ActionKind.OPT_OUT

    def latest_promise(self, today: date) -> Promise | None:
        promises = [a for a in self.actions if a.action is ActionKind.PROMISE and a.on <= today and a.until]
        if not promises:
            return None
        latest = promises[-1]
        assert latest.until is not None
        return Promise(latest.on, latest.until, f"{latest.on.isoformat()}#{latest.order}")

    def has_logged(self, event_type: str, identity: str) -> bool:
        return (event_type, identity) in self.event_types

    def delivered(self, notice: NoticeRecord) -> bool:
        """SES accepted the notice and it did not hard-bounce for every address it went to (a bounce is
        logged as delivery_failed, identity `<message id>#bounce#<address>`).

        An `unconfirmed` notice (SES's answer was lost) counts as delivered: it most likely went out, and
        holding the account for good would lose the case; the packet and the legal team's email say that
        its sending is unconfirmed, so the legal team judges it with the facts."""
        if notice.status not in ("sent", "unconfirmed"):
            return False
        if not notice.message_id:
            return True  # no SES message id recorded: nothing a bounce report could name
        prefix = f"{notice.message_id}#bounce#"
        bounced = sum(
            1
            for kind, identity in self.event_types
            if kind == "delivery_failed" and identity.startswith(prefix)
        )
        return bounced == 0 if notice.recipients is None else bounced < notice.recipients

    # --- the ladder's own record ---------------------------------------------------------------------

    def notices_in(self, episode: int) -> list[NoticeRecord]:
        return [notice for notice in self.notices if notice.episode == episode]

    @property
    def customer_type(self) -> str:
        return str(self.profile.get("customer_type", "business"))

    @property
    def timezone(self) -> str:
        return str(self.profile.get("timezone", "UTC"))

    @property
    def country(self) -> str | None:
        country = self.profile.get("country")
        return str(country) if country else None

    @property
    def segment(self) -> str:
        return str(self.profile.get("segment", "default"))


def _invoice(item: Mapping[str, Any], payments: list[tuple[date, Decimal]]) -> InvoiceState:
    return InvoiceState(
        invoice_id=item["invoice_id"],
        currency=item["currency"],
        amount=Decimal(item["amount"]),
        reported_paid=Decimal(item.get("amount_paid", 0)),
        payments_total=sum((amount for _, amount in payments), Decimal(0)),
        status=item.get("status", InvoiceStatus.OPEN.value),
        issued_on=date.fromisoformat(item["issued_on"]),
        due_on=date.fromisoformat(item["due_on"]),
        reference=item.get("reference"),
        document=item.get("document"),
        payments=tuple(payments),
    )


def _invoice_ids(item: Mapping[str, Any]) -> frozenset[str] | None:
    ids = (item.get("notice") or {}).get("invoice_ids")
    return frozenset(str(invoice_id) for invoice_id in ids) if ids else None


def _action(item: Mapping[str, Any]) -> ActionRecord:
    return ActionRecord(
        action=ActionKind(item["action"]),
        on=date.fromisoformat(item["on"]),
        until=date.fromisoformat(item["until"]) if item.get("until") else None,
        invoice_id=item.get("invoice_id"),
        order=f"{item.get('recorded_at', '')}#{item['SK']}",
    )
