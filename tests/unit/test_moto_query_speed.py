"""Query by partition in the embedded AWS (dunning.local.embedded_dynamodb): the answers are moto's own, page
by page, on the table and on its indexes, through every kind of write; and a Query's cost no longer grows
with the rest of the table."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from dunning.local import embedded_dynamodb, moto_internals
from dunning.local.embedded_dynamodb import partitioned_queries

TABLE = "ledger"
REGION = "eu-west-1"
Client = Any
Answer = list[dict[str, Any]]


def create_table(client: Client) -> None:
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("PK", "SK", "due_pk", "due_sk", "kind", "at")
        ],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {  # as the ledger's: sparse, a sort key, some attributes projected
                "IndexName": "due",
                "KeySchema": [
                    {"AttributeName": "due_pk", "KeyType": "HASH"},
                    {"AttributeName": "due_sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["amount", "status"]},
            },
            {  # no sort key: moto orders by the table's keys
                "IndexName": "by_kind",
                "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_at",
                "KeySchema": [
                    {"AttributeName": "PK", "KeyType": "HASH"},
                    {"AttributeName": "at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def item(rng: random.Random, account: int, number: int) -> dict[str, Any]:
    """An item of `account`; about half of them in the `due` index, in one of four shards."""
    day = f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    attributes: dict[str, Any] = {
        "PK": {"S": f"ACCOUNT#{account:03d}"},
        "SK": {"S": f"{rng.choice(['INVOICE', 'PAYMENT', 'EVENT'])}#{number:04d}"},
        "kind": {"S": rng.choice(["invoice", "payment", "event"])},
        "at": {"S": day},
        "amount": {"N": str(rng.randint(1, 10_000))},
        "status": {"S": rng.choice(["open", "paid"])},
        "note": {"S": "x" * rng.randint(0, 40)},
    }
    if rng.random() < 0.5:
        attributes["due_pk"] = {"S": f"DUE#{rng.randint(0, 3)}"}
        # Equal due_sk values on purpose: moto then orders by the table's keys.
        attributes["due_sk"] = {"S": f"{day}#{rng.randint(0, 2)}"}
    return attributes


def pages(client: Client, **request: Any) -> Answer:
    """Every page of a Query (or its error), without the request's metadata."""
    answers: Answer = []
    while True:
        try:
            page = client.query(TableName=TABLE, **request)
        except ClientError as exc:
            return [*answers, {"error": exc.response["Error"]}]
        page.pop("ResponseMetadata", None)
        answers.append(page)
        if "LastEvaluatedKey" not in page or len(answers) > 200:
            return answers
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def s(value: str) -> dict[str, str]:
    return {"S": value}


def queries(accounts: list[int]) -> Iterator[dict[str, Any]]:
    for account in accounts:
        pk = s(f"ACCOUNT#{account:03d}")
        yield {"KeyConditionExpression": "PK = :pk", "ExpressionAttributeValues": {":pk": pk}}
        yield {
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :p)",
            "ExpressionAttributeValues": {":pk": pk, ":p": s("INVOICE#")},
            "ConsistentRead": True,
        }
        yield {
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":pk": pk, ":a": s("EVENT#"), ":b": s("PAYMENT#0100")},
            "ScanIndexForward": False,
            "Limit": 2,
        }
        yield {
            "KeyConditionExpression": "PK = :pk AND SK <= :b",
            "ExpressionAttributeValues": {":pk": pk, ":b": s("PAYMENT#0050"), ":open": s("open")},
            "FilterExpression": "#status = :open",
            "ExpressionAttributeNames": {"#status": "status"},
            "Limit": 3,
        }
        yield {
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": pk},
            "ProjectionExpression": "SK, amount",
            "Select": "SPECIFIC_ATTRIBUTES",
        }
        yield {
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": pk},
            "Select": "COUNT",
        }
        yield {"KeyConditions": {"PK": {"ComparisonOperator": "EQ", "AttributeValueList": [pk]}}, "Limit": 4}
        yield {
            "IndexName": "by_at",
            "KeyConditionExpression": "PK = :pk AND #at BETWEEN :a AND :b",
            "ExpressionAttributeNames": {"#at": "at"},
            "ExpressionAttributeValues": {":pk": pk, ":a": s("2027-03-01"), ":b": s("2027-09-30")},
            "Limit": 2,
        }
    for shard in ("DUE#0", "DUE#1", "DUE#2", "DUE#3", "DUE#9"):
        due = s(shard)
        yield {
            "IndexName": "due",
            "KeyConditionExpression": "due_pk = :d AND due_sk <= :up",
            "ExpressionAttributeValues": {":d": due, ":up": s("2027-06-30#9")},
        }
        yield {
            "IndexName": "due",
            "KeyConditionExpression": "due_pk = :d",
            "ExpressionAttributeValues": {":d": due},
            "Limit": 3,
            "ScanIndexForward": False,
        }
        yield {
            "IndexName": "due",
            "KeyConditionExpression": "due_pk = :d AND begins_with(due_sk, :m)",
            "ExpressionAttributeValues": {":d": due, ":m": s("2027-0"), ":n": {"N": "5000"}},
            "FilterExpression": "amount > :n",
            "Limit": 4,
        }
    for kind in ("invoice", "payment", "event", "nothing"):
        yield {
            "IndexName": "by_kind",
            "KeyConditionExpression": "kind = :k",
            "ExpressionAttributeValues": {":k": s(kind)},
            "Limit": 7,
        }
    # What moto refuses: refused alike.
    yield {
        "IndexName": "nope",
        "KeyConditionExpression": "kind = :k",
        "ExpressionAttributeValues": {":k": s("x")},
    }
    yield {
        "IndexName": "due",
        "KeyConditionExpression": "due_pk = :d",
        "ExpressionAttributeValues": {":d": s("DUE#0")},
        "ConsistentRead": True,
    }


def key(account: int, sk: str) -> dict[str, Any]:
    return {"PK": s(f"ACCOUNT#{account:03d}"), "SK": s(sk)}


def writes(client: Client, rng: random.Random, step: int) -> None:
    """A round of every kind of write moto has, several moving items in or out of the indexes."""
    table_keys = [
        (entry["PK"], entry["SK"])
        for entry in client.scan(TableName=TABLE, ProjectionExpression="PK, SK")["Items"]
    ]
    picked = [dict(zip(("PK", "SK"), pair, strict=True)) for pair in rng.sample(table_keys, 12)]
    client.update_item(  # into the index, or to another shard
        TableName=TABLE,
        Key=picked[0],
        UpdateExpression="SET due_pk = :d, due_sk = :k",
        ExpressionAttributeValues={":d": s(f"DUE#{step % 4}"), ":k": s("2027-05-05#1")},
    )
    client.update_item(TableName=TABLE, Key=picked[1], UpdateExpression="REMOVE due_pk, due_sk")  # out of it
    client.update_item(
        TableName=TABLE,
        Key=picked[2],
        UpdateExpression="SET kind = :k, amount = amount + :one",
        ExpressionAttributeValues={":k": s("event"), ":one": {"N": "1"}},
    )
    client.update_item(  # an upsert: a new item, straight into the index
        TableName=TABLE,
        Key=key(step, f"INVOICE#9{step:03d}"),
        UpdateExpression="SET due_pk = :d, due_sk = :k, kind = :kind, amount = :a",
        ExpressionAttributeValues={
            ":d": s("DUE#1"),
            ":k": s("2027-01-01#0"),
            ":kind": s("invoice"),
            ":a": {"N": "42"},
        },
    )
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):  # refused: nothing changes
        client.update_item(
            TableName=TABLE,
            Key=picked[3],
            UpdateExpression="SET due_pk = :d",
            ConditionExpression="attribute_not_exists(PK)",
            ExpressionAttributeValues={":d": s("DUE#0")},
        )
    client.put_item(TableName=TABLE, Item=item(rng, step, 5000 + step) | picked[4])  # overwritten
    client.delete_item(TableName=TABLE, Key=picked[5])
    client.batch_write_item(
        RequestItems={
            TABLE: [
                {"PutRequest": {"Item": item(rng, rng.randint(0, 14), 6000 + step * 10 + n)}}
                for n in range(3)
            ]
            + [{"DeleteRequest": {"Key": picked[6]}}]
        }
    )
    client.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": picked[7],
                    "UpdateExpression": "SET due_pk = :d, due_sk = :k",
                    "ExpressionAttributeValues": {":d": s("DUE#2"), ":k": s("2027-02-02#2")},
                }
            },
            {"Put": {"TableName": TABLE, "Item": item(rng, 3, 7000 + step)}},
            {"Delete": {"TableName": TABLE, "Key": picked[8]}},
        ]
    )
    client.execute_statement(
        Statement=f"UPDATE {TABLE} SET due_pk='DUE#0' WHERE PK=? AND SK=?",
        Parameters=[picked[11]["PK"], picked[11]["SK"]],
    )

    if step < 3:
        return
    # Rolled back: moto puts a copy of the table in its place (its maps are built anew). Only in the last
    # round, so that the rounds before it check the maps kept current write by write.
    with pytest.raises(ClientError, match="TransactionCanceled"):
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": picked[9],
                        "UpdateExpression": "SET due_pk = :d, due_sk = :k",
                        "ExpressionAttributeValues": {":d": s("DUE#3"), ":k": s("2027-03-03#0")},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": picked[10],
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )


def scenario(narrowed: Callable[[], AbstractContextManager[Any]]) -> list[Answer]:
    """Fill a table, query it, then after each round of writes query it again; every answer, in order."""
    from moto import mock_aws

    rng = random.Random(12)
    answers: list[Answer] = []
    with mock_aws(), narrowed():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client)
        for account in range(15):
            for number in range(rng.randint(0, 25)):
                client.put_item(TableName=TABLE, Item=item(rng, account, number))
        for step in range(4):
            answers.extend(pages(client, **query) for query in queries([0, 1, 3, 7, 14, 99]))
            writes(client, rng, step)
        answers.extend(pages(client, **query) for query in queries([0, 1, 3, 7, 14, 99]))
    return answers


def test_every_answer_is_motos_own_page_by_page_through_every_kind_of_write() -> None:
    expected = scenario(nullcontext)
    assert any("LastEvaluatedKey" in page for answer in expected for page in answer)  # pagination was tested
    assert any("error" in answer[-1] for answer in expected)  # and refusals
    assert sum(len(page.get("Items", ())) for answer in expected for page in answer) > 1000
    assert scenario(partitioned_queries) == expected


def test_leaving_the_block_restores_moto_and_a_write_made_outside_it_is_seen_inside_again() -> None:
    from moto import mock_aws

    query = {
        "IndexName": "due",
        "KeyConditionExpression": "due_pk = :d",
        "ExpressionAttributeValues": {":d": s("DUE#7")},
    }
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client)
        client.put_item(TableName=TABLE, Item={**key(1, "A"), "due_pk": s("DUE#7"), "due_sk": s("1")})
        table_class = moto_internals.DYNAMODB_TABLE_QUERY.owner()
        before = table_class.query
        with partitioned_queries():
            assert table_class.query is not before
            assert len(pages(client, **query)[0]["Items"]) == 1  # the index's map is built
        assert table_class.query is before
        client.update_item(TableName=TABLE, Key=key(1, "A"), UpdateExpression="REMOVE due_pk")  # unwatched
        with partitioned_queries():
            assert pages(client, **query)[0]["Items"] == []


def test_what_the_embedded_aws_patches_is_in_the_list_the_guard_checks() -> None:
    used = {
        moto_internals.DYNAMODB_TABLE_QUERY,
        moto_internals.DYNAMODB_TABLE_ALL_ITEMS,
        moto_internals.DYNAMODB_TABLE_PUT_ITEM,
        moto_internals.DYNAMODB_TABLE_DELETE_ITEM,
        moto_internals.DYNAMODB_UPDATE_ITEM,
        moto_internals.DYNAMODB_TABLE_ALL_INDEXES,
        moto_internals.DYNAMODB_TABLE_ITEMS,
        moto_internals.DYNAMODB_GET_TABLE,
        moto_internals.DYNAMO_TYPE,
    }
    assert used <= set(moto_internals.ALL)
    assert all(internal.problem() is None for internal in used)


# --- the cost -----------------------------------------------------------------------------------------------


class Touched:
    """Items a Query handles: those `all_items` hands it (it sorts and filters them all) and those the index
    maps file."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        table_class = moto_internals.DYNAMODB_TABLE_ALL_ITEMS.owner()
        all_items = table_class.all_items
        file = embedded_dynamodb._IndexPartitions.file

        def counted_all_items(table: Any) -> Any:
            items = all_items(table)
            self.count += len(items)
            return items

        def counted_file(partitions: Any, item_key: Any, stored: Any) -> None:
            self.count += 1
            file(partitions, item_key, stored)

        monkeypatch.setattr(table_class, "all_items", counted_all_items)
        monkeypatch.setattr(embedded_dynamodb._IndexPartitions, "file", counted_file)

    def of(self, action: Callable[[], object]) -> int:
        self.count = 0
        action()
        return self.count


def touched_by_queries(
    others: int, narrowed: Callable[[], AbstractContextManager[Any]], monkeypatch: pytest.MonkeyPatch
) -> dict[str, int]:
    """Items touched by Queries of one account (5 items) and of one shard of the index (5 items), in a table
    with `others` more items in other partitions and other shards."""
    from moto import mock_aws

    with monkeypatch.context() as patches, mock_aws(), narrowed():
        touched = Touched(patches)
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client)
        for number in range(5):
            client.put_item(
                TableName=TABLE,
                Item={**key(0, f"I#{number}"), "due_pk": s("DUE#target"), "due_sk": s(f"2027#{number}")},
            )
        requests = [
            {
                "PutRequest": {
                    "Item": {**key(1 + n % 500, f"I#{n}"), "due_pk": s(f"DUE#{n % 7}"), "due_sk": s("1")}
                }
            }
            for n in range(others)
        ]
        for start in range(0, others, 25):
            client.batch_write_item(RequestItems={TABLE: requests[start : start + 25]})

        def account() -> None:
            answer = pages(
                client, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": key(0, "")["PK"]}
            )
            assert len(answer[0]["Items"]) == 5

        def shard() -> None:
            answer = pages(
                client,
                IndexName="due",
                KeyConditionExpression="due_pk = :d",
                ExpressionAttributeValues={":d": s("DUE#target")},
            )
            assert len(answer[0]["Items"]) == 5

        first_shard = touched.of(shard)
        # Writes elsewhere in the table: each is refiled once, by the next Query of the index.
        for n in range(3):
            client.update_item(
                TableName=TABLE,
                Key=key(1 + n, f"I#{n}"),
                UpdateExpression="SET due_pk = :d",
                ExpressionAttributeValues={":d": s("DUE#elsewhere")},
            )
        return {
            "account": touched.of(account),
            "first shard": first_shard,
            "shard after 3 writes": touched.of(shard),
            "shard again": touched.of(shard),
        }


@pytest.mark.parametrize("others", [200, 2000])
def test_a_querys_cost_does_not_grow_with_the_other_partitions(
    others: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    narrowed = touched_by_queries(others, partitioned_queries, monkeypatch)
    assert narrowed == {
        "account": 5,
        "first shard": others + 5 + 5,  # the index's map is built once (every item), then the shard read
        "shard after 3 writes": 3 + 5,
        "shard again": 5,
    }
    moto = touched_by_queries(others, nullcontext, monkeypatch)
    assert moto == dict.fromkeys(moto, others + 5)  # moto alone: the whole table, every time
