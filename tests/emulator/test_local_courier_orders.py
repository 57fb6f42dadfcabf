"""/_courier orders, tracking and status webhooks (issue 11, LOG-2): a booking repeated with its reference_id books
once, each simulated step is in the tracking history and goes out as Biteship's ``order.status`` webhook to the
CourierWebhook Function URL with the token in the URL, what the delivery got is recorded (a 404 while the
function is not deployed included), and the outage switch answers orders and tracking too."""

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
import requests
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from emulator.courier import DEFAULT_WEBHOOK_TOKEN, LocalCourier
from emulator.stack import COURIER_PATH
from emulator.template import REGION
from tests.emulator.support import eventually
from tests.support.servers import serving

API_KEY = {"Authorization": "biteship_local.fake"}
TOKEN = "courier-webhook-token-under-test"
ORDER_REQUEST: dict[str, Any] = {
    "shipper_contact_name": "Gudang Bandung",
    "shipper_contact_phone": "+6281100000001",
    "origin_contact_name": "Gudang Bandung",
    "origin_contact_phone": "+6281100000001",
    "origin_address": "Jl. Asia Afrika 8, Bandung, Jawa Barat",
    "origin_postal_code": 40115,
    "destination_contact_name": "Siti Rahma",
    "destination_contact_phone": "+6281200000002",
    "destination_address": "Jl. Senopati 12, Jakarta Selatan, DKI Jakarta",
    "destination_postal_code": 12190,
    "courier_company": "jne",
    "courier_type": "reg",
    "delivery_type": "now",
    "order_note": "",
    "reference_id": "shp_0001",
    "items": [{"name": "Sepatu", "value": 150_000, "weight": 800, "quantity": 3}],
}


class Webhooks:
    """The local stack's Function URLs as the courier sees them: CourierWebhook answers ``status`` (404: as if
    no such function were deployed) and records what came."""

    def __init__(self) -> None:
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        self.status = 200

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        self.received.put(
            {"path": request.path, "query": parse_qs(request.query_string.decode()), "body": request.get_json()}
        )
        return Response(json.dumps({}), status=self.status, mimetype="application/json")(environ, start_response)

    def next(self) -> dict[str, Any]:
        return self.received.get(timeout=60)  # generous: a delivery that comes returns at once


@pytest.fixture
def webhooks() -> Webhooks:
    return Webhooks()


@pytest.fixture
def local(webhooks: Webhooks) -> Iterator[LocalCourier]:
    with serving(webhooks) as webhook_url:
        courier = LocalCourier(slow_delay_seconds=0, webhook_base_url=webhook_url, webhook_token=TOKEN)
        try:
            yield courier
        finally:
            courier.close()


@pytest.fixture
def courier(local: LocalCourier) -> Client:
    return Client(DispatcherMiddleware(Response("not here", status=404), {COURIER_PATH: local.wsgi_app}))


def book(courier: Client, body: dict[str, Any] = ORDER_REQUEST) -> Any:
    return courier.post(f"{COURIER_PATH}/v1/orders", json=body, headers=API_KEY)


def move(courier: Client, order_id: str, status: str, query: str = "") -> Any:
    return courier.post(f"{COURIER_PATH}/simulate/orders/{order_id}/status{query}", json={"status": status})


def tracking(courier: Client, tracking_id: str) -> Any:
    return courier.get(f"{COURIER_PATH}/v1/trackings/{tracking_id}", headers=API_KEY)


def delivered_outcomes(local: LocalCourier, order_id: str) -> list[str] | None:
    [order] = [order for order in local.orders() if order["id"] == order_id]
    outcomes = [webhook["outcome"] for webhook in order["webhooks"]]
    return None if "sending" in outcomes else outcomes


def test_a_booking_is_biteships_order_confirmed_with_waybill_priced_as_its_rate(courier):
    rate = courier.post(
        f"{COURIER_PATH}/v1/rates/couriers",
        json={
            **{k: ORDER_REQUEST[k] for k in ("origin_postal_code", "destination_postal_code", "items")},
            "couriers": "jne",
        },
        headers=API_KEY,
    ).json["pricing"]
    response = book(courier, {**ORDER_REQUEST, "destination_cash_on_delivery": 450_000})

    assert response.status_code == 200
    order = response.json
    assert order["success"] is True and order["status"] == "confirmed" and order["reference_id"] == "shp_0001"
    assert order["id"] and order["courier"]["tracking_id"] and order["courier"]["waybill_id"].startswith("JNE")
    assert (order["courier"]["company"], order["courier"]["type"]) == ("jne", "reg")
    assert order["price"] == next(p["price"] for p in rate if p["courier_service_code"] == "reg")
    assert order["destination"]["cash_on_delivery"]["amount"] == 450_000


def test_a_booking_repeated_with_its_reference_id_answers_the_same_order_and_books_once(courier, local):
    """LOG-2: the adapter retries a timed-out booking with the same reference_id; the courier must not book it
    twice."""
    first, again = book(courier).json, book(courier).json
    other = book(courier, {**ORDER_REQUEST, "reference_id": "shp_0002"}).json

    assert (again["id"], again["courier"]["waybill_id"]) == (first["id"], first["courier"]["waybill_id"])
    assert other["id"] != first["id"]
    assert sorted(order["reference_id"] for order in local.orders()) == ["shp_0001", "shp_0002"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"destination_address": ""}, "destination_address"),
        ({"destination_postal_code": 123}, "destination_postal_code"),
        ({"courier_type": "kilat"}, "jne kilat"),
        ({"destination_cash_on_delivery": -1}, "destination_cash_on_delivery"),
        ({"items": []}, "items"),
    ],
)
def test_an_order_request_biteship_would_refuse_is_a_400_and_books_nothing(courier, local, change, named):
    response = book(courier, {**ORDER_REQUEST, **change})

    assert response.status_code == 400 and named in response.json["error"]
    assert local.orders() == []


def test_a_step_goes_out_as_biteships_order_status_webhook_with_the_token_in_the_url(courier, local, webhooks):
    order = book(courier).json

    moved = move(courier, order["id"], "picked")

    assert moved.status_code == 200 and moved.json["status"] == "picked"
    webhook = webhooks.next()
    assert webhook["path"] == "/_url/CourierWebhook/"
    assert webhook["query"] == {"token": [TOKEN]}
    assert webhook["body"] == {
        "event": "order.status",
        "order_id": order["id"],
        "courier_tracking_id": order["courier"]["tracking_id"],
        "courier_waybill_id": order["courier"]["waybill_id"],
        "courier_company": "jne",
        "courier_type": "reg",
        "courier_driver_name": None,
        "courier_driver_phone": None,
        "courier_link": None,
        "order_price": order["price"],
        "status": "picked",
        "updated_at": moved.json["history"][-1]["updated_at"],
    }
    assert eventually(lambda: delivered_outcomes(local, order["id"])) == ["HTTP 200"]


def test_a_webhook_to_a_function_not_deployed_is_recorded_as_404_and_the_courier_goes_on(courier, local, webhooks):
    webhooks.status = 404
    order = book(courier).json

    assert move(courier, order["id"], "picked").status_code == 200
    assert webhooks.next()["body"]["status"] == "picked"
    assert eventually(lambda: delivered_outcomes(local, order["id"])) == ["HTTP 404"]
    assert move(courier, order["id"], "dropping_off").status_code == 200


def test_tracking_lists_every_step_oldest_first_each_later_than_the_last(courier):
    order = book(courier).json
    for status in ("allocated", "picking_up", "picked", "dropping_off", "delivered"):
        assert move(courier, order["id"], status).status_code == 200

    by_tracking_id = tracking(courier, order["courier"]["tracking_id"])
    by_order_id = tracking(courier, order["id"])

    assert by_tracking_id.status_code == 200
    history = by_tracking_id.json["history"]
    assert [step["status"] for step in history] == [
        "confirmed",
        "allocated",
        "picking_up",
        "picked",
        "dropping_off",
        "delivered",
    ]
    assert all(step["note"] for step in history)
    moments = [step["updated_at"] for step in history]
    assert moments == sorted(set(moments))  # strictly later: a stale-updated_at check never drops a real step
    assert by_tracking_id.json["waybill_id"] == order["courier"]["waybill_id"]
    assert by_order_id.json == by_tracking_id.json
    assert courier.get(f"{COURIER_PATH}/v1/orders/{order['id']}", headers=API_KEY).json["status"] == "delivered"
    assert tracking(courier, "no-such-parcel").status_code == 404


def test_the_same_status_again_resends_the_webhook_and_a_finished_order_moves_no_more(courier, local, webhooks):
    order = book(courier).json
    first = move(courier, order["id"], "delivered").json
    again = move(courier, order["id"], "delivered")

    assert again.status_code == 200 and again.json["history"] == first["history"]  # nothing changed
    assert [webhooks.next()["body"]["updated_at"] for _ in range(2)] == [first["history"][-1]["updated_at"]] * 2
    refused = move(courier, order["id"], "returned")
    assert refused.status_code == 409 and refused.json["success"] is False
    assert tracking(courier, order["id"]).json["status"] == "delivered"


def test_deliver_false_moves_the_order_without_a_webhook(courier, local, webhooks):
    """A lost webhook: what the scheduled tracking poll is for."""
    order = book(courier).json

    assert move(courier, order["id"], "picked", "?deliver=false").status_code == 200
    assert move(courier, order["id"], "dropping_off").status_code == 200

    assert webhooks.next()["body"]["status"] == "dropping_off"  # the first webhook sent is the second step's
    assert tracking(courier, order["id"]).json["history"][-2]["status"] == "picked"


def test_an_unknown_status_or_order_is_refused(courier):
    order = book(courier).json

    assert move(courier, order["id"], "teleported").status_code == 400
    assert move(courier, "no-such-order", "picked").status_code == 404


def test_down_answers_orders_and_tracking_503_and_books_nothing(courier, local):
    order = book(courier).json
    courier.post(f"{COURIER_PATH}/simulate/outage", json={"mode": "down"})

    assert book(courier, {**ORDER_REQUEST, "reference_id": "shp_0002"}).status_code == 503
    assert tracking(courier, order["id"]).status_code == 503
    assert courier.get(f"{COURIER_PATH}/v1/orders/{order['id']}", headers=API_KEY).status_code == 503
    assert [o["reference_id"] for o in local.orders()] == ["shp_0001"]

    courier.post(f"{COURIER_PATH}/simulate/outage", json={"mode": "up"})
    assert tracking(courier, order["id"]).status_code == 200


def test_orders_need_the_api_key(courier):
    assert courier.post(f"{COURIER_PATH}/v1/orders", json=ORDER_REQUEST).status_code == 401


def test_the_page_lists_orders_and_its_buttons_move_a_parcel_to_the_door(courier, local, webhooks):
    order = book(courier).json
    page = courier.get(f"{COURIER_PATH}/")

    assert order["courier"]["waybill_id"] in page.text
    action = f'action="{COURIER_PATH}/simulate/orders/{order["id"]}/status"'
    assert action in page.text and 'value="allocated"' in page.text  # the next step from confirmed

    pressed = courier.post(f"{COURIER_PATH}/simulate/orders/{order['id']}/status", data={"status": "allocated"})

    assert pressed.status_code == 303 and pressed.headers["Location"] == f"{COURIER_PATH}/"
    assert webhooks.next()["body"]["status"] == "allocated"
    listed = courier.get(f"{COURIER_PATH}/", headers={"Accept": "application/json"}).json
    assert [o["status"] for o in listed["orders"]] == ["allocated"]
    assert 'value="picking_up"' in courier.get(f"{COURIER_PATH}/").text


def test_a_step_sent_as_curl_d_sends_it_is_read_as_json(courier):
    """The README's ``curl -d '{"status": "picked"}'`` posts JSON with a form content type."""
    order = book(courier).json

    moved = courier.post(
        f"{COURIER_PATH}/simulate/orders/{order['id']}/status",
        data='{"status": "picked"}',
        content_type="application/x-www-form-urlencoded",
    )

    assert moved.status_code == 200 and moved.json["status"] == "picked"


def test_in_the_local_stack_the_token_is_in_ssm_and_a_webhook_to_a_missing_function_is_recorded(stack):
    """The stack seeds the token CourierWebhook verifies against, and its courier delivers to the stack's Function
    URL: with no CourierWebhook deployed (this fixture template has none) the 404 is recorded, nothing crashes."""
    ssm = boto3.client("ssm", region_name=REGION)
    seeded = ssm.get_parameter(Name="/patungan/courier/webhook-token", WithDecryption=True)["Parameter"]["Value"]
    assert seeded == DEFAULT_WEBHOOK_TOKEN
    headers = {**API_KEY, "Content-Type": "application/json"}
    order = requests.post(f"{stack.courier_url}/v1/orders", json=ORDER_REQUEST, headers=headers, timeout=10).json()

    moved = requests.post(
        f"{stack.courier_url}/simulate/orders/{order['id']}/status", json={"status": "picked"}, timeout=10
    )

    assert moved.status_code == 200

    def outcomes() -> list[str] | None:
        page = requests.get(stack.courier_url, headers={"Accept": "application/json"}, timeout=10).json()
        [listed] = [o for o in page["orders"] if o["id"] == order["id"]]
        return None if listed["webhooks"][-1]["outcome"] == "sending" else [w["outcome"] for w in listed["webhooks"]]

    assert eventually(outcomes) == ["HTTP 404"]


INSTANT_ORDER = {
    **ORDER_REQUEST,
    "destination_address": "Jl. Dago 20, Bandung, Jawa Barat",
    "destination_postal_code": 40135,
    "origin_coordinate": {"latitude": -6.9147, "longitude": 107.6098},
    "destination_coordinate": {"latitude": -6.8915, "longitude": 107.6107},
    "courier_company": "gojek",
    "courier_type": "instant",
    "reference_id": "shp_instant",
}


def test_the_instant_courier_books_without_a_waybill_and_announces_it_when_a_driver_is_allocated(
    courier, local, webhooks
):
    """LOG-2, LOG-3 (review 11, waybill later): as Biteship's instant couriers do, gojek answers the booking with
    ``waybill_id: null``; the order moving to allocated assigns it: order.waybill_id goes out first, then
    order.status, both naming it, and the tracking carries it."""
    booked = book(courier, INSTANT_ORDER).json
    assert booked["courier"]["waybill_id"] is None
    assert tracking(courier, booked["courier"]["tracking_id"]).json["waybill_id"] is None

    assert move(courier, booked["id"], "allocated").status_code == 200

    waybill_hook, status_hook = webhooks.next()["body"], webhooks.next()["body"]
    waybill_id = waybill_hook["courier_waybill_id"]
    assert waybill_id.startswith("GOJEK")
    assert (waybill_hook["event"], waybill_hook["order_id"], waybill_hook["status"]) == (
        "order.waybill_id",
        booked["id"],
        "allocated",
    )
    assert (status_hook["event"], status_hook["courier_waybill_id"]) == ("order.status", waybill_id)
    assert tracking(courier, booked["courier"]["tracking_id"]).json["waybill_id"] == waybill_id
    assert book(courier, INSTANT_ORDER).json["courier"]["waybill_id"] == waybill_id  # the same order, now with it
    move(courier, booked["id"], "picking_up")
    assert webhooks.next()["body"]["event"] == "order.status"  # assigned once: no second waybill event
    assert webhooks.received.empty()
