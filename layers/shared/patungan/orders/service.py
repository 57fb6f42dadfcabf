"""Order use cases: who sees which orders (ORD-6), and the order a group-buy participant gets (ORD-4)."""

from __future__ import annotations

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock
from patungan.core.errors import NotFound
from patungan.core.events import new_event
from patungan.core.pagination import Page
from patungan.orders.models import Order
from patungan.orders.repository import OrdersRepository


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

    def get(self, principal: Principal, order_id: str) -> Order:
        order = self.repository.get(order_id)
        if not self._may_see(principal, order):
            raise NotFound(f"no order {order_id}")
        return order

    def list(
        self, principal: Principal, *, limit: int, cursor: str | None, session_id: str | None, status: str | None
    ) -> Page[Order]:
        if principal.is_admin:
            index, partition = "gsi3", "ORDERS"
        elif principal.has(Role.FACTORY) and principal.factory_id:
            index, partition = "gsi2", f"FACTORY#{principal.factory_id}"
        elif principal.has(Role.SELLER) and principal.seller_id:
            index, partition = "gsi2", f"SELLER#{principal.seller_id}"
        else:
            index, partition = "gsi1", f"USER#{principal.user_id}"
        return self.repository.list(
            index=index, partition=partition, limit=limit, cursor=cursor, session_id=session_id, status=status
        )

    @staticmethod
    def _may_see(principal: Principal, order: Order) -> bool:
        return (
            principal.is_admin
            or order.user_id == principal.user_id
            or principal.is_factory_staff_of(order.factory_id)
            or principal.is_seller_staff_of(order.seller_id)
        )
