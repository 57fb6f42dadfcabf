"""The API's OpenAPI document (every API function's Powertools schema, merged) and an offline Swagger UI.

Every route of the template appears: a route whose module publishes no schema for it (or does not import)
still gets an entry saying so, so the document never silently lacks a route.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

from emulator.apigateway import ApiRoute
from emulator.runtime import LambdaRuntime

logger = logging.getLogger(__name__)

TITLE = "Patungan API"
SECURITY_SCHEME = "bearerAuth"
DOCS_PATH = "/docs"
SWAGGER_UI_ASSETS = {  # shipped inside Powertools, so the UI needs no CDN
    "swagger-ui-bundle.min.js": "application/javascript",
    "swagger-ui.min.css": "text/css",
}
SWAGGER_UI_DIR = Path(swagger_ui.__file__).parent
DESCRIPTION = (
    "Served by the local stack. Sign in with `POST /_local/token` "
    '(`{"sub": "buyer-1", "groups": ["buyer"]}`) and paste the token into Authorize.'
)


class OpenApiDocument:
    def __init__(self, routes: list[ApiRoute], runtime: LambdaRuntime) -> None:
        self._routes = routes
        self._runtime = runtime
        self._lock = threading.Lock()
        self._document: dict[str, Any] | None = None

    def document(self) -> dict[str, Any]:
        """Built on first use (it imports every API function) and kept: the code does not change under us."""
        with self._lock:
            if self._document is None:
                self._document = self._build()
            return self._document

    def swagger_html(self) -> str:
        return generate_swagger_html(
            spec=json.dumps(self.document()),
            swagger_js=f"{DOCS_PATH}/swagger-ui-bundle.min.js",
            swagger_css=f"{DOCS_PATH}/swagger-ui.min.css",
            swagger_base_url=DOCS_PATH,
            oauth2_config=None,
            persist_authorization=True,
        )

    def _build(self) -> dict[str, Any]:
        merge = OpenAPIMerge(
            title=TITLE,
            version="local",
            description=DESCRIPTION,
            security_schemes={SECURITY_SCHEME: HTTPBearer(bearerFormat="local token (Cognito ID token in AWS)")},
            on_conflict="first",
        )
        for function in dict.fromkeys(route.function for route in self._routes):
            schema = self._function_schema(function)
            if schema is not None:
                merge.add_schema(schema)
        document = json.loads(merge.get_openapi_json_schema())
        paths = document.setdefault("paths", {})
        for route in self._routes:
            operation = paths.setdefault(route.resource, {}).setdefault(route.method.lower(), _undocumented(route))
            if route.needs_auth:
                operation["security"] = [{SECURITY_SCHEME: []}]
        return document

    def _function_schema(self, function: str) -> Any:
        try:
            return self._runtime.handler_module(function).app.get_openapi_schema()
        except Exception as exc:  # the route stays listed, marked undocumented
            logger.warning("no OpenAPI schema from %s: %s: %s", function, type(exc).__name__, exc)
            return None


def _undocumented(route: ApiRoute) -> dict[str, Any]:
    return {
        "summary": f"{route.method} {route.resource}",
        "description": f"Declared in template.yaml ({route.function}); its module publishes no schema for it.",
        "responses": {"default": {"description": "see API.md"}},
    }
