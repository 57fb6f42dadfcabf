"""Events the catalog publishes (through the outbox)."""

from __future__ import annotations

from patungan.catalog.models import Product
from patungan.core.clock import Clock
from patungan.core.events import DomainEvent, new_event

PRODUCT_CREATED = "catalog.product.created"
PRODUCT_UPDATED = "catalog.product.updated"


def product_created(product: Product, clock: Clock) -> DomainEvent:
    return new_event(PRODUCT_CREATED, product.id, {"product": product.model_dump()}, clock)


def product_updated(product: Product, changed: list[str], clock: Clock) -> DomainEvent:
    return new_event(PRODUCT_UPDATED, product.id, {"product": product.model_dump(), "changed": changed}, clock)
