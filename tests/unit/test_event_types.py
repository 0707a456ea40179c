"""Event types are one list (`dunning.domain.events.EventType`): the code names them through it, and each
is documented for the people who read the contact log."""

from __future__ import annotations

import re
from pathlib import Path

from dunning.domain.events import EventType

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "dunning"
README = ROOT / "README.md"

# Types README.md does not name yet (CONTRACT section 5, which lists them all, is not in this repository).
# Shrink this set as README documents them; the test fails when one listed here is documented too.
UNDOCUMENTED: frozenset[str] = frozenset()
# Modules whose event-type literals are not yet EventType members (their owners are rewriting them).
PENDING: frozenset[str] = frozenset()


def _values() -> set[str]:
    return {value for name, value in vars(EventType).items() if name.isupper() and isinstance(value, str)}


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_values_are_unique_snake_case_strings() -> None:
    members = {name: value for name, value in vars(EventType).items() if name.isupper()}
    snake = re.compile(r"[a-z]+(_[a-z]+)+")
    assert all(isinstance(value, str) and snake.fullmatch(value) for value in members.values())
    assert len(set(members.values())) == len(members)
    assert all(name == value.upper() for name, value in members.items())


def test_every_event_type_is_documented_in_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    documented = {value for value in _values() if re.search(rf"\b{value}\b", readme)}
    assert sorted(_values() - documented - UNDOCUMENTED) == [], "event types README.md does not name"
    assert sorted(UNDOCUMENTED & documented) == [], "documented now: remove from UNDOCUMENTED"
    assert sorted(UNDOCUMENTED - _values()) == [], "not an event type: remove from UNDOCUMENTED"


def test_no_log_entry_is_built_from_a_string_literal() -> None:
    literal = re.compile(r"\bLogEntry\(\s*[rbuf]*[\"']")
    found = [
        f"{path.relative_to(SRC)}:{text[: match.start()].count(chr(10)) + 1}"
        for path in _sources()
        for text in [path.read_text(encoding="utf-8")]
        for match in literal.finditer(text)
    ]
    assert found == []


def test_event_types_are_named_through_the_enum() -> None:
    values = _values()
    literal = re.compile(r"[\"']([a-z]+(?:_[a-z]+)+)[\"']")
    found = []
    for path in _sources():
        name = path.relative_to(SRC).as_posix()
        if name == "domain/events.py" or name in PENDING:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            named = [m.group(1) for m in literal.finditer(line)]
            found += [f"{name}:{number}: {value}" for value in named if value in values]
    assert found == [], "use EventType members for these"
