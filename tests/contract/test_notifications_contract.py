"""The notifications consumer and what feeds it agree (NOT-3): the template's rule lets through exactly the
event types that notify, and every sample event parses as the consumer parses it."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.parser import envelopes, parse

from emulator.template import Template
from patungan.core.events import DomainEvent
from patungan.notifications.messages import NOTIFYING_EVENTS
from tests.support.lambdas import EVENTS, load_event

TEMPLATE = Template.load()
CONSUMER = TEMPLATE.functions()["NotifyOnDomainEventFunction"]
RULE = CONSUMER.events["DomainEvents"]["Properties"]


def test_the_rule_matches_exactly_the_event_types_that_notify():
    assert set(RULE["Pattern"]["detail-type"]) == set(NOTIFYING_EVENTS)
    assert set(RULE["Pattern"]["source"]) == {f"patungan.{t.split('.', 1)[0]}" for t in NOTIFYING_EVENTS}


def test_undelivered_events_and_failed_invocations_are_retried_then_dead_lettered_to_an_alarmed_queue():
    queue_arn = {"Fn::GetAtt": ["NotificationsDeadLetterQueue", "Arn"]}
    invoke_config = CONSUMER.properties["EventInvokeConfig"]
    alarm = TEMPLATE.resources["NotificationsDeadLetterAlarm"]["Properties"]

    assert RULE["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert RULE["DeadLetterConfig"]["Arn"] == queue_arn
    assert invoke_config["MaximumRetryAttempts"] > 0
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["NotificationsDeadLetterQueue", "QueueName"]}}
    ]


@pytest.mark.parametrize("path", sorted(EVENTS.glob("eventbridge_*.json")), ids=lambda p: p.stem)
def test_each_sample_event_parses_as_the_consumer_parses_it(path):
    event = parse(load_event(path.name), model=DomainEvent, envelope=envelopes.EventBridgeEnvelope)

    assert event.type in NOTIFYING_EVENTS
    assert NOTIFYING_EVENTS[event.type].model_validate(event.data).user_id


def test_every_event_type_that_notifies_has_a_sample():
    samples = {load_event(p.name)["detail-type"] for p in EVENTS.glob("eventbridge_*.json")}

    assert set(NOTIFYING_EVENTS) <= samples
