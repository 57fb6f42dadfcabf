"""The Inventory table: purchase orders ``PO#id / META`` (gsi1: all, gsi2: by factory; newest first) and
their receipts ``PO#id / RECEIPT#rid`` (in no index)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.core.errors import ConcurrentUpdate, NotFound
from patungan.core.pagination import Page, decode_cursor, encode_cursor
from patungan.inventory.models import PurchaseOrder, Receipt

META = "META"
_KEYS = {"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"}


def _key(po_id: str) -> dict[str, str]:
    return {"pk": f"PO#{po_id}", "sk": META}


def _receipt_key(po_id: str, receipt_id: str) -> dict[str, str]:
    return {"pk": f"PO#{po_id}", "sk": f"RECEIPT#{receipt_id}"}


def _purchase_order(item: dict[str, Any]) -> PurchaseOrder:
    return PurchaseOrder.model_validate({k: v for k, v in item.items() if k not in _KEYS})


class PurchaseOrderRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def add_to(self, tx: Transaction, po: PurchaseOrder) -> None:
        sort_key = f"{po.created_at}#{po.id}"
        tx.put(
            self.table,
            {
                **_key(po.id),
                "gsi1pk": "POS",
                "gsi1sk": sort_key,
                "gsi2pk": f"FACTORY#{po.factory_id}",
                "gsi2sk": sort_key,
                **po.model_dump(),
            },
            condition="attribute_not_exists(pk)",
        )

    def get(self, po_id: str) -> PurchaseOrder:
        item = self.table.get(_key(po_id))
        if item is None:
            raise NotFound(f"no purchase order {po_id}")
        return _purchase_order(item)

    def replace(self, tx: Transaction, po: PurchaseOrder, changed: PurchaseOrder) -> None:
        tx.update(
            self.table,
            _key(po.id),
            "SET #status = :status, received_quantity = :received, received_at = :at, received_by = :by, "
            "updated_at = :updated, #version = :next",
            condition="#version = :expected",
            names={"#status": "status", "#version": "version"},
            values={
                ":status": changed.status,
                ":received": changed.received_quantity,
                ":at": changed.received_at,
                ":by": changed.received_by,
                ":updated": changed.updated_at,
                ":next": po.version + 1,
                ":expected": po.version,
            },
            on_fail=ConcurrentUpdate("the purchase order changed while this request ran; retry"),
        )

    def add_receipt(self, tx: Transaction, receipt: Receipt) -> None:
        tx.put(
            self.table,
            _receipt_key(receipt.purchase_order_id, receipt.id) | receipt.model_dump(),
            condition="attribute_not_exists(pk)",
            # Recorded meanwhile by another attempt of the same request: the caller re-reads and finds it.
            on_fail=ConcurrentUpdate("this receipt was recorded while the request ran; retry"),
        )

    def has_receipt(self, po_id: str, receipt_id: str) -> bool:
        return self.table.get(_receipt_key(po_id, receipt_id)) is not None

    def receipt_ids(self, po_id: str) -> list[str]:
        """The ids of every receipt recorded against the purchase order (a consistent read)."""
        return [item["id"] for item in self._receipts(po_id)]

    def received_total(self, po_id: str) -> int:
        """The units of every receipt recorded against the purchase order (a consistent read)."""
        return sum(int(item["quantity"]) for item in self._receipts(po_id))

    def _receipts(self, po_id: str) -> Iterator[dict[str, Any]]:
        start_key = None
        while True:
            result = self.table.query(
                "pk = :pk AND begins_with(sk, :prefix)",
                values={":pk": f"PO#{po_id}", ":prefix": "RECEIPT#"},
                start_key=start_key,
                consistent=True,
            )
            yield from result.items
            if result.last_key is None:
                return
            start_key = result.last_key

    def list(
        self, *, factory_id: str | None, limit: int, cursor: str | None, session_id: str | None, status: str | None
    ) -> Page[PurchaseOrder]:
        index, partition = ("gsi2", f"FACTORY#{factory_id}") if factory_id else ("gsi1", "POS")
        result = self.table.query_page(
            f"{index}pk = :pk",
            index=index,
            limit=limit,
            start_key=decode_cursor(cursor),
            values={":pk": partition},
            equal_to={"session_id": session_id, "status": status},
            forward=False,
        )
        return Page([_purchase_order(i) for i in result.items], encode_cursor(result.last_key))
