"""The legal team's cases in the ledger table (ports.CaseRecords): PK = CASES, SK = <case_id>."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dunning.adapters.keys import CASES_PK
from dunning.adapters.ledger import Item, Ledger
from dunning.ports import Record


def _record(item: Item) -> Record:
    return {"case_id": item["SK"], **{k: v for k, v in item.items() if k not in ("PK", "SK")}}


class DynamoCases:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def case(self, case_id: str) -> Record | None:
        item = self._ledger.get(CASES_PK, case_id)
        return _record(item) if item else None

    def cases(self) -> list[Record]:
        return [_record(item) for item in self._ledger.query_partition(CASES_PK)]

    def add_case(self, record: Mapping[str, Any]) -> bool:
        fields = {k: v for k, v in record.items() if k != "case_id"}
        return self._ledger.put_new({"PK": CASES_PK, "SK": record["case_id"], **fields})

    def update_case(
        self, case_id: str, fields: Mapping[str, Any], *, when: tuple[str | None, ...] | None = None
    ) -> bool:
        sets = {name: value for name, value in fields.items() if value is not None}
        removes = [name for name, value in fields.items() if value is None]
        names = {f"#{name}": name for name in fields}
        values: dict[str, Any] = {f":{name}": value for name, value in sets.items()}
        condition = None
        if when is not None:
            names["#notify_status"] = "notify_status"
            tests = ["attribute_not_exists(#notify_status)"] if None in when else []
            for index, status in enumerate(s for s in when if s is not None):
                values[f":when{index}"] = status
                tests.append(f"#notify_status = :when{index}")
            condition = " OR ".join(tests)
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(f"#{name} = :{name}" for name in sets) if sets else "",
                "REMOVE " + ", ".join(f"#{name}" for name in removes) if removes else "",
            )
            if part
        )
        request: dict[str, Any] = {"UpdateExpression": expression, "ExpressionAttributeNames": names}
        if values:
            request["ExpressionAttributeValues"] = values
        return self._ledger.update((CASES_PK, case_id), condition=condition, **request)
