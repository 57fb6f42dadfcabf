"""Session state machines are started under their session's name, so a duplicate event starts nothing
(defect 5): the outbox relays at least once and EventBridge delivers at least once, and a second lifecycle
execution would settle, refund or release the same session twice."""

from __future__ import annotations

import json
import os
from unittest import mock

import boto3
import pytest

from patungan.core.config import get_settings
from tests.support.lambdas import invoke, load_event

# Named as the local stack names the template's machines: the starter's role may start exactly those.
MACHINES = {
    "GROUP_SESSION_STATE_MACHINE_ARN": "GroupSessionStateMachine",
    "SESSION_REFUND_STATE_MACHINE_ARN": "SessionRefundStateMachine",
    "ESCROW_RELEASE_STATE_MACHINE_ARN": "EscrowReleaseStateMachine",
}
# Executions wait here until the test ends: what matters is how many were started, and under which name.
WAITING = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}})


@pytest.fixture
def machines(aws):
    sfn = boto3.client("stepfunctions")
    role = "arn:aws:iam::123456789012:role/local"
    arns = {
        variable: sfn.create_state_machine(name=name, definition=WAITING, roleArn=role)["stateMachineArn"]
        for variable, name in MACHINES.items()
    }
    with mock.patch.dict(os.environ, arns):
        get_settings.cache_clear()
        yield {name: arns[variable] for variable, name in MACHINES.items()}
    get_settings.cache_clear()


def bridged(detail_type: str, aggregate_id: str, data: dict, event_id: str) -> dict:
    """The EventBridge event the outbox relay's put gives the starter, with EventBridge's own id."""
    event = load_event("eventbridge_payment_completed.json")
    detail = {
        "event_id": f"evt_{aggregate_id}_{detail_type}",
        "type": detail_type,
        "version": 1,
        "occurred_at": "2026-01-01T00:00:00Z",
        "aggregate_id": aggregate_id,
        "data": data,
    }
    return {**event, "id": event_id, "detail-type": detail_type, "source": "patungan.groupbuy", "detail": detail}


def executions(machine_arn: str) -> list[dict]:
    return boto3.client("stepfunctions").list_executions(stateMachineArn=machine_arn)["executions"]


def test_a_duplicate_session_created_event_does_not_start_the_lifecycle_twice(machines):
    created = {"session_id": "ses_1", "starts_at": "2026-01-01T00:00:00Z"}

    invoke("StartSessionWorkflowFunction", bridged("groupbuy.session.created", "ses_1", created, "eb-1"))
    invoke("StartSessionWorkflowFunction", bridged("groupbuy.session.created", "ses_1", created, "eb-2"))

    [execution] = executions(machines["GroupSessionStateMachine"])
    assert execution["name"] == "ses_1"
    started = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(started["input"])["aggregate_id"] == "ses_1"  # the ASL reads the event's detail


def test_a_duplicate_after_the_lifecycle_ended_starts_nothing(machines):
    created = bridged("groupbuy.session.created", "ses_1", {"session_id": "ses_1"}, "eb-1")
    assert invoke("StartSessionWorkflowFunction", created)["outcome"] == "started"
    [execution] = executions(machines["GroupSessionStateMachine"])
    boto3.client("stepfunctions").stop_execution(executionArn=execution["executionArn"])

    late = invoke("StartSessionWorkflowFunction", {**created, "id": "eb-2"})

    assert late == {"session_id": "ses_1", "outcome": "already_started"}
    assert len(executions(machines["GroupSessionStateMachine"])) == 1


def test_failed_and_cancelled_refund_and_escrow_release_are_named_by_the_session(machines):
    invoke("StartSessionWorkflowFunction", bridged("groupbuy.session.failed", "ses_2", {}, "eb-3"))
    invoke("StartSessionWorkflowFunction", bridged("groupbuy.session.failed", "ses_2", {}, "eb-4"))
    received = bridged("warehouse.po_received", "po_9", {"session_id": "ses_3"}, "eb-5")
    invoke("StartSessionWorkflowFunction", received)
    invoke("StartSessionWorkflowFunction", {**received, "id": "eb-6"})

    assert [e["name"] for e in executions(machines["SessionRefundStateMachine"])] == ["ses_2"]
    assert [e["name"] for e in executions(machines["EscrowReleaseStateMachine"])] == ["ses_3"]
    assert executions(machines["GroupSessionStateMachine"]) == []


def test_a_starter_without_its_state_machines_configured_refuses_loudly(aws):
    created = bridged("groupbuy.session.created", "ses_1", {"session_id": "ses_1"}, "eb-1")

    with pytest.raises(RuntimeError, match="no state machine is configured"):
        invoke("StartSessionWorkflowFunction", created)
