"""Shipping rates over HTTP in the local stack (LOG-1, CHK-10, issue 9), as the README walks through them: a
seller's stock in a warehouse, rates from the local courier at /_courier, then with the courier down a
flagged fallback, and its page listing what it quoted."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def courier_back_up(api):
    """The stack is shared by every e2e test: the courier is up again whatever this test did."""
    yield
    assert api.post("/_courier/simulate/outage", json={"mode": "up"}).status_code == 200


def stocked_product(api) -> tuple[str, str]:
    """A seller's product with 20 units in a Bandung warehouse: (product id, warehouse id)."""
    admin, worker = api.token("admin-1", ["admin"]), api.token("warehouse-1", ["warehouse"])
    suffix = uuid.uuid4().hex[:6]
    seller = api.post(
        "/v1/sellers",
        admin,
        json={"name": f"Toko Braga {suffix}", "phone": "0812-1111-2222", "owner_user_id": f"owner-{suffix}"},
    )
    assert seller.status_code == 201, seller.text
    warehouse = api.post(
        "/v1/warehouses",
        admin,
        json={
            "code": f"BDG-{suffix}",
            "name": "Gudang Bandung",
            "address": {
                "recipient_name": "Gudang Bandung",
                "phone": "022-4201234",
                "line1": "Jl. Braga 10",
                "city": "Bandung",
                "province": "Jawa Barat",
                "postal_code": "40111",
            },
        },
    )
    assert warehouse.status_code == 201, warehouse.text
    staff = api.token(f"owner-{suffix}", ["seller"], seller_id=seller.json()["id"])
    product = api.post(
        "/v1/products",
        staff,
        json={"name": f"Sepatu Braga {suffix}", "category": "Footwear", "base_price": 250_000, "weight_grams": 900},
    )
    assert product.status_code == 201, product.text
    receipt = api.post(
        "/v1/inventory/receipts",
        worker,
        json={"warehouse_id": warehouse.json()["id"], "product_id": product.json()["id"], "quantity": 20},
    )
    assert receipt.status_code == 201, receipt.text
    return product.json()["id"], warehouse.json()["id"]


def test_rates_from_the_local_courier_then_a_flagged_fallback_while_it_is_down(api, courier_back_up):
    product_id, warehouse_id = stocked_product(api)
    body = {"destination": {"postal_code": "12190"}, "items": [{"product_id": product_id, "quantity": 2}]}

    quoted = api.post("/v1/shipping/rates", json=body)

    assert quoted.status_code == 200, quoted.text
    assert quoted.json()["origin_warehouse_id"] == warehouse_id
    assert quoted.json()["rates"] and {rate["source"] for rate in quoted.json()["rates"]} == {"courier"}

    assert api.post("/_courier/simulate/outage", json={"mode": "down"}).json()["mode"] == "down"
    fallback = api.post("/v1/shipping/rates", json=body)

    assert fallback.status_code == 200, fallback.text
    rates = fallback.json()["rates"]
    assert rates and {rate["source"] for rate in rates} == {"fallback"}
    # The same services keep the same ids, whichever source priced them: checkout can snapshot either.
    assert {rate["shipping_method_id"] for rate in rates} <= {
        rate["shipping_method_id"] for rate in quoted.json()["rates"]
    }
    page = api.get("/_courier", headers={"Accept": "application/json"}).json()
    assert page["outage"]["mode"] == "down"
    # Newest first: the three attempts the courier answered 503 (retried), then the rates it gave before.
    answers = [quote["answer"] for quote in page["quotes"][:4]]
    assert [answer.split(" ")[0] for answer in answers] == ["503", "503", "503", str(len(quoted.json()["rates"]))]
