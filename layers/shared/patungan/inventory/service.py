"""Purchase orders: raised for a succeeded session (GB-15), received by the warehouse (WH-4); the full
receipt publishes ``warehouse.po_received``, which starts the escrow release (GB-14)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import ConcurrentUpdate, Conflict, NotFound, field_error
from patungan.core.events import new_event
from patungan.core.ids import keyed_id, new_id
from patungan.core.observability import logger
from patungan.core.pagination import Page
from patungan.core.retry import retry_stale
from patungan.inventory.models import PurchaseOrder, Receipt, purchase_order_id_for
from patungan.inventory.repository import PurchaseOrderRepository

if TYPE_CHECKING:
    from patungan.inventory.stock import StockService


class PurchaseOrderService:
    def __init__(
        self,
        repository: PurchaseOrderRepository,
        outbox: Outbox,
        clock: Clock,
        stock: Callable[[], StockService],
        *,
        default_warehouse_id: str | None = None,
    ) -> None:
        self.repository = repository
        self.outbox = outbox
        self.clock = clock
        self.stock = stock  # built when a receipt needs it: raising purchase orders does not
        self.default_warehouse_id = default_warehouse_id

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
            id=purchase_order_id_for(session_id),
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
        own_factory = self._factory_filter(principal)
        po = self.repository.get(po_id)
        if own_factory is not None and po.factory_id != own_factory:
            raise NotFound(f"no purchase order {po_id}")
        return po

    def list(
        self, principal: Principal, *, limit: int, cursor: str | None, session_id: str | None, status: str | None
    ) -> Page[PurchaseOrder]:
        principal.require(Role.FACTORY, Role.WAREHOUSE)
        return self.repository.list(
            factory_id=self._factory_filter(principal), limit=limit, cursor=cursor, session_id=session_id, status=status
        )

    @staticmethod
    def _factory_filter(principal: Principal) -> str | None:
        """None (every purchase order) for admins and the warehouse; the caller's own factory for factory
        staff, whose token must name it (defect 7: a missing claim is a refusal, not "no filter")."""
        if principal.is_admin or principal.has(Role.WAREHOUSE):
            return None
        return principal.factory_scope()

    def receive(
        self,
        principal: Principal,
        po_id: str,
        quantity: int,
        request_key: str | None = None,
        warehouse_id: str | None = None,
    ) -> PurchaseOrder:
        """Record one receipt of ``quantity`` units (GB-14, WH-4). Each receipt is its own item, written with
        the purchase order's conditional update (on the version read), so concurrent receipts add up and
        never over-receive; only the receipt that completes the order publishes ``warehouse.po_received``.
        A request's Idempotency-Key names its receipt: a retry whose first attempt was recorded (and then
        crashed before answering) receives nothing more.

        The units go on hand at ``warehouse_id`` (default: the configured receiving warehouse), reserved for
        the session's orders, as an audited ``po_receipt`` in the same transaction (GB-15). With no warehouse
        named or configured the receipt posts no stock, and says so in the log."""
        principal.require(Role.WAREHOUSE)
        # The order is part of the id: one key reused on another order names another receipt (and stock hold).
        receipt_id = (
            keyed_id("rcp", principal.user_id, po_id, str(quantity), request_key) if request_key else new_id("rcp")
        )
        warehouse_id = warehouse_id or self.default_warehouse_id
        if warehouse_id is None:
            logger.warning("purchase order received with no warehouse: no stock posted", extra={"po_id": po_id})
        return retry_stale(lambda: self._receive_once(principal, po_id, quantity, receipt_id, warehouse_id))

    def _receive_once(
        self, principal: Principal, po_id: str, quantity: int, receipt_id: str, warehouse_id: str | None
    ) -> PurchaseOrder:
        # The receipt before the order: an order read first could predate this receipt's first attempt.
        received_before = self.repository.has_receipt(po_id, receipt_id)
        po = self.repository.get(po_id)
        if received_before:
            return po
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
        receipt = Receipt(
            id=receipt_id, purchase_order_id=po.id, quantity=quantity, received_by=principal.user_id, received_at=now
        )
        tx = Transaction()
        self.repository.replace(tx, po, changed)
        self.repository.add_receipt(tx, receipt)
        if warehouse_id is not None:
            self.stock().add_po_receipt(
                tx,
                warehouse_id=warehouse_id,
                product_id=po.product_id,
                variant_id=po.variant_id,
                quantity=quantity,
                session_id=po.session_id,
                receipt_id=receipt_id,
                actor_id=principal.user_id,
            )
        if complete:
            self._check_receipts_add_up(po, quantity)
            self.outbox.add(tx, new_event("warehouse.po_received", po.id, self._data(changed), self.clock))
        tx.commit()
        return changed

    def _check_receipts_add_up(self, po: PurchaseOrder, quantity: int) -> None:
        """Before escrow is released, the recorded receipts and this one must make up the ordered quantity. A
        receipt recorded since ``po`` was read is not an inconsistency: the caller reads again (retry)."""
        recorded = self.repository.received_total(po.id)
        if recorded != po.received_quantity and self.repository.get(po.id).version != po.version:
            raise ConcurrentUpdate("the purchase order changed while this request ran; retry")
        if recorded + quantity != po.quantity:
            logger.critical(
                "purchase order receipts do not add up: escrow release refused",
                extra={"purchase_order_id": po.id, "recorded": recorded, "receiving": quantity, "ordered": po.quantity},
            )
            raise Conflict(
                f"the receipts of {po.id} add up to {recorded + quantity}, not {po.quantity}: nothing was released",
                code="receipts_inconsistent",
            )

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
