"""State machines run by moto's interpreter reach our handlers through the in-process Lambda runtime."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3

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

    return eventually(finished, timeout=UNSCALED_WAIT_SECONDS / 6)


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
