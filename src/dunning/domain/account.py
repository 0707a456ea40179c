"""One account as the ladder sees it: everything in its ledger partition, read at one moment.

Balances, disputes, pauses and promises are all derived here from the stored facts; nothing about them is
stored as a running flag, so a decision made from a fresh snapshot is always current.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from dunning.domain import balances
from dunning.domain.events import EventType
from dunning.domain.models import ActionKind, InvoiceStatus
from dunning.domain.plans import Plan, parse_instalments


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
    # The export's paid-or-credited figure each time it changed, oldest first; empty: `reported_paid`,
    # known from the start.
    reported: tuple[balances.Reported, ...] = ()
    # The feed payments with the time each was recorded; empty: `payments` (times not known).
    feed: tuple[balances.FeedPayment, ...] = ()
    # Account credits that reduce it (balances.allocate_credits: credit notes, other invoices' excess).
    credits: tuple[balances.Reduction, ...] = ()
    # Payment terms or contract reference (the `terms` column): quoted in letters and the packet.
    terms: str | None = None

    # What is owed is computed by balances.settle, from these facts only (see balances' docstring).

    @cached_property
    def own(self) -> balances.InvoiceBalance:
        """Its balance from its own export figure and payments, before any account credit."""
        return balances.settle(self.amount, self.status, *self._facts())

    @cached_property
    def balance(self) -> balances.InvoiceBalance:
        if not self.credits:
            return self.own
        return balances.settle(self.amount, self.status, *self._facts(), self.credits)

    @property
    def outstanding(self) -> Decimal:
        """Still owed after reconciling export and feed and applying the account's credits; >= 0, zero for
        paid, void and draft invoices."""
        return self.balance.outstanding

    @property
    def paid(self) -> Decimal:
        """Paid or credited: amount - outstanding (zero for void and draft invoices)."""
        return self.balance.paid

    @property
    def credit(self) -> Decimal:
        """Received beyond its amount: held as a credit on the account (reducing its other invoices)."""
        return self.own.credit

    def reductions(self) -> tuple[balances.Reduction, ...]:
        """The reductions of its principal that make up `paid`: one undated (None) for what the export
        reported beyond the feed (from the start), then each feed payment and credit by its date."""
        return self.balance.reductions

    def _facts(self) -> tuple[tuple[balances.Reported, ...], tuple[balances.FeedPayment, ...]]:
        feed = self.feed or tuple(balances.FeedPayment(day, amount) for day, amount in self.payments)
        if self.reported:
            return self.reported, feed
        if not feed and self.payments_total:
            # Only a total, no payments: nothing tells them apart from the export's figure.
            return (balances.Reported(None, max(self.reported_paid, self.payments_total)),), ()
        return (balances.Reported(None, self.reported_paid),), feed


@dataclass(frozen=True)
class ActionRecord:
    action: ActionKind
    on: date
    until: date | None
    invoice_id: str | None
    order: str  # sort key: actions of one day apply in the order they were recorded
    # A partial promise's amount, and the currency a promise's amount or a plan is in.
    amount: Decimal | None = None
    currency: str | None = None
    # A plan's id and instalments (YYYY-MM-DD=amount;...), as the ingest checked them.
    plan_id: str | None = None
    instalments: str | None = None
    # The task an approve or reject decides.
    task_id: str | None = None

    @property
    def identity(self) -> str:
        return f"{self.on.isoformat()}#{self.order}"

    def promise(self) -> Promise:
        """A `promise` action as the ladder judges it."""
        assert self.action is ActionKind.PROMISE and self.until is not None
        return Promise(self.on, self.until, self.identity, self.amount, self.currency)


@dataclass(frozen=True)
class Promise:
    on: date
    until: date
    identity: str
    # Only part of the balance (None: all of it), in `currency`.
    amount: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True)
class AgreedPlan:
    plan: Plan
    plan_id: str
    identity: str


# A rung that is a task for a person (CONTRACT 9) is recorded with this status once the task is created.
TASK = "task"
# The emails about an agreement (CONTRACT 9, 10), outside the ladder's rungs, and the prefixes of their
# records' names (one record per agreement or instalment reminder, domain/agreements.py: short, since the
# name is part of the message's Message-ID, which must fit one header line).
AGREEMENT_CONFIRMATION = "agreement_confirmation"
INSTALMENT_REMINDER = "instalment_reminder"
AGREEMENT_RECORD_PREFIXES = {AGREEMENT_CONFIRMATION: "agreement_", INSTALMENT_REMINDER: "instalment_"}


@dataclass(frozen=True)
class NoticeRecord:
    episode: int
    stage: str
    status: str  # sending | sent | unconfirmed | skipped | failed | task
    at: str  # RFC 3339, when the (latest) send attempt began
    message_id: str | None = None  # SES's, once sent
    recipients: int | None = None  # how many addresses it went to, once sent
    # The invoices it demanded; None for records kept before notices recorded them.
    invoice_ids: frozenset[str] | None = None
    # The currency it demanded; None for records kept before ladders were walked per currency (such a
    # record counts for every currency of the account, so an upgrade never sends a rung again).
    currency: str | None = None
    # The charge lines it demanded, as stored (owed.charge_from_json reads them): a later figure never
    # goes below them.
    charges: tuple[Mapping[str, Any], ...] = ()

    @property
    def done(self) -> bool:
        """Counts as a rung of the ladder: anything but an attempt SES refused (nothing went out)."""
        return self.status != "failed"

    @property
    def is_task(self) -> bool:
        """The rung was a task for a person (a call, a letter to post), not an email."""
        return self.status == TASK

    @property
    def about_agreement(self) -> bool:
        """An agreement's confirmation or an instalment's reminder: an email, but no rung of the ladder."""
        return self.stage.startswith(tuple(AGREEMENT_RECORD_PREFIXES.values()))


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
    # How many uploads changed what this ladder chases: an execution lets go of the ladder only if it is
    # still the count it read (otherwise it decides again, on what the upload brought).
    touched: int = 0


@dataclass(frozen=True)
class AccountSnapshot:
    account_id: str
    profile: Mapping[str, Any]
    invoices: tuple[InvoiceState, ...]
    actions: tuple[ActionRecord, ...]
    notices: tuple[NoticeRecord, ...]
    state: AccountState
    event_types: frozenset[tuple[str, str]]  # (type, identity) of events already logged
    # The currency this view walks (CONTRACT 7: one ladder per currency): `invoices`, `notices` and
    # `state` are that currency's. None: every invoice of the account (no ladder view).
    currency: str | None = None
    # Every ladder's own state by currency (None: a record kept before ladders were per currency).
    states: Mapping[str | None, AccountState] = field(default_factory=dict)
    # The notices of every currency: the minimum gap between two notices counts them all.
    account_notices: tuple[NoticeRecord, ...] = ()

    @classmethod
    def from_items(
        cls, account_id: str, items: Iterable[Mapping[str, Any]], currency: str | None = None
    ) -> AccountSnapshot:
        """The account as stored; with `currency`, the view of that currency's ladder."""
        profile: Mapping[str, Any] = {}
        invoices: dict[str, Mapping[str, Any]] = {}
        paid: dict[str, list[balances.FeedPayment]] = {}
        credit_notes: list[balances.CreditNote] = []
        actions: list[ActionRecord] = []
        notices: list[NoticeRecord] = []
        state_items: dict[str | None, Mapping[str, Any]] = {}
        logged: set[tuple[str, str]] = set()
        for item in items:
            kind = item.get("kind")
            if kind == "account":
                profile = item
            elif kind == "invoice":
                invoices[item["invoice_id"]] = item
            elif kind == "payment":
                paid.setdefault(item["invoice_id"], []).append(feed_payment(item))
            elif kind == "credit_note":
                credit_notes.append(credit_note(item))
            elif kind == "action":
                actions.append(_action(item))
            elif kind == "notice":
                notices.append(_notice(item))
            elif kind == "state":
                state_items[item.get("currency")] = item
            elif kind == "event" and item.get("identity"):
                logged.add((item["event"]["type"], item["identity"]))
        every = with_credits(
            [invoice_state(item, paid.get(invoice_id, [])) for invoice_id, item in invoices.items()],
            credit_notes,
        )
        # A state kept before ladders were per currency (no `currency`) seeds every currency's own; so does
        # the episode and status of a currency's state that an upload created (it has neither yet).
        legacy = _state(state_items.get(None, {}), AccountState())
        states: dict[str | None, AccountState] = {
            key: _state(item, legacy) for key, item in state_items.items()
        }
        return cls(
            account_id=account_id,
            profile=profile,
            invoices=every if currency is None else tuple(i for i in every if i.currency == currency),
            actions=tuple(sorted(actions, key=lambda action: (action.on, action.order))),
            notices=tuple(n for n in notices if currency is None or n.currency in (None, currency)),
            state=legacy if currency is None else states.get(currency, legacy),
            event_types=frozenset(logged),
            currency=currency,
            states=states,
            account_notices=tuple(notices),
        )

    def currencies(self) -> list[str]:
        """The currencies the account owes money in, earliest due first."""
        return list(dict.fromkeys(invoice.currency for invoice in self.open_invoices()))

    def tagged(self, identity: str) -> str:
        """An event identity made unique per ladder: the currency view's events never collide."""
        return f"{self.currency}#{identity}" if self.currency else identity

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
        promises = self.promises(today)
        if not promises:
            return None
        return promises[-1].promise()

    def latest_agreement(self, today: date) -> ActionRecord | None:
        """The promise or plan in force for this view's currency: the latest agreed by `today`."""
        agreed = [
            a
            for a in self.actions
            if a.on <= today
            and self._ours(a.currency)
            and (a.action is ActionKind.PLAN or (a.action is ActionKind.PROMISE and a.until))
        ]
        return agreed[-1] if agreed else None

    def agreed_plan(self, action: ActionRecord) -> AgreedPlan:
        assert action.action is ActionKind.PLAN and action.instalments and action.currency and action.plan_id
        instalments = parse_instalments(action.instalments, action.currency)
        return AgreedPlan(Plan(action.on, action.currency, instalments), action.plan_id, action.identity)

    def received(self, since: date, through: date) -> Decimal:
        """What this view's invoices received (payments, credits, the export's dated figures) from `since` to
        `through`, both included: what keeps a promise of an amount, or pays a plan's instalments."""
        return sum(
            (
                amount
                for invoice in self.invoices
                for day, amount in invoice.reductions()
                if day is not None and since <= day <= through
            ),
            Decimal(0),
        )

    def decision_on(self, task_id: str, today: date) -> ActionKind | None:
        """APPROVE or REJECT: the latest decision on the approval task by `today` (None: none yet)."""
        decided = [
            a.action
            for a in self.actions
            if a.task_id == task_id and a.on <= today and a.action in (ActionKind.APPROVE, ActionKind.REJECT)
        ]
        return decided[-1] if decided else None

    def called_since(self, day: date) -> bool:
        """A call was recorded on `day` or later (a call task that blocks the ladder is done)."""
        return any(a.action is ActionKind.CALL and a.on >= day for a in self.actions)

    def promises(self, today: date) -> list[ActionRecord]:
        """The promises made by `today` that concern this view's currency, oldest first."""
        return [
            a
            for a in self.actions
            if a.action is ActionKind.PROMISE and a.on <= today and a.until and self._ours(a.currency)
        ]

    def broken_promises_in_a_row(self, today: date, breaking: frozenset[str] = frozenset()) -> int:
        """The promises broken one after another, up to the latest resolved one (a kept one ends the run).
        `breaking`: the identities of promises found broken now (their events are not logged yet)."""
        count = 0
        for action in reversed(self.promises(today)):
            identity = self.tagged(action.identity)
            if identity in breaking or self.has_logged(EventType.PROMISE_BROKEN, identity):
                count += 1
            elif self.has_logged(EventType.PROMISE_KEPT, identity):
                break
        return count

    def _ours(self, currency: str | None) -> bool:
        return currency is None or self.currency is None or currency == self.currency

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
            if kind == EventType.DELIVERY_FAILED and identity.startswith(prefix)
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


def invoice_state(item: Mapping[str, Any], payments: Sequence[balances.FeedPayment]) -> InvoiceState:
    """An invoice item and its payment items' `feed_payment`s, before the account's credits."""
    feed = tuple(sorted(payments, key=lambda p: (p.paid_on, p.recorded_at or _EARLIEST)))
    amount_paid = Decimal(item.get("amount_paid", 0))
    return InvoiceState(
        invoice_id=item["invoice_id"],
        currency=item["currency"],
        amount=Decimal(item["amount"]),
        reported_paid=amount_paid,
        payments_total=sum((p.amount for p in feed), Decimal(0)),
        status=item.get("status", InvoiceStatus.OPEN.value),
        issued_on=date.fromisoformat(item["issued_on"]),
        due_on=date.fromisoformat(item["due_on"]),
        reference=item.get("reference"),
        terms=item.get("terms"),
        document=item.get("document"),
        payments=tuple((p.paid_on, p.amount) for p in feed),
        reported=reported_history(item),
        feed=feed,
    )


def reported_history(item: Mapping[str, Any]) -> tuple[balances.Reported, ...]:
    """The export's paid figure each time it changed (`paid_reported`, written by the import); an item
    from before that history was kept: its figure, as of its last import."""
    history = [
        balances.Reported(_instant(entry.get("at")), Decimal(entry["paid"]))
        for entry in item.get("paid_reported") or ()
    ]
    amount_paid = Decimal(item.get("amount_paid", 0))
    if not history or history[-1].paid != amount_paid:
        history.append(balances.Reported(_instant(item.get("imported_at")), amount_paid))
    return tuple(history)


def feed_payment(item: Mapping[str, Any]) -> balances.FeedPayment:
    """A payment item (kind `payment`) as the balance sees it."""
    return balances.FeedPayment(
        date.fromisoformat(item.get("paid_on", "1970-01-01")),
        Decimal(item["amount"]),
        _instant(item.get("recorded_at")),
    )


def credit_note(item: Mapping[str, Any]) -> balances.CreditNote:
    """A credit note item (kind `credit_note`): what is left of it to allocate."""
    return balances.CreditNote(
        item["credit_note_id"],
        item["currency"],
        Decimal(item.get("amount", 0)),
        date.fromisoformat(item["issued_on"]),
        item.get("reference") or "",
    )


def with_credits(
    invoices: Sequence[InvoiceState], credit_notes: Sequence[balances.CreditNote] = ()
) -> tuple[InvoiceState, ...]:
    """The account's invoices with its credits applied (balances.allocate_credits)."""
    credits = balances.allocate_credits(invoices, credit_notes).applied
    return tuple(
        replace(invoice, credits=credits[invoice.invoice_id]) if invoice.invoice_id in credits else invoice
        for invoice in invoices
    )


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _instant(text: Any) -> datetime | None:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None


def _notice(item: Mapping[str, Any]) -> NoticeRecord:
    said = item.get("notice") or {}
    ids = said.get("invoice_ids")
    return NoticeRecord(
        int(item["episode"]),
        item["stage"],
        item["status"],
        item["started_at"],
        item.get("message_id"),
        int(item["recipients"]) if item.get("recipients") is not None else None,
        frozenset(str(invoice_id) for invoice_id in ids) if ids else None,
        item.get("currency") or said.get("currency"),
        tuple(said.get("charge_lines") or ()),
    )


def _action(item: Mapping[str, Any]) -> ActionRecord:
    return ActionRecord(
        action=ActionKind(item["action"]),
        on=date.fromisoformat(item["on"]),
        until=date.fromisoformat(item["until"]) if item.get("until") else None,
        invoice_id=item.get("invoice_id"),
        order=f"{item.get('recorded_at', '')}#{item['SK']}",
        amount=Decimal(str(item["amount"])) if item.get("amount") is not None else None,
        currency=item.get("currency"),
        plan_id=item.get("plan_id"),
        instalments=item.get("instalments"),
        task_id=item.get("task_id"),
    )


def _state(item: Mapping[str, Any], seed: AccountState) -> AccountState:
    return AccountState(
        int(item.get("episode", seed.episode)),
        item.get("status", seed.status),
        item.get("owner"),
        item.get("case_id"),
        item.get("settled_by"),
        int(item.get("touched", 0)),
    )
