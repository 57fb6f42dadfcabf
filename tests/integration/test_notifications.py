"""In-app notifications on moto (NOT-1, NOT-3, SYS-1): domain events delivered by the bus become one
notification for the user they concern; users list theirs and mark them read."""

from __future__ import annotations

import json

import boto3
import pytest
from pydantic import ValidationError

from emulator.template import ACCOUNT_ID
from patungan.adapters.eventbridge import EventBusPublisher
from patungan.core.events import DomainEvent
from tests.support.lambdas import call_api, claims, invoke, load_event

BUYER = claims("buyer-1", "buyer")
OTHER_BUYER = claims("buyer-2", "buyer")


def sample(name: str, **data_changes) -> dict:
    """events/eventbridge_<name>.json, with some of its event's data changed."""
    event = load_event(f"eventbridge_{name}.json")
    event["detail"]["data"].update(data_changes)
    return event


def deliver(event: dict) -> None:
    invoke("NotifyOnDomainEventFunction", event)


def list_notifications(who=BUYER, **query: str):
    return call_api("ListNotificationsFunction", "GET", "/v1/notifications", claims=who, query=query or None)


def mark_read(notification_id: str, who=BUYER):
    return call_api(
        "MarkNotificationReadFunction",
        "POST",
        f"/v1/notifications/{notification_id}/read",
        resource="/v1/notifications/{id}/read",
        path_parameters={"id": notification_id},
        claims=who,
    )


def stored_notifications(aws) -> list[dict]:
    return aws.dynamodb().scan(TableName=aws.tables["NotificationsTable"])["Items"]


@pytest.mark.parametrize(
    ("name", "title", "body", "data"),
    [
        (
            "participant_joined",
            "You joined the group buy",
            "You joined the group buy for Sepatu Kanvas (2 x Rp150.000). Pay Rp300.000 to secure your place.",
            {
                "session_id": "gbs_01jd0000000000000000000001",
                "payment_id": "pay_01jd0000000000000000000001",
                "invoice_url": "https://checkout.xendit.co/web/inv_01jd0000000000000000000001",
                "amount": 300000,
            },
        ),
        (
            "payment_completed",
            "Payment received",
            "We received your payment of Rp300.000. Your place in the group buy is confirmed.",
            {"payment_id": "pay_01jd0000000000000000000001", "amount": 300000, "currency": "IDR"},
        ),
        (
            "payment_expired",
            "Your join expired unpaid",
            "Your payment of Rp300.000 was not made in time, so your place in the group buy was released. "
            "You can join again while the session is open.",
            {"payment_id": "pay_01jd0000000000000000000001", "participant_id": "par_01jd0000000000000000000001"},
        ),
        (
            "payment_reminder",
            "Payment reminder",
            "Pay Rp300.000 before 21 Nov 2026, 17:00 WIB to keep your place in the group buy.",
            {"deadline": "2026-11-21T10:00:00Z", "participant_id": "par_01jd0000000000000000000001"},
        ),
        (
            "order_created",
            "Group buy succeeded",
            "The group buy for Sepatu Kanvas succeeded and your order of Rp260.000 was created. "
            "The final price came out lower than what you paid, so Rp40.000 was credited to your wallet.",
            {"order_id": "ord_01jd0000000000000000000001", "total": 260000, "tier_refund_amount": 40000},
        ),
        (
            "refund_requested",
            "Group buy did not succeed",
            "The group buy did not reach its minimum order by the deadline. Your refund of Rp300.000 is on its way.",
            {"refund_id": "rfd_01jd0000000000000000000001", "reason": "session_failed", "amount": 300000},
        ),
        (
            "payment_refunded",
            "Refund completed",
            "Your refund of Rp300.000 was sent to your Patungan wallet.",
            {"refund_id": "rfd_01jd0000000000000000000001", "destination": "wallet"},
        ),
        (
            "withdrawal_completed",
            "Withdrawal sent",
            "Rp57.500 was sent to BCA ******7890.",
            {"id": "wdr_01jd0000000000000000000001", "status": "completed", "account_number_masked": "******7890"},
        ),
        (
            "withdrawal_failed",
            "Withdrawal failed",
            "We could not send your withdrawal to BCA ******7890 (INVALID_DESTINATION). "
            "Rp60.000 is back in your Patungan wallet.",
            {"id": "wdr_01jd0000000000000000000001", "failure_code": "INVALID_DESTINATION"},
        ),
        (
            "withdrawal_reversed",
            "Withdrawal returned",
            "The bank returned your withdrawal to BCA ******7890. Rp60.000 is back in your Patungan wallet.",
            {"id": "wdr_01jd0000000000000000000001", "status": "reversed"},
        ),
        (
            "withdrawal_rejected",
            "Withdrawal rejected",
            "Your withdrawal to BCA ******7890 was not approved. Rp60.000 is back in your Patungan wallet.",
            {"id": "wdr_01jd0000000000000000000001", "status": "rejected"},
        ),
    ],
)
def test_each_event_type_notifies_the_user_it_concerns(aws, name, title, body, data):
    event = sample(name)

    deliver(event)

    [notification] = list_notifications().body["items"]
    assert notification["id"] == "ntf_" + event["detail"]["event_id"].removeprefix("evt_")
    assert notification["type"] == event["detail-type"]
    assert (notification["title"], notification["body"]) == (title, body)
    assert data.items() <= notification["data"].items()
    assert "user_id" not in notification["data"]
    assert notification["read"] is False
    assert notification["created_at"] == event["detail"]["occurred_at"]
    assert list_notifications(OTHER_BUYER).body["items"] == []


def test_an_event_delivered_twice_notifies_once(aws):
    event = sample("payment_completed")

    deliver(event)
    mark_read(list_notifications().body["items"][0]["id"])
    deliver(event)

    [notification] = list_notifications().body["items"]
    assert notification["read"] is True, "the redelivery must not overwrite the notification"
    assert len(stored_notifications(aws)) == 1


@pytest.mark.parametrize("platform_participant", [{"user_id": "platform"}, {"is_platform": True}])
def test_the_platform_top_up_participant_is_never_notified(aws, platform_participant):
    deliver(sample("participant_joined", **platform_participant))
    deliver(sample("payment_completed", **platform_participant))

    assert stored_notifications(aws) == []


def test_an_event_type_without_a_notification_is_ignored(aws):
    event = sample("payment_completed")
    event["detail-type"] = event["detail"]["type"] = "payment.intent_created"

    deliver(event)

    assert stored_notifications(aws) == []


def test_an_event_missing_its_user_fails_the_invocation_for_retry_and_dead_letter(aws):
    event = sample("payment_completed")
    del event["detail"]["data"]["user_id"]

    with pytest.raises(ValidationError):
        deliver(event)
    assert stored_notifications(aws) == []


def test_events_published_to_the_bus_reach_the_consumer_through_the_template_rule(aws):
    """The relay's publisher → the template's rule pattern → the handler, as in AWS (an SQS target stands in
    for the Lambda target, which moto cannot invoke)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue_url = sqs.create_queue(QueueName="notify-on-domain-event")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = aws.template.functions()["NotifyOnDomainEventFunction"].events["DomainEvents"]["Properties"]
    bus = aws.environment["EVENT_BUS_NAME"]
    events.put_rule(Name="notifications", EventBusName=bus, EventPattern=json.dumps(rule["Pattern"]))
    events.put_targets(Rule="notifications", EventBusName=bus, Targets=[{"Id": "consumer", "Arn": queue_arn}])
    catalog_event = load_event("dynamodb_stream_outbox.json")["Records"][0]["dynamodb"]["NewImage"]["detail"]["S"]
    publisher = EventBusPublisher(bus)

    published = [sample("order_created")["detail"], json.loads(catalog_event)]
    assert publisher.put_batch([DomainEvent.model_validate(event) for event in published]) == [None, None]

    matched = [
        json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert [m["detail-type"] for m in matched] == ["order.created"]
    # moto's SQS delivery drops the envelope's "account", which EventBridge always sends.
    deliver({"account": ACCOUNT_ID, **matched[0]})
    assert [n["type"] for n in list_notifications().body["items"]] == ["order.created"]


@pytest.fixture
def three_notifications(aws) -> list[str]:
    """Ids of buyer-1's notifications, newest first."""
    for name in ("participant_joined", "payment_completed", "order_created"):
        deliver(sample(name))
    return [n["id"] for n in list_notifications().body["items"]]


def test_notifications_are_listed_newest_first_in_pages(three_notifications):
    first = list_notifications(limit="2")
    second = list_notifications(limit="2", cursor=first.body["next_cursor"])

    assert first.status == second.status == 200
    assert [n["type"] for n in first.body["items"]] == ["order.created", "payment.completed"]
    assert [n["type"] for n in second.body["items"]] == ["groupbuy.participant.joined"]
    assert second.body["next_cursor"] is None


def test_marking_read_is_idempotent_and_leaves_the_unread_list(three_notifications):
    newest, middle, oldest = three_notifications

    first = mark_read(middle)
    again = mark_read(middle)

    assert first.status == again.status == 200
    assert first.body["id"] == middle
    assert first.body["read"] is again.body["read"] is True
    assert [n["id"] for n in list_notifications(unread="true").body["items"]] == [newest, oldest]
    everything = list_notifications().body["items"]
    assert [(n["id"], n["read"]) for n in everything] == [(newest, False), (middle, True), (oldest, False)]


def test_unread_list_pages_too(three_notifications):
    newest, middle, oldest = three_notifications
    mark_read(newest)

    first = list_notifications(unread="true", limit="1")
    second = list_notifications(unread="true", limit="1", cursor=first.body["next_cursor"])

    assert [n["id"] for n in first.body["items"] + second.body["items"]] == [middle, oldest]


def test_another_users_notification_is_404_and_stays_unread(three_notifications):
    response = mark_read(three_notifications[0], who=OTHER_BUYER)

    assert response.status == 404
    assert response.body["error"]["code"] == "not_found"
    assert len(list_notifications(unread="true").body["items"]) == 3
    assert list_notifications(OTHER_BUYER).body["items"] == []


def test_an_unknown_notification_is_404(aws):
    assert mark_read("ntf_missing").status == 404


def test_a_cursor_works_only_for_the_user_and_list_it_came_from(three_notifications):
    cursor = list_notifications(limit="1").body["next_cursor"]

    for response in (
        list_notifications(OTHER_BUYER, cursor=cursor),
        list_notifications(unread="true", cursor=cursor),
        list_notifications(cursor="not-a-cursor!"),
    ):
        assert response.status == 400
        assert response.body["error"]["code"] == "invalid_cursor"


def test_signed_out_callers_get_401(aws):
    listed = list_notifications(who=None)
    marked = mark_read("ntf_any", who=None)

    assert listed.status == marked.status == 401
    assert listed.headers["x-correlation-id"]


def test_list_limit_is_validated(aws):
    assert list_notifications(limit="101").status == 422
