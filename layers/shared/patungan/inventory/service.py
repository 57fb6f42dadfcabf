"""Purchase orders: raised for a succeeded session (GB-15), received by the warehouse (WH-4); the full
receipt publishes ``warehouse.po_received``, which starts the escrow release (GB-14)."""

from __future__ import annotations

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import Conflict, NotFound, field_error
from patungan.core.events import new_event
from patungan.core.pagination import Page
from patungan.inventory.models import PurchaseOrder
from patungan.inventory.repository import PurchaseOrderRepository


class PurchaseOrderService:
    def __init__(self, repository: PurchaseOrderRepository, outbox: Outbox, clock: Clock) -> None:
        self.repository = repository
        self.outbox = outbox
        self.clock = clock

    def raise_for_session(
        self,
        tx: Transaction,
        *,
        session_id: str,
        factory_id: str,
        product_id: str,
        variant_id: str | None,
        product_name: str,
        quantity: int,
    ) -> PurchaseOrder:
        now = to_iso(self.clock.now())
        po = PurchaseOrder(
            id=f"po_{session_id.removeprefix('ses_')}",  # one purchase order per session
            session_id=session_id,
            factory_id=factory_id,
            product_id=product_id,
            variant_id=variant_id,
            product_name=product_name,
            quantity=quantity,
            status="open",
            created_at=now,
            updated_at=now,
        )
        self.repository.add_to(tx, po)
        self.outbox.add(tx, new_event("warehouse.po_raised", po.id, self._data(po), self.clock))
        return po

    def get(self, principal: Principal, po_id: str) -> PurchaseOrder:
        principal.require(Role.FACTORY, Role.WAREHOUSE)
        po = self.repository.get(po_id)
        if principal.has(Role.FACTORY) and not principal.is_admin and not principal.is_factory_staff_of(po.factory_id):
            raise NotFound(f"no purchase order {po_id}")
        return po

    def list(
        self, principal: Principal, *, limit: int, cursor: str | None, session_id: str | None, status: str | None
    ) -> Page[PurchaseOrder]:
        principal.require(Role.FACTORY, Role.WAREHOUSE)
        own_factory = None if principal.is_admin or principal.has(Role.WAREHOUSE) else principal.factory_id
        return self.repository.list(
            factory_id=own_factory, limit=limit, cursor=cursor, session_id=session_id, status=status
        )

    def receive(self, principal: Principal, po_id: str, quantity: int) -> PurchaseOrder:
        principal.require(Role.WAREHOUSE)
        po = self.repository.get(po_id)
        if po.status != "open":
            raise Conflict(f"purchase order {po_id} is already {po.status}", code="illegal_transition")
        if po.received_quantity + quantity > po.quantity:
            raise field_error(
                "received_quantity", f"only {po.quantity - po.received_quantity} more units are due on this order"
            )
        now = to_iso(self.clock.now())
        received_quantity = po.received_quantity + quantity
        complete = received_quantity == po.quantity
        changed = po.model_copy(
            update={
                "received_quantity": received_quantity,
                "status": "received" if complete else "open",
                "received_at": now,
                "received_by": principal.user_id,
                "updated_at": now,
                "version": po.version + 1,
            }
        )
        tx = Transaction()
        self.repository.replace(tx, po, changed)
        if complete:
            self.outbox.add(tx, new_event("warehouse.po_received", po.id, self._data(changed), self.clock))
        tx.commit()
        return changed

    @staticmethod
    def _data(po: PurchaseOrder) -> dict:
        return {
            "purchase_order_id": po.id,
            "session_id": po.session_id,
            "factory_id": po.factory_id,
            "product_id": po.product_id,
            "quantity": po.quantity,
            "status": po.status,
        }
