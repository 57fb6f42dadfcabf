"""Webhook verification (PAY-2): the static x-callback-token against our secret, in constant time."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver

from patungan.adapters.xendit import verify_callback_token
from patungan.core.errors import Forbidden
from patungan.core.http import header

CALLBACK_TOKEN_HEADER = "x-callback-token"  # noqa: S105 - a header name, not a secret


def require_xendit_token(app: LambdaFunctionUrlResolver, expected: str) -> None:
    if not verify_callback_token(header(app, CALLBACK_TOKEN_HEADER), expected):
        raise Forbidden("the callback token is missing or wrong", code="invalid_callback_token")
