"""Outbox → EventBridge relay (SYS-1): events reach rule targets; refused entries are retried, then
reported per record so the stream retries and finally dead-letters them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from patungan.adapters.aws import client
from patungan.adapters.dynamodb import deserialize, serialize
from patungan.adapters.outbox import Outbox
from patungan.core.clock import FixedClock
from patungan.core.errors import DependencyUnavailable
from patungan.core.events import DomainEvent, new_event
from patungan.platform.relay import BASE_DELAY_SECONDS, OutboxRelay
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


def outbox_events(count: int, *, aggregates: list[str] | None = None, data_bytes: int = 0) -> list[DomainEvent]:
    """``count`` catalog events, each of its own aggregate unless ``aggregates`` names them in order."""
    clock = FixedClock(datetime(2026, 11, 21, 10, tzinfo=UTC))
    return [
        new_event(
            "catalog.product.created",
            aggregates[index] if aggregates else f"prd_{index:03d}",
            {"index": index, "padding": "x" * data_bytes},
            clock,
        )
        for index in range(count)
    ]


def stream_event_of(events: list[DomainEvent]) -> dict:
    """The Outbox table's stream records for these events, in order."""
    template = load_event("dynamodb_stream_outbox.json")["Records"][0]
    outbox = Outbox(table=None, ttl_days=7)
    records = []
    for index, event in enumerate(events):
        record = copy.deepcopy(template)
        item = serialize(outbox.item(event))
        record["dynamodb"].update(NewImage=item, Keys={"event_id": item["event_id"]}, SequenceNumber=str(1000 + index))
        records.append(record)
    return {"Records": records}


def outbox_image(event: DomainEvent) -> dict:
    """The NewImage the relay reads for this event (Powertools deserialises it)."""
    return deserialize(serialize(Outbox(table=None, ttl_days=7).item(event)))


def sequence_numbers(event: dict, start: int = 0) -> list[dict]:
    return [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]} for record in event["Records"][start:]]


def received_all(queue_url: str) -> list[dict]:
    messages, batch = [], received(queue_url)
    while batch:
        messages += batch
        batch = received(queue_url)
    return messages


def test_25_events_go_to_the_bus_in_3_put_events_calls(aws, catalog_queue):
    """Issue 8 (relay): up to 10 entries a PutEvents request, each of them delivered."""
    events = outbox_events(25)
    puts = []
    # The relay's client is the shared layer's: count the requests it makes.
    client("events").meta.events.register(
        "before-parameter-build.events.PutEvents", lambda params, **_: puts.append(params)
    )

    response = invoke("OutboxRelayFunction", stream_event_of(events))

    assert response == {"batchItemFailures": []}
    assert [len(put["Entries"]) for put in puts] == [10, 10, 5]
    delivered = [message["detail"]["event_id"] for message in received_all(catalog_queue)]
    assert sorted(delivered) == sorted(event.event_id for event in events)


class RecordingBus:
    """EventBridge refusing given event ids: ``refusals[event_id]`` times each (forever when None)."""

    def __init__(self, refusals: dict[str, int | None]) -> None:
        self.refusals = dict(refusals)
        self.requests: list[list[str]] = []

    def put_batch(self, events):
        self.requests.append([event.event_id for event in events])
        return [self._answer(event.event_id) for event in events]

    def _answer(self, event_id: str) -> str | None:
        if event_id not in self.refusals:
            return None
        left = self.refusals[event_id]
        if left is None:
            return "InternalFailure"
        if left == 0:
            return None
        self.refusals[event_id] = left - 1
        return "ThrottlingException"


def test_an_entry_refused_once_is_put_again_alone_after_a_jittered_pause():
    events = outbox_events(4)
    bus, pauses = RecordingBus({events[2].event_id: 1}), []
    relay = OutboxRelay(bus, attempts=3, sleep=pauses.append)

    relayed = relay.relay([outbox_image(event) for event in events])

    assert relayed == 4
    assert bus.requests == [[event.event_id for event in events], [events[2].event_id]]
    assert len(pauses) == 1
    assert 0 <= pauses[0] <= 2 * BASE_DELAY_SECONDS


def test_an_entry_refused_every_time_is_reported_with_every_later_record(aws, monkeypatch):
    """The stream retries from the first record reported; no later record of the shard is put after it."""
    events = outbox_events(14)
    bus = RecordingBus({events[4].event_id: None})
    monkeypatch.setattr(
        handler_module("OutboxRelayFunction"), "outbox_relay", lambda: OutboxRelay(bus, sleep=lambda _: None)
    )
    stream_event = stream_event_of(events)

    response = invoke("OutboxRelayFunction", stream_event)

    assert response == {"batchItemFailures": sequence_numbers(stream_event, start=4)}
    assert bus.requests == [[event.event_id for event in events[:10]]] + [[events[4].event_id]] * 2
    assert events[10].event_id not in {event_id for request in bus.requests for event_id in request}


def test_a_later_event_of_an_aggregate_never_overtakes_a_refused_one():
    """Issue 8: order kept per aggregate. A1 and A2 never share a request, and A2 waits for A1."""
    a1, b1, a2 = outbox_events(3, aggregates=["ses_a", "ses_b", "ses_a"])
    bus = RecordingBus({a1.event_id: None})

    relayed = OutboxRelay(bus, sleep=lambda _: None).relay([outbox_image(event) for event in (a1, b1, a2)])

    assert relayed == 0
    assert a2.event_id not in {event_id for request in bus.requests for event_id in request}
    assert bus.requests[0] == [a1.event_id, b1.event_id]


def test_a_request_stays_under_put_events_256_kb():
    events = outbox_events(10, data_bytes=60_000)
    bus = RecordingBus({})

    assert OutboxRelay(bus).relay([outbox_image(event) for event in events]) == 10

    assert [len(request) for request in bus.requests] == [4, 4, 2]


class UnreachableBus:
    def put_batch(self, events):
        raise DependencyUnavailable("EventBridge refused the events")


def test_a_batch_eventbridge_never_takes_fails_whole_for_the_stream_to_retry_and_bisect(aws, monkeypatch):
    monkeypatch.setattr(
        handler_module("OutboxRelayFunction"),
        "outbox_relay",
        lambda: OutboxRelay(UnreachableBus(), sleep=lambda _: None),
    )

    with pytest.raises(BatchProcessingError):
        invoke("OutboxRelayFunction", stream_event_of(outbox_events(3)))


def test_an_unreadable_record_is_not_relayed_and_nothing_after_it_is_put():
    events = outbox_events(3)
    images = [outbox_image(event) for event in events]
    images[1]["detail"] = "{not json"
    bus = RecordingBus({})

    assert OutboxRelay(bus).relay(images) == 1

    assert bus.requests == [[events[0].event_id]]
