"""A session lifecycle step that keeps failing leaves the session visibly stuck and fails its execution
(the ExecutionsFailed alarm), instead of retrying a refusal or looping for ever (defects 5 and 9, GB-14).
Executions are started through the bus and named by the session, so a duplicate event starts nothing."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from emulator import runtime
from emulator.template import REGION, Template
from patungan.adapters.dynamodb import deserialize, serialize
from patungan.core import observability
from patungan.groupbuy.models import Session
from tests.emulator.support import eventually
from tests.support.lambdas import load_event

TEMPLATE = Template.load()
MAX_RELEASE_FAILURES = 24


def put_session(status: str) -> str:
    now = datetime.now(UTC)
    session = Session(
        id=f"ses_{uuid.uuid4().hex[:12]}",
        product_id="prd_1",
        factory_id="fac_1",
        product_name="Kopi",
        category="food",
        status=status,
        moq=1,
        target_quantity=10,
        base_price=100_000,
        currency="IDR",
        tiers=[],
        starts_at=now.isoformat(),
        deadline=(now + timedelta(days=1)).isoformat(),
        max_per_buyer=5,
        payment_window_seconds=3600,
        allow_leave_after_payment=True,
        created_by="admin-1",
        created_at=now.isoformat(),
        updated_at=now.isoformat(),
    )
    item = {"pk": f"SESSION#{session.id}", "sk": "META", **session.model_dump()}
    dynamodb().put_item(TableName=TEMPLATE.ref("GroupBuyTable"), Item=serialize(item))
    return session.id


def session_item(session_id: str) -> dict[str, Any]:
    key = serialize({"pk": f"SESSION#{session_id}", "sk": "META"})
    return deserialize(dynamodb().get_item(TableName=TEMPLATE.ref("GroupBuyTable"), Key=key)["Item"])


def dynamodb():
    return boto3.client("dynamodb", region_name=REGION)


def po_received(session_id: str) -> None:
    """warehouse.po_received on the bus, as the outbox relay puts it (a fresh EventBridge event each time)."""
    detail = {
        "event_id": f"evt_received_{session_id}",
        "type": "warehouse.po_received",
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "aggregate_id": "po_1",
        "data": {"session_id": session_id, "purchase_order_id": "po_1"},
    }
    entry = {
        "EventBusName": TEMPLATE.ref("EventBus"),
        "Source": "patungan.warehouse",
        "DetailType": "warehouse.po_received",
        "Detail": json.dumps(detail),
    }
    assert boto3.client("events", region_name=REGION).put_events(Entries=[entry])["FailedEntryCount"] == 0


def escrow_release_executions() -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    [machine] = [m for m in sfn.list_state_machines()["stateMachines"] if "EscrowRelease" in m["name"]]
    return sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]


def finished_execution(session_id: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)

    def finished():
        named = [e for e in escrow_release_executions() if e["name"] == session_id]
        return named if named and named[0]["status"] != "RUNNING" else None

    [execution] = eventually(finished, timeout=120)
    return sfn.describe_execution(executionArn=execution["executionArn"])


def entered(execution: dict[str, Any], state: str) -> int:
    history = boto3.client("stepfunctions", region_name=REGION).get_execution_history(
        executionArn=execution["executionArn"], maxResults=1000
    )["events"]
    return sum(
        1
        for event in history
        if event["type"] == "TaskStateEntered" and event["stateEnteredEventDetails"]["name"] == state
    )


@pytest.mark.usefixtures("stack")
def test_a_refused_step_is_not_retried_and_leaves_the_session_visibly_stuck():
    session_id = put_session("active")  # not in production: marking it delivered is refused (GB-2)

    po_received(session_id)
    po_received(session_id)  # delivered twice: one execution

    execution = finished_execution(session_id)
    assert (execution["status"], execution["error"]) == ("FAILED", "SessionStuck")
    assert [e["name"] for e in escrow_release_executions()].count(session_id) == 1
    assert entered(execution, "MarkDelivered") == 1
    stuck = session_item(session_id)
    assert stuck["stuck_step"] == "escrow_release.MarkDelivered"
    assert stuck["lifecycle_error"]["error"] == "Conflict"
    assert "is active, not in_production" in stuck["lifecycle_error"]["cause"]
    assert stuck["status"] == "active"


@pytest.mark.usefixtures("stack")
def test_the_hourly_escrow_release_retry_gives_up_after_a_day_and_leaves_the_session_stuck():
    """Defect 9: a release that fails every time used to be retried every hour for ever."""
    session_id = put_session("in_production")
    broken = serialize({"pk": f"SESSION#{session_id}", "sk": "PART#broken", "status": "ordered"})
    dynamodb().put_item(TableName=TEMPLATE.ref("GroupBuyTable"), Item=broken)  # every release page fails on it

    po_received(session_id)

    execution = finished_execution(session_id)
    assert (execution["status"], execution["error"]) == ("FAILED", "SessionStuck")
    assert entered(execution, "RecordReleaseFailure") == MAX_RELEASE_FAILURES
    stuck = session_item(session_id)
    assert (stuck["status"], stuck["escrow_release_status"]) == ("delivered", "failed")
    assert stuck["stuck_step"] == "escrow_release.EscrowRelease"
    assert stuck["lifecycle_error"]["error"] == "ValidationError"


class JsonLines(logging.Handler):
    """What our Powertools logger writes, line by line, formatted as in CloudWatch."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.setFormatter(observability.logger.registered_formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.mark.usefixtures("stack")
def test_each_function_logs_under_its_own_service_name():
    """Defect 9: one process runs every local function, and all logged the service of the first imported."""
    notification = load_event("eventbridge_payment_completed.json")
    captured = JsonLines()
    logging.getLogger(observability.logger.name).addHandler(captured)
    try:
        runtime.invoke("RecordSessionStuckFunction", {"session_id": "ses_x", "workflow": "w", "step": "s", "error": {}})
        runtime.invoke("NotifyOnDomainEventFunction", notification)
        runtime.invoke("NotifyOnDomainEventFunction", notification)  # again: "already notified"
        runtime.invoke("RecordSessionStuckFunction", {"session_id": "ses_y", "workflow": "w", "step": "s", "error": {}})
    finally:
        logging.getLogger(observability.logger.name).removeHandler(captured)

    services = [(line["message"], line["service"]) for line in captured.lines]
    assert services == [
        ("session lifecycle stuck", "groupbuy"),
        ("event delivered again; already notified", "notifications"),
        ("session lifecycle stuck", "groupbuy"),
    ]
