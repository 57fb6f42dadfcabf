"""The courier adapter books pickups and reads tracking (issue 11, LOG-2) in Biteship's shapes: the booking is
retried after a timeout with the same reference_id and books once; a refusal is not retried; an answer without
an order id or a waybill is the courier unavailable, never a half-booked shipment; tracking comes back oldest
first in UTC."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator.courier import LocalCourier
from patungan.accounts.models import PostalAddress
from patungan.logistics.courier import CourierUnavailable
from patungan.logistics.models import CourierBooked, CourierBooking, CourierStatus, CourierTrackingEvent, ParcelItem
from tests.support.courier import API_KEY, ScriptedCourier, courier_at

WAREHOUSE = PostalAddress(
    recipient_name="Gudang Bandung",
    phone="+6281100000001",
    line1="Jl. Asia Afrika 8",
    city="Bandung",
    province="Jawa Barat",
    postal_code="40115",
    latitude=-6.9147,
    longitude=107.6098,
)
BUYER = PostalAddress(
    recipient_name="Siti Rahma",
    phone="+6281200000002",
    line1="Jl. Senopati 12",
    line2="Lantai 3",
    city="Jakarta Selatan",
    province="DKI Jakarta",
    postal_code="12190",
)
ITEMS = (ParcelItem(name="Sepatu Kanvas Classic", value=150_000, weight_grams=800, quantity=2),)
BOOKING = CourierBooking(
    reference_id="shp_0001", courier="jne", service="reg", origin=WAREHOUSE, destination=BUYER, items=ITEMS
)
ORDER = {
    "success": True,
    "object": "order",
    "id": "5dd599ebdefcd4158eb8470b",
    "reference_id": "shp_0001",
    "courier": {"tracking_id": "6a9c7e2f1d", "waybill_id": "JNE000123456789", "company": "jne", "type": "reg"},
    "price": 38_000,
    "status": "confirmed",
}
TRACKING = {
    "success": True,
    "object": "tracking",
    "id": "6a9c7e2f1d",
    "history": [  # Biteship answers in WIB (+07:00), not necessarily in order
        {"note": "Parcel picked up", "status": "picked", "updated_at": "2026-11-30T14:05:00+07:00"},
        {"note": "Order confirmed", "status": "confirmed", "updated_at": "2026-11-30T13:00:00+07:00"},
    ],
}


def test_contract_our_booking_is_biteships_order_request():
    """EXTERNAL_APIS.md "Biteship": POST /v1/orders with the sender, both ends' contact, address and postal code
    (coordinates when known), courier_company/courier_type, delivery now, reference_id = our shipment id, the
    items, and the COD amount as destination_cash_on_delivery."""
    scripted = ScriptedCourier([(200, ORDER)])
    with courier_at(scripted) as courier:
        booked = courier.book(BOOKING)
        courier.book(CourierBooking(**{**BOOKING.__dict__, "cod_amount": 300_000}))

    paid, cod = scripted.requests
    assert (paid["method"], paid["path"], paid["authorization"]) == ("POST", "/v1/orders", API_KEY)
    assert paid["body"] == {
        "shipper_contact_name": "Gudang Bandung",
        "shipper_contact_phone": "+6281100000001",
        "origin_contact_name": "Gudang Bandung",
        "origin_contact_phone": "+6281100000001",
        "origin_address": "Jl. Asia Afrika 8, Bandung, Jawa Barat",
        "origin_postal_code": 40115,
        "origin_coordinate": {"latitude": -6.9147, "longitude": 107.6098},
        "destination_contact_name": "Siti Rahma",
        "destination_contact_phone": "+6281200000002",
        "destination_address": "Jl. Senopati 12, Lantai 3, Jakarta Selatan, DKI Jakarta",
        "destination_postal_code": 12190,
        "courier_company": "jne",
        "courier_type": "reg",
        "delivery_type": "now",
        "order_note": "",
        "reference_id": "shp_0001",
        "items": [{"name": "Sepatu Kanvas Classic", "value": 150_000, "weight": 800, "quantity": 2}],
    }
    assert cod["body"]["destination_cash_on_delivery"] == 300_000
    assert booked == CourierBooked(
        courier_order_id="5dd599ebdefcd4158eb8470b",
        waybill_id="JNE000123456789",
        tracking_id="6a9c7e2f1d",
        status=CourierStatus.CONFIRMED,
        price=38_000,
    )


class AnswerLostOnce:
    """The local courier behind a network that loses the first answer: the first booking reaches the courier
    (it books), then its answer is held beyond the adapter's timeout; later requests pass."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.requests = 0
        self.released = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.requests += 1
        answer = self.app(environ, start_response)
        if self.requests == 1:
            self.released.wait(30)
        return answer


@pytest.fixture
def local() -> Iterator[LocalCourier]:
    courier = LocalCourier()
    try:
        yield courier
    finally:
        courier.close()


def test_a_booking_retried_after_a_timeout_books_once_against_the_local_courier(local):
    """LOG-2, issue 11: the first answer is lost to the timeout; the retry sends the same reference_id and gets
    the order already booked, not a second pickup."""
    network = AnswerLostOnce(local.wsgi_app)
    try:
        with courier_at(network, timeout_seconds=0.5, max_attempts=3) as courier:
            booked = courier.book(BOOKING)
    finally:
        network.released.set()

    assert network.requests == 2
    [order] = local.orders()
    assert order["reference_id"] == "shp_0001"
    assert (booked.courier_order_id, booked.waybill_id) == (order["id"], order["courier"]["waybill_id"])
    assert booked.status is CourierStatus.CONFIRMED and booked.price == order["price"] > 0


def test_a_refused_booking_is_not_retried():
    scripted = ScriptedCourier([(400, {"success": False, "error": "courier_type is not valid", "code": 40002001})])
    with courier_at(scripted, max_attempts=3) as courier, pytest.raises(CourierUnavailable) as failure:
        courier.book(BOOKING)

    assert len(scripted.requests) == 1
    assert failure.value.refused and failure.value.reason == "HTTP 400 courier_type is not valid"


def test_a_booking_the_courier_cannot_answer_is_retried_then_unavailable():
    scripted = ScriptedCourier([(503, {}), (502, {}), (500, {})])
    with courier_at(scripted, max_attempts=3) as courier, pytest.raises(CourierUnavailable) as failure:
        courier.book(BOOKING)

    assert len(scripted.requests) == 3 and not failure.value.refused
    assert {request["body"]["reference_id"] for request in scripted.requests} == {"shp_0001"}


@pytest.mark.parametrize(
    "answer",
    [
        {**ORDER, "id": None},  # no order id
        {**ORDER, "courier": {**ORDER["courier"], "waybill_id": ""}},  # a waybill that is no id
        {**ORDER, "id": None, "courier": {**ORDER["courier"], "waybill_id": None}},  # no ids at all
        {k: v for k, v in ORDER.items() if k != "courier"},
        {**ORDER, "reference_id": "shp_someone_else"},  # another shipment's order
        {**ORDER, "status": "teleported"},
        {**ORDER, "price": -1},
        {**ORDER, "success": False},
        ["not", "an", "order"],
    ],
)
def test_an_answer_that_is_not_a_complete_order_is_unavailable_never_half_booked(answer):
    with courier_at(ScriptedCourier([(200, answer)])) as courier, pytest.raises(CourierUnavailable) as failure:
        courier.book(BOOKING)

    assert not failure.value.refused  # a retry (same reference_id) may get the complete order


@pytest.mark.parametrize(
    "courier_part",
    [
        {**ORDER["courier"], "waybill_id": None},
        {k: v for k, v in ORDER["courier"].items() if k != "waybill_id"},
    ],
)
def test_a_booking_answered_without_a_waybill_is_booked_its_waybill_to_come(courier_part):
    """LOG-2 (review 11, waybill later): some couriers (instant ones) assign the waybill after the booking and
    announce it by the order.waybill_id webhook: the order is booked, its waybill None until then."""
    with courier_at(ScriptedCourier([(200, {**ORDER, "courier": courier_part})])) as courier:
        booked = courier.book(BOOKING)

    assert booked == CourierBooked("5dd599ebdefcd4158eb8470b", None, "6a9c7e2f1d", CourierStatus.CONFIRMED, 38_000)


def test_tracking_carries_the_waybill_once_the_courier_assigned_it():
    with courier_at(ScriptedCourier([(200, TRACKING), (200, {**TRACKING, "waybill_id": "GOJEK-1"})])) as courier:
        before, after = courier.tracking("6a9c7e2f1d"), courier.tracking("6a9c7e2f1d")

    assert (before.waybill_id, after.waybill_id) == (None, "GOJEK-1")
    assert after.history == before.history


def test_tracking_is_the_history_oldest_first_in_utc():
    scripted = ScriptedCourier([(503, {}), (200, TRACKING)])
    with courier_at(scripted) as courier:
        tracked = courier.tracking("6a9c7e2f1d")

    assert [(r["method"], r["path"], r["body"], r["content_type"]) for r in scripted.requests] == [
        ("GET", "/v1/trackings/6a9c7e2f1d", None, None)
    ] * 2  # a GET is retried like a POST
    assert tracked.history == [
        CourierTrackingEvent(CourierStatus.CONFIRMED, "Order confirmed", "2026-11-30T06:00:00.000Z"),
        CourierTrackingEvent(CourierStatus.PICKED, "Parcel picked up", "2026-11-30T07:05:00.000Z"),
    ]


@pytest.mark.parametrize(
    "answer",
    [
        {"success": True},
        {"history": [{"status": "picked", "note": "", "updated_at": "yesterday"}]},
        {"history": [{"status": "lost_in_space", "note": "", "updated_at": "2026-11-30T07:05:00Z"}]},
        {"history": [{"status": "picked", "note": ""}]},
        {"history": [], "waybill_id": ""},
    ],
)
def test_tracking_that_is_not_biteships_is_unavailable(answer):
    with courier_at(ScriptedCourier([(200, answer)])) as courier, pytest.raises(CourierUnavailable):
        courier.tracking("6a9c7e2f1d")


def test_the_local_courier_books_and_tracks_what_the_adapter_sends(local):
    with courier_at(local.wsgi_app) as courier:
        booked = courier.book(CourierBooking(**{**BOOKING.__dict__, "cod_amount": 300_000}))
        local.move_order(booked.courier_order_id, "picked", "Parcel picked up", deliver=False)
        history = courier.tracking(booked.tracking_id or booked.courier_order_id).history

    [order] = local.orders()
    assert order["destination"]["cash_on_delivery"]["amount"] == 300_000
    assert [event.status for event in history] == [CourierStatus.CONFIRMED, CourierStatus.PICKED]
    assert history[0].updated_at < history[1].updated_at  # the same second, still in order (milliseconds)
