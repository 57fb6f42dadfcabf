"""The HTTP edge shared by every API function: the resolver factory, the single map from errors to
API.md's error shape and statuses, correlation ids, the caller, JSON responses and Idempotency-Key."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    CORSConfig,
    LambdaFunctionUrlResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, LambdaFunctionUrlEvent
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from patungan.core.auth import Principal, principal_from_claims, principal_from_event, require_principal
from patungan.core.config import get_settings
from patungan.core.errors import BadRequest, DependencyUnavailable, DomainError, NotFound, Unauthenticated, field_error
from patungan.core.events import current_correlation_id
from patungan.core.ids import new_ulid
from patungan.core.inputs import MAX_ID_LENGTH
from patungan.core.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI, Schema
    from aws_lambda_powertools.event_handler.openapi.models import Response as OpenAPIResponse

R = TypeVar("R", bound=APIGatewayRestResolver)
CORRELATION_HEADER = "x-correlation-id"
IDEMPOTENCY_HEADER = "idempotency-key"
# Deeper than any body of ours, and far from the depth where parsing it would exhaust the stack.
MAX_JSON_DEPTH = 32
# A string (an unterminated one runs to the end, so no quote is scanned twice: linear on any input) or a bracket.
_JSON_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
# API.md's error body, as OpenAPI documents every error response (Powertools' own 422 body is not ours).
_ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {}},
            },
        }
    },
}
_ERROR_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not signed in",
    403: "The caller's role may not",
    404: "No such resource (or not the caller's)",
    409: "Conflict, or not allowed in the resource's state",
    429: "Too many requests",
    503: "A dependency is down; nothing was lost, retry",
}


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def error_response(status: int, code: str, message: str, details: list[Any] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(code, message, details),
    )


def render_error(exc: Exception) -> Response:
    """The one place that maps an error to an HTTP status and API.md's error body."""
    if isinstance(exc, DomainError):
        if exc.status >= 500:
            logger.warning("dependency unavailable", extra={"error": exc.message})
        return error_response(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, RequestValidationError):
        details = [
            {
                "field": ".".join(str(p) for p in err["loc"]),
                "message": err.get("msg", ""),
                "type": err["type"],
            }
            for err in exc.errors()
        ]
        return error_response(422, "validation_error", "the request is not valid", details)
    if isinstance(exc, NotFoundError):
        return error_response(404, "not_found", "no such route")
    if isinstance(exc, IdempotencyValidationError):
        return error_response(
            422, "idempotency_key_reused", "this Idempotency-Key was already used with a different body"
        )
    if isinstance(exc, IdempotencyAlreadyInProgressError):
        return error_response(409, "request_in_progress", "a request with this Idempotency-Key is still running")
    if isinstance(exc, IdempotencyPersistenceLayerError):
        return error_response(503, "service_unavailable", "the idempotency store could not be reached; retry")
    logger.exception("unhandled error")
    return error_response(500, "internal_error", "something went wrong on our side; quote the x-correlation-id")


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def parse_json_body(text: str) -> Any:
    """A request body as JSON; one nested deeper than MAX_JSON_DEPTH is refused before it is parsed (SYS-3)."""
    depth = 0
    for token in _JSON_STRING_OR_BRACKET.finditer(text):
        if token.group()[0] == '"':
            continue
        depth += 1 if token.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"the body is nested deeper than {MAX_JSON_DEPTH} levels", code="invalid_body")
    return json.loads(text)


class _TextBody:
    """A body that is not UTF-8 text is the caller's mistake (400), found when the body is first read."""

    @cached_property
    def decoded_body(self) -> str | None:
        try:
            return super().decoded_body  # type: ignore[misc]
        except UnicodeDecodeError as exc:
            raise BadRequest("the body is not UTF-8 text", code="invalid_body") from exc


class _RestEvent(_TextBody, APIGatewayProxyEvent):
    pass


class _FunctionUrlEvent(_TextBody, LambdaFunctionUrlEvent):
    pass


class _Correlated:
    """A correlation id on every response (and on the events the request causes)."""

    _event_type: type[APIGatewayProxyEvent | LambdaFunctionUrlEvent]

    def _to_proxy_event(self, event: dict[str, Any]) -> APIGatewayProxyEvent | LambdaFunctionUrlEvent:
        return self._event_type(event, parse_json_body)

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        event = dict(event)
        headers = dict(event.get("headers") or {})
        correlation_id = (
            _header(headers, CORRELATION_HEADER)
            or (event.get("requestContext") or {}).get("requestId")
            or new_ulid().lower()
        )
        if event.get("body") and "json" not in (_header(headers, "content-type") or ""):
            # Bodies are JSON by contract (API.md), whatever the client labels them (curl -d says form).
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            headers["content-type"] = content_types.APPLICATION_JSON
        event["headers"] = headers
        if event.get("multiValueHeaders"):
            event["multiValueHeaders"] = {
                **event["multiValueHeaders"],
                **{k: [v] for k, v in headers.items()},
            }
        token = current_correlation_id.set(correlation_id)
        logger.set_correlation_id(correlation_id)
        try:
            response = super().resolve(event, context)  # type: ignore[misc]
        finally:
            current_correlation_id.reset(token)
        response.setdefault("headers", {})[CORRELATION_HEADER] = correlation_id
        if "multiValueHeaders" in response:
            response["multiValueHeaders"][CORRELATION_HEADER] = [correlation_id]
        return response


class PatunganResolver(_Correlated, APIGatewayRestResolver):
    """API Gateway (REST) routes."""

    _event_type = _RestEvent

    def get_openapi_schema(self, **kwargs: Any) -> OpenAPI:
        """Powertools' document, with every error response as render_error sends it (API.md's shape)."""
        schema = super().get_openapi_schema(**kwargs)
        error_schema, error_responses = _error_documentation()
        if schema.components and schema.components.schemas:
            # Powertools documents its own 422 body under this name.
            schema.components.schemas.update(Error=error_schema, HTTPValidationError=error_schema)
        for path in (schema.paths or {}).values():
            for operation in (path.get, path.put, path.post, path.delete, path.patch):
                if operation is not None:
                    operation.responses = {**error_responses, **(operation.responses or {})}
        return schema


@cache
def _error_documentation() -> tuple[Schema, dict[int, OpenAPIResponse]]:
    """The error body and responses as OpenAPI models, built when a document is asked for: importing Powertools'
    OpenAPI models costs a handler's cold start ~50 ms of CPU, and no request needs them (issue 8)."""
    from aws_lambda_powertools.event_handler.openapi.models import Response, Schema

    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    responses = {
        status: Response.model_validate({"description": description, "content": reference})
        for status, description in _ERROR_DESCRIPTIONS.items()
    }
    return Schema.model_validate(_ERROR_SCHEMA), responses


class WebhookResolver(_Correlated, LambdaFunctionUrlResolver):
    """Function URL routes (webhooks)."""

    _event_type = _FunctionUrlEvent


def _ids_we_could_have_issued(app: APIGatewayRestResolver, next_middleware: Callable[..., Response]) -> Response:
    """A path id longer than any id we issue names nothing: 404, as any unknown id, before it reaches DynamoDB
    (which refuses such keys)."""
    if any(len(value) > MAX_ID_LENGTH for value in (app.current_event.path_parameters or {}).values()):
        raise NotFound("no such resource")
    return next_middleware(app)


def _bodies_are_objects(app: APIGatewayRestResolver, next_middleware: Callable[..., Response]) -> Response:
    """Our bodies are JSON objects (API.md). Powertools' validation takes a one-element list for the object it
    holds, so a list is refused here (422) before it reaches a route; a body that is not JSON at all is left
    to the validation, which says so."""
    if app.current_event.body:
        try:
            body = app.current_event.json_body
        except ValueError:
            body = None
        if isinstance(body, list):
            raise field_error("body", "must be a JSON object, not a list")
    return next_middleware(app)


def create_api() -> PatunganResolver:
    app = PatunganResolver(
        enable_validation=True,
        cors=CORSConfig(
            allow_origin="*",
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Guest-Id", "X-Correlation-Id"],
            expose_headers=[CORRELATION_HEADER],
        ),
    )
    app.use([_ids_we_could_have_issued, _bodies_are_objects])
    return _with_error_map(app)


def create_webhook_app() -> WebhookResolver:
    return _with_error_map(WebhookResolver(enable_validation=True))


def _with_error_map(app: R) -> R:
    for exc_type in (
        DomainError,
        RequestValidationError,
        NotFoundError,
        IdempotencyValidationError,
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        Exception,
    ):
        app.exception_handler(exc_type)(render_error)
    return app


def api_handler(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point of an API or webhook function: logging context, tracing, metrics, the router."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return lambda_handler


def header(app: APIGatewayRestResolver, name: str) -> str | None:
    return _header(app.current_event.headers, name.lower())


def caller(app: APIGatewayRestResolver) -> Principal:
    """The signed-in caller, or 401."""
    return require_principal(principal_from_event(app.current_event.raw_event))


def optional_caller(app: APIGatewayRestResolver) -> Principal | None:
    """The caller of a public route, or None when anonymous. API Gateway runs no authorizer there (so passes
    no claims): a bearer token sent anyway is verified here; one that fails verification is 401, never
    trusted and never silently taken for anonymous."""
    principal = principal_from_event(app.current_event.raw_event)
    authorization = _header(app.current_event.headers, "authorization") or ""
    if principal is not None or not authorization:
        return principal
    # Imported here: joserfc with cryptography costs ~30 ms of cold start, and only a bearer token sent to a
    # public route needs it (webhooks and signed-in routes never do; issue 8).
    from patungan.adapters.tokens import token_verifier

    verifier = token_verifier()
    claims = verifier.claims(authorization.removeprefix("Bearer ").strip()) if verifier else None
    if claims is None:
        raise Unauthenticated("the token is not valid: sign in again, or send no Authorization header")
    return principal_from_claims(claims)


def json_response(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def binary_response(body: bytes, content_type: str, filename: str) -> Response:
    """A 200 with a file (a label PDF) that the browser shows inline and saves as ``filename``. Powertools sends
    bytes base64-encoded with ``isBase64Encoded``; API Gateway turns them back into bytes for the media types the
    template's ``BinaryMediaTypes`` names (the local stack's gateway does the same)."""
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return Response(
        status_code=200,
        content_type=content_type,
        body=body,
        headers={"Content-Disposition": f'inline; filename="{safe_name}"'},
    )


@cache
def _idempotency() -> tuple[DynamoDBPersistenceLayer, IdempotencyConfig]:
    settings = get_settings()
    config = IdempotencyConfig(
        event_key_jmespath="[operation, caller, key]",
        payload_validation_jmespath="body",
        expires_after_seconds=settings.idempotency_ttl_seconds,
    )
    return DynamoDBPersistenceLayer(table_name=settings.idempotency_table), config


def idempotency_key(app: APIGatewayRestResolver) -> str | None:
    """The request's ``Idempotency-Key`` header (SYS-4), if it has one."""
    return _header(app.current_event.headers, IDEMPOTENCY_HEADER)


def idempotent(
    app: APIGatewayRestResolver, operation: str, body: Any, create: Callable[[], tuple[int, Any]]
) -> Response:
    """Run a creating request once per ``Idempotency-Key`` (SYS-4): the same key and body replay the first
    response; the same key with another body is 422. Without the header the request simply runs."""
    key = idempotency_key(app)
    if not key:
        status, payload = create()
        return json_response(status, payload)
    persistence, config = _idempotency()
    if app.lambda_context is not None:
        config.register_lambda_context(app.lambda_context)
    principal = principal_from_event(app.current_event.raw_event)
    request = {
        "operation": operation,
        "caller": principal.user_id if principal else _header(app.current_event.headers, "x-guest-id") or "",
        "key": key,
        "body": json.loads(json.dumps(body, default=str)),
    }

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
    def run_once(request: dict[str, Any]) -> dict[str, Any]:
        status, payload = create()
        return {"status": status, "body": payload}

    try:
        outcome = run_once(request=request)
    except IdempotencyPersistenceLayerError as exc:
        raise DependencyUnavailable("the idempotency store could not be reached; retry") from exc
    return json_response(outcome["status"], outcome["body"])


def documented(model: type, status: int = 200, description: str = "OK") -> dict[int, dict[str, Any]]:
    """OpenAPI ``responses`` for a route that answers ``model`` (the handler returns a Response)."""
    return {status: {"description": description, "content": {"application/json": {"model": model}}}}


def documented_file(content_type: str, description: str) -> dict[int, dict[str, Any]]:
    """OpenAPI ``responses`` for a route that answers a file with ``binary_response`` (a label: application/pdf)."""
    return {
        200: {"description": description, "content": {content_type: {"schema": {"type": "string", "format": "binary"}}}}
    }
