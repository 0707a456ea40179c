"""The ledger: one DynamoDB table holding every account's invoices, payments, actions and contact log.

The key schema (every PK, SK and prefix) is in dunning.adapters.keys; docs/data-model.md describes
the access pattern each key serves. The GSI `due` (due_pk = DUE#<shard>, due_sk = <due_on>#<account_id>#
<invoice_id>) is only on invoices that owe something by their own export figure and payments
(`InvoiceState.own`, dunning.domain.balances), so a sparse index the daily scan reads without paid ones.
Account credits (credit notes, another invoice's overpayment) are not considered: such an invoice may stay
in the index and the scan finds it settled, but an invoice that owes is never out of it.

Balances are never stored as counters: an invoice's outstanding amount is derived from its imported
amount and its payment items (`dunning.domain.balances`). Payment items are written with a condition
(attribute_not_exists) and invoice corrections with a condition on the row they replace, so a payment
and an import, or two deliveries of one file, can race without losing an update.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

# DUE_INDEX and due_keys are re-exported for bench/ (scan_simulate, ingest_fuzz), which import them from here.
from dunning.adapters.keys import DUE_INDEX as DUE_INDEX
from dunning.adapters.keys import EVENT_PREFIX, account_pk, event_sk, invoice_sk, payment_prefix
from dunning.adapters.keys import due_keys as due_keys
from dunning.domain.clock import rfc3339
from dunning.domain.events import Event

Item = dict[str, Any]

BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
MAX_ATTEMPTS = 8


def event_item(event: Event) -> Item:
    return {
        "PK": account_pk(event.account_id),
        "SK": event_sk(event),
        "kind": "event",
        "at": rfc3339(event.at),
        "identity": event.identity,
        "event": event.to_json(),
    }


def plain(value: Any) -> Any:
    """An item value as plain JSON data: DynamoDB returns every number as a Decimal."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {key: plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [plain(inner) for inner in value]
    return value


def _keyed(key: tuple[str, str], condition: str | None, request: dict[str, Any]) -> dict[str, Any]:
    keyed = {"Key": {"PK": key[0], "SK": key[1]}, **request}
    if condition:
        keyed["ConditionExpression"] = condition
    return keyed


def _unless_condition_fails(operation: Callable[..., Any], **request: Any) -> bool:
    """Run a conditional write; False when its condition did not hold (nothing was written)."""
    try:
        operation(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _paged(operation: Callable[..., Any], **request: Any) -> Iterator[Item]:
    """Every item of a Query or Scan, following LastEvaluatedKey page by page."""
    while True:
        page = operation(**request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class LedgerError(RuntimeError):
    """DynamoDB kept refusing work after every retry."""


@dataclass
class Backoff:
    """Exponential backoff with full jitter; `sleep` is injectable so tests never wait."""

    base_seconds: float = 0.05
    cap_seconds: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def pause(self, attempt: int) -> None:
        # Jitter only spreads retries apart; it needs no cryptographic randomness.
        self.sleep(random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt)))  # noqa: S311


class Ledger:
    """Data access for the ledger table. Takes a boto3 DynamoDB service resource and the table name."""

    def __init__(self, dynamodb: Any, table_name: str, backoff: Backoff | None = None) -> None:
        self._dynamodb = dynamodb
        self._table = dynamodb.Table(table_name)
        self._name = table_name
        self._backoff = backoff or Backoff()

    @property
    def table_name(self) -> str:
        return self._name

    # --- batched access ----------------------------------------------------------------------------

    def write_batch(self, items: Sequence[Item]) -> None:
        """Put `items` with BatchWriteItem, 25 at a time, retrying UnprocessedItems with backoff.

        The caller must not pass two items with the same key (DynamoDB rejects such a batch)."""
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            pending: list[Item] = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            for attempt in range(MAX_ATTEMPTS):
                response = self._dynamodb.batch_write_item(RequestItems={self._name: pending})
                pending = response.get("UnprocessedItems", {}).get(self._name, [])
                if not pending:
                    break
                self._backoff.pause(attempt)
            else:
                raise LedgerError(f"{len(pending)} items still unprocessed after {MAX_ATTEMPTS} attempts")

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Item]:
        """BatchGetItem for (PK, SK) pairs, 100 at a time, retrying UnprocessedKeys with backoff."""
        unique = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], Item] = {}
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            pending: Mapping[str, Any] = {
                self._name: {
                    "Keys": [{"PK": pk, "SK": sk} for pk, sk in unique[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(MAX_ATTEMPTS):
                response = self._dynamodb.batch_get_item(RequestItems=pending)
                for item in response.get("Responses", {}).get(self._name, []):
                    found[(item["PK"], item["SK"])] = item
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                self._backoff.pause(attempt)
            else:
                raise LedgerError("keys still unprocessed after retries")
        return found

    # --- single items --------------------------------------------------------------------------------

    def get(self, pk: str, sk: str) -> Item | None:
        item: Item | None = self._table.get_item(Key={"PK": pk, "SK": sk}, ConsistentRead=True).get("Item")
        return item

    def put_new(self, item: Item) -> bool:
        """Put `item` only if its key is not taken yet; False when it already existed."""
        return _unless_condition_fails(
            self._table.put_item, Item=item, ConditionExpression="attribute_not_exists(PK)"
        )

    def replace(self, item: Item, *, expected_row_hash: str) -> bool:
        """Overwrite an item only if it still holds the version we read; False when it changed since."""
        return _unless_condition_fails(
            self._table.put_item,
            Item=item,
            ConditionExpression="row_hash = :expected",
            ExpressionAttributeValues={":expected": expected_row_hash},
        )

    def update(self, key: tuple[str, str], *, condition: str | None = None, **kwargs: Any) -> bool:
        """UpdateItem; False (instead of an error) when `condition` does not hold."""
        return _unless_condition_fails(self._table.update_item, **_keyed(key, condition, kwargs))

    def delete(self, key: tuple[str, str], *, condition: str | None = None, **kwargs: Any) -> bool:
        """DeleteItem; False (instead of an error) when `condition` does not hold."""
        return _unless_condition_fails(self._table.delete_item, **_keyed(key, condition, kwargs))

    def query_index(
        self, shard: str, up_to: str, index: str = DUE_INDEX, *, below: bool = False
    ) -> Iterator[Item]:
        """Items of one shard of a sparse index (`due` or `wake`: its keys are <index>_pk and <index>_sk)
        with a sort key <= up_to (< up_to when `below`)."""
        sort_key = Key(f"{index}_sk")
        condition = Key(f"{index}_pk").eq(shard) & (sort_key.lt(up_to) if below else sort_key.lte(up_to))
        return _paged(self._table.query, IndexName=index, KeyConditionExpression=condition)

    def index_page(
        self, index: str, shard: str, below: str, limit: int, start: Item | None
    ) -> tuple[list[Item], Item | None]:
        """At most `limit` items of one shard of a sparse index with a sort key < below, after `start` (the
        previous page's last key): the items and where the next page starts (None: no more)."""
        request: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": Key(f"{index}_pk").eq(shard) & Key(f"{index}_sk").lt(below),
            "Limit": limit,
        }
        if start is not None:
            request["ExclusiveStartKey"] = start
        page = self._table.query(**request)
        return page.get("Items", []), page.get("LastEvaluatedKey")

    def drop_from_due_index(self, account_id: str, invoice_id: str, *, row_hash: str) -> bool:
        """Take a settled invoice out of the sparse index, unless it was re-imported meanwhile."""
        return self.update(
            (account_pk(account_id), invoice_sk(invoice_id)),
            condition="row_hash = :expected",
            UpdateExpression="REMOVE due_pk, due_sk",
            ExpressionAttributeValues={":expected": row_hash},
        )

    # --- queries -------------------------------------------------------------------------------------

    def query_partition(self, pk: str, sk_prefix: str = "") -> Iterator[Item]:
        condition = Key("PK").eq(pk)
        if sk_prefix:
            condition = condition & Key("SK").begins_with(sk_prefix)
        return _paged(self._table.query, KeyConditionExpression=condition, ConsistentRead=True)

    def scan_kind(self, kind: str) -> Iterator[Item]:
        """Every item of one kind. A full Scan: for the local simulator and reports only."""
        return _paged(
            self._table.scan, FilterExpression="kind = :kind", ExpressionAttributeValues={":kind": kind}
        )

    def account_items(self, account_id: str) -> list[Item]:
        return list(self.query_partition(account_pk(account_id)))

    def payments_total(self, account_id: str, invoice_id: str) -> Decimal:
        payments = self.query_partition(account_pk(account_id), payment_prefix(invoice_id))
        return sum((Decimal(item["amount"]) for item in payments), Decimal(0))

    def events(self, account_id: str) -> list[dict[str, Any]]:
        return [plain(item["event"]) for item in self.query_partition(account_pk(account_id), EVENT_PREFIX)]

    def append_events(self, events: Iterable[Event]) -> None:
        unique = {item["PK"] + "\x00" + item["SK"]: item for item in map(event_item, events)}
        self.write_batch(list(unique.values()))

    def all_events(self) -> list[dict[str, Any]]:
        """Every event in the table in time order. A full Scan: for the local simulator and reports only."""
        items = list(self.scan_kind("event"))
        # Time first, then account, then the account's own order: one account's log reads in order, and
        # accounts acted on at the same instant come in a stable order.
        items.sort(key=lambda item: (item["SK"][:32], item["PK"], item["SK"]))
        return [plain(item["event"]) for item in items]
