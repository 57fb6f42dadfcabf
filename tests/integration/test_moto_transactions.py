"""moto's transactions as the tests and the local stack run them (issue 8): a cancelled transaction puts back only
the items it touched - never a copy of a table, so a transaction costs the same on a full table as on an empty
one - and keeps DynamoDB's semantics: all or nothing, index entries included, one cancellation reason per
operation, the old item when asked for it."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.table import Table

from emulator.pollers import STREAMS_ENDPOINT
from emulator.template import REGION
from tests.support.aws import LocalAws


def key(pk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": "META"}}


def item(pk: str, group: str, stock: int) -> dict:
    return {**key(pk), "gsi1pk": {"S": group}, "gsi1sk": {"S": pk}, "stock": {"N": str(stock)}}


@pytest.fixture
def no_table_copy() -> Iterator[None]:
    """moto as released deep-copies every table a transaction touches: that is what this module rules out."""
    with mock.patch.object(Table, "__deepcopy__", side_effect=AssertionError("a table was copied"), create=True):
        yield


class Catalog:
    """Three items in CatalogTable, which has a GSI (gsi1): ``updated`` and ``deleted`` in group A, ``kept`` in B."""

    def __init__(self, aws: LocalAws) -> None:
        self.dynamodb = aws.dynamodb()
        self.table = aws.tables["CatalogTable"]
        for pk, group in (("updated", "A"), ("deleted", "A"), ("kept", "B")):
            self.dynamodb.put_item(TableName=self.table, Item=item(pk, group, 5))

    def get(self, pk: str) -> dict | None:
        return self.dynamodb.get_item(TableName=self.table, Key=key(pk)).get("Item")

    def group(self, name: str) -> list[dict]:
        return self.dynamodb.query(
            TableName=self.table,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :group",
            ExpressionAttributeValues={":group": {"S": name}},
        )["Items"]

    def state(self) -> dict:
        pks = ("new", "updated", "deleted", "kept")
        return {"items": {pk: self.get(pk) for pk in pks}, "gsi1": {g: self.group(g) for g in ("A", "B", "C")}}

    def operations(self) -> list[dict]:
        """A put of a new item, an update that moves an item to another GSI partition, a delete."""
        return [
            {"Put": {"TableName": self.table, "Item": item("new", "C", 1)}},
            {
                "Update": {
                    "TableName": self.table,
                    "Key": key("updated"),
                    "UpdateExpression": "SET gsi1pk = :c, stock = stock - :n",
                    "ConditionExpression": "stock >= :n",
                    "ExpressionAttributeValues": {":c": {"S": "C"}, ":n": {"N": "2"}},
                }
            },
            {"Delete": {"TableName": self.table, "Key": key("deleted")}},
        ]


FIVE, SIX = {":five": {"N": "5"}}, {":six": {"N": "6"}}
REFUSED_LAST = {  # each refused by the item ``kept`` (stock 5)
    "condition check": {
        "ConditionCheck": {
            "Key": key("kept"),
            "ConditionExpression": "stock > :five",
            "ExpressionAttributeValues": FIVE,
        }
    },
    "update": {
        "Update": {
            "Key": key("kept"),
            "UpdateExpression": "SET stock = stock - :six",
            "ConditionExpression": "stock >= :six",
            "ExpressionAttributeValues": SIX,
        }
    },
    "put": {"Put": {"Item": item("kept", "C", 0), "ConditionExpression": "attribute_not_exists(pk)"}},
    "delete": {"Delete": {"Key": key("kept"), "ConditionExpression": "stock = :six", "ExpressionAttributeValues": SIX}},
}


@pytest.mark.parametrize("refused", REFUSED_LAST)
def test_a_transaction_refused_in_its_last_operation_leaves_every_item_and_index_entry_as_before(
    aws, no_table_copy, refused
):
    """Issue 8: the put, the update and the delete before the refused operation are all undone - the new item is
    gone, the others and their GSI entries are as before - and the reasons name the refusal, with the old item
    (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""
    catalog = Catalog(aws)
    before = catalog.state()
    [(kind, last)] = REFUSED_LAST[refused].items()
    last = {**last, "TableName": catalog.table, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}

    with pytest.raises(ClientError) as cancelled:
        catalog.dynamodb.transact_write_items(TransactItems=[*catalog.operations(), {kind: last}])

    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = cancelled.value.response["CancellationReasons"]
    assert [reason["Code"] for reason in reasons] == ["None", "None", "None", "ConditionalCheckFailed"]
    assert reasons[3]["Item"] == item("kept", "B", 5)
    assert catalog.state() == before
    assert before["items"]["new"] is None and len(before["gsi1"]["A"]) == 2


def test_a_committed_transaction_writes_every_item_and_index_entry(aws, no_table_copy):
    catalog = Catalog(aws)

    catalog.dynamodb.transact_write_items(TransactItems=catalog.operations())

    assert catalog.get("deleted") is None
    assert catalog.get("updated")["stock"] == {"N": "3"}
    assert [i["pk"]["S"] for i in catalog.group("C")] == ["new", "updated"]
    assert catalog.group("A") == []


def test_a_malformed_transaction_writes_nothing_of_what_came_before_the_fault(aws, no_table_copy):
    """An operation DynamoDB rejects as invalid (two operations on one item) undoes those before it too."""
    catalog = Catalog(aws)
    before = catalog.state()
    twice = {
        "ConditionCheck": {"TableName": catalog.table, "Key": key("new"), "ConditionExpression": "attribute_exists(pk)"}
    }

    with pytest.raises(ClientError) as refused:
        catalog.dynamodb.transact_write_items(TransactItems=[*catalog.operations(), twice])

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert catalog.state() == before


def test_a_cancelled_transaction_adds_no_stream_record(aws, no_table_copy):
    """The outbox relay reads OutboxTable's stream: an event of a cancelled transaction must never reach it."""
    dynamodb = aws.dynamodb()
    outbox = aws.tables["OutboxTable"]
    event = {"Put": {"TableName": outbox, "Item": {"event_id": {"S": "evt_cancelled"}}}}
    refused = {
        "ConditionCheck": {
            "TableName": aws.tables["CatalogTable"],
            "Key": key("absent"),
            "ConditionExpression": "attribute_exists(pk)",
        }
    }
    dynamodb.put_item(TableName=outbox, Item={"event_id": {"S": "evt_committed"}})

    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[event, refused])

    assert dynamodb.scan(TableName=outbox)["Items"] == [{"event_id": {"S": "evt_committed"}}]
    assert stream_keys(aws, outbox) == ["evt_committed"]


def stream_keys(aws: LocalAws, table: str) -> list[str]:
    streams = boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=STREAMS_ENDPOINT)
    arn = aws.dynamodb().describe_table(TableName=table)["Table"]["LatestStreamArn"]
    [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    return [record["dynamodb"]["Keys"]["event_id"]["S"] for record in records]
