"""The cart, coupons on it and the checkout preview, in-process on moto under each function's template role (CHK-1,
CHK-2, CHK-8, CHK-10, CHK-11, CHK-12, PRM-1, PRM-3, ORD-1, ORD-2; issue 10). The preview prices shipping with the
local courier over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from unittest import mock

import boto3
import pytest
from moto.dynamodb.responses import DynamoHandler

from emulator.courier import LocalCourier
from emulator.moto_patches import _serialised
from patungan.adapters.dynamodb import Transaction
from patungan.catalog.models import Organisation, Variant
from patungan.catalog.service import catalog_service
from patungan.checkout.cart import Shopper
from patungan.checkout.pricing import OrderLimits
from patungan.checkout.quote import CheckoutRequest
from patungan.composition import cart_service, checkout_pricing, promotion_service, stock_service
from patungan.core.clock import SystemClock
from patungan.core.errors import Conflict
from patungan.core.events import new_event
from patungan.inventory.stock_models import MAX_RESERVATION_ITEMS, StockLine
from tests.support.aws import local_aws
from tests.support.lambdas import ApiResponse, call_api, claims
from tests.support.servers import serving
from tests.support.stock import ADDRESS, SELLER_ID, StockWorld, add_product, add_seller, receive, stock_world

BUYER = claims("buyer-1", "buyer")
OTHER_BUYER = claims("buyer-2", "buyer")
ADMIN = claims("admin-1", "admin")
GUEST = {"X-Guest-Id": "5f0c6a4e-0d1b-4b8e-9a57-2c1e8f0a9d11"}
OTHER_GUEST = {"X-Guest-Id": "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"}
COURIER_KEY = "biteship_test.NOT_A_SECRET"
NOW = "2026-11-30T00:00:00Z"


@dataclass
class Shop:
    stock: StockWorld
    courier: LocalCourier


@pytest.fixture
def shop() -> Iterator[Shop]:
    courier = LocalCourier(slow_delay_seconds=5)
    with (
        serving(courier.wsgi_app) as courier_url,
        local_aws({"COURIER_API_URL": courier_url, "COURIER_MAX_ATTEMPTS": "1"}) as aws,
    ):
        boto3.client("ssm").put_parameter(
            Name=aws.template.parameter("CourierApiKeyParameter"), Value=COURIER_KEY, Type="SecureString"
        )
        world = stock_world()
        receive((world.warehouse.id, world.product.id, None), 100)
        receive((world.warehouse.id, world.shirt.id, "v_m"), 5)
        try:
            yield Shop(world, courier)
        finally:
            courier.close()


def cart(who: dict | None = None, headers: dict | None = None) -> ApiResponse:
    return call_api("GetCartFunction", "GET", "/v1/cart", claims=who, headers=headers)


def add(product_id: str, quantity: int = 1, who=None, headers=None, variant_id=None) -> ApiResponse:
    body = {"product_id": product_id, "quantity": quantity} | ({"variant_id": variant_id} if variant_id else {})
    return call_api("AddCartItemFunction", "POST", "/v1/cart/items", body=body, claims=who, headers=headers)


def update(item_id: str, quantity: int, who=None, headers=None) -> ApiResponse:
    path = f"/v1/cart/items/{item_id}"
    return call_api(
        "UpdateCartItemFunction",
        "PATCH",
        path,
        resource="/v1/cart/items/{item_id}",
        path_parameters={"item_id": item_id},
        body={"quantity": quantity},
        claims=who,
        headers=headers,
    )


def remove(item_id: str, who=None, headers=None) -> ApiResponse:
    return call_api(
        "RemoveCartItemFunction",
        "DELETE",
        f"/v1/cart/items/{item_id}",
        resource="/v1/cart/items/{item_id}",
        path_parameters={"item_id": item_id},
        claims=who,
        headers=headers,
    )


def apply_coupon(code: str, who=None, headers=None) -> ApiResponse:
    return call_api("ApplyCouponFunction", "POST", "/v1/cart/coupons", body={"code": code}, claims=who, headers=headers)


def remove_coupon(code: str, who=None, headers=None) -> ApiResponse:
    return call_api(
        "RemoveCouponFunction",
        "DELETE",
        f"/v1/cart/coupons/{code}",
        resource="/v1/cart/coupons/{code}",
        path_parameters={"code": code},
        claims=who,
        headers=headers,
    )


def create_promotion(**body) -> ApiResponse:
    return call_api("CreatePromotionFunction", "POST", "/v1/admin/promotions", body=body, claims=ADMIN)


def get_promotion(code: str, who=ADMIN) -> ApiResponse:
    return call_api(
        "GetPromotionFunction",
        "GET",
        f"/v1/admin/promotions/{code}",
        resource="/v1/admin/promotions/{code}",
        path_parameters={"code": code},
        claims=who,
    )


def preview(who=None, headers=None, **overrides) -> ApiResponse:
    body = {"address": ADDRESS, "shipping_method_id": "jne:reg", "payment_method": "invoice"} | overrides
    return call_api("PreviewCheckoutFunction", "POST", "/v1/checkout/preview", body=body, claims=who, headers=headers)


# ---------------------------------------------------------------------------------------------- cart (CHK-1)
def test_a_guest_fills_a_cart_priced_now_with_a_version_that_grows_on_every_change(shop):
    kopi = shop.stock.product.id
    empty = cart(headers=GUEST)
    assert (empty.status, empty.body["items"], empty.body["version"]) == (200, [], 0)

    first = add(kopi, 2, headers=GUEST)
    again = add(kopi, 3, headers=GUEST)
    assert first.status == again.status == 200, again.body
    [line] = again.body["items"]
    assert (line["quantity"], line["unit_price"], line["available"]) == (5, 10_000, 100)
    assert again.body["totals"]["subtotal"] == 50_000
    changed = update(line["id"], 7, headers=GUEST)
    assert changed.body["items"][0]["quantity"] == 7
    removed = remove(line["id"], headers=GUEST)
    assert removed.body["items"] == []
    versions = [first.body["version"], again.body["version"], changed.body["version"], removed.body["version"]]
    assert versions == [1, 2, 3, 4]
    assert cart(headers=OTHER_GUEST).body["items"] == []  # another guest's cart is another cart


def test_concurrent_adds_to_one_cart_lose_none(shop):
    """CHK-1: eight adds at once, each reading the same version: every one lands (a conflicted write runs again)."""
    kopi = shop.stock.product.id
    start = threading.Barrier(8)

    def one_add(_: int) -> int:
        start.wait()
        return add(kopi, 1, who=BUYER).status

    with (
        mock.patch.object(DynamoHandler, "call_action", _serialised(DynamoHandler.call_action)),
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        statuses = list(pool.map(one_add, range(8)))

    assert statuses == [200] * 8
    shown = cart(who=BUYER).body
    assert shown["items"][0]["quantity"] == 8
    assert shown["version"] == 8


def test_what_cannot_be_bought_from_the_cart_is_refused(shop):
    """Retail only: a factory's product is sold by group buying; stock is checked (non-binding, CHK-2)."""
    factory = Organisation(id="fac_1", name="Pabrik", phone="+6281234567892", owner_user_id="o-3", created_at=NOW)
    catalog_service().repository.add_organisation("factory", factory)
    made_to_order = shop.stock.product.model_copy(
        update={"id": "prd_pabrik", "slug": "prd-pabrik", "seller_id": None, "factory_id": factory.id}
    )
    catalog_service().repository.add_product(
        made_to_order, new_event("catalog.product.created", made_to_order.id, {}, SystemClock())
    )

    factory_item = add(made_to_order.id, headers=GUEST)
    unknown = add("prd_nope", headers=GUEST)
    no_variant = add(shop.stock.shirt.id, headers=GUEST)
    too_many = add(shop.stock.shirt.id, 6, headers=GUEST, variant_id="v_m")
    no_stock = add(shop.stock.shirt.id, 1, headers=GUEST, variant_id="v_s")

    assert (factory_item.status, factory_item.body["error"]["details"][0]["field"]) == (422, "product_id")
    assert (unknown.status, unknown.body["error"]["details"][0]["field"]) == (422, "product_id")
    assert (no_variant.status, no_variant.body["error"]["details"][0]["field"]) == (422, "variant_id")
    assert (too_many.status, too_many.body["error"]["code"]) == (409, "insufficient_stock")
    assert (no_stock.status, no_stock.body["error"]["code"]) == (409, "insufficient_stock")
    assert cart(headers=GUEST).body["version"] == 0


def test_who_may_have_a_cart(shop):
    nobody = cart()
    bad_guest = cart(headers={"X-Guest-Id": "x"})
    staff = cart(who=claims("seller-1", "seller", seller_id="sel_toko"))

    assert (nobody.status, bad_guest.status, staff.status) == (401, 400, 403)
    assert bad_guest.body["error"]["code"] == "invalid_guest_id"


def test_a_guest_cart_merges_into_the_buyers_cart_once(shop):
    """CHK-12: shopping as a guest, then signing in: the lines add up, and sending both again merges nothing more."""
    kopi = shop.stock.product.id
    add(kopi, 2, who=BUYER)
    add(kopi, 3, headers=GUEST)
    add(shop.stock.shirt.id, 1, headers=GUEST, variant_id="v_m")

    shown = cart(who=BUYER, headers=GUEST)  # a read shows the merge (and writes nothing: a GET)
    saved = update(shown.body["items"][0]["id"], 6, who=BUYER, headers=GUEST)  # the first change saves it
    again = add(kopi, 1, who=BUYER, headers=GUEST)

    def quantities(response: ApiResponse) -> dict:
        return {(li["product_id"], li["variant_id"]): li["quantity"] for li in response.body["items"]}

    assert quantities(shown) == {(kopi, None): 5, (shop.stock.shirt.id, "v_m"): 1}
    assert quantities(saved) == {(kopi, None): 6, (shop.stock.shirt.id, "v_m"): 1}
    assert quantities(again) == {(kopi, None): 7, (shop.stock.shirt.id, "v_m"): 1}  # merged once, not twice
    guest_cart = cart(headers=GUEST).body
    assert (guest_cart["items"], guest_cart["version"]) == ([], 0)  # deleted by the merge


# ---------------------------------------------------------------------------------------------- coupons (PRM-1, PRM-3)
def test_an_admin_creates_a_coupon_and_others_may_not(shop):
    created = create_promotion(code="hemat10", kind="percent", target="items", value=1000, usage_limit=5)
    duplicate = create_promotion(code="HEMAT10", kind="fixed", target="items", value=1)
    too_much = create_promotion(code="TOOMUCH", kind="percent", target="items", value=10_001)
    as_buyer = call_api(
        "CreatePromotionFunction",
        "POST",
        "/v1/admin/promotions",
        body={"code": "X1X", "kind": "fixed", "target": "items", "value": 1},
        claims=BUYER,
    )

    assert created.status == 201, created.body
    assert (created.body["code"], created.body["used_count"]) == ("HEMAT10", 0)
    assert get_promotion("hemat10").body == created.body
    assert (duplicate.status, duplicate.body["error"]["code"]) == (409, "promotion_exists")
    assert too_much.status == 422
    assert as_buyer.status == 403
    assert get_promotion("HEMAT10", who=BUYER).status == 403


def test_a_promotion_for_a_seller_that_does_not_exist_is_refused_naming_the_field(shop):
    """PRM-1 (issue 10 leftover 6): a coupon limited to an unknown seller could never apply: 422 with a field
    error on ``seller_id``, nothing stored; a real seller's coupon is created."""
    unknown = create_promotion(code="TOKOX", kind="fixed", target="items", value=1000, seller_id="sel_nobody")
    known = create_promotion(code="TOKO", kind="fixed", target="items", value=1000, seller_id=SELLER_ID)

    assert unknown.status == 422, unknown.body
    assert unknown.body["error"]["details"] == [{"field": "seller_id", "message": "no seller sel_nobody"}]
    assert get_promotion("TOKOX").status == 404
    assert (known.status, known.body["seller_id"]) == (201, SELLER_ID)


def test_coupons_live_on_the_cart_and_ineligible_ones_say_why(shop):
    add(shop.stock.product.id, 2, headers=GUEST)  # 20 000
    create_promotion(code="HEMAT10", kind="percent", target="items", value=1000)
    create_promotion(code="BIG", kind="fixed", target="items", value=5000, min_spend=50_000)
    create_promotion(code="ONCE", kind="fixed", target="items", value=5000, per_customer_limit=1)
    create_promotion(code="OVER", kind="fixed", target="items", value=5000, ends_at="2026-01-01T00:00:00Z")

    applied = apply_coupon("hemat10", headers=GUEST)
    twice = apply_coupon("HEMAT10", headers=GUEST)
    refusals = {code: apply_coupon(code, headers=GUEST) for code in ("BIG", "ONCE", "OVER", "NOPE")}

    assert applied.status == 200, applied.body
    assert applied.body["coupon_codes"] == ["HEMAT10"]
    assert twice.body["version"] == applied.body["version"]
    for response in refusals.values():
        assert (response.status, response.body["error"]["code"]) == (422, "coupon_not_eligible")
    assert "spend at least 50000" in refusals["BIG"].body["error"]["message"]
    assert "sign in" in refusals["ONCE"].body["error"]["message"]  # CHK-12: guests are simply not eligible
    assert "expired" in refusals["OVER"].body["error"]["message"]
    assert apply_coupon("ONCE", who=BUYER).status == 200  # a buyer may
    removed = remove_coupon("hemat10", headers=GUEST)
    assert removed.body["coupon_codes"] == []
    assert remove_coupon("HEMAT10", headers=GUEST).status == 404


# ---------------------------------------------------------------------------------------------- preview
def test_preview_prices_one_order_with_coupons_shipping_and_tax_on_shipping_after_its_discount(shop):
    """CHK-11, ORD-2: 3 x 10 000 less 10 %, shipping less 50 %, PPN 11 % on both after their discounts."""
    add(shop.stock.product.id, 3, headers=GUEST)
    create_promotion(code="HEMAT10", kind="percent", target="items", value=1000)
    create_promotion(code="ONGKIR50", kind="percent", target="shipping", value=5000)
    apply_coupon("HEMAT10", headers=GUEST)
    apply_coupon("ONGKIR50", headers=GUEST)

    response = preview(headers=GUEST)

    assert response.status == 200, response.body
    quote = response.body
    [order] = quote["orders"]
    shipping = order["shipping"]
    assert shipping > 0 and quote["shipping_method"]["shipping_method_id"] == "jne:reg"
    assert order["warehouse_id"] == shop.stock.warehouse.id  # CHK-10
    assert (order["subtotal"], order["discount"]) == (30_000, 3_000)
    assert order["shipping_discount"] == shipping // 2
    taxable = 27_000 + shipping - shipping // 2
    assert order["tax"] == (taxable * 11 + 50) // 100
    assert order["total"] == taxable + order["tax"] == quote["total"]
    assert sum(line["amount"] for line in order["lines"]) == 27_000
    assert quote["discount"] == 3_000 + shipping // 2
    assert quote["cart_version"] == cart(headers=GUEST).body["version"]
    assert quote["prices_validated_at"].endswith("Z")
    assert [c["code"] for c in quote["coupons"]] == ["HEMAT10", "ONGKIR50"]


def test_preview_makes_one_order_per_seller(shop):
    """ORD-1, CHK-10: two sellers, two orders, each from the warehouse holding its items, each with its shipping."""
    add_seller("sel_2", "Toko 2")
    teh = shop.stock.product.model_copy(
        update={"id": "prd_teh", "slug": "prd-teh", "seller_id": "sel_2", "base_price": 7_000}
    )
    catalog_service().repository.add_product(teh, new_event("catalog.product.created", teh.id, {}, SystemClock()))
    receive((shop.stock.other_warehouse.id, teh.id, None), 10)
    add(shop.stock.product.id, 1, who=BUYER)
    add(teh.id, 2, who=BUYER)

    response = preview(who=BUYER)

    assert response.status == 200, response.body
    orders = {o["seller_id"]: o for o in response.body["orders"]}
    assert set(orders) == {"sel_toko", "sel_2"}
    assert orders["sel_toko"]["warehouse_id"] == shop.stock.warehouse.id
    assert orders["sel_2"]["warehouse_id"] == shop.stock.other_warehouse.id
    assert (orders["sel_toko"]["subtotal"], orders["sel_2"]["subtotal"]) == (10_000, 14_000)
    assert all(o["shipping"] > 0 for o in orders.values())
    assert response.body["total"] == sum(o["total"] for o in orders.values())


def test_preview_refusals(shop):
    """CHK-8 and the errors a buyer can cause: empty cart, unknown shipping method, stock short, amount limits."""
    assert (preview(headers=GUEST).status, preview(headers=GUEST).body["error"]["code"]) == (400, "cart_empty")
    add(shop.stock.product.id, 1, headers=GUEST)

    unknown_method = preview(headers=GUEST, shipping_method_id="merpati:pos")
    wallet_guest = preview(headers=GUEST, payment_method="wallet")
    saved_address_guest = preview(headers=GUEST, address=None, address_id="adr_1")
    assert (unknown_method.status, unknown_method.body["error"]["details"][0]["field"]) == (422, "shipping_method_id")
    assert (wallet_guest.status, wallet_guest.body["error"]["details"][0]["field"]) == (422, "payment_method")
    assert saved_address_guest.status == 401

    update(cart(headers=GUEST).body["items"][0]["id"], 100, headers=GUEST)
    stock_service().reserve("chk_other", [StockLine(shop.stock.product.id, None, 1)])  # one of the 100 taken
    short = preview(headers=GUEST)
    assert (short.status, short.body["error"]["code"]) == (409, "insufficient_stock")


def test_a_total_outside_the_order_limits_is_refused(shop, monkeypatch):
    """CHK-8: below the minimum or above the maximum order amount → 400."""
    add(shop.stock.product.id, 1, headers=GUEST)
    pricing = checkout_pricing()
    monkeypatch.setattr(pricing, "limits", OrderLimits(minimum=10**9, maximum=10**10))
    low = preview(headers=GUEST)
    monkeypatch.setattr(pricing, "limits", OrderLimits(minimum=0, maximum=1))
    high = preview(headers=GUEST)

    assert (low.status, low.body["error"]["code"]) == (400, "order_below_minimum")
    assert (high.status, high.body["error"]["code"]) == (400, "order_above_maximum")


def test_coupons_the_shopper_can_no_longer_use_are_left_out_of_the_price_with_a_warning(shop):
    """CHK-12, PRM-1: a guest's cart holding a customer-only coupon (the engine is called with any cart), and a
    coupon used up since it was applied: neither crashes the preview, neither is applied, both are named."""
    add(shop.stock.product.id, 2, headers=GUEST)
    create_promotion(code="ONCE", kind="fixed", target="items", value=5000, per_customer_limit=1)
    create_promotion(code="LAST", kind="fixed", target="items", value=3000, usage_limit=1)
    assert apply_coupon("LAST", headers=GUEST).status == 200
    tx = Transaction()
    promotion_service().redeem(tx, ["LAST"], "buyer-9", "chk_someone_else")
    tx.commit()
    guest = Shopper(guest_id=GUEST["X-Guest-Id"])
    shown = cart_service().get_for(guest)
    with_customer_only = shown.model_copy(update={"coupon_codes": ["ONCE", "LAST"]})
    request = CheckoutRequest(address=ADDRESS, shipping_method_id="jne:reg", payment_method="cod")

    quote = checkout_pricing().quote(guest, request, with_customer_only)

    assert (quote.discount, quote.coupons) == (0, [])
    assert len(quote.warnings) == 2 and "sign in" in quote.warnings[0] and "fully used" in quote.warnings[1]
    assert preview(headers=GUEST).body["warnings"] == [quote.warnings[1]]


# ---------------------------------------------------------------------------------------------- the saga's interface
def test_the_content_hash_changes_with_anything_a_confirm_must_not_replay(shop):
    """CHK-6: the same cart hashes the same; a quantity, a coupon or a price changes the hash."""
    buyer = Shopper(customer_id="buyer-1")
    add(shop.stock.product.id, 2, who=BUYER)
    create_promotion(code="HEMAT10", kind="percent", target="items", value=1000)
    before = cart_service().get_for(buyer)
    line = before.items[0]

    assert cart_service().get_for(buyer).content_hash() == before.content_hash()
    repriced = before.model_copy(update={"items": [line.model_copy(update={"unit_price": line.unit_price + 1})]})
    assert repriced.content_hash() != before.content_hash()
    apply_coupon("HEMAT10", who=BUYER)
    with_coupon = cart_service().get_for(buyer)
    update(line.id, 3, who=BUYER)
    more = cart_service().get_for(buyer)
    assert len({before.content_hash(), with_coupon.content_hash(), more.content_hash()}) == 3


def test_converting_empties_the_cart_bought_once_and_never_a_cart_changed_since(shop):
    """CHK-5: convert is conditional on the cart and version the checkout priced; a buyer's guest cart, shown merged
    in the cart bought, goes with it."""
    add(shop.stock.product.id, 2, who=BUYER)
    add(shop.stock.product.id, 1, headers=GUEST)
    buyer = Shopper(customer_id="buyer-1", guest_id=GUEST["X-Guest-Id"])
    bought = cart_service().get_for(buyer)
    assert bought.items[0].quantity == 3

    add(shop.stock.product.id, 1, who=BUYER)  # the buyer changes the cart after it was priced
    stale = Transaction()
    cart_service().convert(stale, buyer, bought.id, bought.version, bought.merged_guest_version)
    with pytest.raises(Conflict) as changed:
        stale.commit()
    assert changed.value.code == "cart_changed"

    current = cart_service().get_for(buyer)
    tx = Transaction()
    cart_service().convert(tx, buyer, current.id, current.version, current.merged_guest_version)
    tx.commit()
    again = Transaction()
    cart_service().convert(again, buyer, current.id, current.version, current.merged_guest_version)
    with pytest.raises(Conflict):
        again.commit()

    after = cart(who=BUYER, headers=GUEST).body
    assert after["items"] == [] and after["id"] != current.id and after["version"] == current.version + 1
    assert cart(headers=GUEST).body["version"] == 0


def test_a_buyer_previews_to_a_saved_address_and_never_to_another_buyers(shop):
    add(shop.stock.product.id, 1, who=BUYER)
    mine = call_api("CreateAddressFunction", "POST", "/v1/addresses", body=ADDRESS, claims=BUYER).body["id"]
    theirs = call_api("CreateAddressFunction", "POST", "/v1/addresses", body=ADDRESS, claims=OTHER_BUYER).body["id"]

    to_mine = preview(who=BUYER, address=None, address_id=mine)
    to_theirs = preview(who=BUYER, address=None, address_id=theirs)

    assert to_mine.status == 200, to_mine.body
    assert to_mine.body["address"]["postal_code"] == "12190"
    assert to_theirs.status == 404


def test_priced_items_for_nothing_are_refused(shop):
    """CHK-8: 100 % off the items and the shipping would make a zero total: refused (and logged CRITICAL)."""
    add(shop.stock.product.id, 1, headers=GUEST)
    create_promotion(code="GRATIS", kind="percent", target="items", value=10_000)
    create_promotion(code="ONGKIR", kind="percent", target="shipping", value=10_000)
    apply_coupon("GRATIS", headers=GUEST)
    apply_coupon("ONGKIR", headers=GUEST)

    response = preview(headers=GUEST)

    assert (response.status, response.body["error"]["code"]) == (400, "zero_total")


def test_a_buyer_who_signed_in_and_checked_out_the_guest_cart_at_once_converts_it(shop):
    """The buyer's own cart was never saved (version 0): the cart bought is the guest cart shown merged."""
    add(shop.stock.product.id, 2, headers=GUEST)
    buyer = Shopper(customer_id="buyer-1", guest_id=GUEST["X-Guest-Id"])
    bought = cart_service().get_for(buyer)
    assert (bought.version, bought.items[0].quantity) == (0, 2)

    tx = Transaction()
    cart_service().convert(tx, buyer, bought.id, bought.version, bought.merged_guest_version)
    tx.commit()

    assert cart(who=BUYER, headers=GUEST).body["items"] == []
    assert cart(headers=GUEST).body["items"] == []


def test_a_sellers_coupon_takes_off_that_sellers_items_only(shop):
    """PRM-1 seller scope: refused on a cart without the seller's items; in preview, only its order discounted."""
    add_seller("sel_2", "Toko Dua")
    create_promotion(code="TOKO2", kind="fixed", target="items", value=1_000, seller_id="sel_2")
    add(shop.stock.product.id, 1, headers=GUEST)

    refused = apply_coupon("TOKO2", headers=GUEST)

    assert (refused.status, refused.body["error"]["code"]) == (422, "coupon_not_eligible")
    assert "nothing from this coupon's seller" in refused.body["error"]["message"]


def test_the_cart_holds_no_more_different_items_than_one_confirm_can_reserve(shop):
    """CHK-8, CHK-11: a cart of 50 different items previewed fine and every confirm of it was refused (422 "at
    most 40 distinct items per reservation"): a cart the buyer could never buy. The cart refuses the extra item."""
    variants = [Variant(id=f"v{i}", name=f"V{i}", sku=f"SKU{i}", price_delta=0, price=10_000) for i in range(60)]
    product = add_product("prd_many", variants=variants)
    for variant in variants:
        receive((shop.stock.warehouse.id, product.id, variant.id), 1)

    added = [add(product.id, variant_id=variant.id, who=BUYER) for variant in variants[: MAX_RESERVATION_ITEMS + 1]]

    assert [response.status for response in added[:MAX_RESERVATION_ITEMS]] == [200] * MAX_RESERVATION_ITEMS
    assert added[-1].status == 422, added[-1].body
    assert len(cart(BUYER).body["items"]) == MAX_RESERVATION_ITEMS


def _replace_product(product_id: str, **changes) -> None:
    catalog = catalog_service().repository
    product = catalog.get_product(product_id)
    changed = product.model_copy(update={**changes, "version": product.version + 1})
    catalog.replace_product(changed, new_event("catalog.product.updated", product_id, {}, SystemClock()))


def test_a_line_the_buyer_no_longer_sees_does_not_hold_a_place_in_the_cart(shop, monkeypatch):
    """CHK-1 (issue 10 review, defect 2): a product taken off sale leaves the cart the buyer sees and checks out,
    and its line (whose id the buyer never sees, so cannot remove) must not keep counting against the cart's
    bound on lines: with room for one line, the buyer whose only line went off sale can add another item."""
    monkeypatch.setattr(cart_service(), "max_lines", 1)
    add(shop.stock.shirt.id, 1, who=BUYER, variant_id="v_m")
    _replace_product(shop.stock.shirt.id, status="inactive")
    assert cart(who=BUYER).body["items"] == []

    added = add(shop.stock.product.id, 2, who=BUYER)

    assert added.status == 200, added.body
    assert [(li["product_id"], li["quantity"]) for li in added.body["items"]] == [(shop.stock.product.id, 2)]


def test_a_price_changed_in_the_catalog_shows_in_the_cart_and_its_preview_and_changes_its_hash(shop):
    """CHK-4, CHK-6: prices are not kept in the cart: after the seller raises a price, the cart and the preview
    show the new price, and the cart's content hash (a confirm's idempotency) is another."""
    buyer = Shopper(customer_id="buyer-1")
    add(shop.stock.product.id, 2, who=BUYER)
    before = cart_service().get_for(buyer)

    _replace_product(shop.stock.product.id, base_price=12_500)
    shown = cart(who=BUYER).body
    priced = preview(who=BUYER)

    assert shown["items"][0]["unit_price"] == 12_500
    assert priced.status == 200, priced.body
    assert priced.body["subtotal"] == 25_000
    assert cart_service().get_for(buyer).content_hash() != before.content_hash()


def test_a_guest_cart_bought_merged_into_one_buyers_cart_is_not_also_taken_by_another(shop):
    """CHK-12, CHK-5 (issue 10 review, defect 3): buyer 1 signs in on a device with a guest cart and confirms (the
    cart bought shows the guest's lines merged); before the checkout converts the cart, buyer 2 sends the same guest
    id and merges those lines into their own cart. The guest's lines cannot be both bought by buyer 1 and sitting in
    buyer 2's cart: the conversion fails (cart_changed) instead of deleting, unconditionally, a guest cart it no
    longer holds. And a guest cart started after the cart was priced is not deleted by the conversion: it was not
    bought."""
    add(shop.stock.product.id, 2, headers=GUEST)
    first = Shopper(customer_id="buyer-1", guest_id=GUEST["X-Guest-Id"])
    bought = cart_service().get_for(first)
    assert bought.items[0].quantity == 2

    taken = add(shop.stock.shirt.id, 1, who=OTHER_BUYER, headers=GUEST, variant_id="v_m")
    assert {li["product_id"]: li["quantity"] for li in taken.body["items"]}[shop.stock.product.id] == 2

    tx = Transaction()
    cart_service().convert(tx, first, bought.id, bought.version, bought.merged_guest_version)
    with pytest.raises(Conflict) as changed:
        tx.commit()
    assert changed.value.code == "cart_changed"

    add(shop.stock.product.id, 1, who=BUYER)
    priced = cart_service().get_for(first)  # no guest cart now: nothing merged
    add(shop.stock.product.id, 4, headers=GUEST)  # the device, signed out, starts a new guest cart
    tx = Transaction()
    cart_service().convert(tx, first, priced.id, priced.version, priced.merged_guest_version)
    tx.commit()
    assert [li["quantity"] for li in cart(headers=GUEST).body["items"]] == [4]


def test_a_guest_cart_merged_by_two_requests_at_once_lands_once_in_one_cart(shop):
    """CHK-12: a guest cart (3 kopi) and, at once, each reading it before any write: the buyer's two devices
    adding 1 kopi each while sending the guest id, and another buyer sending the same guest id. The guest's lines
    land exactly once, in one cart: 3 + 1 + 1 in the buyer's, or 3 in the other buyer's, never in both."""
    kopi = shop.stock.product.id
    add(kopi, 3, headers=GUEST)
    start = threading.Barrier(3)
    who = [BUYER, BUYER, OTHER_BUYER]

    def one_add(n: int) -> int:
        start.wait()
        return add(kopi, 1, who=who[n], headers=GUEST).status

    with (
        mock.patch.object(DynamoHandler, "call_action", _serialised(DynamoHandler.call_action)),
        ThreadPoolExecutor(max_workers=3) as pool,
    ):
        statuses = list(pool.map(one_add, range(3)))

    assert statuses == [200] * 3
    mine = cart(who=BUYER).body["items"][0]["quantity"]
    theirs = cart(who=OTHER_BUYER).body["items"][0]["quantity"]
    assert mine + theirs == 3 + 3
    assert (mine, theirs) in {(5, 1), (2, 4)}
    assert cart(headers=GUEST).body["items"] == []
