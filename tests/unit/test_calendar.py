"""Business days and sending slots. Every expected instant below was worked out by hand from the stated
local time and offset (EET +02, EEST +03, GMT +00, BST +01, EST -05, EDT -04) and the holiday facts the
tests pin first, so a change in the holidays data shows up as a failing fact, not a puzzling slot."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from dunning.domain import calendar as business_calendar
from dunning.domain.calendar import (
    add_business_days,
    is_business_day,
    local_date,
    next_send_slot,
    spread_send_slot,
)
from dunning.domain.policy import CONSUMER_LIMITS, Window

OFFICE = Window(start=time(9), end=time(17))
BUCHAREST = ZoneInfo("Europe/Bucharest")
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
CAIRO = ZoneInfo("Africa/Cairo")
RIYADH = ZoneInfo("Asia/Riyadh")  # +03 all year
TEHRAN = ZoneInfo("Asia/Tehran")  # +03:30 all year since 2022


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def every_day_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """DST changes in Europe and the US happen on Sundays; lift the weekend to reach them."""
    monkeypatch.setattr(business_calendar, "is_business_day", lambda day, country: True)


# --- the holiday facts the slot tests rely on -------------------------------------------------------------


def test_holiday_facts_from_the_package() -> None:
    ro = holidays.country_holidays("RO", years=2026)
    assert ro[date(2026, 11, 30)] == "Saint Andrew's Day"  # Monday
    assert ro[date(2026, 12, 1)] == "National Day"  # Tuesday
    gb = holidays.country_holidays("GB", years=2026)
    assert gb[date(2026, 12, 25)] == "Christmas Day"  # Friday
    assert gb[date(2026, 12, 26)] == "Boxing Day"  # Saturday...
    assert gb[date(2026, 12, 28)] == "Boxing Day (observed)"  # ...so the Monday is the substitute day
    assert date(2026, 12, 29) not in gb
    us = holidays.country_holidays("US", years=2026)
    assert us[date(2026, 7, 3)] == "Independence Day (observed)"  # Friday; the 4th is a Saturday


def test_weekend_facts_from_the_package() -> None:
    assert holidays.country_holidays("SA").weekend == {4, 5}  # Friday-Saturday
    assert holidays.country_holidays("IR").weekend == {4}  # Friday only
    assert holidays.country_holidays("RO").weekend == {5, 6}
    # 8-11 January 2026 (Thursday-Sunday) hold no holiday in either country, so only the weekend speaks.
    for country in ("SA", "IR"):
        assert not set(holidays.country_holidays(country, years=2026)) & {
            date(2026, 1, d) for d in range(8, 12)
        }


# --- is_business_day --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "country", "expected"),
    [
        (date(2026, 1, 9), "RO", True),  # Friday
        (date(2026, 1, 10), "RO", False),  # Saturday
        (date(2026, 1, 11), "RO", False),  # Sunday
        (date(2026, 12, 1), "RO", False),  # National Day
        (date(2026, 12, 1), "GB", True),
        (date(2026, 12, 25), "GB", False),
        (date(2026, 12, 28), "GB", False),  # Boxing Day substitute
        (date(2026, 12, 29), "GB", True),
        (date(2026, 7, 3), "US", False),
        (date(2026, 12, 1), " ro ", False),  # normalised like the customer model does
        # Saudi Arabia rests Friday-Saturday, Iran on Friday: Sunday is a working day in both.
        (date(2026, 1, 8), "SA", True),  # Thursday
        (date(2026, 1, 9), "SA", False),  # Friday
        (date(2026, 1, 10), "SA", False),  # Saturday
        (date(2026, 1, 11), "SA", True),  # Sunday
        (date(2026, 1, 8), "IR", True),  # Thursday
        (date(2026, 1, 9), "IR", False),  # Friday
        (date(2026, 1, 10), "IR", True),  # Saturday
        (date(2026, 1, 11), "ir", True),  # Sunday
        # The package dates weekend changes: Saudi Arabia rested Thursday-Friday until 28 June 2013, the
        # UAE Friday-Saturday until the end of 2021.
        (date(2013, 6, 27), "SA", False),  # Thursday
        (date(2013, 6, 22), "SA", True),  # Saturday
        (date(2021, 1, 8), "AE", False),  # Friday
        (date(2021, 1, 10), "AE", True),  # Sunday
        (date(2026, 1, 9), "AE", True),  # Friday
        (date(2026, 1, 11), "AE", False),  # Sunday
    ],
)
def test_is_business_day(day: date, country: str, expected: bool) -> None:
    assert is_business_day(day, country) is expected


@pytest.mark.parametrize("country", [None, "XX", ""])
def test_no_known_country_means_weekends_only(country: str | None) -> None:
    assert is_business_day(date(2026, 12, 25), country)  # Christmas, a Friday
    assert is_business_day(date(2026, 12, 1), country)
    assert not is_business_day(date(2026, 12, 26), country)  # Saturday
    assert not is_business_day(date(2026, 12, 27), country)  # Sunday


def test_holiday_calendars_are_cached_per_country_and_year() -> None:
    business_calendar._days_off.cache_clear()
    for day in (date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)):
        is_business_day(day, "RO")
    is_business_day(date(2027, 12, 1), "RO")
    info = business_calendar._days_off.cache_info()
    assert (info.misses, info.hits) == (2, 2)


# --- add_business_days ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "days", "country", "expected"),
    [
        (date(2026, 1, 14), 0, "RO", date(2026, 1, 14)),  # a business day stays put
        (date(2026, 1, 10), 0, "RO", date(2026, 1, 12)),  # Saturday rolls to Monday
        (date(2026, 1, 9), 1, "RO", date(2026, 1, 12)),  # Friday + 1 crosses the weekend
        (date(2026, 1, 10), 1, "RO", date(2026, 1, 12)),  # counting starts the day after
        (date(2026, 1, 8), 3, "RO", date(2026, 1, 13)),  # Fri, Mon, Tue
        # Fri 27 Nov counts one; Sat, Sun, then Mon 30 Nov and Tue 1 Dec are holidays.
        (date(2026, 11, 26), 2, "RO", date(2026, 12, 2)),
        (date(2026, 11, 26), 2, None, date(2026, 11, 30)),
        (date(2026, 12, 24), 1, "GB", date(2026, 12, 29)),  # Christmas, weekend, Boxing Day substitute
        (date(2026, 12, 31), 2, "GB", date(2027, 1, 5)),  # New Year's Day, across the year end
        (date(2026, 1, 8), 1, "SA", date(2026, 1, 11)),  # Thursday + 1 crosses Friday-Saturday
        (date(2026, 1, 9), 0, "SA", date(2026, 1, 11)),
        (date(2026, 1, 8), 1, "IR", date(2026, 1, 10)),  # only Friday is off
        (date(2026, 1, 9), 0, "IR", date(2026, 1, 10)),
        # Sun 11 - Thu 15, then Sunday 18 in Riyadh (Monday 19 with a Saturday-Sunday weekend).
        (date(2026, 1, 8), 6, "SA", date(2026, 1, 18)),
        # Six days a week in Tehran: Sat 10 - Thu 15, Sat 17 is a holiday (Isra' and Mi'raj), Sun 18 - Wed 21.
        (date(2026, 1, 8), 10, "IR", date(2026, 1, 21)),
    ],
)
def test_add_business_days(day: date, days: int, country: str | None, expected: date) -> None:
    assert add_business_days(day, days, country) == expected


def test_add_business_days_refuses_going_back() -> None:
    with pytest.raises(ValueError, match="zero or more"):
        add_business_days(date(2026, 1, 14), -1, "RO")


# --- local_date -------------------------------------------------------------------------------------------


def test_local_date() -> None:
    at = utc(2026, 1, 9, 23, 30)
    assert local_date(at, "Europe/Bucharest") == date(2026, 1, 10)
    assert local_date(at, "America/New_York") == date(2026, 1, 9)
    assert local_date(at, "UTC") == date(2026, 1, 9)


# --- next_send_slot: the everyday cases -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earliest", "expected"),
    [
        # Friday 17:30 EET is past the window: Monday 09:00 EET.
        (datetime(2026, 1, 9, 17, 30, tzinfo=BUCHAREST), utc(2026, 1, 12, 7)),
        # Exactly at the window end counts as past it.
        (datetime(2026, 1, 9, 17, 0, tzinfo=BUCHAREST), utc(2026, 1, 12, 7)),
        # Saturday: Monday.
        (datetime(2026, 1, 10, 11, 0, tzinfo=BUCHAREST), utc(2026, 1, 12, 7)),
        # Before the window on a business day: that day's start.
        (datetime(2026, 1, 14, 6, 45, tzinfo=BUCHAREST), utc(2026, 1, 14, 7)),
        # Inside the window: unchanged.
        (datetime(2026, 1, 14, 9, 0, tzinfo=BUCHAREST), utc(2026, 1, 14, 7)),
        (datetime(2026, 1, 14, 10, 15, tzinfo=BUCHAREST), utc(2026, 1, 14, 8, 15)),
        (datetime(2026, 1, 14, 16, 59, tzinfo=BUCHAREST), utc(2026, 1, 14, 14, 59)),
        # Tuesday 1 Dec (National Day): Wednesday, in winter time.
        (datetime(2026, 12, 1, 10, 0, tzinfo=BUCHAREST), utc(2026, 12, 2, 7)),
        # Monday 30 Nov (Saint Andrew's Day) morning: skips it and National Day.
        (datetime(2026, 11, 30, 8, 0, tzinfo=BUCHAREST), utc(2026, 12, 2, 7)),
        # Summer time: 09:00 EEST is 06:00Z.
        (datetime(2026, 7, 10, 18, 0, tzinfo=BUCHAREST), utc(2026, 7, 13, 6)),
    ],
)
def test_bucharest_office_hours(earliest: datetime, expected: datetime) -> None:
    assert next_send_slot(earliest, "Europe/Bucharest", "RO", OFFICE) == expected


def test_result_is_utc_whatever_zone_earliest_is_given_in() -> None:
    earliest = datetime(2026, 1, 14, 13, 15, tzinfo=ZoneInfo("Asia/Karachi"))  # 08:15Z, 10:15 in Bucharest
    slot = next_send_slot(earliest, "Europe/Bucharest", "RO", OFFICE)
    assert slot == utc(2026, 1, 14, 8, 15)
    assert slot.tzinfo is UTC


@pytest.mark.parametrize(
    ("earliest", "expected"),
    [
        (datetime(2026, 1, 14, 10, 15, 1, tzinfo=BUCHAREST), utc(2026, 1, 14, 8, 16)),
        (datetime(2026, 1, 14, 10, 15, 0, 1, tzinfo=BUCHAREST), utc(2026, 1, 14, 8, 16)),
        (datetime(2026, 1, 14, 16, 58, 30, tzinfo=BUCHAREST), utc(2026, 1, 14, 14, 59)),
        # Rounding up reaches the window end, so the slot moves to the next business day.
        (datetime(2026, 1, 14, 16, 59, 30, tzinfo=BUCHAREST), utc(2026, 1, 15, 7)),
        (datetime(2026, 1, 14, 8, 59, 59, tzinfo=BUCHAREST), utc(2026, 1, 14, 7)),
    ],
)
def test_seconds_round_up_to_the_minute(earliest: datetime, expected: datetime) -> None:
    slot = next_send_slot(earliest, "Europe/Bucharest", "RO", OFFICE)
    assert slot == expected
    assert (slot.second, slot.microsecond) == (0, 0)


def test_window_start_with_seconds_lands_on_the_next_minute() -> None:
    window = Window(start=time(9, 0, 30), end=time(17))
    slot = next_send_slot(datetime(2026, 1, 14, 6, 0, tzinfo=BUCHAREST), "Europe/Bucharest", "RO", window)
    assert slot == utc(2026, 1, 14, 7, 1)


@pytest.mark.parametrize(
    ("earliest", "expected"),
    [
        # Thursday 24 Dec after hours: Christmas (Fri), weekend, Boxing Day substitute (Mon 28): Tue 29.
        (datetime(2026, 12, 24, 17, 30, tzinfo=LONDON), utc(2026, 12, 29, 9)),
        (datetime(2026, 12, 25, 10, 0, tzinfo=LONDON), utc(2026, 12, 29, 9)),
        (datetime(2026, 12, 28, 10, 0, tzinfo=LONDON), utc(2026, 12, 29, 9)),
        (datetime(2026, 12, 29, 10, 0, tzinfo=LONDON), utc(2026, 12, 29, 10)),
    ],
)
def test_british_christmas(earliest: datetime, expected: datetime) -> None:
    assert next_send_slot(earliest, "Europe/London", "GB", OFFICE) == expected


@pytest.mark.parametrize(
    ("earliest", "expected"),
    [
        # Monday 07:00 EST is before 08:00 EST (13:00Z).
        (datetime(2026, 3, 2, 7, 0, tzinfo=NEW_YORK), utc(2026, 3, 2, 13)),
        (datetime(2026, 3, 2, 20, 58, 30, tzinfo=NEW_YORK), utc(2026, 3, 3, 1, 59)),  # 20:59 EST
        (datetime(2026, 3, 2, 20, 59, 30, tzinfo=NEW_YORK), utc(2026, 3, 3, 13)),  # rounds to 21:00: out
        (datetime(2026, 3, 2, 21, 0, tzinfo=NEW_YORK), utc(2026, 3, 3, 13)),
        # Friday night EST, clocks go forward on Sunday 8 March: Monday 08:00 EDT is 12:00Z.
        (datetime(2026, 3, 6, 21, 0, tzinfo=NEW_YORK), utc(2026, 3, 9, 12)),
        # Thursday 2 July evening; Friday 3 July is Independence Day (observed): Monday 6 July.
        (datetime(2026, 7, 2, 21, 30, tzinfo=NEW_YORK), utc(2026, 7, 6, 12)),
    ],
)
def test_us_consumer_hours(earliest: datetime, expected: datetime) -> None:
    assert (CONSUMER_LIMITS.start, CONSUMER_LIMITS.end) == (time(8), time(21))
    assert next_send_slot(earliest, "America/New_York", "US", CONSUMER_LIMITS) == expected


@pytest.mark.parametrize(
    ("country", "zone", "earliest", "expected"),
    [
        # Thursday after hours in Riyadh: Sunday 09:00 +03.
        ("SA", "Asia/Riyadh", datetime(2026, 1, 8, 17, 30, tzinfo=RIYADH), utc(2026, 1, 11, 6)),
        ("SA", "Asia/Riyadh", datetime(2026, 1, 9, 10, 0, tzinfo=RIYADH), utc(2026, 1, 11, 6)),  # Friday
        ("SA", "Asia/Riyadh", datetime(2026, 1, 11, 10, 0, tzinfo=RIYADH), utc(2026, 1, 11, 7)),  # Sunday
        # Thursday after hours in Tehran: Saturday 09:00 +03:30.
        ("IR", "Asia/Tehran", datetime(2026, 1, 8, 17, 30, tzinfo=TEHRAN), utc(2026, 1, 10, 5, 30)),
        ("IR", "Asia/Tehran", datetime(2026, 1, 9, 10, 0, tzinfo=TEHRAN), utc(2026, 1, 10, 5, 30)),  # Friday
    ],
)
def test_weekend_of_the_customer_country(
    country: str, zone: str, earliest: datetime, expected: datetime
) -> None:
    assert next_send_slot(earliest, zone, country, OFFICE) == expected


@pytest.mark.parametrize("country", [None, "XX"])
def test_no_known_country_sends_on_holidays(country: str | None) -> None:
    national_day = datetime(2026, 12, 1, 8, 0, tzinfo=BUCHAREST)
    assert next_send_slot(national_day, "Europe/Bucharest", country, OFFICE) == utc(2026, 12, 1, 7)
    saturday = datetime(2026, 12, 5, 8, 0, tzinfo=BUCHAREST)
    assert next_send_slot(saturday, "Europe/Bucharest", country, OFFICE) == utc(2026, 12, 7, 7)


# --- next_send_slot: daylight saving ----------------------------------------------------------------------


def test_london_weekend_spanning_the_clock_change() -> None:
    # Friday 27 March 17:30 GMT; clocks go forward on Sunday 29 March: Monday 09:00 BST is 08:00Z.
    earliest = datetime(2026, 3, 27, 17, 30, tzinfo=LONDON)
    assert next_send_slot(earliest, "Europe/London", "GB", OFFICE) == utc(2026, 3, 30, 8)
    # And back again: Friday 23 October, clocks go back on Sunday 25th: Monday 09:00 GMT.
    earliest = datetime(2026, 10, 23, 17, 30, tzinfo=LONDON)
    assert next_send_slot(earliest, "Europe/London", "GB", OFFICE) == utc(2026, 10, 26, 9)


@pytest.mark.usefixtures("every_day_open")
def test_london_window_start_in_the_spring_gap() -> None:
    # Sunday 29 March 2026: 01:00 GMT becomes 02:00 BST, so 01:30 never happens; the window opens at the
    # first instant after the jump, 02:00 BST = 01:00Z.
    window = Window(start=time(1, 30), end=time(5))
    earliest = datetime(2026, 3, 29, 0, 0, tzinfo=LONDON)
    assert next_send_slot(earliest, "Europe/London", None, window) == utc(2026, 3, 29, 1)
    # Already past the jump and inside the window: unchanged.
    assert next_send_slot(utc(2026, 3, 29, 1, 20), "Europe/London", None, window) == utc(2026, 3, 29, 1, 20)


@pytest.mark.usefixtures("every_day_open")
def test_window_wholly_inside_the_gap_is_skipped() -> None:
    # 01:10-01:50 does not exist on 29 March in London: nothing that day, 01:10 GMT on the 30th.
    window = Window(start=time(1, 10), end=time(1, 50))
    earliest = datetime(2026, 3, 29, 0, 0, tzinfo=LONDON)
    assert next_send_slot(earliest, "Europe/London", None, window) == utc(2026, 3, 30, 0, 10)


def test_cairo_spring_gap_on_a_weekday() -> None:
    # Egypt moves its clocks on Friday 24 April 2026 at 00:00 EET, straight to 01:00 EEST (22:00Z on the
    # 23rd), so a 00:30 window start resolves to 01:00 EEST without lifting the weekend.
    window = Window(start=time(0, 30), end=time(6))
    earliest = datetime(2026, 4, 23, 23, 0, tzinfo=CAIRO)
    assert next_send_slot(earliest, "Africa/Cairo", None, window) == utc(2026, 4, 23, 22)


@pytest.mark.parametrize(
    ("earliest", "expected"),
    [
        (utc(2026, 10, 29, 20, 0), utc(2026, 10, 29, 20, 15)),  # 23:00 EEST: first 23:15
        (utc(2026, 10, 29, 20, 30), utc(2026, 10, 29, 20, 30)),  # 23:30 EEST: inside
        (utc(2026, 10, 29, 20, 50), utc(2026, 10, 29, 21, 15)),  # 23:50 EEST: the repeated 23:15, EET
        (utc(2026, 10, 29, 21, 40), utc(2026, 10, 29, 21, 40)),  # 23:40 EET: inside the repeat
        (utc(2026, 10, 29, 21, 45), utc(2026, 10, 30, 21, 15)),  # 23:45 EET: Friday 23:15 EET
    ],
)
def test_cairo_repeated_hour_on_a_weekday(earliest: datetime, expected: datetime) -> None:
    # Egypt turns its clocks back at the end of Thursday 29 October 2026: 24:00 EEST becomes 23:00 EET, so
    # the local clock reads 23:00-23:59 twice (20:00-21:00Z, then 21:00-22:00Z).
    window = Window(start=time(23, 15), end=time(23, 45))
    assert next_send_slot(earliest, "Africa/Cairo", None, window) == expected


def test_a_day_that_never_happened() -> None:
    # Samoa skipped Friday 30 December 2011 (UTC-10 to UTC+14): Thursday after hours goes to Monday 2 Jan
    # 09:00 +14, which is 19:00Z on New Year's Day.
    earliest = datetime(2011, 12, 29, 17, 30, tzinfo=ZoneInfo("Pacific/Apia"))
    assert next_send_slot(earliest, "Pacific/Apia", None, OFFICE) == utc(2012, 1, 1, 19)


def _slow_next_slot(earliest: datetime, zone: ZoneInfo, country: str | None, window: Window) -> datetime:
    """Minute by minute, the definition itself."""
    at = earliest.replace(second=0, microsecond=0)
    if at < earliest:
        at += timedelta(minutes=1)
    at = at.astimezone(UTC)
    while True:
        local = at.astimezone(zone)
        if window.start <= local.time() < window.end and is_business_day(local.date(), country):
            return at
        at += timedelta(minutes=1)


@pytest.mark.parametrize(
    ("zone_name", "country", "window", "around"),
    [
        ("Europe/London", "GB", OFFICE, utc(2026, 3, 27)),
        ("Europe/London", "GB", OFFICE, utc(2026, 12, 23)),
        ("Europe/Bucharest", "RO", OFFICE, utc(2026, 11, 27)),
        ("Asia/Riyadh", "SA", OFFICE, utc(2026, 1, 7)),
        ("Asia/Tehran", "IR", OFFICE, utc(2026, 1, 7)),
        ("America/New_York", "US", CONSUMER_LIMITS, utc(2026, 11, 5)),
        ("Africa/Cairo", None, Window(start=time(0, 30), end=time(2)), utc(2026, 4, 22)),
        ("Africa/Cairo", None, Window(start=time(23, 15), end=time(23, 45)), utc(2026, 10, 28)),
    ],
)
def test_agrees_with_a_minute_by_minute_search(
    zone_name: str, country: str | None, window: Window, around: datetime
) -> None:
    zone = ZoneInfo(zone_name)
    for step in range(0, 4 * 24 * 60, 97):  # every 97 minutes for four days hits all parts of the clock
        earliest = around + timedelta(minutes=step, seconds=step % 60)
        expected = _slow_next_slot(earliest, zone, country, window)
        assert next_send_slot(earliest, zone_name, country, window) == expected, earliest


# --- next_send_slot: refusals -----------------------------------------------------------------------------


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_send_slot(datetime(2026, 1, 14, 10, 0), "Europe/Bucharest", "RO", OFFICE)
    with pytest.raises(ValueError, match="aware"):
        local_date(datetime(2026, 1, 14, 10, 0), "Europe/Bucharest")


@pytest.mark.parametrize("zone_name", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_unknown_time_zones_are_refused(zone_name: str) -> None:
    with pytest.raises(ValueError, match="IANA"):
        next_send_slot(utc(2026, 1, 14, 10), zone_name, "RO", OFFICE)
    with pytest.raises(ValueError, match="IANA"):
        local_date(utc(2026, 1, 14, 10), zone_name)


def test_window_with_an_offset_is_refused() -> None:
    window = Window(start=time(9, tzinfo=UTC), end=time(17, tzinfo=UTC))
    with pytest.raises(ValueError, match="local clock times"):
        next_send_slot(utc(2026, 1, 14, 10), "Europe/Bucharest", "RO", window)


def test_gives_up_after_a_year_without_a_business_day(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(business_calendar, "is_business_day", lambda day, country: False)
    with pytest.raises(ValueError, match="366 days"):
        next_send_slot(utc(2026, 1, 14, 10), "Europe/Bucharest", "RO", OFFICE)
    with pytest.raises(ValueError, match="366 days"):
        add_business_days(date(2026, 1, 14), 0, "RO")


# --- each account's own moment of the window (SendSpreadMinutes) --------------------------------------------

WINDOW = Window(start=time(9), end=time(17))
OPENING = datetime(2027, 2, 8, 9, 0, tzinfo=UTC)  # a Monday, the window's opening in UTC


def test_accounts_are_spread_over_the_spread_each_at_its_own_second_every_day() -> None:
    spread = timedelta(minutes=240)
    moments = [spread_send_slot(OPENING, f"ACC-{n}", "UTC", WINDOW, spread) for n in range(2000)]
    next_day = [
        spread_send_slot(OPENING + timedelta(days=1), f"ACC-{n}", "UTC", WINDOW, spread) for n in range(2000)
    ]

    assert all(OPENING <= moment < OPENING + spread for moment in moments)
    assert [m + timedelta(days=1) for m in moments] == next_day, "the same time of day for one account"
    per_second = Counter(moments)
    assert len(per_second) > 1800 and max(per_second.values()) <= 3, "spread to the second, not bunched"


def test_a_slot_already_past_the_accounts_moment_or_a_spread_of_zero_stays_as_it_is() -> None:
    moment = spread_send_slot(OPENING, "ACME", "UTC", WINDOW, timedelta(minutes=240))
    later = moment + timedelta(minutes=5)

    assert spread_send_slot(later, "ACME", "UTC", WINDOW, timedelta(minutes=240)) == later
    assert spread_send_slot(OPENING, "ACME", "UTC", WINDOW, timedelta(0)) == OPENING


def test_a_spread_longer_than_the_window_stays_inside_it_in_the_customers_time_zone() -> None:
    opening_tokyo = datetime(2027, 2, 8, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
    moments = [
        spread_send_slot(opening_tokyo, f"ACC-{n}", "Asia/Tokyo", WINDOW, timedelta(hours=24))
        for n in range(500)
    ]
    local = [moment.astimezone(ZoneInfo("Asia/Tokyo")).time() for moment in moments]
    assert all(time(9) <= clock < time(17) for clock in local)
