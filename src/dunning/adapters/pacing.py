"""The SES pacer (ports.Pacer) over the ledger table: one item per second counts that second's sends.

Every send, from however many Lambda containers at once, takes a place in the bucket of its second with one
conditional UpdateItem; a full bucket refuses, and the send is retried later by the state machine
(SendThrottled), the way SES's own throttling would be, but before SES has to refuse anything. The items
expire (the table's TTL) a day later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dunning.adapters.keys import PACE_PK
from dunning.adapters.ledger import Ledger

KEPT_FOR = timedelta(days=1)


class DynamoPacer:
    def __init__(self, ledger: Ledger, per_second: int) -> None:
        self._ledger = ledger
        self._per_second = per_second

    def admit(self, at: datetime) -> bool:
        second = at.astimezone(UTC).replace(microsecond=0)
        return self._ledger.update(
            (PACE_PK, second.strftime("%Y-%m-%dT%H:%M:%SZ")),
            condition="attribute_not_exists(sent) OR sent < :rate",
            UpdateExpression="ADD sent :one SET expires_at = :expires",
            ExpressionAttributeValues={
                ":rate": self._per_second,
                ":one": 1,
                ":expires": int((second + KEPT_FOR).timestamp()),
            },
        )
