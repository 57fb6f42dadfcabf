"""Events on the bus reach the rules' targets (SQS, Lambda); schedules fire on demand, and never on events."""

from __future__ import annotations

import json
import re
import uuid

import boto3
import requests

from emulator.events import target_input
from emulator.template import REGION
from tests.emulator.support import eventually, queue_messages, record

ISO_8601_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def put_order_event(order_id: str, detail_type: str = "order.created", bus: str = "EventBus") -> None:
    response = boto3.client("events", region_name=REGION).put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": "test.orders",
                "DetailType": detail_type,
                "Detail": json.dumps({"order_id": order_id}),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0


def order_message(order_id: str) -> dict | None:
    """The OrdersQueue message about ``order_id`` (messages about other orders are consumed too)."""
    return next((m for m in queue_messages("OrdersQueue") if m["detail"]["order_id"] == order_id), None)


def test_an_event_reaches_the_sqs_target_and_the_lambda_target(stack):
    order_id = str(uuid.uuid4())

    put_order_event(order_id)

    message = eventually(lambda: order_message(order_id))
    assert message["detail-type"] == "order.created"
    assert ISO_8601_UTC.fullmatch(message["time"])
    # The Lambda target is invoked asynchronously, with the rule's InputPath ($.detail) applied.
    assert eventually(lambda: record(f"recorder#{order_id}")) == {"order_id": order_id}


def test_a_lambda_target_that_keeps_failing_is_retried_then_sent_to_its_on_failure_destination(stack):
    put_order_event("unrecordable")

    [failure] = eventually(lambda: queue_messages("RecorderFailuresQueue"))
    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 2  # EventInvokeConfig: MaximumRetryAttempts 1
    assert failure["requestPayload"] == {"order_id": "unrecordable"}
    assert failure["responsePayload"]["errorType"] == "ValueError"


def test_an_event_the_pattern_does_not_match_goes_nowhere(stack):
    order_id = str(uuid.uuid4())

    marker = str(uuid.uuid4())
    put_order_event(order_id, detail_type="order.cancelled")
    put_order_event("nightly", bus="default")  # the scheduled rule lives here and must not match events
    put_order_event(marker)  # matched, and put last: once it has arrived, so would have the others
    consumed: list[dict] = []

    def marker_arrived() -> bool:
        consumed.extend(queue_messages("OrdersQueue"))
        return any(message["detail"]["order_id"] == marker for message in consumed)

    eventually(marker_arrived)
    eventually(lambda: record(f"recorder#{marker}"))
    assert all(message["detail"]["order_id"] != order_id for message in consumed)
    assert record(f"recorder#{order_id}") is None
    assert record("recorder#nightly") is None


def test_a_schedule_fires_through_the_local_endpoint(stack):
    response = requests.post(f"{stack.url}/_local/schedules/RecorderFunctionNightly/fire", timeout=5)

    assert response.status_code == 202
    assert response.json() == {"rule": "RecorderFunctionNightly", "fired": True}
    assert eventually(lambda: record("recorder#nightly")) == {"order_id": "nightly"}


def test_a_schedule_can_be_fired_by_its_event_name_and_an_unknown_one_is_404(stack):
    assert requests.post(f"{stack.url}/_local/schedules/Nightly/fire", timeout=5).status_code == 202

    missing = requests.post(f"{stack.url}/_local/schedules/NoSuchRule/fire", timeout=5)

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert "RecorderFunctionNightly" in missing.json()["error"]["message"]  # what to fire instead


EVENT = {
    "version": "0",
    "id": "evt-1",
    "detail-type": "order.created",
    "source": "test.orders",
    "time": "2026-11-21T10:00:00Z",
    "detail": {"order_id": "ord-1", "total": 150000},
}


def test_a_targets_input_path_and_input_transformer_shape_what_it_receives():
    transformer = {
        "InputPathsMap": {"order": "$.detail.order_id", "when": "$.time"},
        "InputTemplate": '{"order": "<order>", "at": "<when>", "kind": "reminder"}',
    }

    assert target_input({"InputPath": "$.detail.total"}, EVENT) == 150000
    assert target_input({"Input": '{"fixed": true}'}, EVENT) == {"fixed": True}
    assert target_input({"InputTransformer": transformer}, EVENT) == {
        "order": "ord-1",
        "at": "2026-11-21T10:00:00Z",
        "kind": "reminder",
    }
    assert target_input({}, EVENT) == EVENT
