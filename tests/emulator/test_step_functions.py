"""State machines run by moto's interpreter reach our handlers through the in-process Lambda runtime; their
Wait states run on the scaled execution clock, which POST /_local/clock/advance moves ahead."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import requests

from emulator.template import REGION
from tests.emulator.support import eventually

UNSCALED_WAIT_SECONDS = 60  # the Cooldown state; at the fixture's time scale it passes in 0.1 s


def run(state_machine: str, payload: dict) -> dict:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machines = sfn.list_state_machines()["stateMachines"]
    arn = next(machine["stateMachineArn"] for machine in machines if machine["name"] == state_machine)
    execution = sfn.start_execution(stateMachineArn=arn, name=str(uuid.uuid4()), input=json.dumps(payload))

    def finished():
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        return described if described["status"] != "RUNNING" else None

    return eventually(finished)


def test_a_task_calls_our_handler_and_the_wait_passes_at_the_time_scale(stack):
    execution = run("PaymentFlow", {"amount": 150_000})

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"amount": 150_000, "charge": {"charged": 150_000}}


def test_a_catch_follows_the_error_type_the_handler_raised(stack):
    execution = run("PaymentFlow", {"amount": 99, "decline": True})

    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["outcome"] == "declined"
    assert output["error"]["Error"] == "PaymentDeclined"
    assert "card declined for 99" in output["error"]["Cause"]


def test_timestamp_waits_and_task_token_timeouts_pass_at_the_time_scale(stack):
    remind_at = (datetime.now(UTC) + timedelta(seconds=UNSCALED_WAIT_SECONDS)).strftime("%Y-%m-%dT%H:%M:%SZ")

    execution = run("TimersFlow", {"remind_at": remind_at})

    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["outcome"] == "expired"
    assert output["error"]["Error"] == "States.Timeout"


FAR_AHEAD_HOURS = 1000  # 6 000 real seconds at the fixture's time scale: it passes only when the clock is advanced


def two_waits_machine() -> str:
    definition = {
        "StartAt": "UntilReminder",
        "States": {
            "UntilReminder": {"Type": "Wait", "TimestampPath": "$.remind_at", "Next": "UntilDeadline"},
            "UntilDeadline": {"Type": "Wait", "TimestampPath": "$.deadline", "End": True},
        },
    }
    machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=f"TwoWaits-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/local",
    )
    return machine["stateMachineArn"]


def start(machine_arn: str, **hours_ahead: float) -> str:
    now = datetime.now(UTC)
    times = {name: (now + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ") for name, hours in hours_ahead.items()}
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return sfn.start_execution(stateMachineArn=machine_arn, name=str(uuid.uuid4()), input=json.dumps(times))[
        "executionArn"
    ]


def advance(stack, seconds) -> requests.Response:
    return requests.post(f"{stack.url}/_local/clock/advance", json={"seconds": seconds}, timeout=30)


def entered(execution_arn: str, state: str) -> bool:
    history = boto3.client("stepfunctions", region_name=REGION).get_execution_history(executionArn=execution_arn)
    return any(
        event["type"] == "WaitStateEntered" and event["stateEnteredEventDetails"]["name"] == state
        for event in history["events"]
    )


def status(execution_arn: str) -> str:
    return boto3.client("stepfunctions", region_name=REGION).describe_execution(executionArn=execution_arn)["status"]


def test_advancing_the_clock_ends_the_waits_due_by_then_one_after_another(stack):
    """A deadline is fired without waiting for it (issue 6: tests and the README walkthrough waited in real
    time); the second Wait counts on the execution's clock, so it ends when that clock reaches the deadline."""
    machine = two_waits_machine()
    execution = start(machine, remind_at=FAR_AHEAD_HOURS / 2, deadline=FAR_AHEAD_HOURS)
    eventually(lambda: entered(execution, "UntilReminder"))

    first = advance(stack, int(FAR_AHEAD_HOURS * 0.6 * 3600))

    assert first.status_code == 200, first.text
    assert first.json()["advanced_seconds"] == FAR_AHEAD_HOURS * 0.6 * 3600
    assert first.json()["running_executions"] >= 1
    eventually(lambda: entered(execution, "UntilDeadline"))
    assert status(execution) == "RUNNING"  # 600 of 1 000 hours: the deadline is still ahead

    assert advance(stack, int(FAR_AHEAD_HOURS * 0.5 * 3600)).status_code == 200
    eventually(lambda: status(execution) == "SUCCEEDED")


@pytest.mark.parametrize("body", [{}, {"seconds": 0}, {"seconds": -5}, {"seconds": "60"}, {"seconds": 10**12}])
def test_an_advance_that_is_not_a_positive_whole_number_of_seconds_up_to_a_year_is_422(stack, body):
    response = requests.post(f"{stack.url}/_local/clock/advance", json=body, timeout=30)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
