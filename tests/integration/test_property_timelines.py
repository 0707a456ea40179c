"""Random account timelines through the whole simulated system must keep the contract's promises (issue 9):
no notice twice, none at a zero balance, none during a pause, promise, opt-out or about a disputed invoice,
the minimum gap between notices, the customer's window and business days, every payment applied, and a
run that ends. The generators and the properties are in tests/support/timelines.py;
`python -m bench.property_timelines` runs many more examples and counts violations per property.

Deterministic (derandomized, no example database, no real clock or network) and bounded: a handful of
examples per `make test`. Knobs, for chasing a failure:
- DUNNING_PROPERTY_EXAMPLES: how many examples to generate (default 6);
- DUNNING_PROPERTY_SHRINK=1: let hypothesis shrink a failure to a minimal timeline (minutes, not seconds);
- DUNNING_PROPERTIES=holds,window: assert only these properties (all by default), so shrinking chases one.
"""

from __future__ import annotations

import os
from datetime import date

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.support.files import invoice_row
from tests.support.timelines import (
    PROPERTIES,
    ActionRow,
    PaymentRow,
    Timeline,
    simulate,
    timelines,
    violations,
)

EXAMPLES = int(os.environ.get("DUNNING_PROPERTY_EXAMPLES", "6"))
SHRINK = os.environ.get("DUNNING_PROPERTY_SHRINK") == "1"
CHECKED = [name for name in os.environ.get("DUNNING_PROPERTIES", ",".join(PROPERTIES)).split(",") if name]
MAX_DAYS = 40
LONDON = "business_timezone: Europe/London\n"


def _customer(account: str, timezone: str, country: str, **extra: str) -> dict[str, str]:
    return invoice_row(
        f"{account}-1",
        account,
        customer_email=f"ap@{account.lower()}.example.com",
        timezone=timezone,
        country=country,
        **extra,
    )


# Timelines that broke a property once, checked on every run whatever the generator draws.
KNOWN = {
    # The case: a Tokyo customer's window opens at 00:00 London, the instant the payment dated that
    # day goes in; it must be applied first (CONTRACT 2).
    "payment_at_the_first_instant_of_its_day": Timeline(
        date(2027, 2, 1),
        9,
        LONDON,
        (_customer("A1", "Asia/Tokyo", "JP", currency="JPY", amount="1000", due_on="2027-02-10"),),
        (PaymentRow("A1", "A1-1", "1000", date(2027, 2, 8), "JPY"),),
    ),
    # A pause ending for a customer west of the business (Los Angeles, UTC-8): at the business's scan time
    # (07:00 London) on the day the pause ends the customer is still on the day before, paused, and the
    # decision must not be "now" again (a runaway loop, caught by the scheduler's bound).
    "pause_ends_west_of_the_business": Timeline(
        date(2027, 2, 5),
        4,
        LONDON,
        (_customer("A1", "America/Los_Angeles", "US", due_on="2027-01-20"),),
        actions=(ActionRow("A1", "pause", date(2027, 2, 5), date(2027, 2, 8)),),
    ),
    # A pause with no end date is re-checked the customer's next day, at the business's scan time: for the
    # same customer that instant is still the customer's today.
    "open_pause_west_of_the_business": Timeline(
        date(2027, 2, 5),
        3,
        LONDON,
        (_customer("A1", "America/Los_Angeles", "US", due_on="2027-01-20"),),
        actions=(ActionRow("A1", "pause", date(2027, 2, 5)),),
    ),
    # The same with a promise: the day after it, the customer's own day is still the promised one.
    "promise_ends_west_of_the_business": Timeline(
        date(2027, 2, 1),
        5,
        LONDON,
        (_customer("A1", "America/Los_Angeles", "US", due_on="2027-01-20"),),
        actions=(ActionRow("A1", "promise", date(2027, 2, 2), date(2027, 2, 4)),),
    ),
    # SES accepted the pre-due notice but its answer was lost: it must never go out a second time.
    "lost_ses_answer": Timeline(
        date(2027, 2, 1),
        4,
        LONDON,
        (_customer("A1", "Europe/London", "GB", due_on="2027-02-04"),),
        lost_responses=frozenset({1}),
    ),
    # Friday is the weekend in Saudi Arabia and in Iran (pre_due falls on Friday 5 February).
    "saudi_weekend": Timeline(
        date(2027, 2, 1), 6, LONDON, (_customer("A1", "Asia/Riyadh", "SA", due_on="2027-02-08"),)
    ),
    "iranian_weekend": Timeline(
        date(2027, 2, 1), 6, LONDON, (_customer("A1", "Asia/Tehran", "IR", due_on="2027-02-08"),)
    ),
    # A payment on account (no invoice_id) is allocated to the oldest open invoice of its currency (4.3).
    "payment_on_account": Timeline(
        date(2027, 2, 1),
        3,
        LONDON,
        (_customer("A1", "Europe/London", "GB", due_on="2027-03-20"),),
        (PaymentRow("A1", "", "10.00", date(2027, 2, 2), "EUR"),),
    ),
}


def _assert_keeps_every_property(timeline: Timeline) -> None:
    found = violations(simulate(timeline))
    broken = {name: found[name] for name in CHECKED if found[name]}
    assert not broken, "\n".join(f"{name}: {'; '.join(items[:4])}" for name, items in broken.items())


@pytest.mark.parametrize("timeline", KNOWN.values(), ids=KNOWN.keys())
def test_known_timelines_keep_every_property(timeline: Timeline) -> None:
    _assert_keeps_every_property(timeline)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    phases=(Phase.generate, *((Phase.shrink,) if SHRINK else ())),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(timeline=timelines(max_days=MAX_DAYS))
def test_random_timelines_keep_every_property(timeline: Timeline) -> None:
    _assert_keeps_every_property(timeline)
