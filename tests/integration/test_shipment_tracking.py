"""Courier tracking (issue 11; LOG-2, ORD-3, ORD-5, CHK-9, NOT-1): the CourierWebhook Function URL as Lambda runs
it, on moto, with the real orders, checkout, ledger and stock. A retail order is paid (wallet) or COD, its stock
committed and a shipment booked through the repositories (booking is another helper's and tested there); then the
courier speaks, by webhook or through the poll of quiet shipments, and the completion schedule runs on a clock
the test moves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from patungan import composition
from patungan.adapters.dynamodb import Transaction
from patungan.checkout.cart import CartItemInput, Shopper
from patungan.checkout.confirm import ConfirmRequest
from patungan.core.auth import Principal, Role
from patungan.core.clock import FixedClock, to_iso
from patungan.core.errors import ConcurrentUpdate
from patungan.fulfilment import tracking as tracking_module
from patungan.fulfilment.models import Shipment, label_path, shipment_id_for
from patungan.inventory.stock_models import StockKey
from patungan.ledger.models import AdjustmentInput
from patungan.ledger.repository import ledger
from patungan.ledger.service import ledger_service
from patungan.logistics.courier import CourierUnavailable
from patungan.logistics.models import CourierStatus, CourierTracking, CourierTrackingEvent, courier_time
from patungan.notifications.messages import OrderRefunded
from tests.support.checkout import CatalogPricing, Started, Tokens, confirm_service
from tests.support.fulfilment import (
    WAREHOUSE,
    WEBHOOK_TOKEN,
    FakeCourier,
    accept_webhook_token,
    book,
    courier_webhook,
    give_default_address,
    groupbuy_order,
    label,
    raise_purchase_order,
    receive_purchase_order,
    tracking,
    use_courier,
    waybill_event,
)
from tests.support.label import scanned
from tests.support.lambdas import ApiResponse, call_api, claims, invoke, load_event
from tests.support.stock import ADDRESS, SELLER_ID, receive, stock_world

BUYER = Shopper(customer_id="buyer-1")
BUYER_CLAIMS = claims("buyer-1", "buyer")
ADMIN = Principal("admin-1", frozenset({Role.ADMIN}))
TOKEN = WEBHOOK_TOKEN
ON_HAND = 10
BOUGHT = 2


@dataclass
class Parcel:
    order_id: str
    shipment_id: str
    courier_order_id: str
    total: int
    checkout_id: str


class Shop:
    def __init__(self, world: Any) -> None:
        self.world = world
        self.stock = stock_world()
        receive((self.stock.warehouse.id, self.stock.product.id, None), ON_HAND)
        self.pricing = CatalogPricing(self.stock.warehouse.id)
        self.confirm = confirm_service(self.pricing, Started())
        composition.checkout_saga().task_tokens = Tokens()
        self.start = datetime.now(UTC)
        self.clock = FixedClock(self.start)
        tracking = composition.shipment_tracking()
        tracking.clock = tracking.records.clock = self.clock

    def shipped(self, method: str, *, waybill_later: bool = False) -> Parcel:
        """A paid (wallet) or COD order of the buyer, its stock committed, handed to the courier (``waybill_later``:
        one that assigns its waybill after the booking)."""
        composition.cart_service().add_item(BUYER, CartItemInput(product_id=self.stock.product.id, quantity=BOUGHT))
        quote = self.pricing.quote(BUYER, None, composition.cart_service().get_for(BUYER))
        composition.checkout_repository().remember_preview(BUYER.owner_key, quote)
        if method == "wallet":
            ledger_service().adjust_wallet(ADMIN, "buyer-1", AdjustmentInput(amount=quote.total, reason="top up"))
        request = ConfirmRequest(
            address=ADDRESS,
            shipping_method_id="jne:reg",
            payment_method=method,
            prices_validated_at=quote.prices_validated_at,
        )
        checkout_id = self.confirm.confirm(BUYER, request, f"key-{method}").checkout_id
        saga = composition.checkout_saga()
        saga.reserve(checkout_id)
        saga.place_orders(checkout_id)
        saga.create_payment(checkout_id)
        saga.hold_for_fulfilment(checkout_id)
        checkout = composition.checkout_repository().get(checkout_id)
        [order_id], [reservation_id] = checkout.order_ids, checkout.reservation_ids
        composition.stock_service().commit(reservation_id)
        order = composition.order_service().repository.get(order_id)
        now = to_iso(self.clock.now())
        shipment = Shipment(
            id=shipment_id_for(order.id),
            order_id=order.id,
            user_id=order.user_id,
            seller_id=order.seller_id,
            warehouse_id=self.stock.warehouse.id,
            courier="jne",
            service="reg",
            waybill_id=None if waybill_later else f"WB{order.id[-8:]}",
            status="confirmed",
            label_url=label_path(shipment_id_for(order.id)),
            cod_amount=order.total if method == "cod" else None,
            address=ADDRESS,
            courier_order_id=f"bso_{order.id}",
            stock_committed=True,
            created_at=now,
            updated_at=now,
        )
        tx = Transaction()
        composition.shipments_repository().add_to(tx, shipment)
        composition.order_service().move_to(tx, order, "shipped")
        tx.commit()
        return Parcel(order.id, shipment.id, shipment.courier_order_id, order.total, checkout_id)

    # ---- the courier
    def webhook(self, body: dict[str, Any], token: str | None = TOKEN) -> ApiResponse:
        return courier_webhook(body, token)

    def status(self, parcel: Parcel, status: str, minutes: int, token: str | None = TOKEN) -> ApiResponse:
        """Biteship's order.status for the parcel, ``minutes`` after the test began."""
        at = to_iso(self.start + timedelta(minutes=minutes))
        body = {
            "event": "order.status",
            "order_id": parcel.courier_order_id,
            "courier_tracking_id": "trk-1",
            "courier_waybill_id": "WB1",
            "courier_company": "jne",
            "courier_type": "reg",
            "status": status,
            "updated_at": at,
        }
        return self.webhook(body, token)

    # ---- looking inside
    def order(self, parcel: Parcel):
        return composition.order_service().repository.get(parcel.order_id)

    def shipment(self, parcel: Parcel) -> Shipment:
        return composition.shipments_repository().get(parcel.shipment_id)

    def on_hand(self) -> int:
        key = StockKey(self.stock.warehouse.id, self.stock.product.id, None)
        return composition.stock_service().stock.get(key).on_hand

    def events(self, event_type: str, parcel: Parcel) -> list[dict[str, Any]]:
        return [e for e in self.world.events(event_type) if e["aggregate_id"] == parcel.order_id]

    def inbox(self) -> list[dict[str, Any]]:
        return self.world.items("ShipmentsTable", "COURIER_EVENT#")


@pytest.fixture
def shop(world) -> Shop:
    accept_webhook_token(world)
    return Shop(world)


def balance(account: str) -> int:
    return ledger().account_balance(account).balance


@pytest.mark.parametrize("token", [None, "", "wrong-token", TOKEN + "x"])
def test_a_forged_or_missing_token_is_403_and_changes_nothing(shop, token):
    """LOG-2 (issue 11): verification is not optional; the body is not even read."""
    parcel = shop.shipped("cod")

    response = shop.status(parcel, "delivered", 5, token=token)

    assert response.status == 403
    assert response.body["error"]["code"] == "invalid_callback_token"
    assert (shop.shipment(parcel).status, shop.order(parcel).status) == ("confirmed", "shipped")
    assert shop.inbox() == []
    assert balance("courier:jne:cod_receivable") == 0


def test_the_same_status_twice_and_out_of_order_moves_forward_once(shop):
    """LOG-2: delivered, delivered again (a redelivery), then picked (late, older): one change, one event."""
    parcel = shop.shipped("wallet")

    first = shop.status(parcel, "delivered", 10)
    again = shop.status(parcel, "delivered", 10)
    late_pick = shop.status(parcel, "picked", 5)
    newer_pick = shop.status(parcel, "picked", 20)  # newer but backwards: a delivered parcel is not picked again

    assert [r.body["status"] for r in (first, again, late_pick, newer_pick)] == [
        "applied",
        "duplicate",
        "stale",
        "not_forward",
    ]
    assert all(r.status == 200 for r in (first, again, late_pick, newer_pick))
    shipment = shop.shipment(parcel)
    assert shipment.status == "delivered"
    assert [entry.status for entry in shipment.history] == ["delivered"]
    assert shop.order(parcel).status == "delivered"
    assert len(shop.events("order.fulfilled", parcel)) == 1
    assert shop.events("order.delivered", parcel) == []  # ORD-5 names it order.fulfilled
    assert len(shop.inbox()) == 1


def test_a_stale_update_is_ignored_even_when_its_status_would_be_forward(shop):
    """LOG-2: the courier's updated_at orders its updates: an older one arriving late never overwrites."""
    parcel = shop.shipped("wallet")
    shop.clock.advance(timedelta(hours=1))  # the updates arrive after they happened

    assert shop.status(parcel, "picked", 30).body["status"] == "applied"
    assert shop.status(parcel, "dropping_off", 20).body["status"] == "stale"

    shipment = shop.shipment(parcel)
    assert (shipment.status, shipment.courier_updated_at) == (
        "picked",
        courier_time(to_iso(shop.start + timedelta(minutes=30))),
    )
    assert shop.order(parcel).status == "shipped"


def test_a_status_for_a_courier_order_not_known_yet_is_503_so_the_courier_retries_it(shop):
    """LOG-2 (review 11, finding b): the courier's webhook can arrive before the booking stored the courier's order
    id (the courier answered, our write is a moment behind): 503, nothing recorded, so the courier's retry (its
    webhooks are retried on 5xx) applies it once the shipment knows its courier order."""
    parcel = shop.shipped("wallet")
    shipments = composition.shipments_repository()
    tx = Transaction()
    shipments.change(tx, shop.shipment(parcel), courier_order_id=None)  # as before the booking's third step
    tx.commit()

    early = shop.status(parcel, "picked", 5)

    assert (early.status, early.body["error"]["code"]) == (503, "courier_order_unknown")
    assert shop.inbox() == [] and shop.shipment(parcel).status == "confirmed"
    tx = Transaction()
    shipments.change(tx, shop.shipment(parcel), courier_order_id=parcel.courier_order_id)
    tx.commit()
    assert shop.status(parcel, "picked", 5).body == {"status": "applied"}
    assert shop.shipment(parcel).status == "picked"


def test_other_events_are_200_and_change_nothing(shop):
    parcel = shop.shipped("wallet")

    price = {"event": "order.price", "order_id": parcel.courier_order_id, "price": 15000, "status": "picked",
             "updated_at": "2026-11-30T10:00:00Z"}  # fmt: skip

    assert shop.webhook(price).body == {"status": "recorded"}
    assert shop.webhook(price).body == {"status": "duplicate"}
    assert shop.shipment(parcel).status == "confirmed"


def test_a_body_that_is_not_the_couriers_is_422_once_verified(shop):
    response = shop.webhook({"event": "order.status"})

    assert response.status == 422


def test_cod_delivered_records_the_collection_in_the_same_change(shop):
    """CHK-9: the courier now holds the buyer's cash, owed to the seller; the ledger balances."""
    parcel = shop.shipped("cod")

    assert shop.status(parcel, "picked", 5).body["status"] == "applied"
    assert balance("courier:jne:cod_receivable") == 0
    assert shop.status(parcel, "delivered", 10).body["status"] == "applied"
    shop.status(parcel, "delivered", 10)

    assert shop.order(parcel).status == "delivered"
    assert balance("courier:jne:cod_receivable") == parcel.total
    assert balance(f"seller:{SELLER_ID}:payable") == -parcel.total
    assert ledger_service().trial_balance(ADMIN).balanced is True


def test_cod_returned_collects_nothing_puts_the_stock_back_and_cancels(shop):
    """CHK-9, LOG-2: a returned COD parcel: no cash, the units back on hand (audited, once), order cancelled."""
    parcel = shop.shipped("cod")
    assert shop.on_hand() == ON_HAND - BOUGHT

    shop.status(parcel, "picked", 5)
    shop.status(parcel, "return_in_transit", 10)
    assert shop.status(parcel, "returned", 15).body["status"] == "applied"
    assert shop.status(parcel, "returned", 15).body["status"] == "duplicate"

    assert shop.order(parcel).status == "cancelled"
    assert shop.on_hand() == ON_HAND
    audit = composition.stock_service().audit
    receipts = [
        r
        for r in shop.world.items("InventoryAuditTable", "ITEM#")
        if r["action"] == "receipt" and r["actor_id"] == "system"
    ]
    assert [(r["reason"], r["reference"]) for r in receipts] == [("returned parcel", parcel.shipment_id)]
    assert audit is not None
    assert balance("courier:jne:cod_receivable") == 0
    assert ledger_service().trial_balance(ADMIN).balanced is True


def test_a_crash_after_the_return_is_finished_by_the_couriers_retry(shop, monkeypatch):
    """LOG-2, crash-then-retry: the order's change committed, the function died before the stock came back; the
    courier's redelivery (a duplicate) finishes the stock, once."""
    parcel = shop.shipped("cod")
    shop.status(parcel, "picked", 5)
    stock = composition.stock_service()
    original = stock.receive_returned

    def dies(*args, **kwargs):
        raise RuntimeError("the function timed out")

    monkeypatch.setattr(stock, "receive_returned", dies)
    assert shop.status(parcel, "returned", 10).status == 500
    assert (shop.order(parcel).status, shop.on_hand()) == ("cancelled", ON_HAND - BOUGHT)

    monkeypatch.setattr(stock, "receive_returned", original)
    assert shop.status(parcel, "returned", 10).body == {"status": "duplicate"}
    assert shop.status(parcel, "returned", 10).body == {"status": "duplicate"}
    assert shop.on_hand() == ON_HAND


def test_a_courier_clock_ahead_of_ours_does_not_freeze_the_parcel(shop):
    """LOG-2: an updated_at a day ahead is applied, but later genuine updates are not taken for stale."""
    parcel = shop.shipped("wallet")

    assert shop.status(parcel, "picked", 24 * 60).body["status"] == "applied"
    assert shop.status(parcel, "delivered", 60).body["status"] == "applied"
    assert shop.order(parcel).status == "delivered"


def test_a_paid_returned_parcel_is_refunded(shop):
    """ORD-3: returned → cancelled with its refund (paid from the wallet: back in the wallet at once)."""
    parcel = shop.shipped("wallet")
    assert ledger().wallet("buyer-1").balance == 0

    shop.status(parcel, "picked", 5)
    shop.status(parcel, "returned", 10)

    assert shop.order(parcel).status == "refunded"
    assert ledger().wallet("buyer-1").balance == parcel.total
    assert shop.on_hand() == ON_HAND
    assert ledger_service().trial_balance(ADMIN).balanced is True


def test_the_buyer_cannot_cancel_a_shipped_order(shop):
    """ORD-3: cancelled may follow shipped only for a returned parcel, never by the buyer's own route."""
    parcel = shop.shipped("wallet")

    response = call_api(
        "CancelOrderFunction",
        "POST",
        f"/v1/orders/{parcel.order_id}/cancel",
        resource="/v1/orders/{id}/cancel",
        path_parameters={"id": parcel.order_id},
        claims=BUYER_CLAIMS,
    )

    assert response.status == 409
    assert shop.order(parcel).status == "shipped"
    assert ledger().wallet("buyer-1").balance == 0


def test_a_cancel_that_read_the_order_paid_just_before_it_shipped_changes_nothing(shop, monkeypatch):
    """ORD-3: cancelled may follow shipped (a returned parcel), so the buyer's cancel is conditional on the status
    it read: read paid, shipped meanwhile, the cancel's write fails (503, retryable) and then answers 409."""
    parcel = shop.shipped("wallet")
    orders = composition.order_service()
    read_before_shipping = shop.order(parcel).model_copy(update={"status": "paid"})
    monkeypatch.setattr(orders, "get", lambda principal, order_id: read_before_shipping)
    buyer = Principal("buyer-1", frozenset({Role.BUYER}))

    with pytest.raises(ConcurrentUpdate):
        composition.checkout_saga().cancel_order(buyer, parcel.order_id)

    assert shop.order(parcel).status == "shipped"
    assert ledger().wallet("buyer-1").balance == 0


def test_a_delivered_order_completes_after_the_return_window_and_pays_the_seller(shop):
    """ORD-3: delivered → completed once the window passed (clock driven); the escrow goes to the seller."""
    parcel = shop.shipped("wallet")
    escrow = f"escrow:checkout:{parcel.checkout_id}"
    shop.status(parcel, "delivered", 1)
    held = balance(escrow)
    assert held == -parcel.total  # credit-normal: what the buyer paid, held

    assert invoke("CompleteDeliveredOrdersFunction", {}) == {"completed": 0, "failed": 0}
    shop.clock.advance(timedelta(hours=47))
    assert invoke("CompleteDeliveredOrdersFunction", {}) == {"completed": 0, "failed": 0}
    shop.clock.advance(timedelta(hours=1, seconds=1))
    assert invoke("CompleteDeliveredOrdersFunction", {}) == {"completed": 1, "failed": 0}
    assert invoke("CompleteDeliveredOrdersFunction", {}) == {"completed": 0, "failed": 0}

    assert shop.order(parcel).status == "completed"
    assert len(shop.events("order.completed", parcel)) == 1
    assert balance(escrow) == 0
    assert balance(f"seller:{SELLER_ID}:payable") == -parcel.total
    assert ledger_service().trial_balance(ADMIN).balanced is True


class QuietCourier:
    def __init__(self, events: list[CourierTrackingEvent], waybill_id: str | None = None) -> None:
        self.events = events
        self.waybill_id = waybill_id
        self.asked: list[str] = []

    def tracking(self, tracking_id: str) -> CourierTracking:
        self.asked.append(tracking_id)
        return CourierTracking(self.events, self.waybill_id)


def test_the_poll_applies_a_delivered_status_the_webhook_never_brought(shop):
    """LOG-2: a shipment quiet for courier_quiet_seconds has its tracking read and applied as a webhook is."""
    parcel = shop.shipped("cod")
    start = shop.start
    courier = QuietCourier(
        [
            CourierTrackingEvent(CourierStatus.PICKED, "picked up", courier_time(to_iso(start + timedelta(minutes=5)))),
            CourierTrackingEvent(
                CourierStatus.DELIVERED, "received by Budi", courier_time(to_iso(start + timedelta(hours=2)))
            ),
        ]
    )
    composition.shipment_tracking().courier = courier

    assert invoke("PollQuietShipmentsFunction", {}) == {"polled": 0, "applied": 0, "failed": 0}
    shop.clock.advance(timedelta(hours=7))
    assert invoke("PollQuietShipmentsFunction", {}) == {"polled": 1, "applied": 2, "failed": 0}

    assert courier.asked == [parcel.courier_order_id]
    assert shop.order(parcel).status == "delivered"
    assert [(e.status, e.note) for e in shop.shipment(parcel).history] == [
        ("picked", "picked up"),
        ("delivered", "received by Budi"),
    ]
    assert balance("courier:jne:cod_receivable") == parcel.total
    # The webhook arriving late is the same event: a duplicate, nothing more.
    assert shop.status(parcel, "delivered", 120).body["status"] == "duplicate"
    assert invoke("PollQuietShipmentsFunction", {})["polled"] == 0  # delivered: no longer in transit


def notified(shop, parcel, *event_types: str) -> dict[str, str]:
    """The buyer's notifications, by event type, after the parcel's events of those types were delivered."""
    for event_type in event_types:
        [event] = shop.events(event_type, parcel)
        envelope = load_event("eventbridge_order_shipped.json")
        envelope.update({"detail-type": event_type, "detail": event})
        invoke("NotifyOnDomainEventFunction", envelope)
    listed = call_api("ListNotificationsFunction", "GET", "/v1/notifications", claims=BUYER_CLAIMS).body["items"]
    return {n["type"]: n["title"] for n in listed}


def test_a_cod_buyer_hears_their_parcel_came_back(shop):
    """NOT-1, LOG-2: a returned COD parcel moves no money, so no refund speaks for it: its order.cancelled does."""
    parcel = shop.shipped("cod")
    shop.status(parcel, "picked", 5)
    shop.status(parcel, "return_in_transit", 10)
    shop.status(parcel, "returned", 15)

    assert notified(shop, parcel, "order.cancelled").get("order.cancelled") == "Parcel returned"


def test_the_buyer_is_notified_when_the_order_ships_and_arrives(shop):
    """NOT-1: order.shipped and order.fulfilled become in-app notifications for the buyer."""
    parcel = shop.shipped("wallet")
    shop.status(parcel, "delivered", 10)

    titles = notified(shop, parcel, "order.shipped", "order.fulfilled")
    listed = call_api("ListNotificationsFunction", "GET", "/v1/notifications", claims=BUYER_CLAIMS).body["items"]
    assert titles["order.shipped"] == "Your order is on its way"
    assert titles["order.fulfilled"] == "Order delivered"
    assert all(
        n["data"]["order_id"] == parcel.order_id
        for n in listed
        if n["type"].startswith("order.") and n["type"] != "order.created"
    )


def test_a_returned_group_buying_parcel_is_refunded_and_charged_back_to_the_factory(shop):
    """ORD-3, GB-14: the session's escrow went to the factory when its purchase order was received, so the buyer's
    refund (to the wallet, at once) is charged back to the factory's payable; the units are back in the warehouse."""
    warehouse = shop.stock.other_warehouse.id
    give_default_address("gb-1")
    po_id = raise_purchase_order("ses_kopi", shop.stock.product.id, 3)
    order = groupbuy_order("ses_kopi", shop.stock.product.id, 3, "gb-1")
    assert receive_purchase_order(po_id, 3, warehouse).status == 200
    courier = use_courier(FakeCourier())
    shipped = book(order.id)
    assert shipped.status == 201, shipped.body
    parcel = Parcel(order.id, shipped.body["id"], courier.orders[shipped.body["id"]].courier_order_id, order.total, "")
    payable_before = balance("factory:fac_1:payable")

    shop.status(parcel, "picked", 5)
    assert shop.status(parcel, "returned", 10).body["status"] == "applied"

    assert shop.order(parcel).status == "refunded"
    assert ledger().wallet("gb-1").balance == order.total
    assert balance("factory:fac_1:payable") == payable_before + order.total
    key = StockKey(warehouse, shop.stock.product.id, None)
    assert composition.stock_service().stock.get(key).on_hand == 3
    assert ledger_service().trial_balance(ADMIN).balanced is True
    # NOT-1: no payment refund follows a wallet refund, so the order's own event tells the buyer.
    [refunded] = shop.events("order.refunded", parcel)
    assert OrderRefunded.model_validate(refunded["data"]).message().title == "Parcel returned"


class PartlyDownCourier:
    """Answers the tracking of every courier order but one (``down_for``)."""

    def __init__(self, down_for: str, events: list[CourierTrackingEvent]) -> None:
        self.down_for = down_for
        self.events = events

    def tracking(self, tracking_id: str) -> CourierTracking:
        if tracking_id == self.down_for:
            raise CourierUnavailable("ReadTimeoutError", attempts=3)
        return CourierTracking(self.events)


def test_the_poll_reads_on_past_a_shipment_whose_tracking_cannot_be_read(shop, monkeypatch):
    """LOG-2: the quietest shipment's tracking failing (every run) never starves the others: the poll pages on."""
    first, second = shop.shipped("cod"), shop.shipped("wallet")
    delivered = courier_time(to_iso(shop.start + timedelta(hours=1)))
    composition.shipment_tracking().courier = PartlyDownCourier(
        first.courier_order_id, [CourierTrackingEvent(CourierStatus.DELIVERED, "received", delivered)]
    )
    monkeypatch.setattr(tracking_module, "QUIET_PAGE", 1)
    shop.clock.advance(timedelta(hours=7))

    assert invoke("PollQuietShipmentsFunction", {}) == {"polled": 2, "applied": 1, "failed": 1}

    assert (shop.order(first).status, shop.order(second).status) == ("shipped", "delivered")


# ---------------------------------------------------------------- a waybill assigned after the booking (LOG-2, LOG-3)
def test_the_waybill_event_sets_a_missing_waybill_once_and_the_label_prints_it(shop):
    """LOG-2, LOG-3 (review 11, waybill later): a courier that books without a waybill announces it by
    order.waybill_id: the shipment takes it once (inbox, a history note) and its label prints from then on."""
    parcel = shop.shipped("wallet", waybill_later=True)
    assert label(parcel.shipment_id, WAREHOUSE)[0] == 409

    first = waybill_event(parcel.courier_order_id, "GOJEK-77001")
    again = waybill_event(parcel.courier_order_id, "GOJEK-77001")

    assert (first.status, first.body, again.body) == (200, {"status": "applied"}, {"status": "duplicate"})
    shipment = shop.shipment(parcel)
    assert (shipment.waybill_id, shipment.status) == ("GOJEK-77001", "confirmed")
    assert [entry.note for entry in shipment.history] == ["waybill GOJEK-77001"]
    assert len(shop.inbox()) == 1
    status, _, pdf = label(parcel.shipment_id, WAREHOUSE)
    assert status == 200
    assert scanned(pdf) == {"Code128": "GOJEK-77001", "QRCode": "GOJEK-77001"}
    assert tracking(parcel.order_id, BUYER_CLAIMS).body["waybill_id"] == "GOJEK-77001"


def test_another_waybill_for_a_shipment_that_has_one_is_ignored_never_overwritten(shop):
    """LOG-3: a waybill printed on a label stays the shipment's: a different one the courier names later is
    ignored (logged), whether the booking or an earlier event set it."""
    booked, later = shop.shipped("wallet"), shop.shipped("cod", waybill_later=True)
    booked_waybill = shop.shipment(booked).waybill_id
    assert waybill_event(later.courier_order_id, "GOJEK-1").body == {"status": "applied"}

    assert waybill_event(booked.courier_order_id, "GOJEK-2").body == {"status": "ignored"}
    assert waybill_event(later.courier_order_id, "GOJEK-3").body == {"status": "ignored"}

    assert (shop.shipment(booked).waybill_id, shop.shipment(later).waybill_id) == (booked_waybill, "GOJEK-1")
    assert shop.shipment(booked).history == []
    assert len(shop.inbox()) == 1


@pytest.mark.parametrize("token", [None, "wrong-token", WEBHOOK_TOKEN + "x"])
def test_a_forged_waybill_event_is_403_and_sets_nothing(shop, token):
    """LOG-2: the waybill event is verified as every courier event is."""
    parcel = shop.shipped("wallet", waybill_later=True)

    response = waybill_event(parcel.courier_order_id, "FORGED-1", token=token)

    assert (response.status, response.body["error"]["code"]) == (403, "invalid_callback_token")
    assert shop.shipment(parcel).waybill_id is None and shop.inbox() == []


def test_a_status_naming_the_waybill_sets_it_when_the_shipment_has_none(shop):
    """LOG-2: the waybill's own event may be lost or late: a status carrying courier_waybill_id sets it too."""
    parcel = shop.shipped("wallet", waybill_later=True)

    assert shop.status(parcel, "allocated", 5).body == {"status": "applied"}

    shipment = shop.shipment(parcel)
    assert (shipment.waybill_id, shipment.status) == ("WB1", "allocated")
    assert waybill_event(parcel.courier_order_id, "WB1").body == {"status": "duplicate"}


def test_the_poll_sets_the_waybill_its_tracking_names(shop):
    """LOG-2: a quiet shipment without a waybill takes the one its tracking answer carries."""
    parcel = shop.shipped("wallet", waybill_later=True)
    picked = courier_time(to_iso(shop.start + timedelta(minutes=5)))
    composition.shipment_tracking().courier = QuietCourier(
        [CourierTrackingEvent(CourierStatus.PICKED, "picked up", picked)], waybill_id="GOJEK-POLL-1"
    )
    shop.clock.advance(timedelta(hours=7))

    # Its newly applied status is still older than the cutoff, so it comes round again: read once per run.
    assert invoke("PollQuietShipmentsFunction", {}) == {"polled": 1, "applied": 1, "failed": 0}
    shipment = shop.shipment(parcel)
    assert (shipment.waybill_id, shipment.status) == ("GOJEK-POLL-1", "picked")
    assert label(parcel.shipment_id, WAREHOUSE)[0] == 200


def test_a_waybill_set_between_the_read_and_the_write_is_not_overwritten(shop, monkeypatch):
    """LOG-3: the waybill is written on the condition that the shipment is still the one read: another waybill set
    between this event's read and its write wins, and this one, read again, is ignored (never written over it)."""
    parcel = shop.shipped("wallet", waybill_later=True)
    tracking_service = composition.shipment_tracking()
    shipments = tracking_service.shipments
    read = shipments.get
    raced: list[str] = []

    def read_then_another_waybill_arrives(shipment_id: str) -> Shipment:
        shipment = read(shipment_id)
        if not raced:  # the first read only: the other event (by any source) is written before this one writes
            raced.append("racing")
            raced.append(tracking_service.set_waybill(shipment_id, parcel.courier_order_id, "A-1"))
        return shipment

    monkeypatch.setattr(shipments, "get", read_then_another_waybill_arrives)

    assert waybill_event(parcel.courier_order_id, "B-2").body == {"status": "ignored"}

    assert raced == ["racing", "applied"]
    shipment = shop.shipment(parcel)
    assert shipment.waybill_id == "A-1"
    assert [entry.note for entry in shipment.history] == ["waybill A-1"]
    assert len(shop.inbox()) == 1
