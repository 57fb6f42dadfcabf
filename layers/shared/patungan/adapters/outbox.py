"""The transactional outbox (SYS-1): an event is written in the same transaction as the change it reports.

The Outbox table's stream feeds the OutboxRelay function, which puts the events on the bus."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.core.clock import parse_iso
from patungan.core.events import DomainEvent


class Outbox:
    def __init__(self, table: DynamoTable, ttl_days: int) -> None:
        self.table = table
        self.ttl = timedelta(days=ttl_days)

    def add(self, tx: Transaction, event: DomainEvent) -> Transaction:
        # attribute_not_exists: an event id is written once, so a retried transaction cannot publish twice.
        return tx.put(self.table, self.item(event), condition="attribute_not_exists(event_id)")

    def item(self, event: DomainEvent) -> dict[str, Any]:
        return {
            "event_id": event.event_id,
            "type": event.type,
            "source": event.source,
            "occurred_at": event.occurred_at,
            "detail": event.model_dump_json(),
            "expires_at": int((parse_iso(event.occurred_at) + self.ttl).timestamp()),
        }


def event_from_outbox_image(image: dict[str, Any]) -> DomainEvent:
    return DomainEvent.model_validate(json.loads(image["detail"]))
