"""Shipments (LOG-2, GB-15, CHK-9): booking the courier for an order, and what buyers and staff see of it.

A booking is four steps, each safe to run again after a crash, so a retried POST finishes what an earlier one
began and never books twice:
1. the shipment is written ``booking`` (one per order: its id is derived from the order's);
2. the courier books the pickup under ``reference_id`` = the shipment id (it answers the same order for the same
   reference: a booking retried after a timeout is one booking);
3. ONE transaction: the shipment booked (waybill, courier ids, status) and the order ``shipped`` with its
   ``order.shipped`` event; a courier that assigns its waybill later (Biteship answers ``waybill_id: null``) ships
   the order all the same, its waybill set by tracking when the courier announces it (no label until then);
4. the order's stock leaves the books, audited ``commit``: a retail order's checkout reservation, or a group-buying
   order's units drawn from its session's purchase-order holds (once per shipment).
The courier down stops at step 2: 503 ``courier_unavailable``, the shipment stays ``booking`` and nothing else
changed. Step 1 holds the order (``Order.shipment_id``): from then on a buyer's cancel fails in the database, so a
cancel and a booking never both win. A booking the courier refuses (422 ``courier_refused``) frees the order; it, or
a pickup the courier called off later, is booked again by the next POST under a new courier reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from patungan.accounts.models import PostalAddress
from patungan.accounts.repository import AddressRepository
from patungan.adapters.dynamodb import Transaction
from patungan.catalog.models import Product
from patungan.checkout.checkouts import CheckoutRepository
from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import (
    ConcurrentUpdate,
    Conflict,
    DependencyUnavailable,
    NotFound,
    ValidationFailed,
    field_error,
)
from patungan.core.observability import logger
from patungan.core.retry import retry_stale
from patungan.fulfilment.label import LabelData, LabelParty, render_label
from patungan.fulfilment.models import (
    TERMINAL_STATUSES,
    Shipment,
    ShipmentEvent,
    Tracking,
    TrackingEntry,
    label_path,
    shipment_id_for,
)
from patungan.fulfilment.repository import ShipmentsRepository
from patungan.fulfilment.tracking import restock_returned
from patungan.inventory.models import purchase_order_id_for
from patungan.inventory.repository import PurchaseOrderRepository
from patungan.inventory.stock import StockService, po_receipt_hold_id
from patungan.inventory.stock_models import StockKey
from patungan.inventory.warehouses import WarehouseRepository
from patungan.logistics.courier import CourierUnavailable
from patungan.logistics.models import CourierBooked, CourierBooking, ParcelItem, parcel_weight_grams
from patungan.orders.models import Order
from patungan.orders.repository import ORDER_TRANSITIONS
from patungan.orders.service import OrderService

AWAITING_SHIPMENT = "awaiting_shipment"
SHIPPABLE = ORDER_TRANSITIONS["shipped"]  # a paid order, or a COD order (processing)


class Courier(Protocol):
    def book(self, booking: CourierBooking) -> CourierBooked: ...


class ShipmentService:
    def __init__(
        self,
        shipments: ShipmentsRepository,
        orders: OrderService,
        checkouts: CheckoutRepository,
        stock: StockService,
        purchase_orders: PurchaseOrderRepository,
        addresses: AddressRepository,
        warehouses: WarehouseRepository,
        product_of: Callable[[str], Product],
        courier: Courier,
        clock: Clock,
        *,
        groupbuy_shipping_method_id: str,
    ) -> None:
        self.shipments = shipments
        self.orders = orders
        self.checkouts = checkouts
        self.stock = stock
        self.purchase_orders = purchase_orders
        self.addresses = addresses
        self.warehouses = warehouses
        self.product_of = product_of
        self.courier = courier
        self.clock = clock
        self.groupbuy_shipping_method_id = groupbuy_shipping_method_id

    # ------------------------------------------------------------------ booking (LOG-2, GB-15)
    def book(self, principal: Principal, order_id: str, shipping_method_id: str | None = None) -> Shipment:
        """Book the courier for an order and ship it (the steps above); a retry returns the same shipment."""
        principal.require(Role.WAREHOUSE, Role.SELLER)
        _require_shipper_of(principal, self.orders.repository.get(order_id).seller_id, f"no order {order_id}")
        return retry_stale(lambda: self._book_once(principal, order_id, shipping_method_id))

    def _book_once(self, principal: Principal, order_id: str, shipping_method_id: str | None) -> Shipment:
        # The shipment before the order: an order read first could predate the shipment's booked step.
        shipment = self.shipments.find_by_order(order_id)
        order = self.orders.repository.get(order_id)
        if shipment is None or shipment.is_called_off:
            shipment = self._start(order, shipping_method_id, previous=shipment)
        if not shipment.is_booked:
            shipment = self._book_with_courier(order, shipment)
        if not shipment.stock_committed:
            shipment = self._commit_stock(principal, order, shipment)
        if shipment.status == "returned":  # came back before its stock left: tracking leaves its restock to this
            restock_returned(self.stock, order, shipment)
        return shipment

    def _start(self, order: Order, shipping_method_id: str | None, previous: Shipment | None) -> Shipment:
        """Step 1: the shipment, ``booking``, from where the order ships to where it goes, and the order held for it
        in the same write: from then on a cancel fails instead of racing the courier (ORD-3). Over a shipment the
        courier called off (``previous``), a new attempt: a refused booking's order ships as a new one; a shipped
        order whose pickup the courier gave up keeps its route (its units may have left that warehouse's books)."""
        if previous is not None and order.status == "shipped":
            warehouse_id, address = previous.warehouse_id, _postal(previous.address)
            method = (
                self._retail_route(order, shipping_method_id)[2]
                if order.session_id is None
                else shipping_method_id or f"{previous.courier}:{previous.service}"
            )
        elif order.session_id is None:
            _require_shippable(order)
            warehouse_id, address, method = self._retail_route(order, shipping_method_id)
        else:
            _require_shippable(order)
            warehouse_id, address, method = self._groupbuy_route(order, order.session_id, shipping_method_id)
        courier, service = method.split(":")
        items = self._parcel(order)
        now = to_iso(self.clock.now())
        shipment_id = shipment_id_for(order.id)
        shipment = Shipment(
            id=shipment_id,
            order_id=order.id,
            user_id=order.user_id,
            seller_id=order.seller_id,
            factory_id=order.factory_id,
            warehouse_id=warehouse_id,
            courier=courier,
            service=service,
            status="booking",
            label_url=label_path(shipment_id),
            cod_amount=order.total if order.is_cod else None,
            address=address.model_dump(),
            weight_grams=parcel_weight_grams(items),
            items_count=sum(item.quantity for item in items),
            history=[
                *(previous.history if previous else []),
                ShipmentEvent(status="booking", note=f"booking {courier} {service}", at=now),
            ],
            booking_attempt=previous.booking_attempt + 1 if previous else 0,
            stock_committed=previous.stock_committed if previous else False,
            created_at=previous.created_at if previous else now,
            updated_at=now,
        )
        tx = Transaction()
        if previous is None:
            self.shipments.add_to(tx, shipment)
        else:
            shipment = self.shipments.change(tx, previous, **shipment.model_dump(exclude={"version"}))
        if order.status != "shipped":  # a shipped order is held already and no longer cancelled by its buyer
            self.orders.repository.claim_for_shipment(tx, order.id, shipment_id, seen=order.status)
        tx.commit()
        return shipment

    def _retail_route(self, order: Order, shipping_method_id: str | None) -> tuple[str, PostalAddress, str]:
        """A retail order ships as it was bought: from its warehouse (CHK-10), to its address, by its method."""
        if shipping_method_id not in (None, order.shipping_method_id):
            raise field_error("shipping_method_id", f"order {order.id} was bought with {order.shipping_method_id}")
        if not (order.warehouse_id and order.address and order.shipping_method_id):
            raise Conflict(f"order {order.id} names no warehouse, address or shipping method", code="not_shippable")
        return order.warehouse_id, _postal(order.address), order.shipping_method_id

    def _groupbuy_route(
        self, order: Order, session_id: str, shipping_method_id: str | None
    ) -> tuple[str, PostalAddress, str]:
        """A group-buying order ships once its session's purchase order is received (GB-15), from the warehouse
        holding the session's units, to its buyer's default address, by the method asked or the platform's."""
        [line] = order.lines  # a session sells one product
        hold_ids = self._session_holds(session_id)
        warehouse_id = self.stock.warehouse_holding(hold_ids, line.product_id, line.variant_id, line.quantity)
        if warehouse_id is None:
            raise Conflict(
                f"no warehouse holds the {line.quantity} units of session {session_id} this order needs",
                code="insufficient_stock",
            )
        book = self.addresses.book(order.user_id)
        if book.default_address_id is None:
            raise Conflict(f"the buyer of order {order.id} has no default address", code="address_required")
        address = self.addresses.get(order.user_id, book.default_address_id)
        return warehouse_id, _postal(address.model_dump()), shipping_method_id or self.groupbuy_shipping_method_id

    def _session_holds(self, session_id: str) -> list[str]:
        """The holds the session's received units sit in; 409 ``stock_not_received`` until its purchase order is
        received in full."""
        po_id = purchase_order_id_for(session_id)
        try:
            po = self.purchase_orders.get(po_id)
        except NotFound:
            po = None
        if po is None or po.status != "received":
            raise Conflict(
                f"the purchase order of session {session_id} is not received yet: its orders ship after",
                code="stock_not_received",
            )
        return [po_receipt_hold_id(receipt_id) for receipt_id in self.purchase_orders.receipt_ids(po_id)]

    def _parcel(self, order: Order) -> list[ParcelItem]:
        return [
            ParcelItem(line.name, line.unit_price, self.product_of(line.product_id).weight_grams, line.quantity)
            for line in order.lines
        ]

    def _book_with_courier(self, order: Order, shipment: Shipment) -> Shipment:
        """Steps 2 and 3: the courier's pickup under the shipment's id, then the shipment booked and the order
        shipped in one transaction (a shipped order booked again after the courier gave its pickup up: only the
        shipment)."""
        rebooking = order.status == "shipped" and shipment.booking_attempt > 0
        if order.status not in SHIPPABLE and not rebooking:
            if self.shipments.get(shipment.id).is_booked:  # another request booked it between our two reads
                raise ConcurrentUpdate(f"shipment {shipment.id} was booked while this request ran; retry")
            # Cancelled after step 1: an earlier attempt may have booked the courier under this reference.
            logger.error(
                "shipment not booked: its order is no longer shippable",
                extra={"shipment_id": shipment.id, "order_id": order.id, "order_status": order.status},
            )
            _require_shippable(order)
        warehouse = self.warehouses.get(shipment.warehouse_id)
        booking = CourierBooking(
            reference_id=shipment.courier_reference,
            courier=shipment.courier,
            service=shipment.service,
            origin=warehouse.address,
            destination=_postal(shipment.address),
            items=self._parcel(order),
            cod_amount=shipment.cod_amount,
            note=f"order {order.id}",
        )
        try:
            booked = self.courier.book(booking)
        except CourierUnavailable as exc:
            if exc.refused:
                self._refused(order, shipment, exc.reason)
                raise ValidationFailed(
                    f"the courier refused the booking: {exc.reason}", code="courier_refused"
                ) from exc
            raise DependencyUnavailable(
                "the courier could not be reached: nothing was shipped; retry", code="courier_unavailable"
            ) from exc
        status = str(booked.status)
        if status in TERMINAL_STATUSES:
            self._refused(order, shipment, f"answered {status}")
            raise ValidationFailed(f"the courier answered the booking {status}", code="courier_refused")
        now = to_iso(self.clock.now())
        tx = Transaction()
        booked_shipment = self.shipments.change(
            tx,
            shipment,
            status=status,
            waybill_id=booked.waybill_id,
            courier_order_id=booked.courier_order_id,
            tracking_id=booked.tracking_id,
            history=[*shipment.history, ShipmentEvent(status=status, note=_waybill_note(booked.waybill_id), at=now)],
            updated_at=now,
        )
        if not rebooking:
            self.orders.move_to(
                tx, order, "shipped", courier=booked_shipment.courier, waybill_id=booked_shipment.waybill_id
            )
        tx.commit()
        return booked_shipment

    def _refused(self, order: Order, shipment: Shipment, reason: str) -> None:
        """The courier refused the booking: the shipment says so and (unless shipped already) holds its order no
        longer, in one write, so staff may book it again (another method: a new courier reference) or its buyer
        cancel it (LOG-2, ORD-3). A request that booked it meanwhile wins (its version): this one reads again."""
        logger.warning("courier refused a booking", extra={"shipment_id": shipment.id, "reason": reason})
        tx = Transaction()
        self.shipments.change(
            tx,
            shipment,
            status="rejected",
            history=[
                *shipment.history,
                ShipmentEvent(status="rejected", note=reason[:500], at=to_iso(self.clock.now())),
            ],
            updated_at=to_iso(self.clock.now()),
        )
        if order.status != "shipped":
            self.orders.repository.release_from_shipment(tx, shipment.order_id, shipment.id)
        tx.commit()

    def _commit_stock(self, principal: Principal, order: Order, shipment: Shipment) -> Shipment:
        """Step 4: the order's units leave the warehouse's books (audited ``commit``), then the shipment says so."""
        if order.session_id is None:
            checkout = self.checkouts.get(order.checkout_id or "")
            reservation_id = checkout.reservation_ids[checkout.order_ids.index(order.id)]
            self.stock.commit(reservation_id, actor_id=principal.user_id)
        else:
            [line] = order.lines
            self.stock.draw_held(
                self._session_holds(order.session_id),
                StockKey(shipment.warehouse_id, line.product_id, line.variant_id),
                line.quantity,
                reference=shipment.id,
                actor_id=principal.user_id,
            )
        tx = Transaction()
        committed = self.shipments.change(tx, shipment, stock_committed=True, updated_at=to_iso(self.clock.now()))
        tx.commit()
        return committed

    # ------------------------------------------------------------------ what buyers and staff see
    def get(self, principal: Principal, shipment_id: str) -> Shipment:
        """The order's buyer, staff of its seller or factory, the warehouse, an admin; anyone else: 404."""
        shipment = self.shipments.get(shipment_id)
        if not _may_see(principal, shipment.user_id, shipment.seller_id, shipment.factory_id):
            raise NotFound(f"no shipment {shipment_id}")
        return shipment

    def tracking(self, principal: Principal, order_id: str) -> Tracking:
        """The order's parcel as its courier reports it; with none, ``awaiting_shipment`` while the order can still
        ship, else the order's status (``cancelled``, ``expired``, ...): no parcel is coming."""
        order = self.orders.repository.get(order_id)
        if not _may_see(principal, order.user_id, order.seller_id, order.factory_id):
            raise NotFound(f"no order {order_id}")
        shipment = self.shipments.find_by_order(order_id)
        if shipment is None:
            return Tracking(status=AWAITING_SHIPMENT if order.status in SHIPPABLE else order.status)
        return Tracking(
            status=shipment.status,
            waybill_id=shipment.waybill_id,
            courier=shipment.courier,
            history=[TrackingEntry(**event.model_dump()) for event in shipment.history],
        )

    def label(self, principal: Principal, shipment_id: str) -> bytes:
        """The printable label (LOG-3) for the warehouse, the seller's staff (own) or an admin: from the warehouse's
        address to the address the shipment was booked to."""
        principal.require(Role.WAREHOUSE, Role.SELLER)
        shipment = self.shipments.get(shipment_id)
        _require_shipper_of(principal, shipment.seller_id, f"no shipment {shipment_id}")
        if shipment.waybill_id is None:  # not booked yet, or booked with a courier that assigns its waybill later
            raise Conflict(
                f"shipment {shipment_id} has no waybill yet: its label prints once the courier assigns one",
                code="shipment_not_booked",
            )
        sender = self.warehouses.get(shipment.warehouse_id)
        return render_label(
            LabelData(
                shipment_id=shipment.id,
                order_id=shipment.order_id,
                courier=shipment.courier,
                service=shipment.service,
                waybill_id=shipment.waybill_id,
                sender=_party(sender.address),
                recipient=_party(_postal(shipment.address)),
                cod_amount=shipment.cod_amount,
                weight_grams=shipment.weight_grams,
                items_count=shipment.items_count,
            )
        )


def _waybill_note(waybill_id: str | None) -> str:
    return f"waybill {waybill_id}" if waybill_id else "booked; the courier assigns the waybill later"


def _require_shippable(order: Order) -> None:
    if order.status not in SHIPPABLE:
        raise Conflict(
            f"order {order.id} is {order.status}: only a paid order, or a cash-on-delivery order, ships",
            code="illegal_transition",
        )


def _require_shipper_of(principal: Principal, seller_id: str | None, not_found: str) -> None:
    """The warehouse and admins ship every order; seller staff only their seller's (another's is 404, as orders
    are; a seller token naming no seller is 403)."""
    if principal.is_admin or principal.has(Role.WAREHOUSE):
        return
    if principal.seller_scope() != seller_id:
        raise NotFound(not_found)


def _may_see(principal: Principal, buyer_id: str, seller_id: str | None, factory_id: str | None) -> bool:
    return (
        principal.is_admin
        or principal.has(Role.WAREHOUSE)
        or principal.user_id == buyer_id
        or principal.is_seller_staff_of(seller_id)
        or principal.is_factory_staff_of(factory_id)
    )


def _postal(address: dict) -> PostalAddress:
    """A postal address out of an address snapshot (which may carry more: an id, a label)."""
    return PostalAddress.model_validate({k: v for k, v in address.items() if k in PostalAddress.model_fields})


def _party(address: PostalAddress) -> LabelParty:
    return LabelParty(
        name=address.recipient_name,
        phone=address.phone,
        address_lines=tuple(line for line in (address.line1, address.line2) if line),
        city=address.city,
        province=address.province,
        postal_code=address.postal_code,
    )
