"""The Orders table: ``ORDER#id``; gsi1 by buyer, gsi2 by factory or seller, gsi3 all (admin), newest first."""

from __future__ import annotations

from itertools import pairwise

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.core.errors import ConcurrentUpdate, NotFound
from patungan.core.pagination import Page, decode_cursor, encode_cursor
from patungan.orders.models import Order

META = "META"
# Forward-only (ORD-3): an order may move only from these states into the key state.
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    "paid": frozenset({"pending_payment"}),
    "processing": frozenset({"pending_payment", "paid"}),
    "expired": frozenset({"pending_payment"}),
    # shipped: only a parcel the courier brought back (fulfilment/tracking.py); the buyer's cancel refuses it.
    "cancelled": frozenset({"pending_payment", "paid", "processing", "shipped"}),
    "refunded": frozenset({"cancelled"}),
    # Fulfilment (LOG-2): a paid order, or a COD order (processing), leaves with the courier.
    "shipped": frozenset({"paid", "processing"}),
    "delivered": frozenset({"shipped"}),
    "completed": frozenset({"delivered"}),
}
_KEYS = {"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"}


def owner_partition(order: Order) -> str:
    """The gsi2 partition of the factory or seller an order is for (what their staff list)."""
    return f"FACTORY#{order.factory_id}" if order.factory_id else f"SELLER#{order.seller_id}"


class OrdersRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def add_to(self, tx: Transaction, order: Order) -> None:
        """Written once per id: a deterministic id makes creation idempotent (ORD-4)."""
        sort_key = f"{order.created_at}#{order.id}"
        tx.put(
            self.table,
            {
                "pk": f"ORDER#{order.id}",
                "sk": META,
                "gsi1pk": f"USER#{order.user_id}",
                "gsi1sk": sort_key,
                "gsi2pk": owner_partition(order),
                "gsi2sk": sort_key,
                "gsi3pk": "ORDERS",
                "gsi3sk": sort_key,
                **order.model_dump(),
            },
            condition="attribute_not_exists(pk)",
        )

    def move(
        self,
        tx: Transaction,
        order_id: str,
        status: str,
        updated_at: str,
        via: tuple[str, ...] = (),
        *,
        seen: str,
    ) -> None:
        """``status`` only from ``seen`` (the status the caller read and decided on), and only if ORD-3 allows that
        step; otherwise the transaction fails as a concurrent change (the caller reads again and decides): a shipped
        order is cancelled for its returned parcel, never by a cancel that read it paid just before it shipped.
        With ``via``, through those states in one write (each step one ORD-3 allows), the first entered from
        ``seen``."""
        path = (*via, status)
        for before, after in pairwise(path):
            if before not in ORDER_TRANSITIONS[after]:
                raise ValueError(f"an order cannot go from {before} to {after}")
        if seen not in ORDER_TRANSITIONS[path[0]]:
            raise ConcurrentUpdate(f"order {order_id} cannot become {status} from {seen}")
        condition, values = "#status = :seen", {":status": status, ":now": updated_at, ":seen": seen}
        if path[0] == "cancelled":  # once its shipment began, an order is cancelled only for a returned parcel
            condition += " AND (attribute_not_exists(shipment_id) OR #status = :shipped)"
            values[":shipped"] = "shipped"
        tx.update(
            self.table,
            {"pk": f"ORDER#{order_id}", "sk": META},
            "SET #status = :status, updated_at = :now",
            condition=condition,
            names={"#status": "status"},
            values=values,
            on_fail=ConcurrentUpdate(f"order {order_id} cannot become {status} from where it is"),
        )

    def repay(self, tx: Transaction, order_id: str, payment_id: str, replaced: str, updated_at: str) -> None:
        """Into ``tx``: the unpaid order is paid by ``payment_id`` instead of ``replaced`` (a payment attempt that
        could no longer be paid, CHK-7), only while it awaits payment under the one it replaces."""
        tx.update(
            self.table,
            {"pk": f"ORDER#{order_id}", "sk": META},
            "SET payment_id = :payment, updated_at = :now",
            condition="#status = :pending AND payment_id = :replaced",
            names={"#status": "status"},
            values={":payment": payment_id, ":replaced": replaced, ":pending": "pending_payment", ":now": updated_at},
            on_fail=ConcurrentUpdate(f"order {order_id} changed while its payment was replaced; retry"),
        )

    def claim_for_shipment(self, tx: Transaction, order_id: str, shipment_id: str, seen: str) -> None:
        """Into ``tx``: the order's shipment begins, only from ``seen`` (a status it ships from) and while no
        other booking holds it. From then on the order only ships (LOG-2, ORD-3): a cancel racing the booking
        fails its write instead of refunding an order whose parcel the courier may be collecting."""
        tx.update(
            self.table,
            {"pk": f"ORDER#{order_id}", "sk": META},
            "SET shipment_id = :shipment",
            condition="#status = :seen AND attribute_not_exists(shipment_id)",
            names={"#status": "status"},
            values={":shipment": shipment_id, ":seen": seen},
            on_fail=ConcurrentUpdate(f"order {order_id} changed while its shipment began; retry"),
        )

    def release_from_shipment(self, tx: Transaction, order_id: str, shipment_id: str) -> None:
        """Into ``tx``: a booking the courier refused holds the order no longer (it may be cancelled or booked
        again), only if that shipment still holds it."""
        tx.update(
            self.table,
            {"pk": f"ORDER#{order_id}", "sk": META},
            "REMOVE shipment_id",
            condition="shipment_id = :shipment",
            values={":shipment": shipment_id},
            on_fail=ConcurrentUpdate(f"order {order_id} changed while its booking was refused; retry"),
        )

    def get(self, order_id: str) -> Order:
        item = self.table.get({"pk": f"ORDER#{order_id}", "sk": META})
        if item is None:
            raise NotFound(f"no order {order_id}")
        return Order.model_validate({k: v for k, v in item.items() if k not in _KEYS})

    def list(
        self, *, index: str, partition: str, limit: int, cursor: str | None, session_id: str | None, status: str | None
    ) -> Page[Order]:
        result = self.table.query_page(
            f"{index}pk = :pk",
            index=index,
            limit=limit,
            start_key=decode_cursor(cursor),
            values={":pk": partition},
            equal_to={"session_id": session_id, "status": status},
            forward=False,
        )
        orders = [Order.model_validate({k: v for k, v in i.items() if k not in _KEYS}) for i in result.items]
        return Page(orders, encode_cursor(result.last_key))
