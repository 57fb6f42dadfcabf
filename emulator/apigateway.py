"""API Gateway (REST, v1 proxy events) and Lambda Function URLs (payload 2.0), as the functions see them.

Framework-neutral: ``HttpRequest`` in, ``HttpResponse`` out; gateway.py adapts them to HTTP.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from emulator.runtime import Invocation, LambdaRuntime
from emulator.template import ACCOUNT_ID, LOCAL_STAGE, Template
from emulator.tokens import Identity, TokenSigner

CORRELATION_HEADER = "x-correlation-id"


def _last_header(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in headers if key.lower() == name.lower()]
    return values[-1] if values else None


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    query_string: str = ""
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def header(self, name: str) -> str | None:
        return _last_header(self.headers, name)

    @property
    def correlation_id(self) -> str:
        return self.header(CORRELATION_HEADER) or self.request_id

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query_string, keep_blank_values=True)


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return _last_header(self.headers, name)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def error_response(
    request: HttpRequest, status: int, code: str, message: str, details: list[Any] | None = None
) -> HttpResponse:
    """API.md's error shape, with the request's correlation id, for answers the gateway gives itself."""
    body = json.dumps({"error": {"code": code, "message": message, "details": details or []}}).encode()
    headers = [("Content-Type", "application/json"), (CORRELATION_HEADER, request.correlation_id)]
    return HttpResponse(status, headers, body)


def _body_fields(body: bytes) -> tuple[str | None, bool]:
    """(body, isBase64Encoded) as API Gateway passes a request body: text as is, anything else base64."""
    if not body:
        return None, False
    try:
        return body.decode(), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode(), True


def _decoded_body(payload: dict[str, Any]) -> bytes:
    body = payload.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        body = json.dumps(body)
    if payload.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except binascii.Error:
            return body.encode()
    return body.encode()


# ---------------------------------------------------------------- REST API routes


@dataclass(frozen=True)
class ApiRoute:
    method: str
    resource: str  # the template's path: /v1/sessions/{id}/join
    function: str
    needs_auth: bool


@dataclass(frozen=True)
class _Resource:
    path: str
    pattern: re.Pattern[str]
    parameters: tuple[str, ...]
    specificity: tuple[int, ...]  # API Gateway prefers literal segments to {param} to {proxy+}

    @classmethod
    def parse(cls, path: str) -> _Resource:
        regex, parameters, specificity = [], [], []
        for segment in path.strip("/").split("/"):
            if match := re.fullmatch(r"\{([^}]+?)(\+?)\}", segment):
                parameters.append(match.group(1))
                regex.append("(.+)" if match.group(2) else "([^/]+)")
                specificity.append(2 if match.group(2) else 1)
            else:
                regex.append(re.escape(segment))
                specificity.append(0)
        return cls(path, re.compile("/" + "/".join(regex)), tuple(parameters), tuple(specificity))

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        return dict(zip(self.parameters, found.groups(), strict=True)) if found else None


class RouteNotFound(LookupError):
    pass


class MethodNotAllowed(LookupError):
    def __init__(self, allowed: Iterable[str]) -> None:
        super().__init__(", ".join(sorted(allowed)))
        self.allowed = sorted(allowed)


class RouteTable:
    def __init__(self, routes: Iterable[ApiRoute]) -> None:
        by_resource: dict[str, dict[str, ApiRoute]] = defaultdict(dict)
        for route in routes:
            by_resource[route.resource][route.method] = route
        self._methods = dict(by_resource)
        self._resources = sorted((_Resource.parse(path) for path in by_resource), key=lambda r: r.specificity)

    def resolve(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]]:
        """The route and path parameters for a request; RouteNotFound or MethodNotAllowed otherwise."""
        normalized = "/" + path.strip("/")
        for resource in self._resources:
            parameters = resource.match(normalized)
            if parameters is None:
                continue
            methods = self._methods[resource.path]
            route = methods.get(method) or methods.get("ANY")
            if route is None:
                raise MethodNotAllowed(methods)
            return route, parameters
        raise RouteNotFound(path)


# ---------------------------------------------------------------- events


def rest_api_event(
    request: HttpRequest, route: ApiRoute, path_parameters: dict[str, str], claims: dict[str, str] | None
) -> dict[str, Any]:
    """An API Gateway REST proxy event (v1), with the authorizer's claims when the route has one."""
    headers: dict[str, list[str]] = defaultdict(list)
    for name, value in request.headers:
        headers[name].append(value)
    query: dict[str, list[str]] = defaultdict(list)
    for name, value in request.query:
        query[name].append(value)
    body, is_base64 = _body_fields(request.body)
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": "local",
        "resourcePath": route.resource,
        "httpMethod": request.method,
        "path": f"/{LOCAL_STAGE}{request.path}",
        "stage": LOCAL_STAGE,
        "protocol": "HTTP/1.1",
        "requestId": request.request_id,
        "requestTimeEpoch": int(time.time() * 1000),
        "identity": {"sourceIp": request.source_ip, "userAgent": request.header("user-agent")},
    }
    if claims is not None:
        request_context["authorizer"] = {"claims": claims}
    return {
        "resource": route.resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in headers.items()},
        "multiValueHeaders": dict(headers),
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": dict(query) or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": request_context,
        "body": body,
        "isBase64Encoded": is_base64,
    }


def function_url_event(request: HttpRequest, raw_path: str) -> dict[str, Any]:
    """A Lambda Function URL event (payload format 2.0)."""
    headers: dict[str, list[str]] = defaultdict(list)
    cookies: list[str] = []
    for name, value in request.headers:
        if name.lower() == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
        else:
            headers[name.lower()].append(value)
    query: dict[str, list[str]] = defaultdict(list)
    for name, value in request.query:
        query[name].append(value)
    body, is_base64 = _body_fields(request.body)
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": request.query_string,
        "headers": {name: ",".join(values) for name, values in headers.items()},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": request.header("host") or "127.0.0.1",
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": request.header("user-agent") or "",
            },
            "requestId": request.request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = {name: ",".join(values) for name, values in query.items()}
    if body is not None:
        event["body"] = body
    return event


# ---------------------------------------------------------------- responses


def _accepts_binary(request: HttpRequest, binary_media_types: Iterable[str]) -> bool:
    """Whether API Gateway turns a base64 proxy result back into bytes: only when the request's FIRST ``Accept``
    media type is one of the API's binary media types (``*`` wildcards allowed there). A client that sends
    ``Accept: */*`` first (curl's default) gets the base64 text, in AWS and here alike."""
    first = (request.header("accept") or "").split(",")[0].split(";")[0].strip().lower()
    return bool(first) and any(fnmatch.fnmatchcase(first, media_type.lower()) for media_type in binary_media_types)


def rest_api_response(
    request: HttpRequest, invocation: Invocation, binary_media_types: Iterable[str] = ()
) -> HttpResponse:
    """What API Gateway answers for a proxy integration's result (502 when the function failed)."""
    payload = invocation.payload
    if invocation.errored or not isinstance(payload, dict) or not isinstance(payload.get("statusCode"), int):
        # What this template's DEFAULT_5XX gateway response makes of a failed integration in AWS.
        return error_response(request, 502, "service_unavailable", "the function failed; see the local stack's log")
    headers = [(name, str(value)) for name, value in (payload.get("headers") or {}).items()]
    single = {name.lower() for name, _ in headers}
    for name, values in (payload.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(value)) for value in values if name.lower() not in single)
    if not any(name.lower() == CORRELATION_HEADER for name, _ in headers):
        headers.append((CORRELATION_HEADER, request.correlation_id))
    if payload.get("isBase64Encoded") and not _accepts_binary(request, binary_media_types):
        payload = {**payload, "isBase64Encoded": False}
    return HttpResponse(payload["statusCode"], headers, _decoded_body(payload))


def function_url_response(request: HttpRequest, invocation: Invocation) -> HttpResponse:
    """A Function URL's answer: a result with statusCode is the response, anything else a 200 JSON body."""
    payload = invocation.payload
    if invocation.errored:
        return error_response(request, 502, "bad_gateway", "the function failed; see the local stack's log")
    if not (isinstance(payload, dict) and "statusCode" in payload):
        body = json.dumps(payload).encode()
        return HttpResponse(200, [("Content-Type", "application/json")], body)
    headers = [(name, str(value)) for name, value in (payload.get("headers") or {}).items()]
    headers.extend(("Set-Cookie", cookie) for cookie in payload.get("cookies") or [])
    return HttpResponse(int(payload["statusCode"]), headers, _decoded_body(payload))


# ---------------------------------------------------------------- the REST API


class RestApi:
    """The template's REST API: routes, the Cognito-like authorizer (local tokens), CORS preflight."""

    def __init__(self, template: Template, runtime: LambdaRuntime, signer: TokenSigner) -> None:
        self.routes = [ApiRoute(*route) for route in template.api_routes()]
        self._table = RouteTable(self.routes)
        self._runtime = runtime
        self._signer = signer
        self._cors = _cors_headers(template)
        self._binary_media_types = binary_media_types(template)

    def handle(self, request: HttpRequest) -> HttpResponse:
        try:
            route, parameters = self._table.resolve(request.method, request.path)
        except RouteNotFound:
            return error_response(request, 404, "not_found", f"no route for {request.path}")
        except MethodNotAllowed as exc:
            if request.method == "OPTIONS" and self._cors:
                return HttpResponse(200, [*self._cors, (CORRELATION_HEADER, request.correlation_id)], b"")
            return error_response(request, 405, "method_not_allowed", f"{request.path} answers {exc}")
        claims = None
        if route.needs_auth:
            claims = self._claims(request)
            if claims is None:
                return error_response(request, 401, "unauthorized", "sign in first: send Authorization: Bearer <token>")
        event = rest_api_event(request, route, parameters, claims)
        return rest_api_response(request, self._runtime.invoke(route.function, event), self._binary_media_types)

    def call(self, method: str, path: str, identity: Identity | None = None, body: Any = None) -> HttpResponse:
        """Call a route in-process as ``identity`` (the seed does), through the same authorizer and event."""
        headers = [("Content-Type", "application/json")]
        if identity is not None:
            headers.append(("Authorization", f"Bearer {self._signer.issue(identity)}"))
        payload = b"" if body is None else json.dumps(body).encode()
        return self.handle(HttpRequest(method, path, headers, body=payload))

    def _claims(self, request: HttpRequest) -> dict[str, str] | None:
        authorization = request.header("authorization") or ""
        token = authorization.removeprefix("Bearer ").strip()
        return self._signer.verify(token) if token else None


def binary_media_types(template: Template) -> tuple[str, ...]:
    """The API's ``BinaryMediaTypes``; a template writes the slash as ``~1`` (a JSON pointer escape)."""
    for resource in template.of_type("AWS::Serverless::Api").values():
        media_types = template.resolve(resource.get("Properties", {}).get("BinaryMediaTypes")) or []
        return tuple(media_type.replace("~1", "/") for media_type in media_types)
    return ()


def _cors_headers(template: Template) -> list[tuple[str, str]]:
    """The preflight answer SAM's ``Cors`` setting makes API Gateway give (values are quoted strings)."""
    for resource in template.of_type("AWS::Serverless::Api").values():
        cors = template.resolve(resource.get("Properties", {}).get("Cors"))
        if isinstance(cors, str):
            cors = {"AllowOrigin": cors}
        if cors:
            names = {
                "AllowOrigin": "Access-Control-Allow-Origin",
                "AllowHeaders": "Access-Control-Allow-Headers",
                "AllowMethods": "Access-Control-Allow-Methods",
                "MaxAge": "Access-Control-Max-Age",
            }
            return [(header, str(cors[key]).strip("'")) for key, header in names.items() if key in cors]
    return []
