"""DynamoDB-stream and SQS event-source mappings, run by the emulator's pollers."""

from __future__ import annotations

import uuid

import boto3

from emulator.template import REGION
from tests.emulator.support import eventually, queue_messages, record


def test_a_stream_mapping_delivers_inserts_and_dead_letters_a_record_that_keeps_failing(stack):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())

    dynamodb.put_item(TableName="StreamTable", Item={"id": {"S": good}})
    dynamodb.put_item(TableName="StreamTable", Item={"id": {"S": bad}, "fail": {"BOOL": True}})

    delivered = eventually(lambda: record(f"stream#{good}"))
    assert delivered["eventName"] == "INSERT"
    assert delivered["eventSourceARN"].startswith(f"arn:aws:dynamodb:{REGION}:123456789012:table/StreamTable/stream/")
    [failure] = eventually(lambda: queue_messages("StreamFailuresQueue"))
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3  # the first try and MaximumRetryAttempts: 2
    batch = failure["DDBStreamBatchInfo"]
    assert batch["batchSize"] == 1
    assert batch["startSequenceNumber"] == batch["endSequenceNumber"]
    assert record(f"stream#{bad}") is None


def test_the_filter_keeps_modify_records_from_the_function(stack):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    item_id = str(uuid.uuid4())
    dynamodb.put_item(TableName="StreamTable", Item={"id": {"S": item_id}})
    eventually(lambda: record(f"stream#{item_id}"))
    boto3.client("dynamodb", region_name=REGION).delete_item(
        TableName="RecordsTable", Key={"pk": {"S": f"stream#{item_id}"}}
    )

    dynamodb.put_item(TableName="StreamTable", Item={"id": {"S": item_id}, "changed": {"BOOL": True}})
    marker = str(uuid.uuid4())
    dynamodb.put_item(TableName="StreamTable", Item={"id": {"S": marker}})

    eventually(lambda: record(f"stream#{marker}"))  # records are handled in order: the MODIFY came before
    assert record(f"stream#{item_id}") is None


def test_an_sqs_mapping_deletes_what_succeeded_and_redrives_what_keeps_failing_to_the_dlq(stack):
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName="JobsQueue")["QueueUrl"]
    job = str(uuid.uuid4())

    sqs.send_message(QueueUrl=url, MessageBody="poison")
    sqs.send_message(QueueUrl=url, MessageBody=job)

    assert eventually(lambda: record(f"job#{job}"))["body"] == job
    dead_letter_url = sqs.get_queue_url(QueueName="JobsDeadLetterQueue")["QueueUrl"]

    def dead_lettered():
        return sqs.receive_message(QueueUrl=dead_letter_url, AttributeNames=["All"]).get("Messages")

    [message] = eventually(dead_lettered)
    assert message["Body"] == "poison"
    assert int(message["Attributes"]["ApproximateReceiveCount"]) >= 2
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
