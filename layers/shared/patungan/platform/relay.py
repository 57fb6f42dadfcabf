"""Relays outbox events to the bus (SYS-1): a failed entry is retried with backoff and jitter; one that
still fails is reported, so the stream retries it and finally dead-letters it (template: OnFailure)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from patungan.adapters.eventbridge import EventBusPublisher
from patungan.adapters.outbox import event_from_outbox_image
from patungan.core.config import get_settings
from patungan.core.errors import DependencyUnavailable
from patungan.core.observability import logger

BASE_DELAY_SECONDS = 0.1


class EventNotRelayed(Exception):
    """EventBridge kept refusing the event; the stream will deliver the record again."""


class OutboxRelay:
    def __init__(
        self, publisher: EventBusPublisher, attempts: int = 3, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.publisher = publisher
        self.attempts = attempts
        self.sleep = sleep

    def relay(self, new_image: dict[str, Any]) -> None:
        event = event_from_outbox_image(new_image)
        error: str | None = None
        for attempt in range(self.attempts):
            try:
                error = self.publisher.put(event)
            except DependencyUnavailable as exc:
                error = exc.message
            if error is None:
                logger.debug("event relayed", extra={"event_id": event.event_id, "type": event.type})
                return
            self.sleep(random.uniform(0, BASE_DELAY_SECONDS * 2**attempt))  # full jitter
        logger.error("event not relayed", extra={"event_id": event.event_id, "type": event.type, "error": error})
        raise EventNotRelayed(f"{event.event_id}: {error}")


@cache
def outbox_relay() -> OutboxRelay:
    return OutboxRelay(EventBusPublisher(get_settings().event_bus_name))
