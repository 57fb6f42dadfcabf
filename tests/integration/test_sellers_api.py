"""Sellers and their products in-process on moto (CAT-3, SYS-4; issue 9): admins register sellers, any
signed-in user reads them, and seller staff (``custom:seller_id``) manage only their own seller's products."""

from __future__ import annotations

import pytest

from tests.support.lambdas import call_api, claims, load_event

ADMIN = claims("admin-1", "admin")
BUYER = claims("buyer-1", "buyer")


def create_seller(who=ADMIN, body=None, headers=None):
    return call_api(
        "CreateSellerFunction",
        "POST",
        "/v1/sellers",
        body=body or load_event("catalog/create_seller.json"),
        claims=who,
        headers=headers,
    )


def get_seller(seller_id, who=BUYER):
    return call_api(
        "GetSellerFunction",
        "GET",
        f"/v1/sellers/{seller_id}",
        resource="/v1/sellers/{id}",
        path_parameters={"id": seller_id},
        claims=who,
    )


def staff_of(seller_id: str | None) -> dict[str, str]:
    return claims(f"seller-staff-of-{seller_id}", "seller", seller_id=seller_id)


def create_product(who, **changes):
    return call_api(
        "CreateProductFunction",
        "POST",
        "/v1/products",
        body={**load_event("catalog/create_product.json"), **changes},
        claims=who,
    )


def update_product(who, product_id, body):
    return call_api(
        "UpdateProductFunction",
        "PATCH",
        f"/v1/products/{product_id}",
        resource="/v1/products/{id}",
        path_parameters={"id": product_id},
        body=body,
        claims=who,
    )


@pytest.fixture
def two_sellers(aws):
    return create_seller().body["id"], create_seller().body["id"]


def test_admin_registers_a_seller_that_any_signed_in_user_reads(aws):
    response = create_seller()

    assert response.status == 201
    seller = response.body
    assert seller["id"].startswith("sel_")
    assert seller["phone"] == "+6285723456789"
    assert (seller["name"], seller["owner_user_id"]) == ("Toko Batik Solo", "seller-owner-1")
    assert seller["created_at"].endswith("Z")
    for who in (BUYER, staff_of("sel_other"), claims("factory-staff", "factory", factory_id="fac_1")):
        fetched = get_seller(seller["id"], who)
        assert fetched.status == 200
        assert fetched.body == seller


@pytest.mark.parametrize(
    "who",
    [
        BUYER,
        claims("seller-owner-1", "seller", seller_id="sel_1"),
        claims("w-1", "warehouse"),
        claims("f-1", "factory", factory_id="fac_1"),
    ],
)
def test_only_admins_register_sellers(aws, who):
    response = create_seller(who)

    assert response.status == 403
    assert response.body["error"]["code"] == "forbidden"


def test_sellers_need_a_signed_in_caller_and_an_unknown_one_is_404(aws):
    assert create_seller(who=None).status == 401
    assert get_seller("sel_nope", who=None).status == 401
    missing = get_seller("sel_nope")
    assert missing.status == 404
    assert missing.body["error"]["code"] == "not_found"


def test_a_seller_with_a_phone_that_is_not_an_indonesian_mobile_is_422(aws):
    response = create_seller(body={**load_event("catalog/create_seller.json"), "phone": "+65 6123 4567"})

    assert response.status == 422
    assert [d["field"] for d in response.body["error"]["details"]] == ["body.phone"]


def test_the_same_idempotency_key_registers_one_seller(aws):
    first = create_seller(headers={"Idempotency-Key": "seller-1"})
    again = create_seller(headers={"Idempotency-Key": "seller-1"})

    assert first.status == again.status == 201
    assert again.body == first.body


def test_seller_staff_create_products_for_their_own_seller(two_sellers):
    mine, _ = two_sellers

    implicit = create_product(staff_of(mine))
    explicit = create_product(staff_of(mine), seller_id=mine, name="Batik Tulis")

    assert implicit.status == explicit.status == 201
    assert implicit.body["seller_id"] == explicit.body["seller_id"] == mine
    assert implicit.body["factory_id"] is None


def test_seller_staff_may_not_create_products_for_another_seller_or_a_factory(two_sellers):
    mine, theirs = two_sellers

    for response in (
        create_product(staff_of(mine), seller_id=theirs),
        create_product(staff_of(mine), factory_id="fac_1"),
        create_product(staff_of(None)),
        create_product(claims("f-1", "factory", factory_id="fac_1"), seller_id=mine),
        create_product(BUYER, seller_id=mine),
    ):
        assert response.status == 403, response.body
        assert response.body["error"]["code"] == "forbidden"


def test_a_product_for_a_seller_that_does_not_exist_is_422(aws):
    response = create_product(ADMIN, seller_id="sel_nope")

    assert response.status == 422
    assert response.body["error"]["details"][0]["field"] == "seller_id"


def test_only_the_sellers_own_staff_or_an_admin_change_its_products(two_sellers):
    mine, theirs = two_sellers
    product = create_product(ADMIN, seller_id=mine).body

    refused = update_product(staff_of(theirs), product["id"], {"base_price": 1})
    changed = update_product(staff_of(mine), product["id"], {"base_price": 175_000})

    assert refused.status == 403
    assert changed.status == 200
    assert changed.body["base_price"] == 175_000
    assert update_product(staff_of(None), product["id"], {"name": "x"}).status == 403
