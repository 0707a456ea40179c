"""Business days and sending slots in the customer's own calendar.

Pure functions: callers pass the instant (from a Clock), the customer's IANA time zone and country, and the
policy's sending window. Weekends and holidays come from the `holidays` package (weekends differ: Friday in
Iran, Friday-Saturday in Saudi Arabia) and are built lazily, once per (country, year), so importing this
module costs nothing but the import.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dunning.domain.policy import Window

# Any real calendar has a business day within a couple of weeks; the bound only stops a runaway loop.
_MAX_DAYS = 366
_MINUTE = timedelta(minutes=1)


_SATURDAY_SUNDAY = frozenset({5, 6})


@lru_cache(maxsize=512)
def _days_off(country: str, year: int) -> frozenset[date]:
    """The weekend days and public holidays of `country` (normalised; "" for none) in `year`."""
    first = date(year, 1, 1)
    year_days = [first + timedelta(days=n) for n in range((date(year + 1, 1, 1) - first).days)]
    # Imported here: the functions that never count business days (the scan, the ingest, SES events) import
    # this module for local_date alone (issue 12); escalate and send_notice load it with their handlers.
    import holidays

    try:
        calendar = holidays.country_holidays(country, years=year) if country else None
    except NotImplementedError:
        # The package's way of saying it has no calendar for this code: fall back to a Saturday-Sunday
        # weekend and no holidays rather than refuse to send, since an unknown holiday costs a day's delay
        # at worst.
        calendar = None
    if calendar is None:
        return frozenset(day for day in year_days if day.weekday() in _SATURDAY_SUNDAY)
    # Asked day by day rather than read from the calendar's `weekend` set, because the package dates the
    # countries that moved their weekend (Saudi Arabia to Friday-Saturday in 2013, the UAE to
    # Saturday-Sunday in 2022). The holiday keys are a snapshot: a HolidayBase grows itself by whole years
    # whenever it is asked about another one.
    weekend = (day for day in year_days if calendar.is_weekend(day))
    return frozenset(calendar.keys()).union(weekend)


def is_business_day(day: date, country: str | None) -> bool:
    """Not a weekend day nor a public holiday of `country` (ISO 3166 alpha-2), both as the holidays package
    has them: Saudi Arabia rests Friday-Saturday, Iran on Friday. None or a country the package does not
    know: Monday-Friday (no holidays)."""
    return day not in _days_off((country or "").strip().upper(), day.year)


def _next_business_day(day: date, country: str | None) -> date:
    """`day` itself if it is a business day, else the first one after it."""
    for offset in range(_MAX_DAYS + 1):
        candidate = day + timedelta(days=offset)
        if is_business_day(candidate, country):
            return candidate
    raise ValueError(f"no business day in {country or 'the calendar'} within {_MAX_DAYS} days of {day}")


def add_business_days(day: date, days: int, country: str | None) -> date:
    """`day` plus `days` business days (days >= 0; 0 returns `day` itself if it is a business day, else the
    next business day).

    Counting starts on the day after `day`, as in a spreadsheet's WORKDAY: Friday + 1 and Saturday + 1 are
    both Monday (so for a weekend `day`, 0 and 1 give the same answer).
    """
    if days < 0:
        raise ValueError(f"days must be zero or more, not {days}")
    if days == 0:
        return _next_business_day(day, country)
    for _ in range(days):
        day = _next_business_day(day + timedelta(days=1), country)
    return day


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"'{timezone}' is not an IANA time zone such as Europe/Bucharest or UTC") from exc


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a time-zone aware datetime is required")


def local_date(at: datetime, timezone: str) -> date:
    """The calendar date of instant `at` in `timezone`."""
    _require_aware(at)
    return at.astimezone(_zone(timezone)).date()


def _ceil_minute(at: datetime) -> datetime:
    floor = at.replace(second=0, microsecond=0)
    return floor if floor == at else floor + _MINUTE


def _first_instant_after_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant clocks jump forward past the non-existent local time `wall` (naive), in UTC.

    zoneinfo maps a skipped time with the offset from before the jump (fold=0) or after it (fold=1); the
    jump itself lies between the two, and local time is monotonic there, so bisect on whole seconds.
    """
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    low, high = 0, int((after - before).total_seconds())
    while low < high:
        middle = (low + high) // 2
        probe = before + timedelta(seconds=middle)
        if probe.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle + 1
    return before + timedelta(seconds=low)


def _readings(day: date, clock: time, zone: ZoneInfo) -> list[datetime]:
    """The instants (UTC) at which the local clock reads `clock` on `day`, earliest first: usually one, two
    when clocks go back over it, and the first instant after the jump when clocks go forward over it."""
    wall = datetime.combine(day, clock)
    instants = {wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
    if any(instant.astimezone(zone).replace(tzinfo=None) != wall for instant in instants):
        return [_first_instant_after_gap(wall, zone)]
    return sorted(instants)


def _in_window(at: datetime, zone: ZoneInfo, country: str | None, window: Window) -> bool:
    local = at.astimezone(zone)
    return window.start <= local.time() < window.end and is_business_day(local.date(), country)


def next_send_slot(earliest: datetime, timezone: str, country: str | None, window: Window) -> datetime:
    """The first instant at or after `earliest` (time-zone aware) that falls on a business day of `country`
    in the customer's local calendar (`timezone`, IANA) and inside the local window [window.start,
    window.end). Returned in UTC on a whole minute (a time with seconds is rounded up).

    "Inside" means the local wall clock reads a time in the window, so every answer is a legal contact
    time even across daylight-saving changes. A window start skipped by clocks going forward opens at the
    first instant after the jump; one repeated by clocks going back opens at each reading. The one place
    this can answer later than strictly necessary is a window whose end falls in a repeated hour: the
    second pass through the window's tail is not offered, which errs on the side of not contacting.
    """
    _require_aware(earliest)
    if window.start.tzinfo is not None or window.end.tzinfo is not None:
        raise ValueError("the sending window must be local clock times, without a UTC offset")
    zone = _zone(timezone)
    at = _ceil_minute(earliest.astimezone(UTC))
    if _in_window(at, zone, country, window):
        return at
    first_day = at.astimezone(zone).date()
    for offset in range(_MAX_DAYS + 1):
        day = first_day + timedelta(days=offset)
        if not is_business_day(day, country):
            continue
        for opening in _readings(day, window.start, zone):
            # A start with seconds, or a jump that ends off the minute, still has to land on a whole minute.
            candidate = _ceil_minute(opening)
            if candidate >= at and _in_window(candidate, zone, country, window):
                return candidate
    raise ValueError(f"no sending slot in {country or 'the calendar'} within {_MAX_DAYS} days of {earliest}")


def spread_send_slot(slot: datetime, key: str, timezone: str, window: Window, spread: timedelta) -> datetime:
    """`slot` (from next_send_slot) moved to this key's own moment of its day's window: the window's opening
    plus an offset of up to `spread` (at most the window's length) that depends only on `key`, to the second.
    A slot already past that moment stays as it is, and so does one whose moment would fall outside the
    window. So each account's notices go out at the same time of day, and the accounts of one day are spread
    over the window instead of all at its opening (SES's sending rate, Lambda's concurrency: docs/scale.md).
    """
    if spread <= timedelta(0):
        return slot
    zone = _zone(timezone)
    local = slot.astimezone(zone)
    opening = datetime.combine(local.date(), window.start, tzinfo=zone)
    closing = datetime.combine(local.date(), window.end, tzinfo=zone)
    room = int(min(spread, closing - opening - timedelta(minutes=1)).total_seconds())
    if room <= 0:
        return slot
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    moment = (opening + timedelta(seconds=digest % room)).astimezone(UTC)
    inside = window.start <= moment.astimezone(zone).time() < window.end  # a clock change that day
    return moment if moment > slot and inside else slot
