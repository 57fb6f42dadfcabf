"""moto's DynamoDB as the emulator patches it: a cancelled transaction rolls back only the items it touched
(no copy of the table, so transactions stay fast on big tables) with moto's semantics, and concurrent
transactions lose no update."""

from __future__ import annotations

import threading
import uuid
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.table import Table

from emulator.pollers import STREAMS_ENDPOINT
from emulator.template import REGION


def key(item_id: str) -> dict:
    return {"id": {"S": item_id}}


def latest_stream_iterator() -> tuple[object, str]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    streams = boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=STREAMS_ENDPOINT)
    arn = dynamodb.describe_table(TableName="StreamTable")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")
    return streams, iterator["ShardIterator"]


def test_a_cancelled_transaction_leaves_items_and_stream_as_they_were_without_copying_the_table(stack):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    existing, new = str(uuid.uuid4()), str(uuid.uuid4())
    dynamodb.put_item(TableName="StreamTable", Item={**key(existing), "stock": {"N": "5"}})
    streams, iterator = latest_stream_iterator()
    transaction = [
        {"Put": {"TableName": "StreamTable", "Item": {**key(new), "stock": {"N": "1"}}}},
        {
            "Update": {
                "TableName": "StreamTable",
                "Key": key(existing),
                "UpdateExpression": "SET stock = stock - :n",
                "ConditionExpression": "stock >= :n",
                "ExpressionAttributeValues": {":n": {"N": "9"}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    ]

    with (
        mock.patch.object(Table, "__deepcopy__", side_effect=AssertionError("table copied"), create=True),
        pytest.raises(ClientError) as cancelled,
    ):
        dynamodb.transact_write_items(TransactItems=transaction)

    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = cancelled.value.response["CancellationReasons"]
    assert [reason["Code"] for reason in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["stock"] == {"N": "5"}
    assert "Item" not in dynamodb.get_item(TableName="StreamTable", Key=key(new))
    assert dynamodb.get_item(TableName="StreamTable", Key=key(existing))["Item"]["stock"] == {"N": "5"}
    assert streams.get_records(ShardIterator=iterator)["Records"] == []


def test_a_committed_transaction_writes_every_item_and_its_stream_records(stack):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    streams, iterator = latest_stream_iterator()

    dynamodb.transact_write_items(
        TransactItems=[{"Put": {"TableName": "StreamTable", "Item": key(item_id)}} for item_id in (first, second)]
    )

    assert all("Item" in dynamodb.get_item(TableName="StreamTable", Key=key(i)) for i in (first, second))
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [record["dynamodb"]["Keys"]["id"]["S"] for record in records] == [first, second]


def test_concurrent_transactions_lose_no_update(stack):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    counter = str(uuid.uuid4())
    threads, increments = 8, 25

    def increment() -> None:
        client = boto3.client("dynamodb", region_name=REGION)
        for _ in range(increments):
            update = {
                "TableName": "RecordsTable",
                "Key": {"pk": {"S": counter}},
                "UpdateExpression": "ADD hits :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
            client.transact_write_items(TransactItems=[{"Update": update}])

    workers = [threading.Thread(target=increment) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    item = dynamodb.get_item(TableName="RecordsTable", Key={"pk": {"S": counter}})["Item"]
    assert item["hits"] == {"N": str(threads * increments)}
