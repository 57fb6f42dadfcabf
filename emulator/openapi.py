"""The API's OpenAPI document (every API function's Powertools schema, merged) and an offline Swagger UI.

Every route of the template appears: a route whose module publishes no schema for it (or does not import)
still gets an entry saying so, so the document never silently lacks a route. Every operation carries one tag,
its function's context (the CodeUri folder, functions/<context>/), so Swagger UI groups them by context.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Tag
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

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# Swagger UI lists the groups in this order.
CONTEXT_TAGS = {
    "catalog": "Factories, sellers and their products.",
    "groupbuy": "Group-buying sessions: open, join, leave, cancel; a buyer's participations.",
    "payments": "Payments into escrow through Xendit invoices.",
    "orders": "Orders created when a session settles.",
    "inventory": "Stock per warehouse, product and variant: receipts, adjustments, cycle counts and discrepancies, "
    "reservations that never oversell, the audit log of every change; purchase orders to factories and their "
    "receipt at the warehouse (releases escrow, stock reserved for the session's orders).",
    "wallet": "Wallets: balance, transactions, withdrawals to a bank account or e-wallet, admin adjustments.",
    "ledger": "The double-entry ledger: trial balance.",
    "reconciliation": "Reconciliation runs: our payments, refunds and payouts checked against Xendit's records.",
    "notifications": "A user's notifications.",
    "accounts": "A user's addresses: Indonesian phones in E.164, 5-digit postal codes, one default.",
    "logistics": "Shipping rates from the courier (a flagged fallback when it cannot answer).",
    "checkout": "The cart of a buyer or guest (X-Guest-Id), coupons on it, and the checkout preview priced by the "
    "one pricing engine confirm uses.",
    "promotions": "Coupons: percent or fixed, on items or shipping, limits that hold under any concurrency.",
    "platform": "Platform operations.",
    "fulfilment": "Shipments: courier booking, printable labels, tracking.",
}


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
        contexts = {route.function: self._context(route.function) for route in self._routes}
        used = set(contexts.values())
        merge = OpenAPIMerge(
            title=TITLE,
            version="local",
            description=DESCRIPTION,
            security_schemes={SECURITY_SCHEME: HTTPBearer(bearerFormat="local token (Cognito ID token in AWS)")},
            tags=[Tag(name=name, description=text) for name, text in CONTEXT_TAGS.items() if name in used]
            + [Tag(name=name) for name in sorted(used - CONTEXT_TAGS.keys())],
            on_conflict="first",
        )
        for function, context in contexts.items():
            schema = self._function_schema(function)
            if schema is not None:
                merge.add_schema(_tagged(schema.model_dump(by_alias=True, exclude_none=True), context))
        document = json.loads(merge.get_openapi_json_schema())
        paths = document.setdefault("paths", {})
        for route in self._routes:
            operation = paths.setdefault(route.resource, {}).setdefault(
                route.method.lower(), _undocumented(route, contexts[route.function])
            )
            if route.needs_auth:
                operation["security"] = [{SECURITY_SCHEME: []}]
        return document

    def _context(self, function: str) -> str:
        return self._runtime.function(function).code_uri.name

    def _function_schema(self, function: str) -> Any:
        try:
            return self._runtime.handler_module(function).app.get_openapi_schema()
        except Exception as exc:  # the route stays listed, marked undocumented
            logger.warning("no OpenAPI schema from %s: %s: %s", function, type(exc).__name__, exc)
            return None


def _tagged(schema: dict[str, Any], context: str) -> dict[str, Any]:
    """The function's schema with each of its operations tagged with its context (and only that)."""
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in HTTP_METHODS:  # not a path item's own fields (summary, parameters)
                operation["tags"] = [context]
    return schema


def _undocumented(route: ApiRoute, context: str) -> dict[str, Any]:
    return {
        "tags": [context],
        "summary": f"{route.method} {route.resource}",
        "description": f"Declared in template.yaml ({route.function}); its module publishes no schema for it.",
        "responses": {"default": {"description": "see API.md"}},
    }
