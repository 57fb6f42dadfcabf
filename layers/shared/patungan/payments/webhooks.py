"""Webhook verification (PAY-2): the static x-callback-token against our secret, in constant time, before
the body is even read; then the body, which must be UTF-8 JSON of the callback's shape (SYS-3: a body that
is not is a 422 in the API's error shape, never a 500)."""

from __future__ import annotations

import base64
from typing import TypeVar

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from patungan.adapters.xendit import verify_callback_token
from patungan.core.errors import BadRequest, Forbidden
from patungan.core.http import header

CALLBACK_TOKEN_HEADER = "x-callback-token"  # noqa: S105 - a header name, not a secret
M = TypeVar("M", bound=BaseModel)


def verified_callback(app: LambdaFunctionUrlResolver, expected_token: str, model: type[M]) -> tuple[M, bytes]:
    """The callback and its body as received, once the token is right: 403 otherwise, whatever the body."""
    if not verify_callback_token(header(app, CALLBACK_TOKEN_HEADER), expected_token):
        raise Forbidden("the callback token is missing or wrong", code="invalid_callback_token")
    body = _body(app)
    try:
        return model.model_validate_json(body), body
    except ValidationError as exc:  # not JSON, not UTF-8, nested too deep, or not the callback's shape
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from exc


def _body(app: LambdaFunctionUrlResolver) -> bytes:
    event = app.current_event
    try:
        return base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode()
    except ValueError as exc:  # bad base64, or text that cannot be UTF-8 (lone surrogates)
        raise BadRequest("the body could not be read", code="invalid_body") from exc
