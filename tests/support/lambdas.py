"""Invoke a template function's handler in-process, as Lambda would, with events built from events/."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from emulator import permissions
from emulator.template import Template

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


@dataclass
class FakeLambdaContext:
    function_name: str = "test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:ap-southeast-3:123456789012:function:test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 15_000


@cache
def handler_module(logical_id: str) -> Any:
    spec_ = Template.load().functions()[logical_id]
    module_name = f"handler_{logical_id}"
    spec = importlib.util.spec_from_file_location(module_name, spec_.module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@cache
def function_roles() -> permissions.FunctionRoles:
    """The roles template.yaml gives the functions; from now on their AWS calls are checked against them."""
    permissions.install()
    return permissions.FunctionRoles(Template.load())


def invoke(logical_id: str, event: dict[str, Any]) -> Any:
    permissions.forget_secrets_of_other_functions(logical_id)
    with permissions.acting_as(function_roles(), logical_id):
        return handler_module(logical_id).lambda_handler(event, FakeLambdaContext(function_name=logical_id))


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any


def api_event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    body: Any = None,
    claims: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (events/api_gateway_request.json) for this request."""
    event = copy.deepcopy(load_event("api_gateway_request.json"))
    event.update(
        httpMethod=method,
        path=path,
        resource=resource or path,
        body=None if body is None else json.dumps(body),
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
        pathParameters=path_parameters,
    )
    event["headers"] = {k: v for k, v in event["headers"].items() if k != "Authorization"} | (headers or {})
    context = event["requestContext"]
    context.update(httpMethod=method, resourcePath=resource or path, path=f"/local{path}", requestId=str(uuid.uuid4()))
    if claims is None:
        context.pop("authorizer", None)
    else:
        context["authorizer"] = {"claims": claims}
    return event


def call_api(logical_id: str, method: str, path: str, **kwargs: Any) -> ApiResponse:
    response = invoke(logical_id, api_event(method, path, **kwargs))
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(key.lower(), values[-1])
    body = json.loads(response["body"]) if response.get("body") else None
    return ApiResponse(response["statusCode"], headers, body)


def claims(sub: str, *groups: str, factory_id: str | None = None, seller_id: str | None = None) -> dict[str, str]:
    """Claims as API Gateway's Cognito authorizer passes them (groups comma-joined)."""
    result = {"sub": sub, "cognito:groups": ",".join(groups), "token_use": "id"}
    if factory_id:
        result["custom:factory_id"] = factory_id
    if seller_id:
        result["custom:seller_id"] = seller_id
    return result
