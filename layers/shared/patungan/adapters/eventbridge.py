"""Puts domain events on the EventBridge bus, up to PutEvents' limits per request."""

from __future__ import annotations

from collections.abc import Sequence

from botocore.exceptions import ClientError

from patungan.adapters.aws import client
from patungan.adapters.dynamodb import translate_errors
from patungan.core.errors import DependencyUnavailable
from patungan.core.events import DomainEvent

MAX_ENTRIES_PER_PUT = 10
MAX_PUT_BYTES = 256 * 1024


def entry_size(event: DomainEvent) -> int:
    """What an entry counts against MAX_PUT_BYTES, as EventBridge reckons it: Source, DetailType and Detail in
    UTF-8 (no Time and no Resources are sent)."""
    return sum(len(part.encode()) for part in (event.source, event.type, event.model_dump_json()))


class EventBusPublisher:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def put_batch(self, events: Sequence[DomainEvent]) -> list[str | None]:
        """Put up to MAX_ENTRIES_PER_PUT events in one request; per event, in order: None when EventBridge
        accepted it, else its ErrorCode (the entries of a response with a FailedEntryCount)."""
        entries = [
            {
                "EventBusName": self.bus_name,
                "Source": event.source,
                "DetailType": event.type,
                "Detail": event.model_dump_json(),
                "Resources": [],
            }
            for event in events
        ]
        try:
            with translate_errors():
                response = client("events").put_events(Entries=entries)
        except ClientError as exc:
            raise DependencyUnavailable("EventBridge refused the events") from exc
        # An accepted entry has an EventId; a refused one (counted in FailedEntryCount) an ErrorCode instead.
        return [
            None if "EventId" in result else result.get("ErrorCode") or "UnknownError" for result in response["Entries"]
        ]
