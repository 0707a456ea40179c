"""Time as a collaborator: production code asks a Clock, tests and the simulator move it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, time-zone aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a time-zone aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a time-zone aware datetime")
        self._at = at.astimezone(UTC)


def rfc3339(at: datetime) -> str:
    """UTC timestamp as written in the contact log: 2027-01-15T08:00:00Z (microseconds kept if present)."""
    if at.tzinfo is None:
        raise ValueError("timestamps must be time-zone aware")
    text = at.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


_override: Clock | None = None


def current_clock() -> Clock:
    """The clock handlers pass to the domain: the system clock, unless the local simulator set its own."""
    return _override or SystemClock()


def use_clock(clock: Clock | None) -> None:
    """Install (or, with None, remove) the simulator's clock for handlers running in this process."""
    global _override
    _override = clock
