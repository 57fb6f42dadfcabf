"""Webhook verification (PAY-2): the static x-callback-token against our secret, in constant time, before
the body is even read; then the body, which must be UTF-8 JSON of the callback's shape (SYS-3: a body that
is not is a 422 in the API's error shape, never a 500). And the quarantine every Xendit webhook (invoice,
refund, payout) puts a callback in when it does not match what it names."""

from __future__ import annotations

import base64
import hashlib
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.xendit import verify_callback_token
from patungan.core.errors import BadRequest, Forbidden
from patungan.core.http import header
from patungan.core.observability import logger, metrics
from patungan.payments.models import QuarantinedCallback
from patungan.payments.repository import DuplicateWebhook, PaymentsRepository

CALLBACK_TOKEN_HEADER = "x-callback-token"  # noqa: S105 - a header name, not a secret
M = TypeVar("M", bound=BaseModel)
MAX_QUARANTINED_BODY = 64_000  # characters of a quarantined body kept (a DynamoDB item holds 400 KB)


def verified_callback(app: LambdaFunctionUrlResolver, expected_token: str, model: type[M]) -> tuple[M, bytes]:
    """The callback and its body as received, once the token is right: 403 otherwise, whatever the body."""
    if not verify_callback_token(header(app, CALLBACK_TOKEN_HEADER), expected_token):
        raise Forbidden("the callback token is missing or wrong", code="invalid_callback_token")
    return parsed_callback(app, model)


def parsed_callback(app: LambdaFunctionUrlResolver, model: type[M]) -> tuple[M, bytes]:
    """A verified webhook's body as ``model`` (422 in the API's error shape when it is not), and as received."""
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


def quarantine_callback(repository: PaymentsRepository, key: str, body: bytes, received_at: str, **fields: Any) -> str:
    """Keep a callback that does not match what it names (``fields``: kind, reason, callback_id and the ids
    of ours it names), never apply it, and alarm. Its inbox key adds a digest of the body: a redelivery is a
    duplicate, yet a lie cannot take the genuine callback's key."""
    quarantined = QuarantinedCallback(
        inbox_key=f"{key}:quarantined:{hashlib.sha256(body).hexdigest()[:32]}",
        callback=body.decode(errors="replace")[:MAX_QUARANTINED_BODY],
        received_at=received_at,
        **fields,
    )
    tx = Transaction()
    repository.quarantine(tx, quarantined)
    try:
        tx.commit()
    except DuplicateWebhook:
        return "duplicate"
    logger.critical(
        "webhook quarantined: it does not match what it names; nothing was applied",
        extra=quarantined.model_dump(exclude={"callback"}),
    )
    metrics.add_metric(name="WebhookQuarantined", unit="Count", value=1)
    return "quarantined"
