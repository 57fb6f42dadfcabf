"""The flash sale's capacity model (issue 8): the arithmetic that scales a burst to 2 000 paid joins a second, and
the recorder that counts each item's writes, on moto's real DynamoDB answers."""

import pytest

from benchmarks.dynamodb_items import ItemKey, recording_dynamodb_items
from benchmarks.flash_sale import writes_per_second


def test_an_item_written_twice_per_paid_join_takes_4000_writes_a_second_at_2000_paid_joins_a_second():
    # 500 joins and 500 payments at 2 000 a second last a quarter of a second.
    assert writes_per_second(1_000, 500) == 4_000
    assert writes_per_second(500, 500) == 2_000
    # A participation written 3 times in the whole burst: 12 writes a second.
    assert writes_per_second(3, 500) == 12
    assert writes_per_second(3, 500, joins_per_second=1_000) == 6


def _put(table: str, pk: str, **attributes: str) -> dict:
    item = {"pk": {"S": pk}, "sk": {"S": "META"}, **{name: {"S": value} for name, value in attributes.items()}}
    return {"Put": {"TableName": table, "Item": item}}


def _key(table: str, pk: str) -> ItemKey:
    return ItemKey(table, (("pk", pk), ("sk", "META")))


def test_a_transaction_of_three_items_counts_one_write_of_each_item_at_two_write_units(aws):
    dynamodb, table = aws.dynamodb(), aws.tables["GroupBuyTable"]
    session = {"pk": {"S": "SESSION#s1"}, "sk": {"S": "META"}}
    dynamodb.put_item(TableName=table, Item=session)

    with recording_dynamodb_items() as recorded:
        dynamodb.transact_write_items(
            TransactItems=[
                _put(table, "PART#p1"),
                _put(table, "PART#p2", gsi1pk="BUYER#b2", gsi1sk="x"),
                {"ConditionCheck": {"TableName": table, "Key": session, "ConditionExpression": "attribute_exists(pk)"}},
            ]
        )
        dynamodb.update_item(
            TableName=table,
            Key=session,
            UpdateExpression="SET paid = :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        dynamodb.get_item(TableName=table, Key=session)

    assert recorded.writes == {_key(table, "PART#p1"): 1, _key(table, "PART#p2"): 1, _key(table, "SESSION#s1"): 2}
    assert (recorded.transactions, recorded.transaction_items, recorded.single_writes) == (1, 3, 1)
    # 3 small items in a transaction at 2 WRU each, the update at 1; p2 also writes the gsi1 index.
    assert recorded.write_units == 3 * 2 + 1
    assert recorded.index_write_units == 1
    assert (recorded.read_calls, recorded.reads) == (1, {_key(table, "SESSION#s1"): 1})
    assert recorded.read_units == pytest.approx(0.5)  # eventually consistent, under 4 KB


def test_a_write_whose_condition_fails_still_counts(aws):
    """DynamoDB bills a refused conditional write and it took the item's capacity: a hot item's rate counts it."""
    dynamodb, table = aws.dynamodb(), aws.tables["GroupBuyTable"]
    session = {"pk": {"S": "SESSION#s1"}, "sk": {"S": "META"}}

    with recording_dynamodb_items() as recorded, pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.update_item(
            TableName=table,
            Key=session,
            UpdateExpression="SET paid = :one",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    assert recorded.writes == {_key(table, "SESSION#s1"): 1}
    assert recorded.write_units == 1


def test_a_batch_write_counts_each_item_it_writes(aws):
    dynamodb, table = aws.dynamodb(), aws.tables["GroupBuyTable"]

    with recording_dynamodb_items() as recorded:
        dynamodb.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": _put(table, pk)["Put"]["Item"]}} for pk in ("a", "b")]}
        )

    assert recorded.writes == {_key(table, pk): 1 for pk in ("a", "b")}
    assert (recorded.single_writes, recorded.write_units) == (1, 2)
