"""Order use cases: who sees which orders (ORD-6), and the order a group-buy participant gets (ORD-4)."""

from __future__ import annotations

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import NotFound
from patungan.core.events import new_event
from patungan.core.pagination import Page
from patungan.orders.models import Order
from patungan.orders.repository import OrdersRepository, owner_partition


class OrderService:
    def __init__(self, repository: OrdersRepository, outbox: Outbox, clock: Clock) -> None:
        self.repository = repository
        self.outbox = outbox
        self.clock = clock

    def add_to(self, tx: Transaction, order: Order, **event_extra: object) -> None:
        self.repository.add_to(tx, order)
        data = {
            "order_id": order.id,
            "user_id": order.user_id,
            "session_id": order.session_id,
            "factory_id": order.factory_id,
            "total": order.total,
            "currency": order.currency,
            "payment_id": order.payment_id,
            "product_name": order.lines[0].name if order.lines else None,
            **event_extra,
        }
        self.outbox.add(tx, new_event("order.created", order.id, data, self.clock))

    def move_to(
        self, tx: Transaction, order: Order, status: str, via: tuple[str, ...] = (), **event_extra: object
    ) -> Order:
        """A conditional lifecycle step (ORD-3) and its ``order.<status>`` event (ORD-5), in ``tx``; with ``via``,
        through those states in the same write, each with its event (cancelled then refunded at once). Only from
        ``order.status``, the status the caller read and decided on. ``event_extra`` joins the last event's data."""
        now = to_iso(self.clock.now())
        self.repository.move(tx, order.id, status, now, via, seen=order.status)
        for step in via:
            self.add_event(tx, f"order.{step}", order.model_copy(update={"status": step, "updated_at": now}))
        moved = order.model_copy(update={"status": status, "updated_at": now})
        self.add_event(tx, f"order.{status}", moved, **event_extra)
        return moved

    def add_event(self, tx: Transaction, type_: str, order: Order, **extra: object) -> None:
        """An order's lifecycle event (ORD-5), through the outbox in ``tx``."""
        data = {
            "order_id": order.id,
            "user_id": order.user_id,
            "checkout_id": order.checkout_id,
            "total": order.total,
            **extra,
        }
        self.outbox.add(tx, new_event(type_, order.id, data, self.clock))

    def get(self, principal: Principal, order_id: str) -> Order:
        staff_partition = self._staff_partition(principal)
        order = self.repository.get(order_id)
        if not (principal.is_admin or order.user_id == principal.user_id or staff_partition == owner_partition(order)):
            raise NotFound(f"no order {order_id}")
        return order

    def list(
        self, principal: Principal, *, limit: int, cursor: str | None, session_id: str | None, status: str | None
    ) -> Page[Order]:
        staff_partition = self._staff_partition(principal)
        if principal.is_admin:
            index, partition = "gsi3", "ORDERS"
        elif staff_partition is not None:
            index, partition = "gsi2", staff_partition
        else:
            index, partition = "gsi1", f"USER#{principal.user_id}"
        return self.repository.list(
            index=index, partition=partition, limit=limit, cursor=cursor, session_id=session_id, status=status
        )

    @staticmethod
    def _staff_partition(principal: Principal) -> str | None:
        """The orders a factory's or seller's staff see (ORD-6), from the id their token names; a staff token
        without it is refused (403), never read as another scope (issue 6 defect 7). None for others."""
        if principal.is_admin:
            return None
        if principal.has(Role.FACTORY):
            return f"FACTORY#{principal.factory_scope()}"
        if principal.has(Role.SELLER):
            return f"SELLER#{principal.seller_scope()}"
        return None
