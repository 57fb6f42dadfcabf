"""Shipments (issue 11; LOG-2, LOG-3, GB-15, CHK-9, ORD-3, ORD-5): booking the courier for an order through the real
handlers, with moto tables, the real checkout saga and stock, and a courier that books as Biteship does (one order
per reference_id). A retried or crashed booking books once, ships the order once and takes its stock once; a
courier that is down changes nothing; only the warehouse, the order's seller and admins ship; group-buying orders
ship from their session's purchase-order holds once it is received."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pypdfium2
import pytest

from patungan import composition
from patungan.adapters.dynamodb import Transaction
from patungan.core.auth import Principal, Role
from patungan.core.errors import ConcurrentUpdate, Conflict
from patungan.fulfilment.models import shipment_id_for
from patungan.fulfilment.repository import ShipmentsRepository
from patungan.fulfilment.tracking import CourierUpdate
from patungan.inventory.stock import StockService, po_receipt_hold_id
from patungan.inventory.stock_models import StockKey
from patungan.inventory.stock_repository import StockRepository
from patungan.ledger.repository import ledger
from patungan.logistics.models import courier_time
from tests.support.fulfilment import (
    ADMIN,
    OTHER_SELLER,
    SELLER,
    WAREHOUSE,
    FakeCourier,
    accept_webhook_token,
    book,
    commits,
    get_shipment,
    give_default_address,
    groupbuy_order,
    label,
    raise_purchase_order,
    receive_purchase_order,
    retail_order,
    tracking,
    use_courier,
    waybill_event,
)
from tests.support.label import scanned
from tests.support.lambdas import claims
from tests.support.stock import receive, stock_world

BUYER = claims("buyer-1", "buyer")
OTHER_BUYER = claims("buyer-2", "buyer")


@pytest.fixture
def shop(world):
    stock = stock_world()
    receive((stock.warehouse.id, stock.product.id, None), 10)
    return stock


@pytest.fixture
def courier(world) -> FakeCourier:
    return use_courier(FakeCourier())


def levels(warehouse_id: str, product_id: str) -> tuple[int, int]:
    item = composition.stock_service().stock.get(StockKey(warehouse_id, product_id, None))
    return item.on_hand, item.reserved


def shipped_events(world, order_id: str) -> list[dict]:
    return [e for e in world.events("order.shipped") if e["data"]["order_id"] == order_id]


def reservation_of(order) -> str:
    checkout = composition.checkout_repository().get(order.checkout_id)
    return checkout.reservation_ids[checkout.order_ids.index(order.id)]


# ---------------------------------------------------------------- retail: the booking, retried and crashed
def test_a_cod_order_ships_with_its_waybill_its_cod_amount_and_its_stock_committed(world, shop, courier):
    """LOG-2, CHK-9: the COD total travels with the booking; the order is shipped with order.shipped; the
    reservation's units leave the books (audited commit)."""
    order = retail_order(shop.warehouse.id, shop.product.id, "cod")
    assert (order.status, order.payment_method) == ("processing", "cod")

    response = book(order.id)

    assert response.status == 201, response.body
    shipment = response.body
    assert shipment["id"] == shipment_id_for(order.id)
    assert (shipment["status"], shipment["waybill_id"], shipment["cod_amount"]) == (
        "confirmed",
        "WAYBILL000001",
        order.total,
    )
    assert shipment["label_url"] == f"/v1/shipments/{shipment['id']}/label"
    assert (shipment["courier"], shipment["service"], shipment["warehouse_id"]) == ("jne", "reg", shop.warehouse.id)
    [booking] = courier.bookings
    assert (booking.reference_id, booking.cod_amount) == (shipment["id"], order.total)
    assert booking.destination.postal_code == order.address["postal_code"]
    assert booking.origin == shop.warehouse.address
    assert composition.order_service().repository.get(order.id).status == "shipped"
    [shipped] = shipped_events(world, order.id)
    assert (shipped["data"]["courier"], shipped["data"]["waybill_id"]) == ("jne", "WAYBILL000001")  # NOT-1
    assert levels(shop.warehouse.id, shop.product.id) == (8, 0)
    assert len(commits(reservation_of(order))) == 1


def test_a_cod_order_placed_before_orders_named_their_payment_method_still_ships_with_its_cod_amount(
    world, shop, courier
):
    """CHK-9, LOG-2 (final read): an order written before ``payment_method`` existed is COD by its ``payment_id``
    ("cod"), as tracking reads it: its booking carries the total for the courier to collect, never a parcel handed
    over for nothing."""
    order = retail_order(shop.warehouse.id, shop.product.id, "cod")
    orders = composition.order_service().repository
    orders.table.update({"pk": f"ORDER#{order.id}", "sk": "META"}, "REMOVE payment_method")
    assert (orders.get(order.id).payment_method, orders.get(order.id).payment_id) == (None, "cod")

    response = book(order.id)

    assert response.status == 201, response.body
    assert response.body["cod_amount"] == order.total
    assert courier.bookings[0].cod_amount == order.total


def test_a_paid_order_carries_no_cod_amount(world, shop, courier):
    order = retail_order(shop.warehouse.id, shop.product.id, "wallet")
    assert order.status == "paid"
    response = book(order.id)
    assert response.status == 201, response.body
    assert response.body["cod_amount"] is None
    assert courier.bookings[0].cod_amount is None


def test_a_booking_retried_after_the_courier_timed_out_books_once(world, shop, courier):
    """LOG-2: the courier booked, its answer was lost (503); the retry names the same reference and gets the same
    courier order: one booking, the order shipped once."""
    order = retail_order(shop.warehouse.id, shop.product.id)
    courier.lose_answers = 1

    lost = book(order.id)
    retried = book(order.id)

    assert (lost.status, lost.body["error"]["code"]) == (503, "courier_unavailable")
    assert retried.status == 201, retried.body
    assert {b.reference_id for b in courier.bookings} == {retried.body["id"]}
    assert len(courier.orders) == 1
    assert retried.body["waybill_id"] == courier.orders[retried.body["id"]].waybill_id
    assert len(shipped_events(world, order.id)) == 1
    assert book(order.id).body == retried.body  # and again: the same shipment, no new booking
    assert len(courier.orders) == 1


def test_the_courier_down_answers_503_and_changes_nothing_but_the_pending_shipment(world, shop, courier):
    order = retail_order(shop.warehouse.id, shop.product.id)
    courier.down = True

    refused = book(order.id)

    assert (refused.status, refused.body["error"]["code"]) == (503, "courier_unavailable")
    assert composition.order_service().repository.get(order.id).status == "processing"
    assert composition.shipments_repository().get(shipment_id_for(order.id)).status == "booking"
    assert levels(shop.warehouse.id, shop.product.id) == (10, 2)
    assert commits(reservation_of(order)) == [] and shipped_events(world, order.id) == []
    assert tracking(order.id, BUYER).body["status"] == "booking"
    assert label(shipment_id_for(order.id), WAREHOUSE)[0] == 409  # no waybill to print yet

    courier.down = False
    assert book(order.id).status == 201
    assert len(courier.orders) == 1 and levels(shop.warehouse.id, shop.product.id) == (8, 0)


def _crash_in_step(monkeypatch, courier: FakeCourier, step: str) -> None:
    """The function dies once, after ``step`` of the booking (its writes so far are kept)."""
    if step == "shipment written":
        monkeypatch.setattr(courier, "down", True)  # the first call never reaches the courier
        return
    if step == "courier booked":
        courier.crash_after_booking = 1
        return
    target, name = {
        "order shipped": (StockService, "commit"),
        "stock committed": (ShipmentsRepository, "change"),
    }[step]
    original, crashed = getattr(target, name), []

    def once(self, *args, **kwargs):
        done = original(self, *args, **kwargs)
        if kwargs.get("stock_committed") and not crashed:
            crashed.append(step)
            raise RuntimeError(f"the function died after: {step}")
        return done

    def before(self, *args, **kwargs):
        if not crashed:
            crashed.append(step)
            raise RuntimeError(f"the function died after: {step}")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(target, name, before if step == "order shipped" else once)


@pytest.mark.parametrize("step", ["shipment written", "courier booked", "order shipped", "stock committed"])
def test_a_crash_after_each_step_then_a_retry_books_ships_and_commits_once(world, shop, courier, monkeypatch, step):
    """LOG-2: whatever step the first attempt died after, the retry finishes the booking: one courier order, the
    order shipped once (one order.shipped), its stock committed once (one audited commit). The world fixture
    checks the trial balance."""
    order = retail_order(shop.warehouse.id, shop.product.id)
    with monkeypatch.context() as patched:
        _crash_in_step(patched, courier, step)
        first = book(order.id)
    assert first.status >= 500

    retried = book(order.id)

    assert retried.status == 201, retried.body
    assert retried.body["status"] == "confirmed" and retried.body["stock_committed"] is True
    assert len(courier.orders) == 1
    assert composition.order_service().repository.get(order.id).status == "shipped"
    assert len(shipped_events(world, order.id)) == 1
    assert len(commits(reservation_of(order))) == 1
    assert levels(shop.warehouse.id, shop.product.id) == (8, 0)


def test_a_parcel_returned_before_its_stock_was_committed_puts_back_only_what_left(world, shop, courier, monkeypatch):
    """LOG-2, ORD-3 (review 11): the booking died after the order shipped, before its stock left the books; the
    courier brings the parcel back meanwhile. The return puts back nothing that never left (no phantom units);
    when the booking's retry commits the stock, the returned units come back then: once, exactly."""
    order = retail_order(shop.warehouse.id, shop.product.id, "cod")
    with monkeypatch.context() as patched:
        _crash_in_step(patched, courier, "order shipped")
        assert book(order.id).status >= 500
    shipment = composition.shipments_repository().get(shipment_id_for(order.id))
    returned = CourierUpdate(shipment.courier_order_id, "returned", courier_time("2026-11-30T10:00:00Z"))

    assert composition.shipment_tracking().apply(shipment.id, returned) == "applied"

    assert composition.order_service().repository.get(order.id).status == "cancelled"
    assert levels(shop.warehouse.id, shop.product.id) == (10, 2)  # still reserved, never left: nothing came back
    assert book(order.id).status == 201  # the retry finishes the booking's last step
    assert levels(shop.warehouse.id, shop.product.id) == (10, 0)
    assert composition.shipment_tracking().apply(shipment.id, returned) == "duplicate"
    assert levels(shop.warehouse.id, shop.product.id) == (10, 0)
    assert len(commits(reservation_of(order))) == 1


def test_concurrent_bookings_of_one_order_ship_it_once(world, shop, courier):
    order = retail_order(shop.warehouse.id, shop.product.id)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: book(order.id), range(4)))
    assert {a.status for a in answers} == {201}, [a.body for a in answers]
    assert len({a.body["waybill_id"] for a in answers}) == 1 and len(courier.orders) == 1
    assert len(shipped_events(world, order.id)) == 1
    assert levels(shop.warehouse.id, shop.product.id) == (8, 0)


def test_a_retail_order_ships_by_the_method_it_was_bought_with(world, shop, courier):
    order = retail_order(shop.warehouse.id, shop.product.id)

    other = book(order.id, body={"shipping_method_id": "sicepat:best"})
    unknown_field = book(order.id, body={"courier": "jne"})

    assert (other.status, other.body["error"]["details"][0]["field"]) == (422, "shipping_method_id")
    assert unknown_field.status == 422
    assert courier.bookings == []
    assert book(order.id, body={"shipping_method_id": "jne:reg"}).status == 201


def test_a_cancelled_order_does_not_ship(world, shop, courier):
    order = retail_order(shop.warehouse.id, shop.product.id)
    composition.checkout_saga().cancel_order(Principal("admin-1", frozenset({Role.ADMIN})), order.id)

    refused = book(order.id)

    assert (refused.status, refused.body["error"]["code"]) == (409, "illegal_transition")
    assert courier.bookings == []


def buyer_of(order) -> Principal:
    return Principal(order.user_id, frozenset({Role.BUYER}))


def test_a_buyer_cancelling_while_the_courier_books_is_refused_and_the_order_ships(world, shop, courier, monkeypatch):
    """ORD-3, LOG-2, PAY-3 (review 11, finding a): the buyer cancels between the shipment's first step and the
    courier's booking. One of the two wins in the database: the booking began first, so the cancel is refused
    (409) and nothing is refunded; the order ships with its one courier order (never a parcel on its way for a
    refunded order)."""
    order = retail_order(shop.warehouse.id, shop.product.id, "wallet")
    wallet_before = ledger().wallet(order.user_id).balance
    book_with_courier, cancels = courier.book, []

    def cancel_then_book(booking):
        if not cancels:
            try:
                composition.checkout_saga().cancel_order(buyer_of(order), order.id)
                cancels.append("cancelled")
            except Conflict as exc:
                cancels.append(exc.code)
        return book_with_courier(booking)

    monkeypatch.setattr(courier, "book", cancel_then_book)

    shipped = book(order.id)

    assert cancels == ["illegal_transition"]
    assert shipped.status == 201, shipped.body
    assert composition.order_service().repository.get(order.id).status == "shipped"
    assert ledger().wallet(order.user_id).balance == wallet_before
    assert len(courier.orders) == 1 and levels(shop.warehouse.id, shop.product.id) == (8, 0)


def test_a_cancel_that_read_the_order_before_its_shipment_began_fails_its_write(world, shop, courier, monkeypatch):
    """ORD-3 (review 11, finding a): the cancel read the order paid with no shipment, the booking's first step
    committed, then the cancel writes: its write is conditional on no shipment having begun, so it fails and
    refunds nothing; the booking, retried, ships the order."""
    order = retail_order(shop.warehouse.id, shop.product.id, "wallet")
    wallet_before = ledger().wallet(order.user_id).balance
    read_before_booking = composition.order_service().repository.get(order.id)
    courier.down = True
    assert book(order.id).status == 503  # the shipment is written, booking
    monkeypatch.setattr(composition.order_service(), "get", lambda principal, order_id: read_before_booking)

    with pytest.raises(ConcurrentUpdate):
        composition.checkout_saga().cancel_order(buyer_of(order), order.id)

    monkeypatch.undo()
    courier.down = False
    assert book(order.id).status == 201
    assert composition.order_service().repository.get(order.id).status == "shipped"
    assert ledger().wallet(order.user_id).balance == wallet_before


def test_a_refused_booking_leaves_the_order_cancellable_and_bookable_again(world, shop, courier):
    """LOG-2, ORD-3 (review 11, finding c): the courier refuses the booking (422 courier_refused): the shipment
    records the refusal and holds the order no longer: the buyer may cancel it (refunded once), and a booking
    after that is refused as for any cancelled order, with no courier order."""
    order = retail_order(shop.warehouse.id, shop.product.id, "wallet")
    wallet_before = ledger().wallet(order.user_id).balance
    courier.refuses = {"jne"}

    refused = book(order.id)

    assert (refused.status, refused.body["error"]["code"]) == (422, "courier_refused")
    assert composition.shipments_repository().get(shipment_id_for(order.id)).status == "rejected"
    cancelled = composition.checkout_saga().cancel_order(buyer_of(order), order.id)
    assert cancelled.status == "refunded"
    assert ledger().wallet(order.user_id).balance == wallet_before + order.total
    assert book(order.id).body["error"]["code"] == "illegal_transition"
    assert courier.orders == {}


def test_a_refused_booking_is_booked_again_by_another_method(world, shop, courier):
    """LOG-2, GB-15 (review 11, finding c): a group-buying order the courier refused to book with one method is
    booked again with another under a new courier reference: one courier order, the order shipped once."""
    give_default_address("gb-9")
    po_id = raise_purchase_order("ses_teh", shop.product.id, 2)
    order = groupbuy_order("ses_teh", shop.product.id, 2, "gb-9")
    assert receive_purchase_order(po_id, 2, shop.other_warehouse.id).status == 200
    courier.refuses = {"jne"}

    refused = book(order.id, body={"shipping_method_id": "jne:reg"})
    again = book(order.id, body={"shipping_method_id": "sicepat:best"})

    assert (refused.status, refused.body["error"]["code"]) == (422, "courier_refused")
    assert again.status == 201, again.body
    assert (again.body["id"], again.body["courier"], again.body["service"]) == (
        shipment_id_for(order.id),
        "sicepat",
        "best",
    )
    [booked] = courier.orders
    assert booked != shipment_id_for(order.id)  # a new reference: the refused one may be remembered refused
    assert composition.order_service().repository.get(order.id).status == "shipped"
    assert len(shipped_events(world, order.id)) == 1
    assert len(commits(again.body["id"])) == 1


def test_a_pickup_the_courier_called_off_is_booked_again_without_shipping_twice(world, shop, courier):
    """LOG-2, ORD-3 (review 11): the courier found no driver for a booked pickup (courier_not_found, before
    pickup). The order is shipped and can no longer be cancelled by its buyer, so staff book it again: a new
    courier order under a new reference, the same route, the stock committed once and order.shipped once."""
    order = retail_order(shop.warehouse.id, shop.product.id, "cod")
    first = book(order.id).body
    called_off = CourierUpdate(first["courier_order_id"], "courier_not_found", courier_time("2026-11-30T10:00:00Z"))
    assert composition.shipment_tracking().apply(first["id"], called_off) == "applied"

    again = book(order.id)

    assert again.status == 201, again.body
    assert (again.body["id"], again.body["status"], again.body["warehouse_id"]) == (
        first["id"],
        "confirmed",
        shop.warehouse.id,
    )
    assert again.body["courier_order_id"] != first["courier_order_id"] and len(courier.orders) == 2
    assert composition.shipments_repository().find_by_courier_order(again.body["courier_order_id"]).id == first["id"]
    assert composition.order_service().repository.get(order.id).status == "shipped"
    assert len(shipped_events(world, order.id)) == 1
    assert len(commits(reservation_of(order))) == 1 and levels(shop.warehouse.id, shop.product.id) == (8, 0)
    assert book(order.id).body["courier_order_id"] == again.body["courier_order_id"]  # a retry books no third


# ---------------------------------------------------------------- who may ship and see
def test_only_the_warehouse_the_orders_seller_and_admins_ship_it(world, shop, courier):
    """LOG-2, ORD-6: a buyer (even the order's own) or factory staff: 403; another seller's staff: 404, as for any
    order not theirs; a seller token naming no seller: 403. Allowed callers get the one shipment."""
    order = retail_order(shop.warehouse.id, shop.product.id)
    refusals = {
        "own buyer": (BUYER, 403),
        "factory": (claims("factory-1", "factory", factory_id="fac_1"), 403),
        "other seller": (OTHER_SELLER, 404),
        "seller without seller id": (claims("seller-x", "seller"), 403),
    }
    for who, status in refusals.values():
        assert book(order.id, who).status == status
    assert courier.bookings == [] and composition.shipments_repository().find_by_order(order.id) is None

    shipped = {
        name: book(order.id, who) for name, who in {"seller": SELLER, "warehouse": WAREHOUSE, "admin": ADMIN}.items()
    }
    assert {r.status for r in shipped.values()} == {201}
    assert len({r.body["id"] for r in shipped.values()}) == 1 and len(courier.orders) == 1


def test_the_shipment_and_tracking_are_the_buyers_and_staffs_only(world, shop, courier):
    order = retail_order(shop.warehouse.id, shop.product.id)
    waiting = tracking(order.id, BUYER)
    assert (waiting.status, waiting.body) == (
        200,
        {"status": "awaiting_shipment", "waybill_id": None, "courier": None, "history": []},
    )
    shipment = book(order.id).body

    for who in (BUYER, SELLER, WAREHOUSE, ADMIN):
        assert get_shipment(shipment["id"], who).body == shipment
    for who in (OTHER_BUYER, OTHER_SELLER):
        assert get_shipment(shipment["id"], who).status == 404
        assert tracking(order.id, who).status == 404
    seen = tracking(order.id, BUYER).body
    assert (seen["status"], seen["waybill_id"], seen["courier"]) == ("confirmed", shipment["waybill_id"], "jne")
    assert [entry["status"] for entry in seen["history"]] == ["booking", "confirmed"]


def test_the_label_is_a_one_page_pdf_for_staff_only(world, shop, courier):
    """LOG-3: a PDF of 100 x 150 mm from the warehouse to the buyer, with the waybill; buyers 403, another
    seller 404."""
    order = retail_order(shop.warehouse.id, shop.product.id)
    shipment = book(order.id).body

    status, headers, pdf = label(shipment["id"], WAREHOUSE)

    assert status == 200 and headers["content-type"] == "application/pdf"
    document = pypdfium2.PdfDocument(pdf)
    assert len(document) == 1
    width, height = document[0].get_size()
    assert (round(width / 72 * 25.4), round(height / 72 * 25.4)) == (100, 150)
    text = document[0].get_textpage().get_text_bounded()
    assert shipment["waybill_id"] in text and order.id in text
    assert shop.warehouse.address.line1 in text and order.address["line1"] in text
    assert label(shipment["id"], SELLER)[0] == 200
    assert label(shipment["id"], BUYER)[0] == 403
    assert label(shipment["id"], OTHER_SELLER)[0] == 404


# ---------------------------------------------------------------- group buying (GB-15)
@pytest.fixture
def session(world, shop):
    """A settled session of 5 units, its purchase order raised, two buyers with default addresses."""
    for buyer in ("gb-1", "gb-2"):
        give_default_address(buyer)
    po_id = raise_purchase_order("ses_kopi", shop.product.id, 5)
    orders = [
        groupbuy_order("ses_kopi", shop.product.id, 3, "gb-1"),
        groupbuy_order("ses_kopi", shop.product.id, 2, "gb-2"),
    ]
    return po_id, orders


def test_a_groupbuy_order_ships_only_once_its_purchase_order_is_received(world, shop, courier, session):
    """GB-15: before the purchase order is received in full, 409 stock_not_received and nothing booked; after,
    the order ships from the warehouse holding the session's units to the buyer's default address."""
    po_id, [first, _] = session
    assert book(first.id).body["error"]["code"] == "stock_not_received"
    assert receive_purchase_order(po_id, 2, shop.other_warehouse.id).status == 200
    assert book(first.id).body["error"]["code"] == "stock_not_received"  # partly received
    assert courier.bookings == []

    assert receive_purchase_order(po_id, 3, shop.other_warehouse.id).status == 200
    shipped = book(first.id)

    assert shipped.status == 201, shipped.body
    assert (shipped.body["warehouse_id"], shipped.body["courier"], shipped.body["service"]) == (
        shop.other_warehouse.id,
        "jne",
        "reg",
    )
    assert courier.bookings[0].destination.postal_code == "12190"
    assert composition.order_service().repository.get(first.id).status == "shipped"
    assert levels(shop.other_warehouse.id, shop.product.id) == (2, 2)  # 3 of the 5 received left, across both holds
    assert len(commits(shipped.body["id"])) == 1


def test_two_groupbuy_orders_drawing_from_one_hold_at_once_never_overdraw(world, shop, courier, session):
    po_id, orders = session
    assert receive_purchase_order(po_id, 5, shop.other_warehouse.id).status == 200

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda order: book(order.id), orders))

    assert [a.status for a in answers] == [201, 201], [a.body for a in answers]
    assert levels(shop.other_warehouse.id, shop.product.id) == (0, 0)
    assert [len(commits(a.body["id"])) for a in answers] == [1, 1]


def test_a_draw_racing_another_for_the_same_hold_never_takes_more_than_it_holds(world, shop, session):
    """GB-15: draw B of 3 units commits right after draw A of 3 read the 5-unit hold: A reads again and is refused
    (409 insufficient_stock, nothing taken), never drawing the hold or the stock below zero; B's reference draws
    once."""
    po_id, _ = session
    assert receive_purchase_order(po_id, 5, shop.other_warehouse.id).status == 200
    holds = [po_receipt_hold_id(r) for r in composition.purchase_order_service().repository.receipt_ids(po_id)]
    key = StockKey(shop.other_warehouse.id, shop.product.id, None)
    stock = composition.stock_service()
    original, raced = StockRepository.reservations, []

    def read_then_let_b_in(repository, ids):
        read = original(repository, ids)
        if not raced:
            raced.append(True)
            assert stock.draw_held(holds, key, 3, reference="shp_b", actor_id="packer-2") is True
        return read

    with mock.patch.object(StockRepository, "reservations", read_then_let_b_in), pytest.raises(Conflict) as refused:
        stock.draw_held(holds, key, 3, reference="shp_a", actor_id="packer-1")

    assert refused.value.code == "insufficient_stock"
    assert levels(shop.other_warehouse.id, shop.product.id) == (2, 2)
    assert [hold.lines[0].units for hold in stock.stock.reservations(holds)] == [2]
    assert stock.draw_held(holds, key, 3, reference="shp_b", actor_id="packer-2") is False
    assert levels(shop.other_warehouse.id, shop.product.id) == (2, 2)
    assert len(commits("shp_b")) == 1 and commits("shp_a") == []


def test_a_groupbuy_buyer_without_an_address_is_refused(world, shop, courier, session):
    po_id, _ = session
    receive_purchase_order(po_id, 5, shop.other_warehouse.id)
    order = groupbuy_order("ses_kopi", shop.product.id, 1, "gb-3")
    assert book(order.id).body["error"]["code"] == "address_required"


# ---------------------------------------------------------------- the repository the tracking side reads
def test_a_booked_shipment_is_found_by_its_courier_order_and_polled_until_terminal(world, shop, courier):
    """What courier webhooks and the quiet-shipment poll read: the courier's order id finds the shipment; it is in
    transit (polled) from booking until a terminal status; a change written over a stale version is refused."""
    order = retail_order(shop.warehouse.id, shop.product.id)
    repository = composition.shipments_repository()
    courier.down = True
    book(order.id)
    assert repository.in_transit_quiet_since("9999", 10) == []  # not booked: nothing to poll
    courier.down = False
    shipment = repository.get(book(order.id).body["id"])

    assert repository.find_by_courier_order(shipment.courier_order_id) == shipment
    assert [s.id for s in repository.in_transit_quiet_since("9999", 10)] == [shipment.id]
    assert repository.in_transit_quiet_since(shipment.created_at, 10) == []  # not quiet since before it was made

    tx = Transaction()
    delivered = repository.change(tx, shipment, status="delivered", courier_updated_at="2026-12-01T00:00:00Z")
    tx.commit()
    assert (delivered.version, repository.get(shipment.id).status) == (shipment.version + 1, "delivered")
    assert repository.in_transit_quiet_since("9999", 10) == []
    with pytest.raises(ConcurrentUpdate):
        stale = Transaction()
        repository.change(stale, shipment, status="returned")
        stale.commit()


def test_a_courier_without_a_waybill_yet_ships_the_order_and_its_label_waits_for_the_waybill(world, shop, courier):
    """LOG-2, LOG-3 (review 11, waybill later): Biteship answers some couriers' bookings with ``waybill_id: null``;
    the order ships all the same, its label is 409 until the order.waybill_id webhook names the waybill, then
    prints it (the codes scan back to it)."""
    accept_webhook_token(world)
    courier.waybill_later.add("jne")
    order = retail_order(shop.warehouse.id, shop.product.id, "cod")

    response = book(order.id)

    assert response.status == 201, response.body
    shipment = response.body
    assert (shipment["status"], shipment["waybill_id"]) == ("confirmed", None)
    assert composition.order_service().repository.get(order.id).status == "shipped"
    assert levels(shop.warehouse.id, shop.product.id) == (8, 0)
    waiting = label(shipment["id"], WAREHOUSE)
    assert waiting[0] == 409 and json.loads(waiting[2])["error"]["code"] == "shipment_not_booked"
    assert tracking(order.id, WAREHOUSE).body["waybill_id"] is None

    courier_order_id = courier.orders[shipment["id"]].courier_order_id
    assert waybill_event(courier_order_id, "JNE-LATER-1").body == {"status": "applied"}

    status, _, pdf = label(shipment["id"], WAREHOUSE)
    assert status == 200
    assert scanned(pdf) == {"Code128": "JNE-LATER-1", "QRCode": "JNE-LATER-1"}
    assert get_shipment(shipment["id"], WAREHOUSE).body["waybill_id"] == "JNE-LATER-1"
    assert book(order.id).body["waybill_id"] == "JNE-LATER-1"  # a retried booking answers the shipment as it is
    assert len(courier.bookings) == 1
