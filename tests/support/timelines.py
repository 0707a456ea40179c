"""Random account timelines run through the simulator, and the properties every run must keep (issue 9).

A timeline is a few accounts under a business in Europe/London: invoices in currencies with 0, 2 and 3
decimals, due before or after the first day; payments (partial, in full, over, on account, and bad rows
that must be rejected); actions (promise, pause, resume, dispute, resolve, opt_out); customers west and
east of the business in countries with different weekends; and optionally SES answers lost after SES
accepted the message (the SDK sees a read timeout). `simulate` runs it on the embedded AWS with the real
handlers and state machine, `violations` checks what came out against the contract, property by
property, from the contact log and SES's own record of what it accepted.

The oracles are written from CONTRACT 2, 4.3, 4.4 and 7, not from the code: a payment or action dated D is
in the ledger from D 00:00 in the business time zone (the first day for rows dated before it); balances
follow 4.3 (on account: oldest open invoice of the currency first).

Used by tests/integration/test_property_timelines.py and bench/property_timelines.py.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import pairwise
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import holidays
from hypothesis import strategies as st

from dunning.adapters.ledger import Ledger
from dunning.domain.currencies import minor_units
from dunning.domain.policy import parse_policy
from dunning.local.embedded_aws import EmbeddedAws, embedded_aws
from dunning.local.embedded_sfn import SimulationStuck
from dunning.local.simulator import Simulation, Upload
from tests.support.files import csv_bytes, invoices_csv

BUSINESS_TZ = "Europe/London"
# West of the business (Los Angeles, New York, Honolulu), on it, and east (up to Auckland, 13 hours ahead
# in the southern summer), with the half-hour offset of Tehran.
ZONES = (
    "America/Los_Angeles",
    "Pacific/Auckland",
    "Asia/Tokyo",
    "Asia/Tehran",
    "America/New_York",
    "Pacific/Honolulu",
    "Asia/Riyadh",
    "Asia/Dubai",
    "Europe/Bucharest",
    "Europe/Budapest",
    "Europe/London",
    "",  # no timezone column: the policy's default, the business's own
)
# Saudi Arabia rests Friday-Saturday, Iran on Friday; the others Saturday-Sunday.
COUNTRIES = ("GB", "SA", "IR", "US", "RO", "HU", "AE", "JP", "NZ", "")
CURRENCIES = ("EUR", "JPY", "KWD", "GBP", "USD", "BHD", "HUF", "RON", "SAR")
PAYMENT_COLUMNS = ["account_id", "invoice_id", "amount", "paid_on", "currency"]
ACTION_COLUMNS = ["account_id", "action", "on", "until", "invoice_id", "note"]
CONSUMER_HOURS = (time(8), time(21))

PROPERTIES = (
    "terminates",
    "clean_run",
    "no_duplicate",
    "zero_balance",
    "holds",
    "min_gap",
    "window",
    "payments_applied",
    "no_final_first",
)


# --- the timeline --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentRow:
    account_id: str
    invoice_id: str  # "" = on account
    amount: str
    paid_on: date
    currency: str
    bad: bool = False  # more decimals than the currency has: must be rejected, never applied

    def cells(self) -> list[str]:
        return [self.account_id, self.invoice_id, self.amount, self.paid_on.isoformat(), self.currency]


@dataclass(frozen=True)
class ActionRow:
    account_id: str
    action: str
    on: date
    until: date | None = None
    invoice_id: str = ""

    def cells(self) -> list[str]:
        until = self.until.isoformat() if self.until else ""
        return [self.account_id, self.action, self.on.isoformat(), until, self.invoice_id, ""]


@dataclass(frozen=True)
class Timeline:
    first_day: date
    days: int
    policy: str  # YAML
    invoices: tuple[dict[str, str], ...]
    payments: tuple[PaymentRow, ...] = ()
    actions: tuple[ActionRow, ...] = ()
    # Ordinals (1 = the first) of the notices SES accepts whose answer never reaches the sender.
    lost_responses: frozenset[int] = frozenset()

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)

    @property
    def accounts(self) -> list[str]:
        return sorted({row["account_id"] for row in self.invoices})

    def profile(self, account: str) -> dict[str, str]:
        return next(row for row in self.invoices if row["account_id"] == account)

    def upload_day(self, dated: date) -> date:
        """The day a row dated `dated` is uploaded: rows dated before the run go in on its first day."""
        return max(dated, self.first_day)

    def uploaded_at(self, dated: date) -> datetime:
        """The instant a row dated `dated` is in the ledger (CONTRACT 2): 00:00 of its day, business time."""
        return business_midnight(self.upload_day(dated))

    def in_run(self, dated: date) -> bool:
        return dated <= self.last_day

    def uploads(self) -> Iterator[tuple[date, Upload]]:
        yield self.first_day, Upload("invoices", "invoices.csv", invoices_csv(*self.invoices))
        payments: dict[date, list[list[str]]] = defaultdict(list)
        for payment in self.payments:
            if self.in_run(payment.paid_on):
                payments[self.upload_day(payment.paid_on)].append(payment.cells())
        for day, rows in sorted(payments.items()):
            yield day, Upload("payments", f"payments-{day}.csv", csv_bytes(PAYMENT_COLUMNS, rows))
        actions: dict[date, list[list[str]]] = defaultdict(list)
        for action in self.actions:
            if self.in_run(action.on):
                actions[self.upload_day(action.on)].append(action.cells())
        for day, rows in sorted(actions.items()):
            yield day, Upload("actions", f"actions-{day}.csv", csv_bytes(ACTION_COLUMNS, rows))


def business_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(BUSINESS_TZ)).astimezone(UTC)


def amount_text(minor: int, currency: str) -> str:
    places = minor_units(currency)
    if not places:
        return str(minor)
    whole, fraction = divmod(minor, 10**places)
    return f"{whole}.{fraction:0{places}d}"


def to_minor(text: str, currency: str) -> int:
    return int(Decimal(text).scaleb(minor_units(currency)))


# --- generating timelines ------------------------------------------------------------------------------


@st.composite
def _account(draw: st.DrawFn, number: int, first_day: date, days: int) -> tuple[Any, ...]:
    account = f"A{number}"
    customer = {
        "account_id": account,
        "customer_name": f"Customer {number}",
        "customer_email": f"ap@a{number}.example.com",
        "issued_on": "",
        "timezone": draw(st.sampled_from(ZONES)),
        "country": draw(st.sampled_from(COUNTRIES)),
        "customer_type": draw(st.sampled_from(("business", "consumer"))),
        "segment": draw(st.sampled_from(("default", "new_customer", "key_account"))),
    }
    invoices = []
    for index in range(draw(st.integers(1, 3))):
        currency = draw(st.sampled_from(CURRENCIES))
        due = first_day + timedelta(days=draw(st.integers(-75, 35)))
        issued = due - timedelta(days=draw(st.integers(0, 30)))
        minor = draw(st.integers(1, 5_000_000))
        invoices.append(
            customer
            | {
                "invoice_id": f"{account}-{index + 1}",
                "currency": currency,
                "amount": amount_text(minor, currency),
                "issued_on": issued.isoformat(),
                "due_on": due.isoformat(),
            }
        )
    payments = draw(st.lists(_payment(account, invoices, first_day, days), max_size=3))
    actions = draw(
        st.lists(_action(account, invoices, first_day, days), max_size=4, unique_by=lambda row: row.on)
    )
    return tuple(invoices), tuple(payments), tuple(actions)


@st.composite
def _payment(
    draw: st.DrawFn, account: str, invoices: Sequence[dict[str, str]], first_day: date, days: int
) -> PaymentRow:
    invoice = draw(st.sampled_from(invoices))
    currency = invoice["currency"]
    owed = to_minor(invoice["amount"], currency)
    kind = draw(st.sampled_from(("full", "partial", "over", "on_account", "bad")))
    paid_on = first_day + timedelta(days=draw(st.integers(-5, days - 1)))
    if kind == "bad":
        # One decimal more than the currency has (a yen amount with decimals, a dinar with four).
        text = amount_text(owed, currency) + ("1" if minor_units(currency) else ".5")
        return PaymentRow(account, invoice["invoice_id"], text, paid_on, currency, bad=True)
    minor = {
        "full": owed,
        "partial": max(1, owed * draw(st.integers(1, 99)) // 100),
        "over": owed + draw(st.integers(1, 10_000)),
        "on_account": draw(st.integers(1, owed)),
    }[kind]
    invoice_id = "" if kind == "on_account" else invoice["invoice_id"]
    return PaymentRow(account, invoice_id, amount_text(minor, currency), paid_on, currency)


@st.composite
def _action(
    draw: st.DrawFn, account: str, invoices: Sequence[dict[str, str]], first_day: date, days: int
) -> ActionRow:
    kind = draw(
        st.sampled_from(("promise", "pause", "dispute", "resolve", "opt_out", "resume", "pause_open"))
    )
    on = first_day + timedelta(days=draw(st.integers(-3, days - 1)))
    if kind in ("promise", "pause"):
        until = on + timedelta(days=draw(st.integers(0 if kind == "promise" else 1, 14)))
        return ActionRow(account, kind, on, until)
    if kind in ("dispute", "resolve"):
        return ActionRow(account, kind, on, invoice_id=draw(st.sampled_from(invoices))["invoice_id"])
    return ActionRow(account, "pause" if kind == "pause_open" else kind, on)


@st.composite
def timelines(draw: st.DrawFn, max_days: int = 60, max_accounts: int = 4) -> Timeline:
    first_day = draw(st.dates(date(2027, 1, 4), date(2027, 11, 30)))
    days = draw(st.integers(14, max_days))
    window = draw(st.sampled_from(("", 'sending_window: {start: "06:00", end: "23:00"}\n')))
    gap = draw(st.sampled_from((3, 5)))
    policy = f"business_timezone: {BUSINESS_TZ}\nmin_gap_days: {gap}\n{window}"
    invoices: list[dict[str, str]] = []
    payments: list[PaymentRow] = []
    actions: list[ActionRow] = []
    for number in range(1, draw(st.integers(1, max_accounts)) + 1):
        account_invoices, account_payments, account_actions = draw(_account(number, first_day, days))
        invoices += account_invoices
        payments += account_payments
        actions += account_actions
    lost = draw(st.frozensets(st.integers(1, 4), max_size=2))
    return Timeline(first_day, days, policy, tuple(invoices), tuple(payments), tuple(actions), lost)


# --- running one -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    message_id: str
    to: str
    notice: str  # the X-Dunning-Notice header, <currency>/<episode>/<stage>; "" for the legal team's emails
    response_lost: bool


@dataclass
class Outcome:
    timeline: Timeline
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    messages: list[SentMessage] = field(default_factory=list)
    stuck: str | None = None
    failures: list[str] = field(default_factory=list)


@contextmanager
def _losing_answers(lost: frozenset[int], record: set[str]) -> Iterator[None]:
    """SES accepts the notices numbered in `lost`, then the answer is lost on the way back: the sender's SDK
    sees a read timeout (what botocore raises when the connection drops after the request went out)."""
    from botocore.exceptions import ReadTimeoutError
    from moto.sesv2.responses import SESV2Response

    from dunning.local.embedded_ses import _raw

    accepted = Counter[str]()
    current = SESV2Response.send_email  # the embedded SES's, which refuses what SES refuses

    def send_email(response: Any) -> str:
        answer: str = current(response)
        raw, _ = _raw(json.loads(response.body or "{}"))
        if raw is None or b"X-Dunning-Notice:" not in raw:
            return answer
        accepted["notices"] += 1
        if accepted["notices"] in lost:
            record.add(json.loads(answer)["MessageId"])
            raise ReadTimeoutError(
                endpoint_url="https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails"
            )
        return answer

    with mock.patch.object(SESV2Response, "send_email", send_email):
        yield


def simulate(timeline: Timeline) -> Outcome:
    policy = parse_policy(timeline.policy)
    start = datetime.combine(timeline.first_day, time(0), tzinfo=UTC) - timedelta(days=1)
    outcome = Outcome(timeline)
    lost: set[str] = set()
    with embedded_aws(start) as aws, _losing_answers(timeline.lost_responses, lost):
        aws.use_policy(timeline.policy.encode())
        simulation = Simulation(aws, policy)
        for day, upload in timeline.uploads():
            simulation.schedule(day, upload)
        try:
            simulation.run(timeline.first_day, timeline.days)
        except SimulationStuck as exc:
            outcome.stuck = str(exc)
        ledger = Ledger(aws.dynamodb, aws.table_name)
        outcome.events = {account: ledger.events(account) for account in timeline.accounts}
        outcome.messages = _sent_messages(lost)
        outcome.failures = _failures(aws, outcome.events)
    return outcome


def _sent_messages(lost: set[str]) -> list[SentMessage]:
    from moto.ses.models import ses_backends

    messages = []
    for sent in ses_backends["123456789012"]["eu-west-1"].sent_messages:
        parsed = email.message_from_string(sent.raw_data, policy=email.policy.default)
        messages.append(
            SentMessage(sent.id, str(parsed["To"]), str(parsed["X-Dunning-Notice"] or ""), sent.id in lost)
        )
    return messages


_PROTOCOL_ERRORS = ("SendThrottled", "SendUnconfirmed")


def _failures(aws: EmbeddedAws, events: dict[str, list[dict[str, Any]]]) -> list[str]:
    # A handler raising SendThrottled (or SendUnconfirmed) is the send's protocol with the state machine,
    # which retries it or records it; any other exception a handler raised is a crash.
    crashes = [failure.splitlines()[0] for failure in aws.scheduler.failures]
    failures = [crash for crash in crashes if not any(f": {name}:" in crash for name in _PROTOCOL_ERRORS)]
    failures += [f"denied: {call}" for call in aws.denied_calls]
    failures += [f"upload failed: {upload.key}: {upload.error}" for upload in aws.failed_uploads]
    for account, logged in events.items():
        failures += [
            f"{account} workflow_failed: {e.get('error')}" for e in logged if e["type"] == "workflow_failed"
        ]
    return failures


# --- the properties ----------------------------------------------------------------------------------


def violations(outcome: Outcome) -> dict[str, list[str]]:
    """Every property's violations (empty lists when it holds)."""
    return {name: CHECKS[name](outcome) for name in PROPERTIES}


def _terminates(outcome: Outcome) -> list[str]:
    return [outcome.stuck] if outcome.stuck else []


def _clean_run(outcome: Outcome) -> list[str]:
    return outcome.failures[:5]


def _account_of(outcome: Outcome, address: str) -> str:
    for account in outcome.timeline.accounts:
        if outcome.timeline.profile(account)["customer_email"] in address:
            return account
    return ""


def _no_duplicate(outcome: Outcome) -> list[str]:
    """One message per (account, episode, stage); each message SES accepted is logged as notice_sent exactly
    once (one whose answer was lost: as notice_unconfirmed, or notice_skipped for reason unconfirmed)."""
    found = []
    notices = [(message, _account_of(outcome, message.to)) for message in outcome.messages if message.notice]
    for (account, notice), count in Counter((account, m.notice) for m, account in notices).items():
        if count > 1:
            found.append(f"{account} {notice}: {count} messages accepted by SES")
    for message, account in notices:
        logged = outcome.events.get(account, [])
        stage = message.notice.rsplit("/", 1)[1]
        sent = [e for e in logged if e["type"] == "notice_sent" and e.get("message_id") == message.message_id]
        if message.response_lost:
            accounted = [e for e in logged if e.get("stage") == stage and _unconfirmed_or_sent(e)]
            if not accounted:
                found.append(f"{account} {message.notice}: answer lost, nothing logged for the stage")
        elif len(sent) != 1:
            found.append(f"{account} {message.notice} ({message.message_id}): {len(sent)} notice_sent events")
    return found


def _unconfirmed_or_sent(event: dict[str, Any]) -> bool:
    """A notice that went out, or may have (SES's answer was lost): the customer may well have it."""
    if event["type"] == "notice_skipped":
        return event.get("reason") == "unconfirmed"
    return event["type"] in ("notice_sent", "notice_unconfirmed")


def _notices(outcome: Outcome) -> Iterator[tuple[str, dict[str, Any], datetime]]:
    """Every notice the customer may have received, logged with what it demanded (invoice_ids, currency)."""
    for account, logged in outcome.events.items():
        for event in logged:
            if event["type"] in ("notice_sent", "notice_unconfirmed"):
                yield account, event, datetime.fromisoformat(event["at"].replace("Z", "+00:00"))


def _about_agreement(notice: dict[str, Any]) -> bool:
    """An agreement's confirmation or an instalment's reminder (CONTRACT 9, 10), not a rung of the ladder."""
    return str(notice.get("stage", "")).startswith(("agreement_", "instalment_"))


def balance(timeline: Timeline, account: str, currency: str, at: datetime, *, on_account: bool = True) -> int:
    """What `account` owes in `currency` at `at` (minor units), from the rows in the ledger by then
    (`on_account=False`: leaving out the payments without an invoice_id)."""
    invoices = sorted(
        (row for row in timeline.invoices if row["account_id"] == account and row["currency"] == currency),
        key=lambda row: (row["due_on"], row["invoice_id"]),
    )
    owed = {row["invoice_id"]: to_minor(row["amount"], currency) for row in invoices}
    for payment in timeline.payments:
        if payment.account_id != account or payment.currency != currency or payment.bad:
            continue
        if not payment.invoice_id and not on_account:
            continue
        if not timeline.in_run(payment.paid_on) or timeline.uploaded_at(payment.paid_on) > at:
            continue
        left = to_minor(payment.amount, currency)
        targets = [payment.invoice_id] if payment.invoice_id else list(owed)
        for invoice_id in targets:  # on account: the oldest open invoice of the currency first (4.3)
            taken = min(left, owed[invoice_id])
            owed[invoice_id] -= taken
            left -= taken
    return sum(owed.values())


def _zero_balance(outcome: Outcome) -> list[str]:
    found = []
    for account, notice, at in _notices(outcome):
        currency = notice["currency"]
        if balance(outcome.timeline, account, currency, at) == 0:
            # Say when only a payment on account made it zero: then the cause is that payment's allocation.
            cause = (
                " (paid on account)"
                if balance(outcome.timeline, account, currency, at, on_account=False)
                else ""
            )
            found.append(f"{account} {notice['stage']} at {notice['at']}: {currency} balance is zero{cause}")
    return found


@dataclass(frozen=True)
class Holds:
    paused: bool
    promise: bool
    opted_out: bool
    disputed: frozenset[str]


def holds_on(actions: Sequence[ActionRow], today: date) -> Holds:
    """What the actions in the ledger hold on `today` (CONTRACT 4.4): one action per account and day, so
    their order is their date."""
    paused = promise = opted_out = False
    disputed: set[str] = set()
    for action in sorted(actions, key=lambda row: row.on):
        if action.on > today:
            break
        if action.action == "pause":
            paused = action.until is None or today < action.until
        elif action.action == "resume":
            paused = False
        elif action.action == "promise":
            promise = action.until is not None and today <= action.until
        elif action.action == "opt_out":
            opted_out = True
        elif action.action == "dispute":
            disputed.add(action.invoice_id)
        elif action.action == "resolve":
            disputed.discard(action.invoice_id)
    return Holds(paused, promise, opted_out, frozenset(disputed))


def customer_zone(timeline: Timeline, account: str) -> ZoneInfo:
    return ZoneInfo(timeline.profile(account).get("timezone") or BUSINESS_TZ)


def _holds(outcome: Outcome) -> list[str]:
    """Nothing while a pause or promise holds, after an opt-out, or about a disputed invoice.

    An action dated D holds from D 00:00 business time (CONTRACT 2). Where the hold's last day is read in the
    customer's calendar or the business's is not written down, so a notice is only counted against a hold
    both calendars agree on, or one that began on the business's today while the customer (west of it)
    is still on the day before."""
    timeline = outcome.timeline
    found = []
    for account, notice, at in _notices(outcome):
        known = [
            a
            for a in timeline.actions
            if a.account_id == account and timeline.in_run(a.on) and timeline.uploaded_at(a.on) <= at
        ]
        business_day = at.astimezone(ZoneInfo(BUSINESS_TZ)).date()
        customer_day = at.astimezone(customer_zone(timeline, account)).date()
        by_business, by_customer = holds_on(known, business_day), holds_on(known, customer_day)
        west = customer_day < business_day
        where = (
            f"{account} {notice['stage']} at {notice['at']} (days: business {business_day}, {customer_day})"
        )
        for hold in ("paused", "promise", "opted_out"):
            if hold == "promise" and _about_agreement(notice):
                continue  # the promise's own confirmation goes out while it holds the ladder
            if getattr(by_business, hold) and (getattr(by_customer, hold) or west):
                found.append(f"{where}: {hold}")
        disputed = by_business.disputed & (by_customer.disputed if not west else by_business.disputed)
        if included := disputed & set(notice.get("invoice_ids", [])):
            found.append(f"{where}: disputed {sorted(included)}")
    return found


def _min_gap(outcome: Outcome) -> list[str]:
    gap = timedelta(days=parse_policy(outcome.timeline.policy).min_gap_days)
    found = []
    by_account: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for account, notice, at in _notices(outcome):
        if not _about_agreement(notice):  # an agreement's emails neither wait for nor count toward the gap
            by_account[account].append((at, notice["stage"]))
    for account, sent in by_account.items():
        sent.sort()
        for (before, first), (after, second) in pairwise(sent):
            if after - before < gap:
                found.append(
                    f"{account} {first} at {before:%Y-%m-%d %H:%M} then {second} at {after:%Y-%m-%d %H:%M}"
                )
    return found


def _no_final_first(outcome: Outcome) -> list[str]:
    """CONTRACT 7: a customer never hears a final warning first. The first notice each currency of an
    account gets is never the final notice (nor anything after the demand letter)."""
    found = []
    first: dict[tuple[str, str], tuple[datetime, str]] = {}
    for account, notice, at in _notices(outcome):
        key = (account, str(notice.get("currency", "")))
        if key not in first or at < first[key][0]:
            first[key] = (at, notice["stage"])
    for (account, currency), (at, stage) in sorted(first.items()):
        if stage in ("final_notice", "legal_handoff"):
            found.append(f"{account} {currency}: the first notice, at {at:%Y-%m-%d %H:%M}, was the {stage}")
    return found


@lru_cache(maxsize=256)
def _calendar(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)


def business_day_of(country: str, day: date) -> bool:
    """The country's own weekend and public holidays, as the holidays package has them."""
    if not country:
        return day.weekday() < 5
    calendar = _calendar(country, day.year)
    return day not in calendar and not calendar.is_weekend(day)


def _window(outcome: Outcome) -> list[str]:
    timeline = outcome.timeline
    policy = parse_policy(timeline.policy)
    found = []
    for account, notice, at in _notices(outcome):
        profile = timeline.profile(account)
        start, end = policy.sending_window.start, policy.sending_window.end
        customer_type, country = profile.get("customer_type", "business"), profile.get("country", "")
        if customer_type == "consumer":
            start, end = max(start, CONSUMER_HOURS[0]), min(end, CONSUMER_HOURS[1])
        local = at.astimezone(customer_zone(timeline, account))
        where = f"{account} {notice['stage']} at {local:%a %Y-%m-%d %H:%M} {local.tzinfo}"
        if not start <= local.time() < end:
            found.append(f"{where}: outside {start:%H:%M}-{end:%H:%M} ({customer_type})")
        if not business_day_of(country, local.date()):
            found.append(f"{where}: not a business day in {country or '(no country)'}")
    return found


def _payments_applied(outcome: Outcome) -> list[str]:
    """Every good payment row dated inside the run is applied (on account: to the account's open invoices
    of its currency, or kept as a credit); every bad one is rejected."""
    timeline = outcome.timeline
    applied: Counter[tuple[str, str, str, str]] = Counter()  # (account, invoice, paid_on, currency)
    rejected: Counter[tuple[str, str]] = Counter()  # (account, source file)
    credited: set[tuple[str, str]] = set()  # (account, currency) with a credit recorded
    for account, logged in outcome.events.items():
        for event in logged:
            if event["type"] == "payment_applied":
                key = (account, event["invoice_id"], event.get("paid_on", ""), event["currency"])
                applied[key] += to_minor(event["amount"], event["currency"])
            elif event["type"] == "row_rejected":
                rejected[(account, event.get("source", ""))] += 1
            elif event["type"] == "credit_recorded":
                credited.add((account, event["currency"]))
    found = []
    rows = [p for p in timeline.payments if timeline.in_run(p.paid_on)]
    # Rows for an invoice first, so what is left on a day is what on-account rows were applied as.
    for payment in sorted(rows, key=lambda p: not p.invoice_id):
        source = f"payments-{timeline.upload_day(payment.paid_on)}.csv"
        if payment.bad:
            if rejected[(payment.account_id, source)] < 1:
                found.append(f"{payment}: a bad row was not rejected")
            rejected[(payment.account_id, source)] -= 1
            continue
        amount = to_minor(payment.amount, payment.currency)
        keys = [
            key
            for key in applied
            if key[0] == payment.account_id
            and key[2:] == (payment.paid_on.isoformat(), payment.currency)
            and (key[1] == payment.invoice_id or not payment.invoice_id)
        ]
        available = sum(applied[key] for key in keys)
        if payment.invoice_id and available < amount:
            found.append(f"{payment}: not applied")
        elif (
            not payment.invoice_id
            and not available
            and (payment.account_id, payment.currency) not in credited
        ):
            found.append(f"{payment}: on account, not applied")
        for key in keys:
            taken = min(amount, applied[key])
            applied[key] -= taken
            amount -= taken
    return found


CHECKS: dict[str, Callable[[Outcome], list[str]]] = {
    "terminates": _terminates,
    "clean_run": _clean_run,
    "no_duplicate": _no_duplicate,
    "zero_balance": _zero_balance,
    "holds": _holds,
    "min_gap": _min_gap,
    "window": _window,
    "payments_applied": _payments_applied,
    "no_final_first": _no_final_first,
}
