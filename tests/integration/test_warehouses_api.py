"""Warehouse routes in-process on moto (WH-1, ACC-2, SYS-4; issue 9): admins register warehouses with a
unique code and a validated address; admins, warehouse staff and seller staff list them."""

from __future__ import annotations

import pytest

from tests.support.lambdas import call_api, claims, load_event

ADMIN = claims("admin-1", "admin")
WAREHOUSE_STAFF = claims("wh-staff-1", "warehouse")
SELLER_STAFF = claims("seller-staff-1", "seller", seller_id="sel_1")
BUYER = claims("buyer-1", "buyer")
FACTORY_STAFF = claims("factory-staff-1", "factory", factory_id="fac_1")


def warehouse_body(**changes):
    return {**load_event("inventory/create_warehouse.json"), **changes}


def create_warehouse(who=ADMIN, body=None, headers=None):
    return call_api(
        "CreateWarehouseFunction", "POST", "/v1/warehouses", body=body or warehouse_body(), claims=who, headers=headers
    )


def list_warehouses(who=ADMIN, query=None):
    return call_api("ListWarehousesFunction", "GET", "/v1/warehouses", claims=who, query=query)


def test_admin_registers_a_warehouse_with_a_normalised_address(aws):
    response = create_warehouse()

    assert response.status == 201
    warehouse = response.body
    assert warehouse["id"].startswith("wh_")
    assert (warehouse["code"], warehouse["name"]) == ("JKT-01", "Gudang Cakung")
    assert warehouse["address"]["phone"] == "+622146821234"
    assert (warehouse["address"]["latitude"], warehouse["address"]["longitude"]) == (-6.1806, 106.9372)
    assert warehouse["created_at"].endswith("Z")
    assert list_warehouses().body == {"items": [warehouse], "next_cursor": None}


def test_a_warehouse_code_is_unique_whatever_its_case(aws):
    create_warehouse()

    response = create_warehouse(body=warehouse_body(code="jkt-01", name="Gudang Lain"))

    assert response.status == 409
    assert response.body["error"]["code"] == "warehouse_code_taken"
    assert [w["name"] for w in list_warehouses().body["items"]] == ["Gudang Cakung"]


@pytest.mark.parametrize("who", [WAREHOUSE_STAFF, SELLER_STAFF, BUYER, FACTORY_STAFF])
def test_only_admins_register_warehouses(aws, who):
    response = create_warehouse(who)

    assert response.status == 403
    assert response.body["error"]["code"] == "forbidden"
    assert list_warehouses().body["items"] == []


@pytest.mark.parametrize(
    ("who", "status"), [(WAREHOUSE_STAFF, 200), (SELLER_STAFF, 200), (BUYER, 403), (FACTORY_STAFF, 403)]
)
def test_admins_warehouse_and_seller_staff_list_warehouses_others_may_not(aws, who, status):
    create_warehouse()

    response = list_warehouses(who)

    assert response.status == status
    if status == 200:
        assert [w["code"] for w in response.body["items"]] == ["JKT-01"]
    else:
        assert response.body["error"]["code"] == "forbidden"


def test_warehouse_routes_need_a_signed_in_caller(aws):
    assert create_warehouse(who=None).status == 401
    assert list_warehouses(who=None).status == 401


@pytest.mark.parametrize(("field", "value"), [("phone", "+1 212 555 0100"), ("postal_code", "139100")])
def test_a_warehouse_address_is_validated_as_a_buyers_is(aws, field, value):
    body = warehouse_body()
    body["address"][field] = value

    response = create_warehouse(body=body)

    assert response.status == 422
    assert [d["field"] for d in response.body["error"]["details"]] == [f"body.address.{field}"]


def test_warehouses_are_listed_by_code_in_pages(aws):
    for code in ("SUB-01", "BDG-01", "JKT-01"):
        assert create_warehouse(body=warehouse_body(code=code)).status == 201

    first = list_warehouses(query={"limit": "2"}).body
    second = list_warehouses(query={"limit": "2", "cursor": first["next_cursor"]}).body

    assert [w["code"] for w in first["items"] + second["items"]] == ["BDG-01", "JKT-01", "SUB-01"]
    assert second["next_cursor"] is None


def test_the_same_idempotency_key_registers_one_warehouse(aws):
    first = create_warehouse(headers={"Idempotency-Key": "wh-1"})
    again = create_warehouse(headers={"Idempotency-Key": "wh-1"})

    assert first.status == again.status == 201
    assert again.body == first.body
