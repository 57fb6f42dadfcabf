"""Catalog handlers in-process on moto (CAT-1, CAT-2, CAT-3, SYS-1, SYS-3, SYS-4)."""

from __future__ import annotations

import json

import pytest

from tests.support.lambdas import call_api, claims, load_event

ADMIN = claims("admin-1", "admin")
BUYER = claims("buyer-1", "buyer")


def outbox_events(aws) -> list[dict]:
    items = aws.dynamodb().scan(TableName=aws.tables["OutboxTable"])["Items"]
    return [json.loads(item["detail"]["S"]) for item in items]


def catalog_items(aws, prefix: str) -> list[dict]:
    items = aws.dynamodb().scan(TableName=aws.tables["CatalogTable"])["Items"]
    return [i for i in items if i["pk"]["S"].startswith(prefix)]


def create_factory(body=None, who=ADMIN, headers=None):
    return call_api(
        "CreateFactoryFunction",
        "POST",
        "/v1/factories",
        body=body or load_event("catalog/create_factory.json"),
        claims=who,
        headers=headers,
    )


def staff_of(factory_id: str) -> dict[str, str]:
    return claims("factory-staff-1", "factory", factory_id=factory_id)


def create_product(who, body=None, headers=None):
    return call_api(
        "CreateProductFunction",
        "POST",
        "/v1/products",
        body=body or load_event("catalog/create_product.json"),
        claims=who,
        headers=headers,
    )


@pytest.fixture
def factory(aws):
    return create_factory().body


def test_admin_registers_a_factory_with_a_normalised_phone(aws):
    response = create_factory()

    assert response.status == 201
    assert response.body["name"] == "Pabrik Sepatu Bandung"
    assert response.body["phone"] == "+6281234567890"
    assert response.body["id"].startswith("fac_")
    assert response.headers["x-correlation-id"]
    fetched = call_api(
        "GetFactoryFunction",
        "GET",
        f"/v1/factories/{response.body['id']}",
        resource="/v1/factories/{id}",
        path_parameters={"id": response.body["id"]},
        claims=BUYER,
    )
    assert fetched.status == 200
    assert fetched.body == response.body


def test_only_admins_register_factories(aws):
    response = create_factory(who=BUYER)

    assert response.status == 403
    assert response.body["error"]["code"] == "forbidden"
    assert catalog_items(aws, "FACTORY#") == []


def test_signed_out_caller_gets_401_in_the_error_shape(aws):
    response = create_factory(who=None)

    assert response.status == 401
    assert set(response.body["error"]) == {"code", "message", "details"}
    assert response.headers["x-correlation-id"]


def test_invalid_factory_is_422_naming_the_fields_and_changes_nothing(aws):
    response = create_factory(body={"name": "", "phone": "12345", "owner_user_id": "u"})

    assert response.status == 422
    assert response.body["error"]["code"] == "validation_error"
    fields = {d["field"] for d in response.body["error"]["details"]}
    assert {"body.name", "body.phone"} <= fields
    assert catalog_items(aws, "FACTORY#") == []


def test_factory_staff_create_a_product_with_variants_and_an_event(aws, factory):
    response = create_product(staff_of(factory["id"]))

    assert response.status == 201
    product = response.body
    assert product["status"] == "active"
    assert product["slug"] == "sepatu-kanvas"
    assert product["factory_id"] == factory["id"]
    assert product["category"] == "footwear"
    assert [(v["sku"], v["price"]) for v in product["variants"]] == [("SK-42", 150000), ("SK-44", 155000)]
    assert all(v["id"].startswith("var_") for v in product["variants"])
    created = [e for e in outbox_events(aws) if e["type"] == "catalog.product.created"]
    assert len(created) == 1
    assert created[0]["aggregate_id"] == product["id"]
    assert created[0]["data"]["product"]["slug"] == "sepatu-kanvas"
    assert created[0]["event_id"] and created[0]["occurred_at"] and created[0]["version"] == 1
    assert created[0]["correlation_id"] == response.headers["x-correlation-id"]


def test_staff_of_another_factory_may_not_create_its_products(aws, factory):
    other = claims("intruder", "factory", factory_id="fac_someone_else")
    response = create_product(other, body={**load_event("catalog/create_product.json"), "factory_id": factory["id"]})

    assert response.status == 403
    assert catalog_items(aws, "PRODUCT#") == []
    assert outbox_events(aws) == []


def test_buyers_may_not_create_products(aws, factory):
    response = create_product(BUYER, body={**load_event("catalog/create_product.json"), "factory_id": factory["id"]})

    assert response.status == 403


def test_a_product_for_a_missing_factory_is_refused_atomically(aws):
    response = create_product(ADMIN, body={**load_event("catalog/create_product.json"), "factory_id": "fac_nope"})

    assert response.status == 422
    assert response.body["error"]["details"][0]["field"] == "factory_id"
    assert catalog_items(aws, "PRODUCT#") == []
    assert catalog_items(aws, "SLUG#") == []
    assert outbox_events(aws) == []


def test_same_name_gets_distinct_slugs(aws, factory):
    first = create_product(staff_of(factory["id"])).body
    second = create_product(staff_of(factory["id"])).body

    assert first["slug"] == "sepatu-kanvas"
    assert second["slug"].startswith("sepatu-kanvas-")
    assert second["slug"] != first["slug"]


def test_idempotency_key_replays_the_first_response_and_refuses_another_body(aws, factory):
    staff = staff_of(factory["id"])
    key = {"Idempotency-Key": "create-product-1"}

    first = create_product(staff, headers=key)
    replay = create_product(staff, headers=key)
    changed = create_product(staff, headers=key, body={**load_event("catalog/create_product.json"), "name": "Other"})

    assert first.status == replay.status == 201
    assert replay.body == first.body
    assert len(catalog_items(aws, "PRODUCT#")) == 1
    assert changed.status == 422
    assert changed.body["error"]["code"] == "idempotency_key_reused"


def list_products(query=None, who=None):
    return call_api("ListProductsFunction", "GET", "/v1/products", query=query, claims=who)


def test_listing_pages_with_cursors_and_filters(aws, factory):
    staff = staff_of(factory["id"])
    for name, category in (("Kaos Polos", "apparel"), ("Sepatu Lari", "footwear"), ("Topi", "apparel")):
        body = {**load_event("catalog/create_product.json"), "name": name, "category": category, "variants": []}
        assert create_product(staff, body=body).status == 201

    first = list_products({"limit": "2"})
    second = list_products({"limit": "2", "cursor": first.body["next_cursor"]})
    apparel = list_products({"category": "Apparel"})

    assert first.status == 200
    assert [p["name"] for p in first.body["items"]] == ["Topi", "Sepatu Lari"]
    assert [p["name"] for p in second.body["items"]] == ["Kaos Polos"]
    assert second.body["next_cursor"] is None
    assert sorted(p["name"] for p in apparel.body["items"]) == ["Kaos Polos", "Topi"]


def test_listing_limit_and_cursor_are_validated(aws):
    assert list_products({"limit": "101"}).status == 422
    bad_cursor = list_products({"cursor": "not-a-cursor!"})
    assert bad_cursor.status == 400
    assert bad_cursor.body["error"]["code"] == "invalid_cursor"


def get_product(product_id, who=None):
    return call_api(
        "GetProductFunction",
        "GET",
        f"/v1/products/{product_id}",
        resource="/v1/products/{id}",
        path_parameters={"id": product_id},
        claims=who,
    )


def test_soft_deleted_products_leave_buyer_views_but_not_their_managers(aws, factory):
    staff = staff_of(factory["id"])
    product = create_product(staff).body

    deleted = call_api(
        "DeleteProductFunction",
        "DELETE",
        f"/v1/products/{product['id']}",
        resource="/v1/products/{id}",
        path_parameters={"id": product["id"]},
        claims=staff,
    )

    assert deleted.status == 200
    assert deleted.body["status"] == "inactive"
    assert get_product(product["id"]).status == 404
    assert get_product(product["id"], who=BUYER).status == 404
    assert get_product(product["id"], who=staff).status == 200
    assert list_products().body["items"] == []
    assert len(list_products({"include_inactive": "true", "factory_id": factory["id"]}, who=staff).body["items"]) == 1
    assert list_products({"include_inactive": "true"}, who=BUYER).body["items"] == []
    updated = [e for e in outbox_events(aws) if e["type"] == "catalog.product.updated"]
    assert [e["data"]["changed"] for e in updated] == [["status"]]


def test_a_price_change_reprices_variants_and_is_published(aws, factory):
    staff = staff_of(factory["id"])
    product = create_product(staff).body

    response = call_api(
        "UpdateProductFunction",
        "PATCH",
        f"/v1/products/{product['id']}",
        resource="/v1/products/{id}",
        path_parameters={"id": product["id"]},
        claims=staff,
        body={"base_price": 160000},
    )

    assert response.status == 200
    assert [v["price"] for v in response.body["variants"]] == [160000, 165000]
    updated = [e for e in outbox_events(aws) if e["type"] == "catalog.product.updated"]
    assert updated[0]["data"]["changed"] == ["base_price", "variants"]


def test_unknown_product_is_404_in_the_error_shape(aws):
    response = get_product("prd_missing")

    assert response.status == 404
    assert response.body["error"]["code"] == "not_found"
    assert response.headers["x-correlation-id"]


def test_bodies_are_json_whatever_the_client_labels_them(aws):
    """curl -d sends application/x-www-form-urlencoded; the contract says bodies are JSON."""
    response = create_factory(headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert response.status == 201
    assert response.body["name"] == "Pabrik Sepatu Bandung"
