"""The single map from errors to API.md's error shape and statuses (SYS-3)."""

import json

import pytest
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from patungan.core.errors import (
    BadRequest,
    Conflict,
    DependencyUnavailable,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
    field_error,
)
from patungan.core.http import render_error


def rendered(exc):
    response = render_error(exc)
    body = json.loads(response.body) if isinstance(response.body, str) else response.body
    return response.status_code, body


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (BadRequest("x"), 400, "bad_request"),
        (Unauthenticated("x"), 401, "unauthorized"),
        (Forbidden("x"), 403, "forbidden"),
        (NotFound("x"), 404, "not_found"),
        (Conflict("x", code="already_joined"), 409, "already_joined"),
        (ValidationFailed("x"), 422, "validation_error"),
        (RateLimited("x"), 429, "rate_limited"),
        (DependencyUnavailable("x"), 503, "service_unavailable"),
    ],
)
def test_domain_errors_map_to_their_status_and_code(error, status, code):
    assert rendered(error) == (status, {"error": {"code": code, "message": "x", "details": []}})


def test_field_errors_list_the_field():
    status, body = rendered(field_error("quantity", "must be at least 1"))

    assert status == 422
    assert body["error"]["details"] == [{"field": "quantity", "message": "must be at least 1"}]


def test_request_validation_lists_every_field():
    exc = RequestValidationError(
        [
            {"loc": ("body", "name"), "msg": "String should have at least 1 character", "type": "string_too_short"},
            {"loc": ("query", "limit"), "msg": "Input should be less than or equal to 100", "type": "less_than_equal"},
        ]
    )

    status, body = rendered(exc)

    assert status == 422
    assert [d["field"] for d in body["error"]["details"]] == ["body.name", "query.limit"]


def test_unexpected_errors_never_leak_internals():
    status, body = rendered(KeyError("/var/task/secret_path.py line 12"))

    assert status == 500
    assert "secret_path" not in json.dumps(body)
    assert body["error"]["code"] == "internal_error"
