"""A moto AWS with everything template.yaml declares that functions touch: tables (from the template's own
definitions), the event bus, the Xendit SSM parameters; plus the Globals environment the functions read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import boto3
from moto import mock_aws

from emulator.moto_patches import cheaper_moto
from emulator.template import REGION, Template, create_tables
from patungan.adapters.aws import reset_clients
from patungan.core.config import get_settings

LOCAL_TOKEN_SECRET = "tests-token-key-NOT-A-SECRET"  # what the local stack hands its functions (emulator/stack.py)
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Patungan",
    "POWERTOOLS_SERVICE_NAME": "tests",
    "LOCAL_TOKEN_SECRET": LOCAL_TOKEN_SECRET,
}


@dataclass
class LocalAws:
    template: Template
    tables: dict[str, str]
    environment: dict[str, str]

    def dynamodb(self):
        return boto3.client("dynamodb", region_name=REGION)

    def expire_idempotency_records(self) -> None:
        """What the expiry of an in-progress Idempotency-Key record does (a crashed request), without waiting."""
        table = self.tables["IdempotencyTable"]
        for item in self.dynamodb().scan(TableName=table)["Items"]:
            self.dynamodb().delete_item(TableName=table, Key={"id": item["id"]})


def _reset_caches() -> None:
    # Services and clients are cached per warm container; a fresh moto is a fresh "cold start".
    reset_clients()
    get_settings.cache_clear()
    from patungan import composition
    from patungan.adapters.tokens import token_verifier
    from patungan.catalog.service import catalog_service
    from patungan.core.http import _idempotency
    from patungan.ledger.repository import ledger
    from patungan.ledger.service import ledger_service
    from patungan.notifications.service import notification_service
    from patungan.platform.relay import outbox_relay

    for cached in (
        catalog_service,
        outbox_relay,
        _idempotency,
        notification_service,
        ledger,
        ledger_service,
        token_verifier,
    ):
        cached.cache_clear()
    composition.reset()


@contextmanager
def local_aws(overrides: dict[str, str] | None = None) -> Iterator[LocalAws]:
    template = Template.load()
    environment = {**template.functions()["OutboxRelayFunction"].environment, **FAKE_AWS_ENV, **(overrides or {})}
    # moto as released deep-copies every table a transaction touches, so its cost grows with the tables (issue 8).
    with mock.patch.dict(os.environ, environment), mock_aws(), cheaper_moto():
        _reset_caches()
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        tables = create_tables(dynamodb, template)
        boto3.client("events", region_name=REGION).create_event_bus(Name=environment["EVENT_BUS_NAME"])
        try:
            yield LocalAws(template, tables, environment)
        finally:
            _reset_caches()
