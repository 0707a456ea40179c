"""What the CLI writes: the contact log as JSON lines, and the time a local upload is stamped with."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any


def upload_time(day: date | None) -> datetime:
    return datetime.combine(day, time(9), tzinfo=UTC) if day else datetime.now(UTC).replace(microsecond=0)


def write_events(events: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event, ensure_ascii=False, sort_keys=False) + "\n")
