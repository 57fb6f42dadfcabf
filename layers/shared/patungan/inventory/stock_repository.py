"""Where stock lives (DESIGN.md "Inventory").

Inventory table:
- stock item ``STOCK#warehouse#product#variant / STOCK``; gsi1 ``STOCK_AT#warehouse`` (a warehouse's stock),
  gsi2 ``STOCK_OF#product`` (a product's stock in every warehouse), gsi3 ``STOCK_SELLER#seller`` (a seller's).
  Every write puts the whole item on the condition that its ``version`` is still the one read, so the audit
  record written beside it states the exact before and after (WH-2).
- reservation ``RESERVATION#id / META``; while held with an expiry it sits in gsi1 ``HELD#shard`` sorted by
  ``expires_at`` (a sparse index the expiry sweep reads; released or committed ones leave it).

InventoryAuditTable (append-only, WH-2): ``ITEM#warehouse#product#variant / at#id`` (per item, by time); gsi1
``PRODUCT#product``, gsi2 ``ACTOR#actor``, gsi3 ``WAREHOUSE#warehouse#shard``, gsi4 ``ACTION#action#shard``,
gsi5 ``ALL#shard``; every index is sorted by ``at#id``. Busy partitions (an action, a warehouse, all) are split
over ``AUDIT_SHARDS`` so no index partition takes every write of the platform; a query reads the shards and
merges them newest first."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from patungan.adapters.dynamodb import MAX_BATCH_GET_KEYS, MAX_READS_PER_PAGE, DynamoTable, FailureFactory, Transaction
from patungan.core.errors import ConcurrentUpdate, Conflict, DomainError, NotFound
from patungan.core.pagination import decode_cursor, encode_cursor, invalid_cursor
from patungan.inventory.stock_models import AuditRecord, Reservation, StockItem, StockKey

AUDIT_SHARDS = 8
HELD_SHARDS = 8
NO_VARIANT = "-"
_STOCK_KEYS = {"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"}
_AUDIT_KEYS = _STOCK_KEYS | {"gsi4pk", "gsi4sk", "gsi5pk", "gsi5sk"}
# Sorts after every "at#id" of a second: the inclusive end of a time range.
_AFTER = "#~"


def _shard(text: str, shards: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % shards


def _item_id(key: StockKey) -> str:
    return f"{key.warehouse_id}#{key.product_id}#{key.variant_id or NO_VARIANT}"


def stock_key(key: StockKey) -> dict[str, str]:
    return {"pk": f"STOCK#{_item_id(key)}", "sk": "STOCK"}


def reservation_key(reservation_id: str) -> dict[str, str]:
    return {"pk": f"RESERVATION#{reservation_id}", "sk": "META"}


def _stock_item(item: dict[str, Any]) -> StockItem:
    return StockItem.model_validate({k: v for k, v in item.items() if k not in _STOCK_KEYS})


def _reservation(item: dict[str, Any]) -> Reservation:
    return Reservation.model_validate({k: v for k, v in item.items() if k not in _STOCK_KEYS})


class StockRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    # ---- stock items
    def get(self, key: StockKey) -> StockItem | None:
        item = self.table.get(stock_key(key))
        return _stock_item(item) if item else None

    def get_with_reservation(
        self, keys: Iterable[StockKey], reservation_id: str | None
    ) -> tuple[dict[StockKey, StockItem], Reservation | None]:
        """The stock items of ``keys`` that exist and the reservation, in one consistent BatchGetItem."""
        wanted = [stock_key(key) for key in keys] + ([reservation_key(reservation_id)] if reservation_id else [])
        items, reservation = {}, None
        for item in self.table.get_many(wanted):
            if item["sk"] == "STOCK":
                stock = _stock_item(item)
                items[stock.key] = stock
            else:
                reservation = _reservation(item)
        return items, reservation

    def write(self, tx: Transaction, before: StockItem | None, after: StockItem, on_fail: FailureFactory) -> None:
        """Put ``after`` if the item is still ``before`` (absent when ``before`` is None)."""
        item_id = _item_id(after.key)
        keys = {
            **stock_key(after.key),
            "gsi1pk": f"STOCK_AT#{after.warehouse_id}",
            "gsi1sk": item_id,
            "gsi2pk": f"STOCK_OF#{after.product_id}",
            "gsi2sk": item_id,
        }
        if after.seller_id:
            keys |= {"gsi3pk": f"STOCK_SELLER#{after.seller_id}", "gsi3sk": item_id}
        if before is None:
            condition, values = "attribute_not_exists(pk)", None
        else:
            condition, values = "#version = :seen", {":seen": before.version}
        tx.put(
            self.table,
            {**keys, **after.model_dump()},
            condition=condition,
            names={"#version": "version"} if values else None,
            values=values,
            on_fail=on_fail,
        )

    def of_product(self, product_id: str) -> list[StockItem]:
        return self._all("gsi2", f"STOCK_OF#{product_id}")

    def page(
        self, *, warehouse_id: str | None, product_id: str | None, seller_id: str | None, limit: int, cursor: str | None
    ) -> tuple[list[StockItem], str | None]:
        """A page of stock items: a warehouse's (optionally of one product), a product's, or a seller's."""
        if warehouse_id:
            index, partition, prefix = "gsi1", f"STOCK_AT#{warehouse_id}", f"{warehouse_id}#{product_id or ''}"
        elif product_id:
            index, partition, prefix = "gsi2", f"STOCK_OF#{product_id}", ""
        else:
            index, partition, prefix = "gsi3", f"STOCK_SELLER#{seller_id}", ""
        condition = f"{index}pk = :pk" + (f" AND begins_with({index}sk, :prefix)" if prefix else "")
        result = self.table.query_page(
            condition,
            index=index,
            values={":pk": partition, **({":prefix": prefix} if prefix else {})},
            limit=limit,
            start_key=decode_cursor(cursor),
            # gsi1 and gsi2 hold purchase orders and warehouses too; a seller's list may be narrowed by both.
            equal_to={"sk": "STOCK", "seller_id": seller_id, "product_id": product_id},
        )
        return [_stock_item(item) for item in result.items], encode_cursor(result.last_key)

    def _all(self, index: str, partition: str) -> list[StockItem]:
        items, start_key = [], None
        while True:
            result = self.table.query(f"{index}pk = :pk", index=index, values={":pk": partition}, start_key=start_key)
            items.extend(_stock_item(item) for item in result.items if item.get("sk") == "STOCK")
            if result.last_key is None:
                return items
            start_key = result.last_key

    # ---- reservations
    def get_reservation(self, reservation_id: str) -> Reservation:
        item = self.table.get(reservation_key(reservation_id))
        if item is None:
            raise NotFound(f"no reservation {reservation_id}")
        return _reservation(item)

    def reservations(self, reservation_ids: list[str]) -> list[Reservation]:
        """The reservations of ``reservation_ids`` that exist (consistent reads, any number of ids)."""
        found: list[Reservation] = []
        for start in range(0, len(reservation_ids), MAX_BATCH_GET_KEYS):
            keys = [reservation_key(i) for i in reservation_ids[start : start + MAX_BATCH_GET_KEYS]]
            found.extend(_reservation(item) for item in self.table.get_many(keys))
        return found

    def draw(
        self, tx: Transaction, hold: Reservation, line: int, units: int, now: str, on_fail: FailureFactory
    ) -> None:
        """Take ``units`` of line ``line`` of a held reservation, written only over the units read (a concurrent
        draw makes this one read again); a hold drawn empty is committed."""
        left = hold.lines[line].units - units
        values = {":left": left, ":now": now, ":held": "held", ":seen": hold.lines[line].units}
        expression = f"SET #lines[{line}].#units = :left, updated_at = :now"
        if left == 0:
            expression += ", #status = :committed"
            values[":committed"] = "committed"
        tx.update(
            self.table,
            reservation_key(hold.id),
            expression,
            condition=f"#status = :held AND #lines[{line}].#units = :seen",
            names={"#lines": "lines", "#units": "units", "#status": "status"},
            values=values,
            on_fail=on_fail,
        )

    def add_reservation(self, tx: Transaction, reservation: Reservation, on_fail: FailureFactory) -> None:
        held = (
            {
                "gsi1pk": f"HELD#{_shard(reservation.id, HELD_SHARDS)}",
                "gsi1sk": f"{reservation.expires_at}#{reservation.id}",
            }
            if reservation.expires_at
            else {}
        )
        tx.put(
            self.table,
            {**reservation_key(reservation.id), **held, **reservation.model_dump()},
            condition="attribute_not_exists(pk)",
            on_fail=on_fail,
        )

    def end_reservation(
        self, tx: Transaction, reservation: Reservation, status: str, now: str, *, only_if: str, on_fail: FailureFactory
    ) -> None:
        """Mark a held reservation released or committed (it leaves the expiry index). ``only_if`` adds to the
        condition that it is still held: ``"unexpired"`` (commit, a caller's release) or ``"expired"`` (the
        system's release of an expired hold); ``"any"`` for a hold without expiry."""
        conditions = {
            "unexpired": " AND (attribute_not_exists(expires_at) OR expires_at > :now)",
            "expired": " AND expires_at <= :now",
            "any": "",
        }
        tx.update(
            self.table,
            reservation_key(reservation.id),
            "SET #status = :status, updated_at = :now REMOVE gsi1pk, gsi1sk",
            condition="#status = :held" + conditions[only_if],
            names={"#status": "status"},
            values={":status": status, ":now": now, ":held": "held"},
            on_fail=on_fail,
        )

    def extend(self, tx: Transaction, reservation_id: str, expires_at: str, now: str) -> None:
        tx.update(
            self.table,
            reservation_key(reservation_id),
            "SET expires_at = :expires, gsi1sk = :sort, updated_at = :now",
            condition="#status = :held AND expires_at > :now",
            names={"#status": "status"},
            values={
                ":expires": expires_at,
                ":sort": f"{expires_at}#{reservation_id}",
                ":now": now,
                ":held": "held",
            },
            on_fail=lambda old: _not_extendable(reservation_id, old),
        )

    def hold_until_ended(self, tx: Transaction, reservation_id: str, now: str) -> None:
        """A held, unexpired reservation loses its expiry (and leaves the expiry index): held until it is
        committed or released, like a purchase order's."""
        tx.update(
            self.table,
            reservation_key(reservation_id),
            "SET updated_at = :now REMOVE expires_at, gsi1pk, gsi1sk",
            condition="#status = :held AND (attribute_not_exists(expires_at) OR expires_at > :now)",
            names={"#status": "status"},
            values={":now": now, ":held": "held"},
            on_fail=lambda old: _not_extendable(reservation_id, old),
        )

    def expired(self, now: str, limit: int) -> list[str]:
        """Ids of up to ``limit`` held reservations per shard whose expiry has passed, oldest first."""
        found: list[str] = []
        for shard in range(HELD_SHARDS):
            result = self.table.query(
                "gsi1pk = :pk AND gsi1sk <= :now",
                index="gsi1",
                values={":pk": f"HELD#{shard}", ":now": f"{now}{_AFTER}"},
                limit=limit,
            )
            found.extend(item["id"] for item in result.items)
        return found


def _not_extendable(reservation_id: str, old: dict[str, Any] | None) -> DomainError:
    if old is None:
        return NotFound(f"no reservation {reservation_id}")
    if old.get("status") == "committed":  # its stock left with the order: not "expired", which asks to hold again
        return Conflict(f"reservation {reservation_id} is committed: nothing was extended", code="illegal_transition")
    return Conflict(
        f"reservation {reservation_id} is {old.get('status')} or has expired: nothing was extended",
        code="reservation_expired",
    )


@dataclass(frozen=True)
class AuditQuery:
    warehouse_id: str | None = None
    product_id: str | None = None
    variant_id: str | None = None
    actor_id: str | None = None
    action: str | None = None
    from_: str | None = None  # ISO times, second precision
    to: str | None = None


class AuditLog:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def add(self, tx: Transaction, record: AuditRecord) -> None:
        key = StockKey(record.warehouse_id, record.product_id, record.variant_id)
        sort = f"{record.at}#{record.id}"
        shard = _shard(record.id, AUDIT_SHARDS)
        tx.put(
            self.table,
            {
                "pk": f"ITEM#{_item_id(key)}",
                "sk": sort,
                "gsi1pk": f"PRODUCT#{record.product_id}",
                "gsi1sk": sort,
                "gsi2pk": f"ACTOR#{record.actor_id}",
                "gsi2sk": sort,
                "gsi3pk": f"WAREHOUSE#{record.warehouse_id}#{shard}",
                "gsi3sk": sort,
                "gsi4pk": f"ACTION#{record.action}#{shard}",
                "gsi4sk": sort,
                "gsi5pk": f"ALL#{shard}",
                "gsi5sk": sort,
                **record.model_dump(),
            },
            condition="attribute_not_exists(pk)",
            on_fail=ConcurrentUpdate("an audit record with this id exists; retry"),
        )

    def claim(self, tx: Transaction, request_id: str, record: AuditRecord) -> None:
        """A request's change, recorded once under the request's id (in no index): a retry whose first attempt
        was applied finds it instead of applying it again."""
        tx.put(
            self.table,
            {"pk": f"REQUEST#{request_id}", "sk": "CLAIM", "record": record.model_dump()},
            condition="attribute_not_exists(pk)",
            on_fail=ConcurrentUpdate("this request was applied while it ran; retry"),
        )

    def claimed(self, request_id: str) -> AuditRecord | None:
        item = self.table.get({"pk": f"REQUEST#{request_id}", "sk": "CLAIM"})
        return AuditRecord.model_validate(item["record"]) if item else None

    def page(self, query: AuditQuery, *, limit: int, cursor: str | None) -> tuple[list[AuditRecord], str | None]:
        """Newest first. The most selective key the query names picks the partitions (the item; else the
        product, the actor, the warehouse, the action; else all), the time range is the sort-key condition,
        the other filters are filter expressions: no scan. Shards are merged by their sort key; the cursor is
        the sort key of the last record answered."""
        before = _cursor_position(cursor)
        index, partitions = self._partitions(query)
        low = query.from_ or "0"
        high = min(f"{query.to}{_AFTER}" if query.to else "~", before or "~")
        if low > high:  # an empty range (from after to, or a cursor before from): DynamoDB refuses it
            return [], None
        filters = {
            "warehouse_id": query.warehouse_id,
            "product_id": query.product_id,
            "variant_id": query.variant_id,
            "actor_id": query.actor_id,
            "action": query.action,
        }
        found: list[dict[str, Any]] = []
        # The newest position down to which a partition was not read: records below it may be missing.
        unread_below = ""
        for partition in partitions:
            matches, stopped_at = self._read(index, partition, low, high, filters, limit)
            found.extend(item for item in matches if item["sk"] != before)
            unread_below = max(unread_below, stopped_at or "")
        found = sorted((item for item in found if item["sk"] >= unread_below), key=lambda i: i["sk"], reverse=True)
        page = found[:limit]
        more = len(found) > limit or bool(unread_below)
        next_position = page[-1]["sk"] if page else unread_below
        records = [AuditRecord.model_validate({k: v for k, v in i.items() if k not in _AUDIT_KEYS}) for i in page]
        return records, encode_cursor({"before": next_position}) if more and next_position else None

    def _partitions(self, query: AuditQuery) -> tuple[str | None, list[str]]:
        if query.warehouse_id and query.product_id and query.variant_id:
            return None, [f"ITEM#{_item_id(StockKey(query.warehouse_id, query.product_id, query.variant_id))}"]
        if query.product_id:
            return "gsi1", [f"PRODUCT#{query.product_id}"]
        if query.actor_id:
            return "gsi2", [f"ACTOR#{query.actor_id}"]
        if query.warehouse_id:
            return "gsi3", [f"WAREHOUSE#{query.warehouse_id}#{n}" for n in range(AUDIT_SHARDS)]
        if query.action:
            return "gsi4", [f"ACTION#{query.action}#{n}" for n in range(AUDIT_SHARDS)]
        return "gsi5", [f"ALL#{n}" for n in range(AUDIT_SHARDS)]

    def _read(
        self, index: str | None, partition: str, low: str, high: str, filters: dict[str, str | None], limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` matching records of one partition, newest first, and the sort key below which it
        was not read (None: read to the end of the range)."""
        prefix = index or ""
        wanted = {name: value for name, value in filters.items() if value is not None}
        expression = " AND ".join(f"#f_{name} = :f_{name}" for name in wanted) or None
        names = {"#s": f"{prefix}sk", **{f"#f_{name}": name for name in wanted}}
        values = {":pk": partition, ":low": low, ":high": high, **{f":f_{n}": v for n, v in wanted.items()}}
        matches: list[dict[str, Any]] = []
        start_key = None
        for _ in range(MAX_READS_PER_PAGE):
            result = self.table.query(
                f"{prefix}pk = :pk AND #s BETWEEN :low AND :high",
                index=index,
                names=names,
                values=values,
                limit=limit + 1,
                start_key=start_key,
                forward=False,
                filter_expression=expression,
            )
            matches.extend(result.items)
            start_key = result.last_key
            if start_key is None:
                return matches, None
            if len(matches) > limit:
                return matches, matches[-1]["sk"]
        return matches, start_key["sk"]


def _cursor_position(cursor: str | None) -> str | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    if set(position) != {"before"} or not isinstance(position["before"], str) or not position["before"]:
        raise invalid_cursor()
    return position["before"]
