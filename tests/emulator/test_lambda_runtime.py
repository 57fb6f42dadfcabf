"""Invocations through moto's Lambda API and through emulator.runtime run the handlers in-process."""

from __future__ import annotations

import json

import boto3

from emulator import runtime
from emulator.template import REGION


def test_a_direct_invoke_runs_the_handler(stack):
    response = boto3.client("lambda", region_name=REGION).invoke(
        FunctionName="WorkerFunction", Payload=json.dumps({"amount": 5})
    )

    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"charged": 5}


def test_a_handler_that_raises_is_a_function_error_with_its_type(stack):
    arn = f"arn:aws:lambda:{REGION}:123456789012:function:WorkerFunction"

    response = boto3.client("lambda", region_name=REGION).invoke(
        FunctionName=arn, Payload=json.dumps({"amount": 5, "decline": True})
    )

    assert response["FunctionError"] == "Handled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "PaymentDeclined"
    assert error["errorMessage"] == "card declined for 5"


def test_the_handler_gets_a_lambda_context_and_its_functions_environment(stack):
    invocation = runtime.invoke("EchoFunction", {"httpMethod": "GET"})

    assert not invocation.errored
    assert json.loads(invocation.payload["body"])["function_name"] == "EchoFunction"
    assert runtime.invoke("WorkerFunction", {"amount": 1, "decline": True}).payload["errorType"] == "PaymentDeclined"
