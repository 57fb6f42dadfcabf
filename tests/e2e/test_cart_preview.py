"""The cart over HTTP in the local stack, as the README walks through it (CHK-1, CHK-11, CHK-12, PRM-1, PRM-3;
issue 10): a guest adds a seller's product, applies an admin's coupon, previews the checkout priced by the one
engine (shipping from the local courier, PPN 11 %), then signs in and the guest cart becomes the buyer's."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.test_shipping_rates import courier_back_up, stocked_product  # noqa: F401 (a fixture)

pytestmark = pytest.mark.e2e

ADDRESS = {
    "recipient_name": "Siti",
    "phone": "0812-3456-7890",
    "line1": "Jl. Senopati 5",
    "city": "Jakarta Selatan",
    "province": "DKI Jakarta",
    "postal_code": "12190",
}


def test_a_guest_adds_to_the_cart_applies_a_coupon_previews_then_signs_in(api):
    product_id, warehouse_id = stocked_product(api)
    guest = {"X-Guest-Id": str(uuid.uuid4())}
    code = f"HEMAT{uuid.uuid4().hex[:6]}".upper()
    admin = api.token("admin-1", ["admin"])
    created = api.post(
        "/v1/admin/promotions", admin, json={"code": code, "kind": "percent", "target": "items", "value": 1000}
    )
    assert created.status_code == 201, created.text

    added = api.post("/v1/cart/items", json={"product_id": product_id, "quantity": 2}, headers=guest)
    assert added.status_code == 200, added.text
    assert added.json()["items"][0]["available"] == 20
    with_coupon = api.post("/v1/cart/coupons", json={"code": code.lower()}, headers=guest)
    assert with_coupon.status_code == 200, with_coupon.text
    assert with_coupon.json()["coupon_codes"] == [code]

    rates = api.post(
        "/v1/shipping/rates",
        json={"destination": {"postal_code": "12190"}, "items": [{"product_id": product_id, "quantity": 2}]},
    ).json()["rates"]
    method = rates[0]
    preview = api.post(
        "/v1/checkout/preview",
        json={"address": ADDRESS, "shipping_method_id": method["shipping_method_id"], "payment_method": "cod"},
        headers=guest,
    )

    assert preview.status_code == 200, preview.text
    quote = preview.json()
    [order] = quote["orders"]
    assert (order["warehouse_id"], order["subtotal"], order["discount"]) == (warehouse_id, 500_000, 50_000)
    assert order["shipping"] == method["price"]
    assert order["tax"] == ((450_000 + method["price"]) * 11 + 50) // 100
    assert quote["total"] == 450_000 + method["price"] + order["tax"]
    assert quote["cart_version"] == with_coupon.json()["version"]

    buyer = api.token(f"buyer-{uuid.uuid4().hex[:6]}", ["buyer"])
    shown = api.get("/v1/cart", buyer, headers=guest)
    assert [(li["product_id"], li["quantity"]) for li in shown.json()["items"]] == [(product_id, 2)]
    merged = api.post("/v1/cart/items", buyer, json={"product_id": product_id, "quantity": 1}, headers=guest)
    assert merged.status_code == 200, merged.text
    assert [(li["product_id"], li["quantity"]) for li in merged.json()["items"]] == [(product_id, 3)]
    assert merged.json()["coupon_codes"] == [code]
    assert api.get("/v1/cart", headers=guest).json()["items"] == []


@pytest.mark.usefixtures("courier_back_up")
def test_a_preview_priced_with_the_fallback_rate_table_says_so(api):
    """LOG-1 ("never silently"): with the courier down the preview's shipping comes from the rate tables; the
    buyer is told in `warnings` before confirming at that price, as the rates route flags `source: fallback`."""
    product_id, _ = stocked_product(api)
    guest = {"X-Guest-Id": str(uuid.uuid4())}
    assert api.post("/v1/cart/items", json={"product_id": product_id, "quantity": 1}, headers=guest).status_code == 200
    body = {"address": ADDRESS, "shipping_method_id": "jne:reg", "payment_method": "cod"}
    assert api.post("/v1/checkout/preview", json=body, headers=guest).json()["warnings"] == []

    assert api.post("/_courier/simulate/outage", json={"mode": "down"}).status_code == 200
    preview = api.post("/v1/checkout/preview", json=body, headers=guest)

    assert preview.status_code == 200, preview.text
    assert any("fallback" in warning for warning in preview.json()["warnings"]), preview.json()["warnings"]
