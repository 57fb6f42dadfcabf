"""Retail checkout over HTTP in the local stack (issue 10): cart → preview → confirm → the checkout state machine
(moto's interpreter) → pay on the local Xendit → orders paid; cash on delivery; an unpaid checkout expiring
when the Step Functions clock passes its payment window, giving its stock back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.test_cart_preview import ADDRESS
from tests.e2e.test_group_buying import eventually
from tests.e2e.test_shipping_rates import stocked_product

pytestmark = pytest.mark.e2e

PAYMENT_WINDOW_SECONDS = 900


class Shopping:
    def __init__(self, api, method: str) -> None:
        self.api = api
        self.buyer_id = f"buyer-{uuid.uuid4().hex[:8]}"
        self.buyer = api.token(self.buyer_id, ["buyer"])
        self.product_id, self.warehouse_id = stocked_product(api)
        added = api.post("/v1/cart/items", self.buyer, json={"product_id": self.product_id, "quantity": 2})
        assert added.status_code == 200, added.text
        rates = api.post(
            "/v1/shipping/rates",
            json={"destination": {"postal_code": "12190"}, "items": [{"product_id": self.product_id, "quantity": 2}]},
        )
        assert rates.status_code == 200, rates.text
        self.body = {
            "address": ADDRESS,
            "shipping_method_id": rates.json()["rates"][0]["shipping_method_id"],
            "payment_method": method,
        }

    def confirm(self) -> tuple[str, dict[str, Any]]:
        preview = self.api.post("/v1/checkout/preview", self.buyer, json=self.body)
        assert preview.status_code == 200, preview.text
        confirmed = self.api.post(
            "/v1/checkout/confirm",
            self.buyer,
            json={**self.body, "prices_validated_at": preview.json()["prices_validated_at"]},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert confirmed.status_code == 202, confirmed.text
        return confirmed.json()["checkout_id"], preview.json()

    def checkout(self, checkout_id: str) -> dict[str, Any]:
        response = self.api.get(f"/v1/checkout/{checkout_id}", self.buyer)
        assert response.status_code == 200, response.text
        return response.json()

    def reaches(self, checkout_id: str, status: str) -> dict[str, Any]:
        reached = eventually(lambda: (c := self.checkout(checkout_id))["status"] == status and c)
        assert reached, self.checkout(checkout_id)
        return reached

    def top_up(self, amount: int) -> None:
        admin = self.api.token("admin-1", ["admin"])
        credited = self.api.post(
            f"/v1/admin/wallets/{self.buyer_id}/adjustments",
            admin,
            json={"amount": amount, "reason": "e2e top-up"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert credited.status_code == 201, credited.text

    def available(self) -> int:
        admin = self.api.token("admin-1", ["admin"])
        items = self.api.get("/v1/inventory", admin, params={"product_id": self.product_id}).json()["items"]
        return sum(item["available"] for item in items)


def test_invoice_checkout_paid_on_the_local_xendit_makes_its_orders_paid(api):
    shopping = Shopping(api, "invoice")
    checkout_id, preview = shopping.confirm()

    awaiting = shopping.reaches(checkout_id, "awaiting_payment")
    assert awaiting["payment"]["amount"] == preview["total"]  # the total, never the subtotal (PAY-7)
    payment = api.get(f"/v1/payments/{awaiting['payment']['payment_id']}", shopping.buyer).json()
    assert api.post(f"/_xendit/simulate/invoices/{payment['invoice_id']}/pay", json={}).status_code == 200

    paid = shopping.reaches(checkout_id, "paid")
    assert [order["status"] for order in paid["orders"]] == ["paid"]
    assert shopping.available() == 18  # still held, now for fulfilment


def test_wallet_checkout_is_paid_at_once_from_the_balance(api):
    shopping = Shopping(api, "wallet")
    shopping.top_up(1_000_000)
    checkout_id, preview = shopping.confirm()

    paid = shopping.reaches(checkout_id, "paid")
    assert [order["status"] for order in paid["orders"]] == ["paid"]
    assert api.get("/v1/wallet", shopping.buyer).json()["balance"] == 1_000_000 - preview["total"]


def test_a_cancelled_paid_order_is_refunded_to_the_channel_then_ends_refunded(api):
    """Issue 10 "over HTTP": the buyer cancels a paid order; the refund worker sends the whole invoice back through
    the local Xendit, whose refund callback completes it: the order ends ``refunded``, the stock is back (ORD-3)."""
    shopping = Shopping(api, "invoice")
    checkout_id, _ = shopping.confirm()
    awaiting = shopping.reaches(checkout_id, "awaiting_payment")
    payment = api.get(f"/v1/payments/{awaiting['payment']['payment_id']}", shopping.buyer).json()
    assert api.post(f"/_xendit/simulate/invoices/{payment['invoice_id']}/pay", json={}).status_code == 200
    [order] = shopping.reaches(checkout_id, "paid")["orders"]

    cancelled = api.post(f"/v1/orders/{order['id']}/cancel", shopping.buyer)

    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled"), cancelled.text
    refunded = eventually(
        lambda: (o := api.get(f"/v1/orders/{order['id']}", shopping.buyer).json())["status"] == "refunded" and o
    )
    assert refunded, api.get(f"/v1/orders/{order['id']}", shopping.buyer).text
    assert eventually(lambda: shopping.available() == 20)


def test_a_cancelled_wallet_paid_order_is_refunded_at_once(api):
    """ORD-3 (issue 10 leftover 7) over HTTP: the money goes back to the wallet in the cancel itself, so the order
    the cancel answers is already ``refunded``."""
    shopping = Shopping(api, "wallet")
    shopping.top_up(1_000_000)
    checkout_id, _ = shopping.confirm()
    [order] = shopping.reaches(checkout_id, "paid")["orders"]

    cancelled = api.post(f"/v1/orders/{order['id']}/cancel", shopping.buyer)

    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "refunded"), cancelled.text
    assert api.get("/v1/wallet", shopping.buyer).json()["balance"] == 1_000_000


def test_cash_on_delivery_goes_straight_to_processing(api):
    shopping = Shopping(api, "cod")
    checkout_id, _ = shopping.confirm()

    processing = shopping.reaches(checkout_id, "processing")
    assert [order["status"] for order in processing["orders"]] == ["processing"]


def test_an_unpaid_checkout_expires_and_gives_its_stock_back(api):
    shopping = Shopping(api, "invoice")
    checkout_id, _ = shopping.confirm()
    shopping.reaches(checkout_id, "awaiting_payment")
    assert shopping.available() == 18

    def expired() -> dict[str, Any] | None:
        advanced = api.post("/_local/clock/advance", json={"seconds": 2 * PAYMENT_WINDOW_SECONDS})
        assert advanced.status_code == 200, advanced.text
        checkout = shopping.checkout(checkout_id)
        return checkout if checkout["status"] == "expired" else None

    checkout = eventually(expired)
    assert checkout, shopping.checkout(checkout_id)
    assert [order["status"] for order in checkout["orders"]] == ["expired"]
    assert shopping.available() == 20


def test_a_guest_confirms_and_follows_their_checkout_another_guest_cannot(api):
    """API.md "Cart and checkout": confirm and GET /v1/checkout/{id} are for a buyer or a guest (CHK-12); the
    gateway asked the guest to sign in (401) after letting them fill the cart and preview. Another guest → 404."""
    product_id, _ = stocked_product(api)
    guest = {"X-Guest-Id": str(uuid.uuid4())}
    assert api.post("/v1/cart/items", json={"product_id": product_id, "quantity": 1}, headers=guest).status_code == 200
    body = {"address": ADDRESS, "shipping_method_id": "jne:reg", "payment_method": "cod"}
    preview = api.post("/v1/checkout/preview", json=body, headers=guest)
    assert preview.status_code == 200, preview.text

    confirmed = api.post(
        "/v1/checkout/confirm",
        json={**body, "prices_validated_at": preview.json()["prices_validated_at"]},
        headers={**guest, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert confirmed.status_code == 202, confirmed.text
    checkout_id = confirmed.json()["checkout_id"]

    def processing() -> dict[str, Any] | None:
        response = api.get(f"/v1/checkout/{checkout_id}", headers=guest)
        assert response.status_code == 200, response.text
        return response.json() if response.json()["status"] == "processing" else None

    assert eventually(processing)
    other_guest = {"X-Guest-Id": str(uuid.uuid4())}
    assert api.get(f"/v1/checkout/{checkout_id}", headers=other_guest).status_code == 404


def test_a_confirm_retried_after_its_checkout_emptied_the_cart_answers_the_same_checkout(api):
    """CHK-6, SYS-4: the same Idempotency-Key and the same body → the first response. The 202 lost on the way,
    the app retries once the saga has converted the cart: it was told `400 cart_empty` for a checkout that
    exists and waits for its payment."""
    shopping = Shopping(api, "invoice")
    preview = api.post("/v1/checkout/preview", shopping.buyer, json=shopping.body).json()
    request = {
        "json": {**shopping.body, "prices_validated_at": preview["prices_validated_at"]},
        "headers": {"Idempotency-Key": uuid.uuid4().hex},
    }
    first = api.post("/v1/checkout/confirm", shopping.buyer, **request)
    assert first.status_code == 202, first.text
    shopping.reaches(first.json()["checkout_id"], "awaiting_payment")
    assert api.get("/v1/cart", shopping.buyer).json()["items"] == []

    retried = api.post("/v1/checkout/confirm", shopping.buyer, **request)

    assert retried.status_code == 202, retried.text
    assert retried.json()["checkout_id"] == first.json()["checkout_id"]
