"""/_courier, the local courier (LOG-1, issue 9): Biteship's rates API, an outage switch so the fallback can be
seen (down: 503, slow: held beyond the caller's timeout, up), and a page listing what it quoted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client
from werkzeug.wrappers import Response

from emulator.courier import LocalCourier
from emulator.stack import COURIER_PATH

API_KEY = {"Authorization": "biteship_local.fake"}
RATES_REQUEST = {
    "origin_postal_code": 40115,
    "destination_postal_code": 12190,
    "couriers": "jne,sicepat,anteraja,gojek",
    "items": [{"name": "Sepatu", "value": 150_000, "weight": 800, "quantity": 3}],
}


@pytest.fixture
def local() -> Iterator[LocalCourier]:
    courier = LocalCourier(slow_delay_seconds=0)  # slow holds for 0 s: the hold is the adapter tests' subject
    try:
        yield courier
    finally:
        courier.close()


@pytest.fixture
def courier(local: LocalCourier) -> Client:
    return Client(DispatcherMiddleware(Response("not here", status=404), {COURIER_PATH: local.wsgi_app}))


def rates(courier: Client, body: dict[str, Any] = RATES_REQUEST, headers: dict[str, str] = API_KEY) -> Any:
    return courier.post(f"{COURIER_PATH}/v1/rates/couriers", json=body, headers=headers)


def outage(courier: Client, body: dict[str, Any]) -> Any:
    return courier.post(f"{COURIER_PATH}/simulate/outage", json=body)


def test_rates_per_courier_and_service_priced_by_weight_and_distance(courier):
    response = rates(courier)

    assert response.status_code == 200
    pricing = response.json["pricing"]
    assert {(p["courier_code"], p["courier_service_code"]) for p in pricing} == {
        ("jne", "reg"),
        ("jne", "yes"),
        ("sicepat", "reg"),
        ("sicepat", "best"),
        ("anteraja", "reg"),
    }
    # 2.4 kg is charged as 3 started kilograms, 4.8 kg as 5: the same price per kilogram.
    heavier = rates(courier, {**RATES_REQUEST, "items": [{**RATES_REQUEST["items"][0], "quantity": 6}]}).json
    price = {(p["courier_code"], p["courier_service_code"]): p["price"] for p in pricing}
    assert {(p["courier_code"], p["courier_service_code"]): p["price"] * 3 for p in heavier["pricing"]} == {
        service: amount * 5 for service, amount in price.items()
    }
    within_the_city = rates(courier, {**RATES_REQUEST, "destination_postal_code": 40117}).json["pricing"]
    assert all(p["price"] < price[(p["courier_code"], p["courier_service_code"])] for p in within_the_city)


def test_an_api_request_without_a_key_is_refused_in_biteships_shape(courier):
    response = rates(courier, headers={})

    assert response.status_code == 401
    assert response.json["success"] is False and response.json["error"]


def test_a_request_biteship_would_refuse_is_a_400(courier):
    response = rates(courier, {**RATES_REQUEST, "destination_postal_code": 123})

    assert response.status_code == 400
    assert "destination_postal_code" in response.json["error"]


def test_down_answers_503_until_up_again(courier):
    assert outage(courier, {"mode": "down"}).status_code == 200
    assert rates(courier).status_code == 503

    assert outage(courier, {"mode": "up"}).status_code == 200
    assert rates(courier).status_code == 200


def test_slow_holds_the_request_then_answers(courier):
    assert outage(courier, {"mode": "slow", "delay_seconds": 0}).json == {"mode": "slow", "delay_seconds": 0.0}

    assert rates(courier).status_code == 200


def test_an_unknown_outage_mode_is_refused(courier):
    assert outage(courier, {"mode": "sideways"}).status_code == 400
    assert outage(courier, {"mode": "slow", "delay_seconds": -1}).status_code == 400


def test_the_page_lists_what_was_quoted_and_what_was_not_newest_first(courier):
    rates(courier)
    outage(courier, {"mode": "down"})
    rates(courier)

    listed = courier.get(f"{COURIER_PATH}/", headers={"Accept": "application/json"}).json
    assert listed["outage"]["mode"] == "down"
    assert [quote["answer"].split(" ")[0] for quote in listed["quotes"]] == ["503", "5"]
    assert listed["quotes"][1]["weight_grams"] == 2_400
    page = courier.get(f"{COURIER_PATH}/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "jne reg Rp" in page.text and "simulated outage" in page.text
