"""The domain event envelope every context publishes through the outbox (SYS-1)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, Field

from patungan.core.clock import Clock, to_iso
from patungan.core.ids import new_ulid

# Set per request/invocation so events carry the correlation id of what caused them.
current_correlation_id: ContextVar[str | None] = ContextVar("current_correlation_id", default=None)

EVENT_SOURCE_PREFIX = "patungan"


class DomainEvent(BaseModel):
    event_id: str
    type: str = Field(description="dotted name, context first: catalog.product.created")
    version: int = 1
    occurred_at: str
    correlation_id: str | None = None
    aggregate_id: str
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def source(self) -> str:
        """EventBridge ``source``: ``patungan.<context>`` (payment.completed → patungan.payment)."""
        return f"{EVENT_SOURCE_PREFIX}.{self.type.split('.', 1)[0]}"


def new_event(type_: str, aggregate_id: str, data: dict[str, Any], clock: Clock, version: int = 1) -> DomainEvent:
    return DomainEvent(
        event_id=f"evt_{new_ulid().lower()}",
        type=type_,
        version=version,
        occurred_at=to_iso(clock.now()),
        correlation_id=current_correlation_id.get(),
        aggregate_id=aggregate_id,
        data=data,
    )
