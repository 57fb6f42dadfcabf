"""The confirm saga priced by the REAL pricing engine (issue 10 review): the preview over HTTP, confirm and every
saga step with ``composition.checkout_pricing()`` (cart, promotions, courier rates from the local courier, PPN),
so the amount charged is the engine's total, not a stand-in's. test_checkout_saga.py keeps a plain catalog quote
where the subject is the saga's own mechanics (races between steps, crashes); here the subject is the money."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests

from emulator.courier import LocalCourier
from patungan import composition
from patungan.checkout.cart import CartItemInput, Shopper
from patungan.checkout.confirm import ConfirmRequest, ConfirmService
from patungan.checkout.promotions import PromotionInput
from patungan.core.errors import Conflict
from patungan.inventory.stock_models import StockKey
from tests.support.checkout import Started, Tokens, confirm_service
from tests.support.groupbuy import FAKE_SECRET_KEY, group_buy_world
from tests.support.lambdas import call_api, claims
from tests.support.servers import serving
from tests.support.stock import ADDRESS, receive, set_base_price, stock_world

GUEST_ID = "5f0c6a4e-0d1b-4b8e-9a57-2c1e8f0a9d11"
BUYER = Shopper(customer_id="buyer-1")


@dataclass
class Shop:
    world: Any
    stock: Any
    confirm: ConfirmService
    started: Started
    tokens: Tokens

    @property
    def saga(self):
        return composition.checkout_saga()

    def preview(self, shopper: Shopper = BUYER) -> dict[str, Any]:
        response = call_api(
            "PreviewCheckoutFunction",
            "POST",
            "/v1/checkout/preview",
            body={"address": ADDRESS, "shipping_method_id": "jne:reg", "payment_method": "invoice"},
            claims=claims(shopper.customer_id, "buyer"),
        )
        assert response.status == 200, response.body
        return response.body

    def confirm_now(self, quote: dict[str, Any], key: str = "key-1", shopper: Shopper = BUYER) -> str:
        request = ConfirmRequest(
            address=ADDRESS,
            shipping_method_id="jne:reg",
            payment_method="invoice",
            prices_validated_at=quote["prices_validated_at"],
        )
        return self.confirm.confirm(shopper, request, key).checkout_id

    def run_to_payment(self, checkout_id: str) -> dict[str, Any]:
        self.saga.reserve(checkout_id)
        self.saga.place_orders(checkout_id)
        return self.saga.create_payment(checkout_id)

    def checkout(self, checkout_id: str):
        return composition.checkout_repository().get(checkout_id)

    def payment(self, checkout_id: str):
        return composition.payment_service().repository.find_payment(self.checkout(checkout_id).retail_payment_id)

    def reserved(self) -> int:
        key = StockKey(self.stock.warehouse.id, self.stock.product.id, None)
        return composition.stock_service().stock.get(key).reserved

    def set_price(self, price: int) -> None:
        set_base_price(self.stock.product.id, price)


@pytest.fixture
def shop() -> Iterator[Shop]:
    courier = LocalCourier(slow_delay_seconds=5)
    with (
        serving(courier.wsgi_app) as courier_url,
        group_buy_world({"COURIER_API_URL": courier_url, "COURIER_MAX_ATTEMPTS": "1"}) as world,
    ):
        try:
            boto3.client("ssm").put_parameter(
                Name=world.aws.template.parameter("CourierApiKeyParameter"),
                Value="biteship_test.NOT_A_SECRET",
                Type="SecureString",
            )
            stock = stock_world()
            receive((stock.warehouse.id, stock.product.id, None), 10)
            composition.cart_service().add_item(BUYER, CartItemInput(product_id=stock.product.id, quantity=3))
            started = Started()
            tokens = Tokens()
            composition.checkout_saga().task_tokens = tokens
            yield Shop(world, stock, confirm_service(composition.checkout_pricing(), started), started, tokens)
            assert world.trial_balance()["balanced"] is True
        finally:
            courier.close()


def coupons(*promotions: PromotionInput, shopper: Shopper = BUYER) -> None:
    service = composition.promotion_service()
    for promotion in promotions:
        service.create(promotion)
        composition.cart_service().apply_coupon(shopper, promotion.code, service)


def test_the_invoice_is_for_the_engines_total_with_shipping_tax_and_discounts_and_the_coupon_used_once(shop):
    """PAY-7, CHK-11, PRM-2: the invoice asks the previewed total (goods less the item coupon, shipping less the
    shipping coupon, PPN on both), not the subtotal; a PAID for the subtotal is quarantined; the PAID for the
    total pays the order; the coupons are used exactly once, with the orders."""
    coupons(
        PromotionInput(code="HEMAT10", kind="percent", target="items", value=1000, usage_limit=1),
        PromotionInput(code="ONGKIR50", kind="percent", target="shipping", value=5000),
    )
    quote = shop.preview()
    [quoted] = quote["orders"]
    assert quoted["discount"] == 3_000 and quoted["shipping_discount"] > 0 and quoted["tax"] > 0
    total = quote["total"]
    assert total == 27_000 + quoted["shipping"] - quoted["shipping_discount"] + quoted["tax"] != quote["subtotal"]

    checkout_id = shop.confirm_now(quote)
    assert shop.run_to_payment(checkout_id)["status"] == "awaiting_payment"
    payment = shop.payment(checkout_id)
    assert payment.amount == total
    invoice = requests.get(
        f"{shop.world.xendit_url}/v2/invoices/{payment.invoice_id}", auth=(FAKE_SECRET_KEY, ""), timeout=5
    ).json()
    assert invoice["amount"] == total
    promotions = composition.promotion_service()
    assert promotions.get("HEMAT10").used_count == 1
    assert promotions.get("ONGKIR50").used_count == 1

    lie = shop.world.invoice_callback({"payment": payment.model_dump()}, amount=quote["subtotal"], paid_amount=27_000)
    assert lie.body["status"] == "quarantined"
    assert shop.checkout(checkout_id).status == "awaiting_payment"

    paid = requests.post(
        f"{shop.world.xendit_url}/simulate/invoices/{payment.invoice_id}/pay",
        json={"payment_method": "BANK_TRANSFER"},
        timeout=5,
    )
    assert paid.status_code == 200, paid.text
    assert shop.world.invoice_callback({"payment": payment.model_dump()}).body["status"] == "paid"
    [order_id] = shop.checkout(checkout_id).order_ids
    order = composition.order_service().repository.get(order_id)
    assert (order.status, order.total, order.discount) == ("paid", total, 3_000)
    assert promotions.get("HEMAT10").used_count == 1  # once, whatever was retried


def test_a_coupon_is_given_back_once_when_the_checkout_expires_even_if_the_expiry_runs_twice(shop):
    """PRM-2, ORD-3: the expiry gives the use back (the coupon of limit one can be used again), and a retried
    expiry gives nothing more back."""
    coupons(PromotionInput(code="SATU", kind="fixed", target="items", value=2_000, usage_limit=1))
    quote = shop.preview()
    assert quote["discount"] == 2_000
    checkout_id = shop.confirm_now(quote)
    shop.run_to_payment(checkout_id)
    assert shop.payment(checkout_id).amount == quote["total"]
    promotions = composition.promotion_service()
    assert promotions.get("SATU").used_count == 1

    shop.saga.expire(checkout_id)
    shop.saga.expire(checkout_id)

    assert promotions.get("SATU").used_count == 0
    assert shop.reserved() == 0
    other = Shopper(customer_id="buyer-2")
    composition.cart_service().add_item(other, CartItemInput(product_id=shop.stock.product.id, quantity=1))
    composition.cart_service().apply_coupon(other, "SATU", promotions)  # usable again


def test_a_price_rise_between_the_real_preview_and_confirm_is_refused_before_anything_is_held(shop):
    """CHK-4: the engine prices the cart again at confirm; a unit price above the preview's is 409 price_changed,
    nothing reserved, no saga started."""
    quote = shop.preview()
    shop.set_price(12_000)
    with pytest.raises(Conflict) as refused:
        shop.confirm_now(quote)
    assert refused.value.code == "price_changed"
    assert refused.value.details[0]["unit_price"] == 12_000
    assert shop.reserved() == 0
    assert shop.started.executions == []


def test_a_price_rise_between_confirm_and_the_orders_fails_the_saga_charging_nothing(shop):
    """CHK-4, CHK-5: the saga's revalidation against the engine's confirmed prices fails the step; the
    compensation releases the stock; no order, no payment."""
    checkout_id = shop.confirm_now(shop.preview())
    shop.saga.reserve(checkout_id)
    shop.set_price(12_000)
    with pytest.raises(Conflict):
        shop.saga.place_orders(checkout_id)
    shop.saga.compensate(checkout_id, {"Error": "PriceChanged"})
    assert (shop.checkout(checkout_id).status, shop.checkout(checkout_id).error.code) == ("failed", "price_changed")
    assert shop.reserved() == 0
    assert shop.payment(checkout_id) is None


def test_a_coupon_used_up_between_preview_and_confirm_is_a_total_that_rose_and_is_refused(shop):
    """CHK-4 "the buyer never pays more than the preview showed": no unit price rose, but the coupon the preview
    applied was used up by another buyer since, so the engine leaves it out and the total rises. Confirm refuses
    with price_changed, reserving nothing, instead of charging more than the preview showed."""
    coupons(PromotionInput(code="SATU", kind="fixed", target="items", value=2_000, usage_limit=1))
    other = Shopper(customer_id="buyer-2")
    composition.cart_service().add_item(other, CartItemInput(product_id=shop.stock.product.id, quantity=1))
    composition.cart_service().apply_coupon(other, "SATU", composition.promotion_service())
    quote = shop.preview()
    assert quote["discount"] == 2_000
    theirs = shop.confirm_now(shop.preview(other), shopper=other)
    shop.run_to_payment(theirs)  # their orders used the coupon up
    assert shop.reserved() == 1

    with pytest.raises(Conflict) as refused:
        shop.confirm_now(quote)

    assert refused.value.code == "price_changed"
    assert shop.reserved() == 1
    assert shop.started.executions == [theirs]
