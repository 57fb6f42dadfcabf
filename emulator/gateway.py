"""The local stack's HTTP server (werkzeug, threaded, 127.0.0.1): one WSGI app for

- the template's REST API (every route, as API Gateway with the Cognito authorizer would serve it),
- Function URLs: ANY /_url/{FunctionLogicalId}/{path},
- local endpoints: GET /_local/health, POST /_local/token, POST /_local/schedules/{RuleLogicalId}/fire,
  POST /_local/clock/advance {"seconds": N} (Step Functions Wait states of running executions: emulator/clock.py),
  GET /_local/permissions/denials (AWS calls the functions made that their roles would refuse: emulator/permissions.py),
- GET /openapi.json and GET /docs (Swagger UI, offline),
- the local Xendit under /_xendit (mounted when emulator/xendit.py is there), the local courier under /_courier.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from emulator import permissions
from emulator.apigateway import (
    CORRELATION_HEADER,
    HttpRequest,
    HttpResponse,
    RestApi,
    error_response,
    function_url_event,
    function_url_response,
)
from emulator.events import RuleScheduler
from emulator.logs import access_log
from emulator.openapi import DOCS_PATH, SWAGGER_UI_ASSETS, SWAGGER_UI_DIR, OpenApiDocument
from emulator.runtime import LambdaRuntime
from emulator.tokens import Identity, TokenSigner
from patungan.core.inputs import MAX_ID_LENGTH, USER_ID_PATTERN

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
MAX_CLOCK_ADVANCE_SECONDS = 366 * 86_400  # an execution lives at most a year


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sub: str = Field(max_length=MAX_ID_LENGTH, pattern=USER_ID_PATTERN)  # as the API takes user ids
    groups: list[str] = Field(default_factory=list)
    factory_id: str | None = Field(None, min_length=1)
    seller_id: str | None = Field(None, min_length=1)


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    seconds: int = Field(gt=0, le=MAX_CLOCK_ADVANCE_SECONDS)


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json")], json.dumps(body).encode())


class LocalGateway:
    """Routes a request to the REST API, a Function URL or a local endpoint. Until ``ready`` is set (all is
    deployed and seeded), /_local/health says 503 "starting" and everything else 503 in the error shape."""

    def __init__(
        self,
        rest_api: RestApi,
        runtime: LambdaRuntime,
        signer: TokenSigner,
        schedules: RuleScheduler,
        openapi: OpenApiDocument,
        groups: Iterable[str],
        advance_clock: Callable[[float], int],
    ) -> None:
        self.ready = threading.Event()
        self._rest_api = rest_api
        self._runtime = runtime
        self._signer = signer
        self._schedules = schedules
        self._openapi = openapi
        self._groups = frozenset(groups)
        self._advance_clock = advance_clock
        self._local_routes = Map(
            [
                Rule("/_local/health", methods=["GET"], endpoint=self._health),
                Rule("/_local/token", methods=["POST"], endpoint=self._token),
                Rule("/_local/schedules/<rule_id>/fire", methods=["POST"], endpoint=self._fire_schedule),
                Rule("/_local/clock/advance", methods=["POST"], endpoint=self._clock_advance),
                Rule("/_local/permissions/denials", methods=["GET"], endpoint=self._permission_denials),
                Rule("/_url/<function_id>/", endpoint=self._function_url, defaults={"path": ""}),
                Rule("/_url/<function_id>/<path:path>", endpoint=self._function_url),
                Rule("/openapi.json", methods=["GET"], endpoint=self._openapi_json),
                Rule(DOCS_PATH, methods=["GET"], endpoint=self._docs),
                Rule(f"{DOCS_PATH}/<asset>", methods=["GET"], endpoint=self._docs_asset),
            ],
            strict_slashes=False,  # /_url/Fn and /_url/Fn/ are the same URL; never redirect a webhook POST
        )

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        http_request = HttpRequest(
            method=request.method,
            path=request.path,
            headers=list(request.headers.items()),
            query_string=request.query_string.decode("latin-1"),
            body=request.get_data(),
            source_ip=request.remote_addr or "127.0.0.1",
        )
        answer = self.handle(http_request)
        if answer.header(CORRELATION_HEADER) is None:
            answer.headers.append((CORRELATION_HEADER, http_request.correlation_id))
        response = Response(answer.body, status=answer.status, headers=answer.headers)
        return response(environ, start_response)

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/_local/health":
            return self._health(request)
        if not self.ready.is_set():
            return error_response(request, 503, "service_unavailable", "the local stack is still starting")
        try:
            endpoint, arguments = self._local_routes.bind("127.0.0.1").match(request.path, request.method)
        except NotFound:
            return self._rest_api.handle(request)
        except MethodNotAllowed as exc:
            allowed = ", ".join(exc.valid_methods or [])
            return error_response(request, 405, "method_not_allowed", f"{request.path} answers {allowed}")
        return endpoint(request, **arguments)

    # ---- local endpoints

    def _health(self, request: HttpRequest) -> HttpResponse:
        if self.ready.is_set():
            return _json(200, {"status": "ok"})
        return _json(503, {"status": "starting"})

    def _token(self, request: HttpRequest) -> HttpResponse:
        try:
            body = TokenRequest.model_validate_json(request.body or b"{}")
        except ValidationError as exc:
            return _invalid(request, "the token request is not valid", exc)
        unknown = [
            {"field": f"groups.{index}", "message": f"not a group of the user pool: {sorted(self._groups)}"}
            for index, group in enumerate(body.groups)
            if group not in self._groups
        ]
        if unknown:
            return error_response(request, 422, "validation_error", "the token request is not valid", unknown)
        identity = Identity(body.sub, tuple(body.groups), body.factory_id, body.seller_id)
        return _json(200, {"token": self._signer.issue(identity)})

    def _clock_advance(self, request: HttpRequest) -> HttpResponse:
        try:
            body = ClockAdvance.model_validate_json(request.body or b"{}")
        except ValidationError as exc:
            return _invalid(request, 'send {"seconds": N}, a whole number of seconds up to a year', exc)
        executions = self._advance_clock(body.seconds)
        return _json(200, {"advanced_seconds": body.seconds, "running_executions": executions})

    def _permission_denials(self, request: HttpRequest) -> HttpResponse:
        denials = [{**asdict(denial), "message": str(denial)} for denial in permissions.denials()]
        return _json(200, {"denials": denials})

    def _fire_schedule(self, request: HttpRequest, rule_id: str) -> HttpResponse:
        rule = self._schedules.resolve(rule_id)
        if rule is None:
            known = ", ".join(self._schedules.rule_ids)  # a newcomer cannot guess SAM's generated logical ids
            return error_response(request, 404, "not_found", f"no scheduled rule {rule_id}; the rules are: {known}")
        self._schedules.fire(rule)
        return _json(202, {"rule": rule, "fired": True})

    def _function_url(self, request: HttpRequest, function_id: str, path: str) -> HttpResponse:
        function = self._runtime.functions.get(function_id)
        if function is None or function.function_url is None:
            return error_response(request, 404, "not_found", f"{function_id} has no Function URL")
        event = function_url_event(request, f"/{path}")
        return function_url_response(request, self._runtime.invoke(function_id, event))

    def _openapi_json(self, request: HttpRequest) -> HttpResponse:
        return _json(200, self._openapi.document())

    def _docs(self, request: HttpRequest) -> HttpResponse:
        headers = [("Content-Type", "text/html; charset=utf-8")]
        return HttpResponse(200, headers, self._openapi.swagger_html().encode())

    def _docs_asset(self, request: HttpRequest, asset: str) -> HttpResponse:
        if asset not in SWAGGER_UI_ASSETS:
            return error_response(request, 404, "not_found", f"no asset {asset}")
        headers = [("Content-Type", SWAGGER_UI_ASSETS[asset]), ("Cache-Control", "max-age=86400")]
        return HttpResponse(200, headers, (SWAGGER_UI_DIR / asset).read_bytes())


def _invalid(request: HttpRequest, message: str, exc: ValidationError) -> HttpResponse:
    details = [
        {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]} for error in exc.errors()
    ]
    return error_response(request, 422, "validation_error", message, details)


def _correlated(app: WsgiApp) -> WsgiApp:
    """``app`` with x-correlation-id on every answer (API.md), the mounted local Xendit's included: the one the
    client sent, or a new one; an answer that carries its own keeps it."""

    def correlated(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        correlation_id = environ.get("HTTP_X_CORRELATION_ID") or str(uuid.uuid4())

        def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            if not any(name.lower() == CORRELATION_HEADER for name, _ in headers):
                headers = [*headers, (CORRELATION_HEADER, correlation_id)]
            return start_response(status, headers, *args)

        return app(environ, start)

    return correlated


class _UnloggedRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without its coloured access line: ``access_log`` writes a plain one."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class HttpServer:
    """A threaded werkzeug server on ``host:port`` (port 0: any free port). The socket is bound at once, so
    the URL is known before the app exists; requests are served from ``start`` on, in a thread, each logged
    as one line (method, path, status, milliseconds, correlation id)."""

    def __init__(self, host: str, port: int) -> None:
        self._app: WsgiApp | None = None
        self._server: BaseWSGIServer = make_server(
            host, port, self._dispatch, threaded=True, request_handler=_UnloggedRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self._server.server_port}"

    def start(self, app: WsgiApp, mounts: dict[str, WsgiApp]) -> None:
        """Serve ``app``, and each mount's app under its path prefix (as SCRIPT_NAME, the rest as PATH_INFO)."""
        self._app = access_log(_correlated(DispatcherMiddleware(app, mounts)), CORRELATION_HEADER)
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self._app is not None  # serve_forever runs only after start()
        return self._app(environ, start_response)
