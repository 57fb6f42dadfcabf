"""Outbox → EventBridge relay (SYS-1): events reach rule targets; refused entries are retried, then
reported per record so the stream retries and finally dead-letters them."""

from __future__ import annotations

import copy
import json

import boto3
import pytest

from patungan.adapters.dynamodb import deserialize
from patungan.platform.relay import EventNotRelayed, OutboxRelay
from tests.integration.test_catalog_api import create_factory, create_product, staff_of
from tests.support.lambdas import handler_module, invoke, load_event


def stream_event_for(aws, *event_types: str) -> dict:
    """The stream records the Outbox table would emit for its current items of these types."""
    items = aws.dynamodb().scan(TableName=aws.tables["OutboxTable"])["Items"]
    template = load_event("dynamodb_stream_outbox.json")["Records"][0]
    records = []
    for index, item in enumerate(i for i in items if i["type"]["S"] in event_types):
        record = copy.deepcopy(template)
        record["dynamodb"].update(NewImage=item, Keys={"event_id": item["event_id"]}, SequenceNumber=str(1000 + index))
        records.append(record)
    return {"Records": records}


@pytest.fixture
def catalog_queue(aws):
    """An SQS target of a rule on catalog events, as a consumer would have."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="catalog-consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events")
    bus = aws.environment["EVENT_BUS_NAME"]
    events.put_rule(Name="catalog-events", EventBusName=bus, EventPattern=json.dumps({"source": ["patungan.catalog"]}))
    events.put_targets(Rule="catalog-events", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def received(queue_url: str) -> list[dict]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_a_catalog_write_reaches_the_rule_target_through_the_relay(aws, catalog_queue):
    product = create_product(staff_of(create_factory().body["id"])).body

    response = invoke("OutboxRelayFunction", stream_event_for(aws, "catalog.product.created"))

    assert response == {"batchItemFailures": []}
    [message] = received(catalog_queue)
    assert message["detail-type"] == "catalog.product.created"
    assert message["source"] == "patungan.catalog"
    assert message["detail"]["aggregate_id"] == product["id"]
    assert message["detail"]["data"]["product"]["slug"] == product["slug"]


def test_a_record_delivered_twice_carries_the_same_event_id(aws, catalog_queue):
    create_product(staff_of(create_factory().body["id"]))
    event = stream_event_for(aws, "catalog.product.created")

    invoke("OutboxRelayFunction", event)
    invoke("OutboxRelayFunction", event)

    first, second = received(catalog_queue) + received(catalog_queue)
    assert first["detail"]["event_id"] == second["detail"]["event_id"]


def outbox_image() -> dict:
    return deserialize(load_event("dynamodb_stream_outbox.json")["Records"][0]["dynamodb"]["NewImage"])


class FlakyBus:
    """EventBridge answering FailedEntryCount for the first ``failures`` puts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.puts = 0

    def put(self, event):
        self.puts += 1
        return "ThrottlingException" if self.puts <= self.failures else None


def test_refused_entries_are_retried_with_backoff():
    bus, pauses = FlakyBus(failures=2), []
    relay = OutboxRelay(bus, attempts=3, sleep=pauses.append)

    relay.relay(outbox_image())

    assert bus.puts == 3
    assert len(pauses) == 2


class BusRefusing:
    """EventBridge refusing every put of one event id."""

    def __init__(self, refused_event_id: str) -> None:
        self.refused_event_id = refused_event_id
        self.accepted: list[str] = []

    def put(self, event):
        if event.event_id == self.refused_event_id:
            return "InternalFailure"
        self.accepted.append(event.event_id)
        return None


def test_an_entry_refused_every_time_is_reported_alone_for_the_stream_to_retry(aws, monkeypatch):
    create_product(staff_of(create_factory().body["id"]))
    event = stream_event_for(aws, "catalog.product.created")
    event["Records"] += load_event("dynamodb_stream_outbox.json")["Records"]
    bus = BusRefusing("evt_01jd0000000000000000000000")
    relay = OutboxRelay(bus, attempts=3, sleep=lambda _: None)
    monkeypatch.setattr(handler_module("OutboxRelayFunction"), "outbox_relay", lambda: relay)

    response = invoke("OutboxRelayFunction", event)

    assert response == {"batchItemFailures": [{"itemIdentifier": "111100000000000000000001"}]}
    assert len(bus.accepted) == 1
    with pytest.raises(EventNotRelayed):
        relay.relay(outbox_image())
