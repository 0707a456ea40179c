"""The suppression list and the delivery reports in the ledger table (ports.Suppressions).

PK = SUPPRESSED#<address>   SK = SUPPRESSED          one per address (normalized)
PK = DELIVERY#<message id>  SK = <reason>#<address>  the first report of each kind, which fixes its time
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dunning.adapters.keys import delivery_report_key, suppressed_key
from dunning.adapters.ledger import Ledger, plain
from dunning.domain.models import normalize_address
from dunning.ports import Record


class DynamoSuppressions:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def suppress(self, address: str, fields: Mapping[str, Any], at: str) -> bool:
        # An UpdateItem rather than a conditional put: renewing a lifted suppression must also drop lifted_at.
        # A lifted one is only renewed by a report newer than the lift: EventBridge may deliver an old bounce
        # again (a retry, a redriven dead letter) after a person declared the address fixed.
        return self._ledger.update(
            suppressed_key(normalize_address(address)),
            condition="attribute_not_exists(PK) OR lifted_at < :lifted_before",
            UpdateExpression="SET "
            + ", ".join(f"#{name} = :{name}" for name in fields)
            + " REMOVE lifted_at",
            ExpressionAttributeNames={f"#{name}": name for name in fields},
            ExpressionAttributeValues={
                **{f":{name}": value for name, value in fields.items()},
                ":lifted_before": at,
            },
        )

    def suppressed(self, addresses: Iterable[str]) -> set[str]:
        keys = {
            address: suppressed_key(normalize_address(address))
            for address in addresses
            if normalize_address(address)
        }
        found = self._ledger.get_many(keys.values())
        return {
            address
            for address, key in keys.items()
            if (item := found.get(key)) is not None and "lifted_at" not in item
        }

    def lift(self, address: str, at: str) -> bool:
        return self._ledger.update(
            suppressed_key(normalize_address(address)),
            condition="attribute_exists(PK) AND attribute_not_exists(lifted_at)",
            UpdateExpression="SET lifted_at = :at",
            ExpressionAttributeValues={":at": at},
        )

    def add_report(self, record: Mapping[str, Any]) -> bool:
        pk, sk = self._report_key(record["message_id"], record["reason"], record["address"])
        return self._ledger.put_new({"PK": pk, "SK": sk, **record})

    def report(self, message_id: str, reason: str, address: str) -> Record | None:
        item = self._ledger.get(*self._report_key(message_id, reason, address))
        return plain({k: v for k, v in item.items() if k not in ("PK", "SK")}) if item else None

    @staticmethod
    def _report_key(message_id: str, reason: str, address: str) -> tuple[str, str]:
        return delivery_report_key(message_id, reason, normalize_address(address))
