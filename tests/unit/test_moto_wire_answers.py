"""DynamoDB answers in the embedded AWS (dunning.local.embedded_dynamodb.wire_ready_attribute_values): the
bytes on the wire are exactly moto's own, for every kind of attribute value and every operation that returns
items; only the work of producing them is skipped."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dunning.local import moto_internals
from dunning.local.embedded_dynamodb import on_the_wire, wire_ready_attribute_values

REGION = "eu-west-1"
TABLE = "ledger"

# Every kind of value an item can hold, nested too; binary ones are moto's to encode (not on the wire form).
ITEM: dict[str, Any] = {
    "PK": "ACME-RO",
    "SK": "invoice#INV-1",
    "text": "Factură «restantă» ‏مستحق",
    "empty_text": "",
    "whole": 12,
    "decimal": Decimal("3450.25"),
    "negative": Decimal("-0.01"),
    "yes": True,
    "no": False,
    "nothing": None,
    "names": {"a", "b"},
    "numbers": {Decimal("1"), Decimal("2.5")},
    "map": {"currency": "RON", "lines": [{"amount": Decimal("1.10")}, "x", None, [True]], "empty": {}},
    "list": ["one", Decimal("2"), {"three": 3}, [], {}],
    "empty_list": [],
    "empty_map": {},
}
BINARY: dict[str, Any] = {"PK": "ACME-RO", "SK": "pdf#1", "pdf": b"%PDF-1.7\x00\xff", "parts": {b"a", b"b"}}


Patch = Callable[[], AbstractContextManager[None]]


def bodies_of(scenario: Callable[[Any], None], patch: Patch) -> list[bytes]:
    """The raw answer of every call the scenario makes, with or without the patch."""
    bodies: list[bytes] = []
    with mock_aws(), patch():
        table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
        client = table.meta.client
        client.meta.events.register(
            "response-received.dynamodb",
            lambda response_dict, **_: bodies.append(response_dict["body"]),
        )
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("PK", "SK")],
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
        )
        bodies.clear()  # the table's description is not an item answer
        scenario(table)
    return bodies


def every_item_operation(table: Any) -> None:
    key = {"PK": ITEM["PK"], "SK": ITEM["SK"]}
    table.put_item(Item=ITEM)
    table.put_item(Item=BINARY)
    table.put_item(Item=ITEM, ReturnValues="ALL_OLD")
    table.get_item(Key=key)
    table.query(KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": ITEM["PK"]})
    table.query(KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": ITEM["PK"]}, Limit=1)
    table.query(
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": ITEM["PK"]},
        ProjectionExpression="#m.#lines, yes",
        ExpressionAttributeNames={"#m": "map", "#lines": "lines"},
    )
    table.scan()
    table.meta.client.batch_get_item(RequestItems={TABLE: {"Keys": [key, {"PK": "ACME-RO", "SK": "pdf#1"}]}})
    table.meta.client.transact_get_items(TransactItems=[{"Get": {"TableName": TABLE, "Key": key}}])
    table.update_item(
        Key=key,
        UpdateExpression="SET #m.currency = :c, whole = whole + :one",
        ExpressionAttributeNames={"#m": "map"},
        ExpressionAttributeValues={":c": "EUR", ":one": 1},
        ReturnValues="ALL_NEW",
    )
    table.delete_item(Key=key, ReturnValues="ALL_OLD")


def test_the_answers_are_moto_own_byte_for_byte() -> None:
    as_moto_answers = bodies_of(every_item_operation, nullcontext)
    with_the_patch = bodies_of(every_item_operation, wire_ready_attribute_values)
    assert len(as_moto_answers) == 12
    assert with_the_patch == as_moto_answers


def test_the_patch_takes_the_short_way_for_plain_values_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without it, moto walks each value; with it, only the binary ones (which moto encodes)."""
    walked: list[str] = []
    original = moto_internals.JSON_SERIALIZE_STRUCTURE.get()

    def counting(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if shape.name == "AttributeValue":
            walked.append(next(iter(value)) if isinstance(value, dict) else type(value).__name__)
        original(self, serialized, value, shape, key)

    def read_both(table: Any) -> None:
        table.put_item(Item=ITEM)
        table.put_item(Item=BINARY)
        table.query(KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": ITEM["PK"]})

    internal = moto_internals.JSON_SERIALIZE_STRUCTURE
    monkeypatch.setattr(internal.owner(), internal.attribute, counting)
    bodies_of(read_both, nullcontext)
    assert len(walked) > 30
    walked.clear()
    bodies_of(read_both, wire_ready_attribute_values)
    assert sorted(walked) == ["B", "BS"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"S": "x"}, True),
        ({"N": "1.5"}, True),
        ({"NULL": True}, True),
        ({"M": {"a": {"L": [{"S": "x"}, {"BOOL": False}]}}}, True),
        ({"SS": ["a", "b"]}, True),
        ({"B": "AAE="}, False),  # moto encodes binary values itself
        ({"L": [{"B": b"x"}]}, False),
        ({"N": 1}, False),  # not yet text: moto's walk turns it into text
        ({"S": "x", "N": "1"}, False),
        ({"M": {1: {"S": "x"}}}, False),
        ("x", False),
    ],
)
def test_what_counts_as_wire_form(value: Any, expected: bool) -> None:
    assert on_the_wire(value) is expected
