"""The collections policy: the business's defaults and rules, validated by pydantic.

A policy file is JSON or YAML. Anything it leaves out takes the default shown here, so the smallest
valid policy is an empty file ({}).
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Literal, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dunning.domain.charges import ChargesPolicy
from dunning.domain.models import LocaleCode, TimeZoneName
from dunning.domain.money import is_currency

logger = logging.getLogger(__name__)


class ImportRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Xero writes dates in the organisation's regional format; day first unless the business says so.
    xero_date_format: Literal["DD/MM/YYYY", "MM/DD/YYYY"] = "DD/MM/YYYY"


LEGAL_HANDOFF = "legal_handoff"


class Stage(BaseModel):
    """One rung of the ladder: `day` counts from the due date of the account's earliest unpaid,
    undisputed invoice (negative: before it is due)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    day: int = Field(ge=-60, le=3650)
    # The template set under templates/<locale>/ (defaults to the stage name).
    template: str | None = None
    attach_invoices: bool = False
    # A formal letter: sets a payment deadline and goes out as a PDF attachment too.
    letter: bool = False
    # How the rung reaches the customer: an email (the notice), or a task for a person (CONTRACT 9): `call`
    # (a collector calls, with a script) or `letter` (a printed letter to post). A task never stalls the
    # ladder: the rung counts as done once the task is created.
    channel: Literal["email", "call", "letter"] = "email"
    # A call that must be made before the ladder goes on (CONTRACT 9): the next rung waits for a `call` row,
    # at most `skip_after_days` days after the task was created.
    blocks: bool = False
    skip_after_days: int | None = Field(default=None, ge=1, le=60)
    # The notice waits as an `approval` task when it demands more than this (in the notice's currency).
    approve_above: Decimal | None = Field(default=None, ge=0)
    # A gentle stage: one of them is skipped after two promises broken in a row. Default: an email before
    # the firm notice (up to day +7), not a letter.
    soft: bool | None = None

    @model_validator(mode="after")
    def _handoff_by_email(self) -> Self:
        if self.is_handoff and self.channel != "email":
            raise ValueError(f"{LEGAL_HANDOFF} goes to the legal team; it has no channel of its own")
        if self.blocks and (self.channel != "call" or self.skip_after_days is None):
            raise ValueError(
                f"{self.name}: only a call stage can block the ladder, and it needs skip_after_days "
                "(how long the ladder waits for the call before it goes on)"
            )
        if self.approve_above is not None and (self.is_task or self.is_handoff):
            raise ValueError(f"{self.name}: only an email notice can wait for approval (approve_above)")
        return self

    @property
    def is_soft(self) -> bool:
        if self.soft is not None:
            return self.soft
        return self.channel == "email" and not self.letter and not self.is_handoff and self.day <= 7

    @property
    def template_name(self) -> str:
        return self.template or self.name

    @property
    def is_handoff(self) -> bool:
        return self.name == LEGAL_HANDOFF

    @property
    def is_task(self) -> bool:
        return self.channel != "email"

    @property
    def as_letter(self) -> bool:
        """Written as a letter (the letter's layout, a payment deadline): a formal letter emailed, or a letter
        to post."""
        return self.letter or self.channel == "letter"


_LETTERS = ("demand_letter", "final_notice")


def _stages(*rungs: tuple[str, int, bool]) -> tuple[Stage, ...]:
    return tuple(
        Stage(name=name, day=day, attach_invoices=attach, letter=name in _LETTERS)
        for name, day, attach in rungs
    )


DEFAULT_LADDER = _stages(
    ("pre_due", -3, True),
    ("reminder", 1, True),
    ("second_reminder", 7, False),
    ("firm_notice", 14, False),
    ("demand_letter", 30, False),
    ("final_notice", 45, False),
    (LEGAL_HANDOFF, 60, False),
)


class Ladder(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: tuple[Stage, ...] = DEFAULT_LADDER
    # Who works this segment's tasks (default: the policy's collector).
    collector: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.stages:
            raise ValueError("a ladder needs at least one stage")
        days = [stage.day for stage in self.stages]
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError("stages must be listed in order of their day, each on a different day")
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError("each stage needs its own name")
        if any(stage.is_handoff for stage in self.stages[:-1]):
            raise ValueError(f"{LEGAL_HANDOFF} can only be the last stage")
        return self


# The call the shipped ladders add when the policy names a collector (CONTRACT 9): ten days after the due
# date, after the first reminders and before the firm notice.
COLLECTOR_CALL = Stage(name="call", day=10, channel="call")

# Shipped segments: a new customer is walked up faster, a key account more gently.
DEFAULT_SEGMENTS = {
    "new_customer": Ladder(
        stages=_stages(
            ("pre_due", -3, True),
            ("reminder", 1, True),
            ("firm_notice", 7, False),
            ("demand_letter", 21, False),
            ("final_notice", 30, False),
            (LEGAL_HANDOFF, 45, False),
        )
    ),
    "key_account": Ladder(
        stages=_stages(
            ("pre_due", -5, True),
            ("reminder", 3, True),
            ("second_reminder", 14, False),
            ("firm_notice", 30, False),
            ("demand_letter", 60, False),
            ("final_notice", 75, False),
            (LEGAL_HANDOFF, 90, False),
        )
    ),
}


_SHIPPED_STAGES = (DEFAULT_LADDER, *(ladder.stages for ladder in DEFAULT_SEGMENTS.values()))


@functools.cache
def _with_collector_call(stages: tuple[Stage, ...]) -> Ladder:
    return Ladder(stages=tuple(sorted((*stages, COLLECTOR_CALL), key=lambda stage: stage.day)))


class Window(BaseModel):
    """Local clock times [start, end) between which notices may go out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time

    @model_validator(mode="after")
    def _forward(self) -> Self:
        if self.end <= self.start:
            raise ValueError("the window must end after it starts (same day)")
        return self

    def within(self, other: Window) -> Window:
        """This window narrowed to fit inside `other`."""
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Window(start=start, end=end) if start < end else other


# US Regulation F: no consumer contact before 08:00 or after 21:00 local time. Not configurable.
CONSUMER_LIMITS = Window(start=time(8), end=time(21))


class BusinessIdentity(BaseModel):
    """Who the notices come from, shown on every notice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="Example Trading Ltd", min_length=1, max_length=200)
    address: tuple[str, ...] = ()
    reply_to: str | None = None
    # One line each, printed as written: bank name, IBAN, BIC, reference to quote...
    payment_instructions: tuple[str, ...] = ()
    payment_link: str | None = Field(default=None, pattern=r"^https://")
    # None signs as "the accounts team" in the notice's own language.
    signature: str | None = None
    logo_url: str | None = Field(default=None, pattern=r"^https://")

    @model_validator(mode="after")
    def _single_lines(self) -> Self:
        texts = [
            self.name,
            self.signature or "",
            self.reply_to or "",
            *self.address,
            *self.payment_instructions,
        ]
        if any("\r" in text or "\n" in text for text in texts):
            raise ValueError("business details are single lines; give several lines as a list")
        return self


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    business_timezone: TimeZoneName = "UTC"
    default_locale: LocaleCode = "en"
    # Customers without a `timezone` column are taken to live in the business's time zone.
    default_timezone: TimeZoneName | None = None
    imports: ImportRules = ImportRules()
    # When the daily scan runs, in the business time zone: the ladder wakes then. Deployed (and simulated) it
    # is the stack's ScanSchedule, which the runtime puts here; a policy file may still set it (older files
    # do), but that value is not used (`dunning preflight` warns when it differs from the stack's).
    scan_time: time = time(7)
    # Each account's notices go out at its own moment of the sending window: the window's opening plus up to
    # this many minutes, by account (calendar.spread_send_slot). Like scan_time, deployed (and simulated) it
    # is the stack's (SendSpreadMinutes), which the runtime puts here; a policy file's value is not used.
    send_spread_minutes: int = Field(default=0, ge=0, le=1440)
    # At least this many days between two notices to one account.
    min_gap_days: int = Field(default=3, ge=0, le=60)
    sending_window: Window = Window(start=time(9), end=time(17))
    ladder: Ladder = Ladder()
    segments: dict[str, Ladder] = Field(default_factory=lambda: dict(DEFAULT_SEGMENTS))
    # The address notices come from; deployed, SES must have it (or its domain) verified.
    sender: str = "Accounts Receivable <billing@example.com>"
    business: BusinessIdentity = BusinessIdentity()
    # Late fees and statutory interest (none unless the business turns them on).
    charges: ChargesPolicy = ChargesPolicy()
    # Who works the collector's tasks (an email address: the owner on the worklist). Named, the shipped
    # ladders add a call at +10 (COLLECTOR_CALL); without one they stay email-only.
    collector: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    # A task not done this many days after it fell due is flagged overdue on the worklist (never blocking).
    task_overdue_days: int = Field(default=3, ge=0, le=60)
    # Only to rank the worklist's tasks of different currencies against each other (never to add or show
    # amounts): units of one currency of the business's choice per unit of each currency. A currency left
    # out counts at face value.
    ranking_rates: dict[str, Decimal] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ranking_rates(self) -> Self:
        for currency, rate in self.ranking_rates.items():
            if not is_currency(currency):
                raise ValueError(f"ranking_rates: {currency!r} is not an ISO 4217 currency code such as EUR")
            if rate <= 0:
                raise ValueError(f"ranking_rates: the rate of {currency} must be more than zero")
        return self

    @property
    def customer_timezone_default(self) -> str:
        return self.default_timezone or self.business_timezone

    def ladder_for(self, segment: str) -> Ladder:
        """The segment's ladder; an account in a segment the policy does not define gets the default. With a
        collector named, a shipped ladder gets its call at +10; a business's own ladder is as written."""
        ladder = self.segments.get(segment, self.ladder)
        if (self.collector or ladder.collector) and ladder.stages in _SHIPPED_STAGES:
            return _with_collector_call(ladder.stages).model_copy(update={"collector": ladder.collector})
        return ladder

    def collector_for(self, segment: str) -> str | None:
        """Who owns the segment's tasks: its own collector, else the policy's."""
        return self.ladder_for(segment).collector or self.collector

    def window_for(self, customer_type: str) -> Window:
        if customer_type == "consumer":
            return self.sending_window.within(CONSUMER_LIMITS)
        return self.sending_window

    @property
    def longest_lead_days(self) -> int:
        """How many days before the due date the earliest stage of any ladder may go out."""
        firsts = [ladder.stages[0].day for ladder in (self.ladder, *self.segments.values())]
        return max(0, -min(firsts))


DEFAULT_POLICY = Policy()


class PolicyProblem(NamedTuple):
    """One reason a policy is refused: the setting's path (dotted), the value given, and why."""

    field: str
    value: str
    error: str


class PolicyError(ValueError):
    """A policy file that cannot be used, with a message that says where and why."""

    def __init__(self, message: str, problems: tuple[PolicyProblem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (PolicyProblem("(file)", "", message),)


def _shown(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)[:200]
    return str(value)[:200]


def _policy_data(text: str, source: str) -> object:
    """A policy file's data: JSON read as JSON (the policy in force always is, written by policy_json), and
    anything else as YAML."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    # Imported here: only a YAML upload needs PyYAML, whose import (it compiles its regexes) would otherwise
    # cost every function's cold start more than reading the policy does (issue 12).
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        reason = f"not valid JSON or YAML{where}: {problem}"
        raise PolicyError(f"{source}: {reason}", (PolicyProblem("(file)", "", reason),)) from exc


def parse_policy(text: str, source: str = "policy") -> Policy:
    data = _policy_data(text, source)
    if not isinstance(data, dict):
        reason = "the policy must be a mapping of settings"
        raise PolicyError(f"{source}: {reason}", (PolicyProblem("(file)", _shown(data), reason),))
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = tuple(
            PolicyProblem(
                ".".join(str(part) for part in error["loc"]) or "(top level)",
                "" if error["type"] == "missing" else _shown(error.get("input", "")),
                error["msg"],
            )
            for error in exc.errors(include_url=False)
        )
        details = "; ".join(f"{problem.field}: {problem.error}" for problem in problems)
        raise PolicyError(f"{source}: {details}", problems) from exc


def load_policy(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from exc
    return parse_policy(text, str(path))


def policy_json(policy: Policy) -> str:
    return json.dumps(policy.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
