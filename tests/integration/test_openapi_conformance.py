"""What a handler answers matches what its OpenAPI document says it answers (issue 6: the documented Session
required ``created_by``, which no response carries; every documented 422 was Powertools' body, not ours)."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

from tests.support.groupbuy import ADMIN, buyer
from tests.support.lambdas import call_api, handler_module


def documented_body(function: str, path: str, method: str, status: int) -> Draft202012Validator:
    document = json.loads(handler_module(function).app.get_openapi_json_schema())
    operation = document["paths"][path][method]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    return Draft202012Validator({**schema, "components": document["components"]})


def violations(validator: Draft202012Validator, body: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]


def test_a_session_as_answered_matches_its_documented_schema_gb16(world):
    session = world.session()
    fetched = call_api(
        "GetSessionFunction",
        "GET",
        f"/v1/sessions/{session['id']}",
        resource="/v1/sessions/{id}",
        path_parameters={"id": session["id"]},
    )

    for function, path, method, status, body in [
        ("CreateSessionFunction", "/v1/sessions", "post", 201, session),
        ("GetSessionFunction", "/v1/sessions/{id}", "get", 200, fetched.body),
    ]:
        assert violations(documented_body(function, path, method, status), body) == []


def test_a_validation_error_matches_the_documented_422_body(world):
    refused = world.join(buyer(1), world.session()["id"], quantity=0)

    assert refused.status == 422
    schema = documented_body("JoinSessionFunction", "/v1/sessions/{id}/join", "post", 422)
    assert violations(schema, refused.body) == []
    assert violations(schema, {"detail": []}) != []  # Powertools' own body is not what we document


def test_every_error_status_is_documented_with_the_error_body(world):
    """API.md's error statuses are in the document, so a client (and the fuzz run) can hold every error to it."""
    unknown = world.join(buyer(1), "ses_unknown")

    assert unknown.status == 404
    for status in (400, 401, 403, 404, 409, 429, 503):
        schema = documented_body("JoinSessionFunction", "/v1/sessions/{id}/join", "post", status)
        assert violations(schema, unknown.body) == []
        assert violations(schema, {"message": "no such session"}) != []


def test_every_list_as_answered_matches_its_documented_schema(world):
    """Four lists documented no success body at all (review of the HTTP surface, issue 6), so neither a client
    nor the fuzz run could hold their items to a schema: each list documents API.md's ``{items, next_cursor}``."""
    session = world.session(moq=1)
    joined = world.joined(buyer(1), session["id"])
    assert world.pay(joined).status == 200
    assert world.settle(session["id"]) == "succeed"

    lists = [
        ("ListSessionsFunction", "/v1/sessions", None),
        ("ListMyParticipationsFunction", "/v1/me/participations", buyer(1)),
        ("ListOrdersFunction", "/v1/orders", buyer(1)),
        ("ListPurchaseOrdersFunction", "/v1/purchase-orders", ADMIN),
    ]
    for function, path, who in lists:
        answered = call_api(function, "GET", path, claims=who)
        assert answered.status == 200, (path, answered.body)
        assert len(answered.body["items"]) == 1, path
        assert violations(documented_body(function, path, "get", 200), answered.body) == [], path
        assert violations(documented_body(function, path, "get", 200), {"items": [{}], "next_cursor": None}) != []
