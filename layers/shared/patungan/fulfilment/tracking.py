"""Tracking (LOG-2, ORD-3, ORD-5, CHK-9): what the courier says about a parcel, applied to its shipment and order.

One path for every courier update, whether its webhook brought it or the poll of quiet shipments read it: the
update is recorded once in an inbox (a duplicate changes nothing), a status only moves forward (``is_forward``)
and an update older than the last one applied is ignored. Each applied status is ONE transaction: the inbox
record, the shipment (status, history), the order's change with its events (outbox) and, for a COD delivery, the
collection in the ledger. What the transaction cannot hold (a returned parcel's stock, many items) follows it,
idempotent, and is finished by any later delivery of an update for that shipment.

The order's side: delivered → ``delivered`` with ``order.fulfilled``, a COD order's cash recorded as collected
(courier receivable → seller payable); returned → the stock back at the warehouse and the order cancelled: a COD
order collected nothing, a paid retail order is refunded (OrderRefunds), a group-buying order (its escrow went to
the factory when its purchase order was received) is refunded to the buyer's wallet and charged back to the
factory's payable. Called off before pickup (cancelled, rejected, courier_not_found): the shipment records it and
staff book the order again (ShipmentService, a new courier order). Disposed: recorded, the order is left for a
person (logged). A delivered order completes once its return window has passed (``order.completed``); a paid
retail order's money then leaves its checkout escrow for the seller's payable.

A courier that books without a waybill (Biteship answers ``waybill_id: null``) names it later: its
``order.waybill_id`` event, a status carrying ``courier_waybill_id`` or the tracking the poll reads sets it once
(``set_waybill``); a different one for a shipment that has a waybill is logged and ignored, never overwritten."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import Conflict, DependencyUnavailable, DomainError
from patungan.core.observability import logger, metrics
from patungan.core.retry import retry_stale
from patungan.fulfilment.models import TERMINAL_STATUSES, Shipment, ShipmentEvent, is_forward
from patungan.fulfilment.repository import ShipmentsRepository
from patungan.inventory.stock_models import StockLine
from patungan.ledger import accounts
from patungan.ledger.models import Movement, MovementType, transfer
from patungan.ledger.repository import Ledger
from patungan.logistics.courier import CourierUnavailable
from patungan.logistics.models import CourierTracking, CourierTrackingEvent, courier_time
from patungan.orders.models import Order
from patungan.orders.service import OrderService
from patungan.payments.models import RefundReason

ATTEMPTS = 5
STATUS_EVENT = "order.status"
WAYBILL_EVENT = "order.waybill_id"
# Biteship's other events: recorded (a duplicate is still a duplicate), nothing to apply.
RECORDED_EVENTS = frozenset({"order.price"})
INBOX_DAYS = 30
AWAITING_COMPLETION = "AWAITING_COMPLETION"
COMPLETION_PAGE = 25
QUIET_PAGE = 50
QUIET_PER_RUN = 500  # a courier answer may take seconds: a run stays inside the function's timeout
RETURN_REFUND_REASON: RefundReason = "parcel_returned"
FUTURE_SKEW = timedelta(minutes=10)


class CourierWebhookBody(BaseModel):
    """Biteship's webhook body (EXTERNAL_APIS.md "Biteship"): what we read of it; the rest is ignored."""

    model_config = ConfigDict(extra="ignore")

    event: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=200, description="the courier's order id")
    status: str | None = Field(None, max_length=64)
    updated_at: str | None = Field(None, max_length=64)
    courier_waybill_id: str | None = Field(None, max_length=200)
    note: str | None = Field(None, max_length=500)

    @field_validator("updated_at")
    @classmethod
    def _courier_time(cls, value: str | None) -> str | None:
        # The tracking answer's spelling (UTC, milliseconds, Z): "older than" is a comparison of strings, and a
        # webhook and the poll name the same step with the same inbox key.
        return None if value is None else courier_time(value)


@dataclass(frozen=True)
class CourierUpdate:
    """One status of one courier order at one moment: its identity is the inbox key."""

    courier_order_id: str
    status: str
    updated_at: str
    note: str | None = None

    @property
    def inbox_key(self) -> str:
        return _digest(STATUS_EVENT, self.courier_order_id, self.status, self.updated_at)


class DuplicateCourierEvent(Conflict):
    code = "duplicate_courier_event"


class Refunds(Protocol):
    def add_refund(self, tx: Transaction, order: Order, reason: RefundReason) -> None: ...


class ReturnedStock(Protocol):
    def receive_returned(self, warehouse_id: str, lines: list[StockLine], reference: str) -> None: ...


class TrackingSource(Protocol):
    def tracking(self, tracking_id: str) -> CourierTracking: ...


@dataclass(frozen=True)
class TrackingTimes:
    return_window: timedelta
    quiet_after: timedelta


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class TrackingRecords:
    """Tracking's own items in the Shipments table: the courier-event inbox (``COURIER_EVENT#<sha256>``, expiring)
    and the delivered orders awaiting completion (``AWAITING_COMPLETION`` / ``<delivered_at>#<order_id>``)."""

    def __init__(self, table: DynamoTable, clock: Clock) -> None:
        self.table = table
        self.clock = clock

    def add_event(self, tx: Transaction, key: str, summary: dict[str, str]) -> None:
        """Once per key: a second delivery fails the transaction as a duplicate, and nothing of it is written."""
        tx.put(
            self.table,
            {
                "pk": f"COURIER_EVENT#{key}",
                "sk": "META",
                **summary,
                "received_at": to_iso(self.clock.now()),
                "expires_at_epoch": int((self.clock.now() + timedelta(days=INBOX_DAYS)).timestamp()),
            },
            condition="attribute_not_exists(pk)",
            on_fail=DuplicateCourierEvent("this courier event was received before"),
        )

    def has_event(self, key: str) -> bool:
        return self.table.get({"pk": f"COURIER_EVENT#{key}", "sk": "META"}) is not None

    def add_awaiting_completion(self, tx: Transaction, order_id: str, shipment_id: str, delivered_at: str) -> None:
        tx.put(
            self.table,
            {
                "pk": AWAITING_COMPLETION,
                "sk": f"{delivered_at}#{order_id}",
                "order_id": order_id,
                "shipment_id": shipment_id,
            },
        )

    def delivered_before(self, moment: str, limit: int, after: str | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` entries delivered before ``moment``, oldest first; with ``after``, those past that key."""
        return self.table.query(
            "pk = :pk AND sk < :before",
            values={":pk": AWAITING_COMPLETION, ":before": moment},
            limit=limit,
            start_key={"pk": AWAITING_COMPLETION, "sk": after} if after else None,
            consistent=True,
        ).items

    def remove_awaiting(self, tx: Transaction, item: dict[str, Any]) -> None:
        tx.delete(
            self.table,
            {"pk": item["pk"], "sk": item["sk"]},
            condition="attribute_exists(pk)",
            on_fail=DuplicateCourierEvent(f"order {item['order_id']} was completed meanwhile"),
        )


class ShipmentTracking:
    def __init__(
        self,
        shipments: ShipmentsRepository,
        records: TrackingRecords,
        orders: OrderService,
        refunds: Refunds,
        ledger: Ledger,
        stock: ReturnedStock,
        courier: TrackingSource,
        clock: Clock,
        times: TrackingTimes,
    ) -> None:
        self.shipments = shipments
        self.records = records
        self.orders = orders
        self.refunds = refunds
        self.ledger = ledger
        self.stock = stock
        self.courier = courier
        self.clock = clock
        self.times = times

    def _now(self) -> str:
        return to_iso(self.clock.now())

    # ------------------------------------------------------------------ the courier's webhook
    def handle_webhook(self, body: CourierWebhookBody) -> str:
        """A verified webhook: ``applied``, ``duplicate``, ``recorded`` (an event with nothing to apply),
        ``stale``/``not_forward`` (older than or behind what the shipment shows) or ``ignored`` (a body without
        what an ``order.status`` needs). An error the courier retries only for what is not here yet or failed here
        (503): a courier order no shipment names yet, a table that did not answer."""
        shipment = self.shipments.find_by_courier_order(body.order_id)
        if shipment is None:
            # Our courier account books only for us: an order we do not know yet is one whose booking has not
            # stored the courier's answer. 503: the courier retries it, and nothing is lost meanwhile.
            logger.warning(
                "courier event for a courier order not known (yet); the courier retries it",
                extra=_summary(body.event, body.order_id, body.status, body.updated_at),
            )
            raise DependencyUnavailable(
                f"courier order {body.order_id} is not known here yet; retry", code="courier_order_unknown"
            )
        if body.event in RECORDED_EVENTS:
            return self._record(body)
        if body.event == WAYBILL_EVENT:
            if body.courier_waybill_id is None:
                logger.warning("waybill event without a waybill; ignored", extra={"courier_order_id": body.order_id})
                return "ignored"
            return self.set_waybill(shipment.id, body.order_id, body.courier_waybill_id)
        if body.courier_waybill_id is not None and shipment.waybill_id is None:
            # A status that names the waybill before its own event arrived (or for one that was lost).
            self.set_waybill(shipment.id, body.order_id, body.courier_waybill_id)
        if body.event != STATUS_EVENT or body.status is None or body.updated_at is None:
            logger.warning(
                "courier event not understood; ignored",
                extra=_summary(body.event, body.order_id, body.status, body.updated_at),
            )
            return "ignored"
        update = CourierUpdate(body.order_id, body.status, body.updated_at, body.note)
        return self.apply(shipment.id, update)

    def _record(self, body: CourierWebhookBody) -> str:
        key = _digest(body.event, body.order_id, body.courier_waybill_id or "", body.updated_at or "")
        tx = Transaction()
        self.records.add_event(tx, key, _summary(body.event, body.order_id, body.status, body.updated_at))
        try:
            tx.commit()
        except DuplicateCourierEvent:
            return "duplicate"
        logger.info("courier event recorded", extra=_summary(body.event, body.order_id, body.status, body.updated_at))
        return "recorded"

    # ------------------------------------------------------------------ the waybill assigned after the booking
    def set_waybill(self, shipment_id: str, courier_order_id: str, waybill_id: str) -> str:
        """The waybill a courier assigned after the booking (LOG-2, LOG-3: its label prints from then on), by any
        source (the ``order.waybill_id`` event, a status naming it, the poll): set once, only on a shipment without
        one, with the inbox record and a history note in one write over the version read. ``applied``,
        ``duplicate`` (this waybill is the shipment's already) or ``ignored`` (the shipment has another one: a
        waybill printed on a label is never overwritten; logged for a person)."""
        try:
            return retry_stale(lambda: self._set_waybill_once(shipment_id, courier_order_id, waybill_id), ATTEMPTS)
        except DuplicateCourierEvent:
            return "duplicate"

    def _set_waybill_once(self, shipment_id: str, courier_order_id: str, waybill_id: str) -> str:
        shipment = self.shipments.get(shipment_id)
        context = {"shipment_id": shipment.id, "courier_order_id": courier_order_id, "waybill_id": waybill_id}
        if shipment.courier_order_id != courier_order_id:  # booked again since: the old courier order's waybill
            logger.warning("waybill for a courier order the shipment no longer has; ignored", extra=context)
            return "ignored"
        if shipment.waybill_id == waybill_id:
            return "duplicate"
        if shipment.waybill_id is not None:
            logger.warning(
                "courier named another waybill for a shipment that has one; ignored",
                extra={**context, "current_waybill_id": shipment.waybill_id},
            )
            metrics.add_metric(name="CourierWaybillConflicts", unit="Count", value=1)
            return "ignored"
        now = self._now()
        tx = Transaction()
        summary = {"event": WAYBILL_EVENT, "courier_order_id": courier_order_id, "waybill_id": waybill_id}
        self.records.add_event(tx, _digest(WAYBILL_EVENT, courier_order_id, waybill_id), summary)
        self.shipments.change(
            tx,
            shipment,
            waybill_id=waybill_id,
            history=[*shipment.history, ShipmentEvent(status=shipment.status, note=f"waybill {waybill_id}", at=now)],
            updated_at=now,
        )
        tx.commit()
        logger.info("waybill assigned by the courier", extra=context)
        return "applied"

    # ------------------------------------------------------------------ one update, by any source
    def apply(self, shipment_id: str, update: CourierUpdate) -> str:
        """The update applied once, forward only, in one transaction with its effects on the order; then what
        follows a returned parcel (its stock) is made sure of, also when this update was a duplicate."""
        try:
            outcome = retry_stale(lambda: self._apply_once(shipment_id, update), ATTEMPTS)
        except DuplicateCourierEvent:
            outcome = "duplicate"
        shipment = self.shipments.get(shipment_id)
        if shipment.status == "returned" and shipment.stock_committed:  # else the booking's commit restocks it
            restock_returned(self.stock, self.orders.repository.get(shipment.order_id), shipment)
        return outcome

    def _apply_once(self, shipment_id: str, update: CourierUpdate) -> str:
        if self.records.has_event(update.inbox_key):  # told apart for the log; the put below is the guard
            return "duplicate"
        shipment = self.shipments.get(shipment_id)
        context = {"shipment_id": shipment.id, "status": update.status, "updated_at": update.updated_at}
        if shipment.courier_updated_at is not None and update.updated_at < shipment.courier_updated_at:
            logger.info("stale courier update ignored", extra={**context, "last": shipment.courier_updated_at})
            return "stale"
        if not is_forward(shipment.status, update.status):
            logger.info("courier update not forward; ignored", extra={**context, "current": shipment.status})
            return "not_forward"
        tx = Transaction()
        self.records.add_event(
            tx, update.inbox_key, _summary(STATUS_EVENT, update.courier_order_id, update.status, update.updated_at)
        )
        now = self._now()
        # A courier clock ahead of ours (or a zone misread) must not make every later update look stale.
        latest = courier_time(to_iso(self.clock.now() + FUTURE_SKEW))
        moved = self.shipments.change(
            tx,
            shipment,
            status=update.status,
            courier_updated_at=min(update.updated_at, latest),
            history=[*shipment.history, ShipmentEvent(status=update.status, note=update.note, at=update.updated_at)],
            updated_at=now,
        )
        self._order_follows(tx, moved, now)
        tx.commit()
        return "applied"

    def _order_follows(self, tx: Transaction, shipment: Shipment, now: str) -> None:
        """Into ``tx``: what the shipment's new status means for its order (see the module's docstring)."""
        status = shipment.status
        if status not in TERMINAL_STATUSES:
            return  # still on its way: the order is shipped since its booking
        order = self.orders.repository.get(shipment.order_id)
        context = {"shipment_id": shipment.id, "order_id": order.id, "status": status, "order_status": order.status}
        if status in ("delivered", "returned") and order.status != "shipped":
            # Recorded on the shipment; the order moved on some other way (an admin): a person decides.
            logger.critical("courier outcome for an order that is not shipped; order left as it is", extra=context)
            metrics.add_metric(name="CourierOutcomeUnapplied", unit="Count", value=1)
            return
        if status == "delivered":
            self._delivered(tx, shipment, order, now)
        elif status == "returned":
            self._returned(tx, order)
        else:
            logger.warning(
                "parcel not delivered by the courier; the order needs staff (a called-off pickup is booked again)",
                extra=context,
            )
            metrics.add_metric(name="ShipmentsCalledOff", unit="Count", value=1)

    def _delivered(self, tx: Transaction, shipment: Shipment, order: Order, now: str) -> None:
        self.orders.repository.move(tx, order.id, "delivered", now, seen=order.status)
        self.orders.add_event(tx, "order.fulfilled", order.model_copy(update={"status": "delivered"}))
        self.records.add_awaiting_completion(tx, order.id, shipment.id, now)
        if shipment.cod_amount:  # CHK-9: the courier holds the buyer's cash from now on, owed to the seller
            self._post(
                tx,
                "cod_collection",
                order,
                debit=accounts.courier_receivable(shipment.courier),
                credit=accounts.seller_payable(_seller(order)),
                amount=shipment.cod_amount,
                shipment_id=shipment.id,
            )

    def _returned(self, tx: Transaction, order: Order) -> None:
        if order.is_cod:
            # Nothing was collected, nothing goes back; the event says why, so the buyer hears of it (NOT-1).
            self.orders.move_to(tx, order, "cancelled", reason=RETURN_REFUND_REASON)
        elif order.checkout_id is not None:
            self.refunds.add_refund(tx, order, RETURN_REFUND_REASON)
        else:
            self._refund_group_buy(tx, order)

    def _refund_group_buy(self, tx: Transaction, order: Order) -> None:
        """A group-buying order's escrow was released to its factory when the purchase order was received
        (GB-14): the buyer's money comes back to their wallet at once, charged back to the factory's payable."""
        self.orders.move_to(
            tx, order, "refunded", via=("cancelled",), reason=RETURN_REFUND_REASON, refunded_to="wallet"
        )
        self._post(
            tx,
            "refund",
            order,
            debit=accounts.factory_payable(order.factory_id or ""),
            credit=accounts.buyer_wallet(order.user_id),
            amount=order.total,
            session_id=order.session_id or "",
            reason="returned parcel",
        )
        logger.warning("returned group-buying parcel refunded, charged back to the factory", extra={"order": order.id})

    def _post(
        self,
        tx: Transaction,
        kind: MovementType,
        order: Order,
        *,
        debit: str,
        credit: str,
        amount: int,
        **reference: str,
    ) -> None:
        """Into ``tx``: the order's one movement of ``kind`` (its id says so: never posted twice)."""
        self.ledger.add_to(
            tx,
            Movement(
                id=f"{kind}:{order.id}",
                type=kind,
                entries=transfer(debit=debit, credit=credit, amount=amount),
                currency=order.currency,
                reference={"order_id": order.id, **reference},
                created_at=self._now(),
            ),
        )

    # ------------------------------------------------------------------ completion after the return window
    def complete_delivered(self) -> dict[str, int]:
        """Orders delivered longer than the return window ago become ``completed`` (``order.completed``), each
        in one transaction with its queue entry's removal and, for a paid retail order, its money from the
        checkout escrow to the seller's payable (a COD order's is there since delivery). Page after page; one
        that cannot complete is logged CRITICAL and left queued (the next run tries it again), never blocking the
        others."""
        cutoff = to_iso(self.clock.now() - self.times.return_window)
        completed = failed = 0
        page = self.records.delivered_before(cutoff, COMPLETION_PAGE)
        while page:
            for item in page:
                try:
                    completed += retry_stale(lambda item=item: self._complete(item), ATTEMPTS)
                except DomainError as exc:
                    failed += 1
                    logger.critical(
                        "delivered order not completed", extra={"order_id": item["order_id"], "error": str(exc)}
                    )
                    metrics.add_metric(name="OrdersNotCompleted", unit="Count", value=1)
            page = self.records.delivered_before(cutoff, COMPLETION_PAGE, after=page[-1]["sk"])
        return {"completed": completed, "failed": failed}

    def _complete(self, item: dict[str, Any]) -> int:
        order = self.orders.repository.get(item["order_id"])
        tx = Transaction()
        self.records.remove_awaiting(tx, item)
        if order.status != "delivered":  # returned after all is impossible; an admin moved it: nothing to do
            logger.warning("order awaiting completion is not delivered", extra={"order_id": order.id})
            done = 0
        else:
            self.orders.move_to(tx, order, "completed")
            if order.checkout_id is not None and not order.is_cod:
                self._post(
                    tx,
                    "order_settlement",
                    order,
                    debit=accounts.checkout_escrow(order.checkout_id),
                    credit=accounts.seller_payable(_seller(order)),
                    amount=order.total,
                    checkout_id=order.checkout_id,
                )
            done = 1
        try:
            tx.commit()
        except DuplicateCourierEvent:
            return 0  # another run completed it
        return done

    # ------------------------------------------------------------------ the poll of quiet shipments
    def poll_quiet(self) -> dict[str, int]:
        """In-transit shipments the courier has said nothing about for ``quiet_after``: their tracking read and
        every newer status applied through ``apply`` (inbox, forward only), quietest first, page after page (up to
        ``QUIET_PER_RUN``). A courier that cannot answer for one shipment is logged and the next is polled. A
        shipment whose applied status is still older than the cutoff comes round again further on: read once."""
        before = to_iso(self.clock.now() - self.times.quiet_after)
        polled = applied = failed = 0
        seen: set[str] = set()
        page = self.shipments.in_transit_quiet_since(before, QUIET_PAGE)
        while page and polled < QUIET_PER_RUN:
            for shipment in page:
                if shipment.id in seen:
                    continue
                seen.add(shipment.id)
                polled += 1
                try:
                    tracked = self.courier.tracking(shipment.courier_order_id or shipment.tracking_id or "")
                except CourierUnavailable as exc:
                    failed += 1
                    logger.warning(
                        "tracking unreadable for a quiet shipment",
                        extra={"shipment_id": shipment.id, "error": str(exc)},
                    )
                    continue
                if tracked.waybill_id is not None and shipment.waybill_id is None and shipment.courier_order_id:
                    self.set_waybill(shipment.id, shipment.courier_order_id, tracked.waybill_id)
                applied += sum(
                    self.apply(shipment.id, update) == "applied" for update in _newer(shipment, tracked.history)
                )
            page = self.shipments.in_transit_quiet_since(before, QUIET_PAGE, after=page[-1])
        return {"polled": polled, "applied": applied, "failed": failed}


def restock_returned(stock: ReturnedStock, order: Order, shipment: Shipment) -> None:
    """A returned parcel's units on hand again, once (by shipment), only once they left the books: a parcel whose
    stock the booking had not committed yet is restocked by that commit (ShipmentService), never before it."""
    lines = [StockLine(line.product_id, line.variant_id, line.quantity) for line in order.lines]
    stock.receive_returned(shipment.warehouse_id, lines, shipment.id)


def _seller(order: Order) -> str:
    if not order.seller_id:
        raise Conflict(f"order {order.id} has no seller to pay", code="illegal_transition")
    return order.seller_id


def _summary(event: str, courier_order_id: str, status: str | None, updated_at: str | None) -> dict[str, str]:
    fields = {"event": event, "courier_order_id": courier_order_id, "status": status, "updated_at": updated_at}
    return {name: value for name, value in fields.items() if value is not None}


def _newer(shipment: Shipment, events: list[CourierTrackingEvent]) -> list[CourierUpdate]:
    """The tracking's steps not older than the last the shipment applied, as updates of its courier order."""
    last = shipment.courier_updated_at or ""
    return [
        CourierUpdate(shipment.courier_order_id or "", str(event.status), event.updated_at, event.note)
        for event in events
        if event.updated_at >= last
    ]
