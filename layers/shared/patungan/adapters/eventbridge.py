"""Puts domain events on the EventBridge bus."""

from __future__ import annotations

from botocore.exceptions import ClientError

from patungan.adapters.aws import client
from patungan.adapters.dynamodb import translate_errors
from patungan.core.errors import DependencyUnavailable
from patungan.core.events import DomainEvent


class EventBusPublisher:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def put(self, event: DomainEvent) -> str | None:
        """Put one event; returns None when EventBridge accepted it, else its error code (FailedEntryCount)."""
        entry = {
            "EventBusName": self.bus_name,
            "Source": event.source,
            "DetailType": event.type,
            "Detail": event.model_dump_json(),
            "Resources": [],
        }
        try:
            with translate_errors():
                response = client("events").put_events(Entries=[entry])
        except ClientError as exc:
            raise DependencyUnavailable("EventBridge refused the event") from exc
        if response.get("FailedEntryCount", 0) == 0:
            return None
        return response["Entries"][0].get("ErrorCode") or "UnknownError"
