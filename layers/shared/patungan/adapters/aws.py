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
