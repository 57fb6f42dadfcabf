"""boto3 clients, created lazily and reused across warm invocations, with timeouts and bounded retries."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"max_attempts": 3, "mode": "standard"},
)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CLIENT_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (a new mocked AWS in tests, a new local stack)."""
    client.cache_clear()


SECRET_CACHE_SECONDS = 300


def read_secret(parameter_name: str, what: str) -> str:
    """A SecureString from SSM (an API key, a callback token), cached per warm container for
    ``SECRET_CACHE_SECONDS``. SSM not answering (missing, denied, throttled) is our dependency down: logged
    with its cause for the operator, and a 503 the caller may retry (Xendit retries a webhook's non-200)."""
    from aws_lambda_powertools.utilities.parameters import get_parameter
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    from patungan.core.errors import DependencyUnavailable
    from patungan.core.observability import logger

    try:
        return get_parameter(parameter_name, decrypt=True, max_age=SECRET_CACHE_SECONDS)
    except GetParameterError as exc:
        logger.error(f"{what} unreadable", extra={"parameter": parameter_name, "error": str(exc)})
        raise DependencyUnavailable(f"{what} could not be read; retry") from exc
