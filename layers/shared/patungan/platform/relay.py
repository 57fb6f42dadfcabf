"""Relays outbox events to the bus (SYS-1) in PutEvents batches of up to ten (issue 8).

Entries EventBridge refuses are put again alone, with backoff and full jitter, a bounded number of times. The
records from the first one still refused on are not relayed: the stream delivers them again, in order, and
finally dead-letters them (template: OnFailure). No later event of an aggregate overtakes an earlier one: a
batch holds at most one event per aggregate, and nothing after a refused record is put. Records before it may
be redelivered with it; consumers deduplicate on event_id."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from typing import Any, Protocol

from patungan.adapters.eventbridge import MAX_ENTRIES_PER_PUT, MAX_PUT_BYTES, EventBusPublisher, entry_size
from patungan.adapters.outbox import event_from_outbox_image
from patungan.core.config import get_settings
from patungan.core.errors import DependencyUnavailable
from patungan.core.events import DomainEvent
from patungan.core.observability import logger

BASE_DELAY_SECONDS = 0.1


class EventNotRelayed(Exception):
    """The record's event, or an earlier one of its shard, is not on the bus; the stream delivers it again."""


class EventBus(Protocol):
    def put_batch(self, events: Sequence[DomainEvent]) -> list[str | None]: ...


class OutboxRelay:
    def __init__(self, publisher: EventBus, attempts: int = 3, sleep: Callable[[float], None] = time.sleep) -> None:
        self.publisher = publisher
        self.attempts = attempts
        self.sleep = sleep

    def relay(self, images: Sequence[dict[str, Any]]) -> int:
        """Put the events of these outbox images (one shard's records, in stream order) on the bus; returns how
        many of them, from the first, are on it. The rest must be delivered again."""
        events = []
        for image in images:
            try:
                events.append(event_from_outbox_image(image))
            except (KeyError, ValueError):  # a pydantic ValidationError, or detail that is not JSON
                logger.exception("unreadable outbox record", extra={"event_id": image.get("event_id")})
                break
        relayed = 0
        for batch in _batches(events):
            refused = self._put(batch)
            if refused:
                for event, error in refused:
                    logger.error(
                        "event not relayed", extra={"event_id": event.event_id, "type": event.type, "error": error}
                    )
                return relayed + batch.index(refused[0][0])
            relayed += len(batch)
            logger.debug("events relayed", extra={"event_ids": [event.event_id for event in batch]})
        return relayed

    def _put(self, batch: list[DomainEvent]) -> list[tuple[DomainEvent, str]]:
        """Put the batch, then again only what was refused; returns what is still refused (in order), with its
        error."""
        pending = batch
        refused: list[tuple[DomainEvent, str]] = []
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(random.uniform(0, BASE_DELAY_SECONDS * 2**attempt))  # full jitter
            try:
                errors: list[str | None] = list(self.publisher.put_batch(pending))
            except DependencyUnavailable as exc:
                errors = [exc.message] * len(pending)
            refused = [(event, error) for event, error in zip(pending, errors, strict=True) if error is not None]
            if not refused:
                return []
            pending = [event for event, _ in refused]
        return refused


def _batches(events: list[DomainEvent]) -> Iterator[list[DomainEvent]]:
    """Consecutive events, at most MAX_ENTRIES_PER_PUT and MAX_PUT_BYTES a batch, at most one per aggregate (so
    that a refused event is never overtaken by a later one of its aggregate put in the same request)."""
    batch: list[DomainEvent] = []
    size = 0
    for event in events:
        event_size = entry_size(event)
        full = len(batch) == MAX_ENTRIES_PER_PUT or size + event_size > MAX_PUT_BYTES
        if batch and (full or any(queued.aggregate_id == event.aggregate_id for queued in batch)):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event_size
    if batch:
        yield batch


@cache
def outbox_relay() -> OutboxRelay:
    return OutboxRelay(EventBusPublisher(get_settings().event_bus_name))
