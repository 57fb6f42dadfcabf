"""Least privilege, checked while the code runs (issue 6, defect 8).

moto answers every call whatever the caller's role says, so a function whose Policies miss something its code
does would pass every local test and fail in AWS with AccessDenied, perhaps half-way through moving money.
While a function runs here (the local stack's runtime, the tests' ``invoke``), each AWS API call its code
makes is checked against what that function's Policies in the template grant, as IAM evaluates them: the
action and resource each call needs (a transaction needs the item action on each table it touches), the SAM
policy templates expanded as SAM expands them. A call the role would refuse is recorded and logged, not
refused (the code's own error handling could hide a refusal); tests/conftest.py fails the test that made it,
the local stack lists them at GET /_local/permissions/denials.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from botocore.client import BaseClient

from emulator.template import ACCOUNT_ID, REGION, Template

logger = logging.getLogger(__name__)

_TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{{TableName}}"
_DYNAMODB_READ = (
    "dynamodb:GetItem",
    "dynamodb:Scan",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "dynamodb:DescribeTable",
)
# The SAM policy templates this project uses, as samtranslator's policy_templates.json (1.110) defines them:
# (actions, resources) per statement, a resource naming the template's parameter in braces.
SAM_POLICY_TEMPLATES: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "DynamoDBReadPolicy": [(_DYNAMODB_READ, (_TABLE, f"{_TABLE}/index/*"))],
    "DynamoDBWritePolicy": [
        (("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"), (_TABLE, f"{_TABLE}/index/*"))
    ],
    "DynamoDBCrudPolicy": [
        (
            (
                *_DYNAMODB_READ,
                "dynamodb:DeleteItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem",
            ),
            (_TABLE, f"{_TABLE}/index/*"),
        )
    ],
    "SQSSendMessagePolicy": [(("sqs:SendMessage*",), (f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{{QueueName}}",))],
    "EventBridgePutEventsPolicy": [
        (("events:PutEvents",), (f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{{EventBusName}}",))
    ],
    "StepFunctionsExecutionPolicy": [
        (("states:StartExecution",), (f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{{StateMachineName}}",))
    ],
    "LambdaInvokePolicy": [
        (("lambda:InvokeFunction",), (f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{{FunctionName}}*",))
    ],
}

# What IAM authorises each item of a transaction by (there is no TransactWriteItems action).
_TRANSACTION_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
# SQS authorises a batch by the action of one message.
_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


class UnknownPolicy(ValueError):
    """A policy the check cannot expand: add its definition to SAM_POLICY_TEMPLATES (from SAM's own)."""


@dataclass(frozen=True)
class Denial:
    function: str
    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.function} called {self.action} on {self.resource} but its policies do not allow it"


def _pattern(globs: list[str], *, ignore_case: bool = False) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters (``/`` and ``:`` too), ``?`` one character."""
    alternatives = "|".join(re.escape(glob).replace(r"\*", ".*").replace(r"\?", ".") for glob in globs)
    return re.compile(f"(?:{alternatives})", re.IGNORECASE if ignore_case else 0)


@dataclass(frozen=True)
class Statement:
    allow: bool
    actions: re.Pattern[str]
    resources: re.Pattern[str]

    @classmethod
    def of(cls, effect: str, actions: Any, resources: Any) -> Statement:
        as_list = lambda value: [value] if isinstance(value, str) else list(value)  # noqa: E731
        return cls(effect == "Allow", _pattern(as_list(actions), ignore_case=True), _pattern(as_list(resources)))

    def covers(self, action: str, resource: str) -> bool:
        return bool(self.actions.fullmatch(action) and self.resources.fullmatch(resource))


def role_statements(template: Template, policies: list[Any]) -> list[Statement]:
    """The statements a function's ``Policies`` put on its role, intrinsic functions resolved."""
    statements = []
    for policy in template.resolve(policies):
        if not isinstance(policy, dict):
            raise UnknownPolicy(f"managed policy {policy!r}: grant what the function uses with a policy template")
        for name, parameters in policy.items():
            if name == "Statement":
                statements += [Statement.of(s["Effect"], s["Action"], s["Resource"]) for s in parameters]
            elif name in SAM_POLICY_TEMPLATES:
                statements += [
                    Statement.of("Allow", actions, [resource.format(**parameters) for resource in resources])
                    for actions, resources in SAM_POLICY_TEMPLATES[name]
                ]
            else:
                raise UnknownPolicy(f"policy template {name}: add SAM's definition to SAM_POLICY_TEMPLATES")
    return statements


def _dynamodb_table(name: str) -> str:
    return name if name.startswith("arn:") else _TABLE.format(TableName=name)


def _ssm_parameter(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter/{name.lstrip('/')}"


def _event_bus(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}"


def _lambda_function(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


Permissions = list[tuple[str, str]]


def _dynamodb(operation: str, params: Mapping[str, Any]) -> Permissions | None:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return [
            (_TRANSACTION_ITEM_ACTIONS[kind], _dynamodb_table(request["TableName"]))
            for item in params.get("TransactItems", [])
            for kind, request in item.items()
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{operation}", _dynamodb_table(name)) for name in params.get("RequestItems", {})]
    if "TableName" not in params:
        return None
    table = _dynamodb_table(params["TableName"])
    index = params.get("IndexName")
    return [(f"dynamodb:{operation}", f"{table}/index/{index}" if index else table)]


def _ssm(operation: str, params: Mapping[str, Any]) -> Permissions | None:
    names = params.get("Names") or [params[key] for key in ("Name", "Path") if key in params]
    return [(f"ssm:{operation}", _ssm_parameter(name)) for name in names] or None


def _sqs(operation: str, params: Mapping[str, Any]) -> Permissions | None:
    name = params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1] if "QueueUrl" in params else params.get("QueueName")
    action = f"sqs:{_SQS_BATCH_ACTIONS.get(operation, operation)}"
    return [(action, f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}")] if name else None


def _events(operation: str, params: Mapping[str, Any]) -> Permissions | None:
    if operation != "PutEvents":
        return None
    buses = {entry.get("EventBusName", "default") for entry in params.get("Entries", [])}
    return [("events:PutEvents", _event_bus(bus)) for bus in sorted(buses)]


def _states(operation: str, params: Mapping[str, Any]) -> Permissions | None:
    arn = params.get("stateMachineArn") or params.get("executionArn")
    return [(f"states:{operation}", arn)] if arn else None


def _lambda(operation: str, params: Mapping[str, Any]) -> Permissions | None:
    if "FunctionName" not in params:
        return None
    action = "lambda:InvokeFunction" if operation in ("Invoke", "InvokeAsync") else f"lambda:{operation}"
    return [(action, _lambda_function(params["FunctionName"]))]


_RESOURCES_BY_SERVICE = {
    "dynamodb": _dynamodb,
    "ssm": _ssm,
    "sqs": _sqs,
    "events": _events,
    "states": _states,
    "lambda": _lambda,
}


def required_permissions(service: str, operation: str, params: Mapping[str, Any]) -> Permissions:
    """The (action, resource ARN) pairs IAM checks for one API call; ``service`` is the IAM prefix. A call this
    does not know the resource of needs its action on every resource (``*``)."""
    resources_of = _RESOURCES_BY_SERVICE.get(service)
    needed = resources_of(operation, params) if resources_of else None
    return needed if needed is not None else [(f"{service}:{operation}", "*")]


class FunctionRoles:
    """Every function's role as its template Policies make it; records the calls a role would refuse."""

    def __init__(self, template: Template) -> None:
        self._statements = {
            logical_id: role_statements(template, spec.properties.get("Policies", []))
            for logical_id, spec in template.functions().items()
        }
        self._decisions: dict[tuple[str, str, str], bool] = {}

    def allows(self, function: str, action: str, resource: str) -> bool:
        key = (function, action, resource)
        if key not in self._decisions:
            statements = self._statements.get(function, [])
            matching = [statement for statement in statements if statement.covers(action, resource)]
            self._decisions[key] = bool(matching) and all(statement.allow for statement in matching)
        return self._decisions[key]

    def check(self, function: str, service: str, operation: str, params: Mapping[str, Any]) -> None:
        for action, resource in required_permissions(service, operation, params):
            if not self.allows(function, action, resource):
                _record(Denial(function, action, resource))


_acting: ContextVar[tuple[FunctionRoles, str] | None] = ContextVar("acting_function", default=None)
_denials: list[Denial] = []  # distinct, in the order they happened
_denials_lock = threading.Lock()


def _record(denial: Denial) -> None:
    with _denials_lock:
        if denial in _denials:
            return
        _denials.append(denial)
    logger.warning("AccessDenied in AWS: %s", denial)


def denials() -> list[Denial]:
    """Every distinct refusal recorded in this process (since the last ``take_denials``), in order."""
    with _denials_lock:
        return list(_denials)


def take_denials() -> list[Denial]:
    """The distinct refusals recorded since the last call, forgotten once taken."""
    with _denials_lock:
        taken = list(_denials)
        _denials.clear()
    return taken


@contextmanager
def acting_as(roles: FunctionRoles, function: str) -> Iterator[None]:
    """AWS calls made in this block (this thread) are ``function``'s, checked against its role."""
    token = _acting.set((roles, function))
    try:
        yield
    finally:
        _acting.reset(token)


_secrets_read_by: list[str] = []  # the function whose role read the secrets cached now


def forget_secrets_of_other_functions(function: str) -> None:
    """In Lambda each function reads the secrets it uses under its own role, at its cold start. One process
    runs every function here, so what another function read (Powertools' parameter cache, the Xendit gateway
    holding the secret key) is forgotten before ``function`` runs: it reads them again, checked."""
    if _secrets_read_by == [function]:
        return  # a warm container keeps what it read
    _secrets_read_by[:] = [function]
    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS

    from patungan import composition

    for provider in DEFAULT_PROVIDERS.values():  # values only: a new provider's boto3 client costs ~100 ms
        provider.clear_cache()
    composition.xendit.cache_clear()


def install() -> None:
    """Check every boto3 client's calls from now on (once per process; a call outside ``acting_as`` is not
    a function's and passes unchecked)."""
    original = BaseClient._make_api_call
    if getattr(original, "checks_permissions", False):
        return

    def make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        acting = _acting.get()
        if acting is None:
            return original(client, operation_name, api_params)
        roles, function = acting
        roles.check(function, client.meta.service_model.signing_name, operation_name, api_params)
        # What answering the call takes (moto, the local stack's deliveries) is AWS's doing, not the function's;
        # a function the call runs (a stream consumer) acts as itself again.
        token = _acting.set(None)
        try:
            return original(client, operation_name, api_params)
        finally:
            _acting.reset(token)

    make_api_call.checks_permissions = True  # type: ignore[attr-defined]
    BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
