"""POST /v1/shipping/rates in-process on moto, against the local courier over HTTP (LOG-1, CHK-10, issue 9):
rates from the warehouse holding every item to a postal code or to the caller's own address, the flagged
fallback when the courier is down, and the errors a buyer can cause. Every call runs as
GetShippingRatesFunction under its template role (least privilege: a call it may not make fails the test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS
from botocore.awsrequest import AWSResponse

from emulator import permissions
from emulator.courier import LocalCourier, OutageMode
from emulator.template import Template
from patungan.adapters.aws import client
from patungan.catalog.models import Organisation
from patungan.catalog.service import catalog_service
from patungan.core.clock import SystemClock
from patungan.core.config import get_settings
from patungan.core.events import new_event
from tests.support import lambdas
from tests.support.aws import local_aws
from tests.support.lambdas import ApiResponse, call_api, claims
from tests.support.servers import serving
from tests.support.stock import StockWorld, receive, stock_world

BUYER = claims("buyer-1", "buyer")
OTHER_BUYER = claims("buyer-2", "buyer")
COURIER_KEY = "biteship_test.NOT_A_SECRET"
JAKARTA_SELATAN = {"postal_code": "12190"}
NOW = "2026-11-30T00:00:00Z"


@dataclass
class Shipping:
    courier: LocalCourier
    stock: StockWorld

    def outage(self, mode: str) -> None:
        self.courier.set_outage(OutageMode(mode))

    def courier_quotes(self) -> list[dict]:
        return self.courier.quotes()


@pytest.fixture
def shipping() -> Iterator[Shipping]:
    courier = LocalCourier(slow_delay_seconds=5)
    with serving(courier.wsgi_app) as courier_url:
        overrides = {"COURIER_API_URL": courier_url, "COURIER_TIMEOUT_SECONDS": "0.5", "COURIER_MAX_ATTEMPTS": "2"}
        with local_aws(overrides) as aws:
            boto3.client("ssm").put_parameter(
                Name=aws.template.parameter("CourierApiKeyParameter"), Value=COURIER_KEY, Type="SecureString"
            )
            world = stock_world()
            receive((world.warehouse.id, world.product.id, None), 10)
            try:
                yield Shipping(courier, world)
            finally:
                courier.close()


def rates(body: dict, who: dict | None = None, headers: dict | None = None) -> ApiResponse:
    return call_api("GetShippingRatesFunction", "POST", "/v1/shipping/rates", body=body, claims=who, headers=headers)


def items(product_id: str, quantity: int = 2, variant_id: str | None = None) -> list[dict]:
    item = {"product_id": product_id, "quantity": quantity}
    return [item | {"variant_id": variant_id}] if variant_id else [item]


def save_address(who: dict, postal_code: str = "12190") -> str:
    response = call_api(
        "CreateAddressFunction",
        "POST",
        "/v1/addresses",
        body={
            "recipient_name": "Siti",
            "phone": "0812-3456-7890",
            "line1": "Jl. Senopati 5",
            "city": "Jakarta Selatan",
            "province": "DKI Jakarta",
            "postal_code": postal_code,
        },
        claims=who,
    )
    assert response.status == 201, response.body
    return response.body["id"]


def test_a_guest_gets_courier_rates_from_the_warehouse_holding_the_items(shipping):
    response = rates({"destination": JAKARTA_SELATAN, "items": items(shipping.stock.product.id)})

    assert response.status == 200, response.body
    assert response.body["origin_warehouse_id"] == shipping.stock.warehouse.id
    found = response.body["rates"]
    assert {rate["shipping_method_id"] for rate in found} >= {"jne:reg", "sicepat:reg", "anteraja:reg"}
    assert {(rate["source"], rate["currency"]) for rate in found} == {("courier", "IDR")}
    assert [rate["price"] for rate in found] == sorted(rate["price"] for rate in found)
    [quoted] = shipping.courier_quotes()
    assert quoted["weight_grams"] == 2 * shipping.stock.product.weight_grams  # weight from the catalog x quantity


def test_with_the_courier_down_the_rates_are_the_rate_tables_flagged_fallback(shipping):
    shipping.outage("down")

    response = rates({"destination": JAKARTA_SELATAN, "items": items(shipping.stock.product.id)})

    assert response.status == 200, response.body
    assert response.body["rates"] and {rate["source"] for rate in response.body["rates"]} == {"fallback"}
    assert {rate["shipping_method_id"] for rate in response.body["rates"]} == {"jne:reg", "sicepat:reg", "anteraja:reg"}


def test_a_signed_in_buyer_gets_rates_to_a_saved_address(shipping):
    address_id = save_address(BUYER)

    response = rates({"address_id": address_id, "items": items(shipping.stock.product.id)}, who=BUYER)

    assert response.status == 200, response.body
    assert {rate["source"] for rate in response.body["rates"]} == {"courier"}
    assert shipping.courier_quotes()[0]["destination_postal_code"] == 12190


def test_another_buyers_address_is_not_found(shipping):
    address_id = save_address(OTHER_BUYER)

    response = rates({"address_id": address_id, "items": items(shipping.stock.product.id)}, who=BUYER)

    assert response.status == 404
    assert shipping.courier_quotes() == []


def test_a_guest_cannot_name_a_saved_address(shipping):
    response = rates({"address_id": "adr_anything", "items": items(shipping.stock.product.id)})

    assert response.status == 401


def test_a_postal_code_that_is_not_five_digits_is_422_naming_the_field(shipping):
    response = rates({"destination": {"postal_code": "1219"}, "items": items(shipping.stock.product.id)})

    assert response.status == 422
    assert [detail["field"] for detail in response.body["error"]["details"]] == ["body.destination.postal_code"]


def test_an_unknown_product_or_variant_is_422_naming_the_item(shipping):
    unknown = rates({"destination": JAKARTA_SELATAN, "items": items(shipping.stock.product.id) + items("prd_nope")})
    no_variant = rates({"destination": JAKARTA_SELATAN, "items": items(shipping.stock.shirt.id, variant_id="v_xl")})

    assert (unknown.status, unknown.body["error"]["details"][0]["field"]) == (422, "items.1.product_id")
    assert (no_variant.status, no_variant.body["error"]["details"][0]["field"]) == (422, "items.0.variant_id")
    unchosen = rates({"destination": JAKARTA_SELATAN, "items": items(shipping.stock.shirt.id)})
    assert (unchosen.status, unchosen.body["error"]["details"][0]["field"]) == (422, "items.0.variant_id")


def test_a_variant_is_priced_and_shipped_from_the_warehouse_holding_it(shipping):
    receive((shipping.stock.other_warehouse.id, shipping.stock.shirt.id, "v_m"), 5)

    response = rates({"destination": JAKARTA_SELATAN, "items": items(shipping.stock.shirt.id, variant_id="v_m")})

    assert response.status == 200, response.body
    assert response.body["origin_warehouse_id"] == shipping.stock.other_warehouse.id


def test_items_no_single_warehouse_holds_are_409_insufficient_stock(shipping):
    """CHK-10: one warehouse ships the whole parcel; 10 units are held, 11 asked."""
    response = rates({"destination": JAKARTA_SELATAN, "items": items(shipping.stock.product.id, quantity=11)})

    assert (response.status, response.body["error"]["code"]) == (409, "insufficient_stock")
    assert shipping.courier_quotes() == []


def test_items_of_two_sellers_are_refused_each_seller_ships_its_own_parcel(shipping):
    seller = Organisation(id="sel_2", name="Toko 2", phone="+6281234567891", owner_user_id="o-2", created_at=NOW)
    catalog_service().repository.add_organisation("seller", seller)
    other = shipping.stock.product.model_copy(update={"id": "prd_other", "slug": "prd-other", "seller_id": seller.id})
    catalog_service().repository.add_product(other, new_event("catalog.product.created", other.id, {}, SystemClock()))

    response = rates({"destination": JAKARTA_SELATAN, "items": items(shipping.stock.product.id) + items(other.id)})

    assert (response.status, response.body["error"]["details"][0]["field"]) == (422, "items")


@pytest.fixture
def rates_without_the_courier_key(monkeypatch):
    """The template with GetShippingRatesFunction's grant on the courier key taken away, in a fresh container
    (an earlier test's warm one holds the key it read)."""
    for provider in DEFAULT_PROVIDERS.values():
        provider.clear_cache()
    template = Template.load()
    policies = template.resources["GetShippingRatesFunction"]["Properties"]["Policies"]
    policies[:] = [policy for policy in policies if "Statement" not in policy]
    permissions.install()
    monkeypatch.setattr(lambdas, "function_roles", lambda: permissions.FunctionRoles(template))


def test_least_privilege_the_courier_key_is_read_under_the_functions_own_grant(shipping, rates_without_the_courier_key):
    rates({"destination": JAKARTA_SELATAN, "items": items(shipping.stock.product.id)})

    key = "arn:aws:ssm:ap-southeast-3:123456789012:parameter/patungan/courier/api-key"
    assert [str(denial) for denial in permissions.take_denials()] == [
        f"GetShippingRatesFunction called ssm:GetParameter on {key} but its policies do not allow it"
    ]


def test_a_forged_token_is_401_not_taken_for_a_guest(shipping):
    body = {"destination": JAKARTA_SELATAN, "items": items(shipping.stock.product.id)}

    response = rates(body, headers={"Authorization": "Bearer not-a-token"})

    assert (response.status, response.body["error"]["code"]) == (401, "unauthorized")
    assert shipping.courier_quotes() == []


def test_an_unreadable_courier_key_is_503_retryable_not_a_500(shipping):
    """LOG-1, review of issue 9: SSM not answering for the courier key is a dependency that is down (503, the
    client retries, nothing was asked of the courier), never a 500 with an internal error."""
    for provider in DEFAULT_PROVIDERS.values():
        provider.clear_cache()  # a warm container would still hold the key an earlier call read
    boto3.client("ssm").delete_parameter(Name=Template.load().parameter("CourierApiKeyParameter"))

    response = rates({"destination": JAKARTA_SELATAN, "items": items(shipping.stock.product.id)})

    assert (response.status, response.body["error"]["code"]) == (503, "service_unavailable"), response.body
    assert shipping.courier_quotes() == []


def test_stock_unreadable_is_503_retryable_and_the_courier_is_not_asked(shipping):
    """LOG-1, CHK-10, review of issue 9: the origin warehouse comes from the stock; the inventory table not
    answering is a dependency down (503), never a 500 and never a price from a warehouse guessed without it."""
    inventory = get_settings().inventory_table

    def throttled(params, **_):
        if json.loads(params["body"])["TableName"] == inventory:
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}}
            return AWSResponse(None, 400, {}, None), error
        return None

    client("dynamodb").meta.events.register("before-call.dynamodb.Query", throttled)

    response = rates({"destination": JAKARTA_SELATAN, "items": items(shipping.stock.product.id)})

    assert (response.status, response.body["error"]["code"]) == (503, "service_unavailable"), response.body
    assert shipping.courier_quotes() == []
