"""The Shipments table (session decisions): ``SHIPMENT#id / META``; gsi1 ``ORDER#order_id`` (an order's shipment),
gsi2 ``COURIER_ORDER#courier_order_id`` (a courier webhook's shipment), gsi3 ``IN_TRANSIT`` sorted by the courier's
last update (sparse: only booked shipments not yet terminal; the poll of quiet shipments reads it).

Every change puts the whole item on the condition that its ``version`` is still the one read."""

from __future__ import annotations

from typing import Any

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.core.errors import ConcurrentUpdate, NotFound
from patungan.fulfilment.models import Shipment, shipment_id_for

META = "META"
IN_TRANSIT = "IN_TRANSIT"
_KEYS = {"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"}


def _key(shipment_id: str) -> dict[str, str]:
    return {"pk": f"SHIPMENT#{shipment_id}", "sk": META}


def _item(shipment: Shipment) -> dict[str, Any]:
    keys = {**_key(shipment.id), "gsi1pk": f"ORDER#{shipment.order_id}", "gsi1sk": shipment.id}
    if shipment.courier_order_id:
        keys |= {"gsi2pk": f"COURIER_ORDER#{shipment.courier_order_id}", "gsi2sk": shipment.id}
    if shipment.is_booked and not shipment.is_terminal:
        keys |= {"gsi3pk": IN_TRANSIT, "gsi3sk": _quiet_key(shipment)}
    return {**keys, **shipment.model_dump()}


def _quiet_key(shipment: Shipment) -> str:
    return f"{shipment.courier_updated_at or shipment.created_at}#{shipment.id}"


def _shipment(item: dict[str, Any]) -> Shipment:
    return Shipment.model_validate({k: v for k, v in item.items() if k not in _KEYS})


class ShipmentsRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def add_to(self, tx: Transaction, shipment: Shipment) -> None:
        """Written once per id (one per order): a second attempt fails as a concurrent change, and reads again."""
        tx.put(
            self.table,
            _item(shipment),
            condition="attribute_not_exists(pk)",
            on_fail=ConcurrentUpdate(f"shipment {shipment.id} was written while this request ran; retry"),
        )

    def get(self, shipment_id: str) -> Shipment:
        shipment = self.find(shipment_id)
        if shipment is None:
            raise NotFound(f"no shipment {shipment_id}")
        return shipment

    def find(self, shipment_id: str) -> Shipment | None:
        item = self.table.get(_key(shipment_id))
        return _shipment(item) if item else None

    def find_by_order(self, order_id: str) -> Shipment | None:
        """An order's shipment, read consistently by its id (derived from the order's)."""
        return self.find(shipment_id_for(order_id))

    def find_by_courier_order(self, courier_order_id: str) -> Shipment | None:
        """The shipment the courier's order id names, read again from the table (the index may lag behind it)."""
        result = self.table.query(
            "gsi2pk = :pk", index="gsi2", values={":pk": f"COURIER_ORDER#{courier_order_id}"}, limit=1
        )
        return self.find(result.items[0]["pk"].removeprefix("SHIPMENT#")) if result.items else None

    def change(self, tx: Transaction, shipment: Shipment, **changes: Any) -> Shipment:
        """Into ``tx``: ``shipment`` with ``changes``, written only over the version read (else a concurrent
        change: read again); the indexes follow (gsi2 once the courier names its order, gsi3 while in transit)."""
        changed = Shipment.model_validate({**shipment.model_dump(), **changes, "version": shipment.version + 1})
        tx.put(
            self.table,
            _item(changed),
            condition="#version = :seen",
            names={"#version": "version"},
            values={":seen": shipment.version},
            on_fail=ConcurrentUpdate(f"shipment {shipment.id} changed while this request ran; retry"),
        )
        return changed

    def in_transit_quiet_since(self, before_iso: str, limit: int, after: Shipment | None = None) -> list[Shipment]:
        """Up to ``limit`` booked, not terminal shipments the courier last updated before ``before_iso``
        (never updated: created before it), quietest first; with ``after``, those that sorted after it (the last of
        the page before: a poll reads on instead of reading the same quietest page again)."""
        if after is None:
            condition, values = "gsi3pk = :pk AND gsi3sk < :before", {":pk": IN_TRANSIT, ":before": before_iso}
        else:  # the least key above after's (BETWEEN includes both ends; no key equals a bare time)
            condition = "gsi3pk = :pk AND gsi3sk BETWEEN :after AND :before"
            values = {":pk": IN_TRANSIT, ":after": _quiet_key(after) + "\x00", ":before": before_iso}
        result = self.table.query(condition, index="gsi3", values=values, limit=limit)
        return [_shipment(item) for item in result.items]
