"""Shipping rates from the courier (LOG-1, issue 9): the Biteship-shaped adapter against a scripted courier over
real HTTP, and the rates service's visible fallback. A courier that answers gives rates with source courier;
one that is down (5xx) is retried, then the rate table answers, flagged and counted; a slow one times out, then
the same; a refusal (4xx) is not retried."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from emulator.courier import LocalCourier
from patungan.core.config import ShippingFallbackRate, settings_from
from patungan.core.errors import DependencyUnavailable
from patungan.core.observability import logger, metrics
from patungan.logistics.courier import BiteshipCourier, CourierUnavailable, rates_request
from patungan.logistics.models import ParcelItem, Place, RateSource
from patungan.logistics.service import ShippingRatesService, fallback_quotes
from tests.support.courier import API_KEY, ScriptedCourier, courier_at

COURIERS = ("jne", "sicepat", "gojek")
ORIGIN = Place("40115", -6.9147, 107.6098)  # Bandung
DESTINATION = Place("12190", -6.2297, 106.8295)  # Jakarta Selatan
ITEMS = [
    ParcelItem(name="Sepatu Kanvas Classic", value=150_000, weight_grams=800, quantity=2),
    ParcelItem(name="Sandal Jepit Karet", value=60_000, weight_grams=1_500, quantity=1),
]
TABLE = (
    ShippingFallbackRate(courier="jne", service="reg", base_price=12_000, per_kg_price=9_000, etd_days=3),
    ShippingFallbackRate(courier="sicepat", service="reg", base_price=11_000, per_kg_price=9_000, etd_days=3),
)
PRICING = {
    "success": True,
    "object": "courier_pricing",
    "pricing": [
        {
            "courier_code": "jne",
            "courier_service_code": "reg",
            "price": 42_000,
            "shipment_duration_range": "2 - 3",
            "shipment_duration_unit": "days",
        },
        {
            "courier_code": "sicepat",
            "courier_service_code": "best",
            "price": 63_000,
            "shipment_duration_range": "1",
            "shipment_duration_unit": "days",
        },
        {  # a courier we did not ask for is not offered
            "courier_code": "lion",
            "courier_service_code": "reg",
            "price": 1,
            "shipment_duration_range": "9",
            "shipment_duration_unit": "days",
        },
    ],
}


def rates_service(courier: Any, table: tuple[ShippingFallbackRate, ...] = TABLE) -> ShippingRatesService:
    # Only quote() is exercised here: products, origins and addresses belong to the route's tests.
    return ShippingRatesService(courier, COURIERS, table, products=None, origins=None, addresses=None)  # type: ignore[arg-type]


@pytest.fixture
def counted() -> Iterator[mock.MagicMock]:
    with mock.patch.object(metrics, "add_metric", wraps=metrics.add_metric) as add_metric:
        yield add_metric


def fallbacks_counted(add_metric: mock.MagicMock) -> int:
    return [call.kwargs["name"] for call in add_metric.call_args_list].count("ShippingRateFallbacks")


def test_a_courier_that_answers_gives_its_rates_cheapest_first_with_source_courier(counted):
    scripted = ScriptedCourier([(200, PRICING)])
    with courier_at(scripted) as courier:
        rates = rates_service(courier).quote(ORIGIN, DESTINATION, ITEMS)

    assert [(r.shipping_method_id, r.price, r.currency, r.etd_days, r.source) for r in rates] == [
        ("jne:reg", 42_000, "IDR", 3, RateSource.COURIER),
        ("sicepat:best", 63_000, "IDR", 1, RateSource.COURIER),
    ]
    assert len(scripted.requests) == 1
    assert fallbacks_counted(counted) == 0


def test_a_courier_that_is_down_is_retried_then_the_rate_table_answers_flagged_and_counted(counted):
    scripted = ScriptedCourier([(503, {"success": False, "error": "maintenance", "code": 50300000})])
    with courier_at(scripted, max_attempts=3) as courier, mock.patch.object(logger, "warning") as warning:
        rates = rates_service(courier).quote(ORIGIN, DESTINATION, ITEMS)

    assert len(scripted.requests) == 3  # retried up to the budget
    # 3.1 kg: four started kilograms at the table's price per kg, plus its base price.
    assert [(r.shipping_method_id, r.price, r.etd_days, r.source) for r in rates] == [
        ("sicepat:reg", 11_000 + 4 * 9_000, 3, RateSource.FALLBACK),
        ("jne:reg", 12_000 + 4 * 9_000, 3, RateSource.FALLBACK),
    ]
    assert fallbacks_counted(counted) == 1
    assert "courier unavailable; quoting the fallback rate table" in [c.args[0] for c in warning.call_args_list]


def test_a_courier_that_recovers_within_the_retries_gives_its_own_rates():
    scripted = ScriptedCourier([(502, {}), (429, {}), (200, PRICING)])
    with courier_at(scripted, max_attempts=3) as courier:
        rates = rates_service(courier).quote(ORIGIN, DESTINATION, ITEMS)

    assert len(scripted.requests) == 3
    assert {rate.source for rate in rates} == {RateSource.COURIER}


def test_a_slow_courier_times_out_each_attempt_then_the_rate_table_answers(counted):
    scripted = ScriptedCourier([None])  # holds every request beyond the adapter's timeout
    with courier_at(scripted, timeout_seconds=0.2, max_attempts=2) as courier:
        rates = rates_service(courier).quote(ORIGIN, DESTINATION, ITEMS)

    assert len(scripted.requests) == 2
    assert rates and {rate.source for rate in rates} == {RateSource.FALLBACK}
    assert fallbacks_counted(counted) == 1


def test_a_refusal_is_not_retried_and_is_logged_as_our_error_with_the_fallback_flagged(counted):
    """A 4xx means our request or key is wrong: the same request would be refused again. The buyer still gets
    flagged fallback prices (the courier is not down; we are at fault), and the log says ERROR so we fix it."""
    scripted = ScriptedCourier([(400, {"success": False, "error": "invalid postal code", "code": 40001001})])
    with courier_at(scripted, max_attempts=3) as courier, mock.patch.object(logger, "error") as error:
        rates = rates_service(courier).quote(ORIGIN, DESTINATION, ITEMS)

    assert len(scripted.requests) == 1
    assert {rate.source for rate in rates} == {RateSource.FALLBACK}
    assert fallbacks_counted(counted) == 1
    [logged] = error.call_args_list
    assert logged.kwargs["extra"]["reason"] == "HTTP 400 invalid postal code"


@pytest.mark.parametrize(
    "answer",
    [
        {"success": True},  # no pricing at all
        {"pricing": [{**PRICING["pricing"][0], "price": -5}]},
        {"pricing": [{**PRICING["pricing"][0], "price": 1.5}]},
        {"pricing": [{**PRICING["pricing"][0], "price": "42000"}]},
        {"pricing": [{**PRICING["pricing"][0], "shipment_duration_range": "soon"}]},
        {"pricing": [{**PRICING["pricing"][0], "currency": "USD"}]},
    ],
)
def test_an_answer_that_is_not_biteships_never_reaches_a_buyer_as_a_price(answer):
    with courier_at(ScriptedCourier([(200, answer)])) as courier:
        rates = rates_service(courier).quote(ORIGIN, DESTINATION, ITEMS)

    assert rates and {rate.source for rate in rates} == {RateSource.FALLBACK}


def test_a_service_quoted_twice_is_offered_once_at_its_lower_price():
    twice = {"pricing": [{**PRICING["pricing"][0], "price": 45_000}, PRICING["pricing"][0]]}
    with courier_at(ScriptedCourier([(200, twice)])) as courier:
        rates = rates_service(courier).quote(ORIGIN, DESTINATION, ITEMS)

    assert [(rate.shipping_method_id, rate.price) for rate in rates] == [("jne:reg", 42_000)]


def test_without_a_rate_table_a_courier_that_is_down_is_a_503_not_an_invented_price():
    with courier_at(ScriptedCourier([(500, {})]), max_attempts=1) as courier, pytest.raises(DependencyUnavailable):
        rates_service(courier, table=()).quote(ORIGIN, DESTINATION, ITEMS)


def test_an_unreachable_courier_is_unavailable_after_its_attempts():
    courier = BiteshipCourier(
        "http://127.0.0.1:9", lambda: API_KEY, timeout_seconds=1, max_attempts=2, sleep=lambda _: None
    )

    with pytest.raises(CourierUnavailable) as failure:
        courier.rates(ORIGIN, DESTINATION, ITEMS, COURIERS)

    assert failure.value.attempts == 2 and not failure.value.refused


def test_contract_our_rates_request_is_biteships():
    """EXTERNAL_APIS.md "Biteship": POST /v1/rates/couriers with origin and destination postal codes (and
    coordinates), couriers as a comma list, items {name, value, weight, quantity}, the key in Authorization."""
    scripted = ScriptedCourier([(200, PRICING)])
    with courier_at(scripted) as courier:
        courier.rates(ORIGIN, DESTINATION, ITEMS, COURIERS)

    [sent] = scripted.requests
    assert (sent["method"], sent["path"], sent["authorization"]) == ("POST", "/v1/rates/couriers", API_KEY)
    assert sent["content_type"] == "application/json"
    assert sent["body"] == {
        "origin_postal_code": 40115,
        "destination_postal_code": 12190,
        "origin_latitude": -6.9147,
        "origin_longitude": 107.6098,
        "destination_latitude": -6.2297,
        "destination_longitude": 106.8295,
        "couriers": "jne,sicepat,gojek",
        "items": [
            {"name": "Sepatu Kanvas Classic", "value": 150_000, "weight": 800, "quantity": 2},
            {"name": "Sandal Jepit Karet", "value": 60_000, "weight": 1_500, "quantity": 1},
        ],
    }


def test_contract_coordinates_are_sent_only_when_both_ends_have_them():
    body = rates_request(Place("40115"), DESTINATION, ITEMS, COURIERS)

    assert not any(key.endswith(("_latitude", "_longitude")) for key in body)


def test_the_local_courier_prices_our_request_like_biteship():
    """The local courier takes what the adapter sends and answers what it reads: regular and next-day services
    between cities, the instant courier only within a city and with coordinates."""
    with courier_at(LocalCourier().wsgi_app) as courier:
        between_cities = courier.rates(ORIGIN, DESTINATION, ITEMS, COURIERS)
        within_bandung = courier.rates(ORIGIN, Place("40117", -6.92, 107.62), ITEMS, COURIERS)
        without_coordinates = courier.rates(ORIGIN, Place("40117"), ITEMS, COURIERS)

    assert {(q.courier, q.service) for q in between_cities} == {
        ("jne", "reg"),
        ("jne", "yes"),
        ("sicepat", "reg"),
        ("sicepat", "best"),
    }
    assert ("gojek", "instant") in {(q.courier, q.service) for q in within_bandung}
    assert ("gojek", "instant") not in {(q.courier, q.service) for q in without_coordinates}
    cheapest_far, cheapest_near = min(q.price for q in between_cities), min(q.price for q in without_coordinates)
    assert cheapest_near < cheapest_far and all(q.price > 0 for q in between_cities)


def test_the_fallback_table_charges_every_started_kilogram():
    [light] = fallback_quotes(TABLE[:1], 1)
    [heavy] = fallback_quotes(TABLE[:1], 2_001)

    assert (light.price, heavy.price) == (12_000 + 9_000, 12_000 + 3 * 9_000)


REQUIRED_SETTINGS = {"CATALOG_TABLE": "c", "OUTBOX_TABLE": "o", "IDEMPOTENCY_TABLE": "i", "EVENT_BUS_NAME": "b"}


def test_the_rate_table_is_configuration_read_and_validated_at_cold_start():
    table = [{"courier": "jne", "service": "reg", "base_price": 1, "per_kg_price": 2, "etd_days": 3}]

    configured = settings_from({**REQUIRED_SETTINGS, "SHIPPING_FALLBACK_RATES": json.dumps(table)})

    assert configured.shipping_fallback_rates == (ShippingFallbackRate(**table[0]),)
    with pytest.raises(RuntimeError, match="SHIPPING_FALLBACK_RATES"):
        settings_from({**REQUIRED_SETTINGS, "SHIPPING_FALLBACK_RATES": '[{"courier": "jne", "base_price": -1}]'})
