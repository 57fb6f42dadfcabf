"""The local stack itself, over HTTP: health, the OpenAPI document and Swagger UI, the gateway's own answers
and local sign-in."""

from __future__ import annotations

import pytest

from emulator.openapi import CONTEXT_TAGS
from emulator.template import Template

pytestmark = pytest.mark.e2e


def test_health(api):
    response = api.get("/_local/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_openapi_document_lists_every_route_of_the_template(api):
    document = api.get("/openapi.json").json()

    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "Patungan API"
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    listed = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    routes = Template.load().api_routes()
    assert {(method, path) for method, path, _, _ in routes} <= listed
    for method, path, _, needs_auth in routes:
        assert ("security" in document["paths"][path][method.lower()]) == needs_auth, (method, path)


def test_every_operation_is_tagged_with_its_functions_context(api):
    """Swagger UI groups operations by context (issue 6: it listed them all in one untagged group)."""
    document = api.get("/openapi.json").json()
    template = Template.load()
    functions = template.functions()

    for method, path, function, _ in template.api_routes():
        context = functions[function].code_uri.name  # functions/<context>/
        assert document["paths"][path][method.lower()]["tags"] == [context], (method, path)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert len(operation["tags"]) == 1 and operation["tags"][0] in CONTEXT_TAGS, (method, path)
    used = {operation["tags"][0] for operations in document["paths"].values() for operation in operations.values()}
    assert {tag["name"] for tag in document["tags"]} == used
    assert all(tag["description"] for tag in document["tags"])


def test_swagger_ui_is_served_with_its_assets(api):
    page = api.get("/docs")

    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    assert "SwaggerUIBundle" in page.text
    for asset in ("/docs/swagger-ui-bundle.min.js", "/docs/swagger-ui.min.css"):
        assert api.get(asset).status_code == 200, asset


def test_an_auth_route_without_a_token_is_401_in_the_error_shape(api):
    response = api.post("/v1/factories", json={"name": "x"})

    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "unauthorized", "message": response.json()["error"]["message"], "details": []}
    }
    assert response.headers["x-correlation-id"]


def test_an_unknown_route_is_404_in_the_error_shape(api):
    response = api.get("/v1/no-such-thing")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["details"] == []
    assert response.headers["x-correlation-id"]


def test_the_token_endpoint_rejects_an_invalid_request_with_422(api):
    response = api.post("/_local/token", json={"sub": "", "groups": ["emperor"]})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert {detail["field"] for detail in error["details"]} >= {"sub"}


def test_a_token_from_the_endpoint_is_accepted_by_the_api(api):
    token = api.token("admin-1", ["admin"])

    response = api.post("/v1/factories", token, json={})

    assert response.status_code == 422  # signed in: the request reaches the function, which validates it
    assert response.headers["x-correlation-id"]
