"""Creates in moto what template.yaml declares: tables, queues, buses, SSM parameters, functions (so invokes by
name or ARN work; the code runs in-process) and their Function URLs, state machines.

moto's CloudFormation cannot deploy a SAM template, so this reads the template itself; rules are deployed by
events.py, event-source mappings are run by pollers.py.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

import boto3

from emulator.template import REGION, Template, create_tables

EXECUTION_ROLE_NAME = "patungan-local-execution"
_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "FifoQueue",
    "ContentBasedDeduplication",
)


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def deploy(template: Template, secure_parameters: Mapping[str, str]) -> None:
    """Deploy the template into the running moto. ``secure_parameters``: template parameter (that names an
    SSM parameter) → the SecureString value to store under that name."""
    role_arn = _execution_role()
    create_tables(_client("dynamodb"), template)
    create_queues(template)
    for logical_id in template.of_type("AWS::Events::EventBus"):
        _client("events").create_event_bus(Name=template.ref(logical_id))
    ssm = _client("ssm")
    for parameter, value in secure_parameters.items():
        if parameter in template.body.get("Parameters", {}):
            ssm.put_parameter(Name=template.parameter(parameter), Value=value, Type="SecureString", Overwrite=True)
    register_functions(template, role_arn)
    sfn = _client("stepfunctions")
    for machine in template.state_machines().values():
        sfn.create_state_machine(name=machine.name, definition=machine.definition, roleArn=role_arn)


def _execution_role() -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = _client("iam").create_role(RoleName=EXECUTION_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    return role["Role"]["Arn"]


def create_queues(template: Template) -> None:
    """Every AWS::SQS::Queue, dead-letter queues before the queues that redrive to them."""
    sqs = _client("sqs")
    pending = {
        logical_id: template.resolve(r.get("Properties", {}))
        for logical_id, r in template.of_type("AWS::SQS::Queue").items()
    }
    created: set[str] = set()
    while pending:
        ready = [
            logical_id
            for logical_id, props in pending.items()
            if "RedrivePolicy" not in props
            or props["RedrivePolicy"]["deadLetterTargetArn"].rsplit(":", 1)[1] in created
        ]
        if not ready:
            raise ValueError(f"queues redrive to queues the template does not declare: {sorted(pending)}")
        for logical_id in ready:
            props = pending.pop(logical_id)
            attributes = {
                name: str(props[name]).lower() if isinstance(props[name], bool) else str(props[name])
                for name in _QUEUE_ATTRIBUTES
                if name in props
            }
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
            name = template.get_att(logical_id, "QueueName")
            sqs.create_queue(QueueName=name, Attributes=attributes)
            created.add(name)


def _placeholder_code() -> bytes:
    """Lambda wants a deployment package; the code really runs from the repository (runtime.py)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("README.txt", "the local stack runs this function in-process from the repository\n")
    return archive.getvalue()


def register_functions(template: Template, role_arn: str) -> None:
    lambda_client = _client("lambda")
    code = _placeholder_code()
    for function in template.functions().values():
        lambda_client.create_function(
            FunctionName=function.function_name,
            Runtime=function.runtime,
            Role=role_arn,
            Handler=function.handler,
            Code={"ZipFile": code},
            Timeout=function.timeout,
            MemorySize=function.memory_size,
            Environment={"Variables": function.environment},
        )
        if function.function_url is not None:
            lambda_client.create_function_url_config(
                FunctionName=function.function_name, AuthType=function.function_url.get("AuthType", "NONE")
            )
