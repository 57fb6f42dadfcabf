"""Tracking over HTTP in the local stack (issue 11; LOG-2, CHK-9, NOT-1): a cash-on-delivery order is shipped, the
local courier moves it on and delivers Biteship's webhook to CourierWebhook (token in the URL), the buyer sees the
history and a notification, and the COD cash is in a balanced ledger."""

from __future__ import annotations

import pytest

from tests.e2e.test_checkout import Shopping
from tests.e2e.test_group_buying import eventually

pytestmark = pytest.mark.e2e


def test_the_local_courier_drives_a_cod_parcel_to_the_buyer_by_webhook(api):
    shopping = Shopping(api, "cod")
    checkout_id, _ = shopping.confirm()
    [order] = shopping.reaches(checkout_id, "processing")["orders"]
    warehouse = api.token("packer-e2e", ["warehouse"])
    admin = api.token("admin-1", ["admin"])
    shipped = api.post(f"/v1/orders/{order['id']}/shipments", warehouse, json={})
    assert shipped.status_code == 201, shipped.text
    courier_order_id = shipped.json()["courier_order_id"]

    def tracked_as(status: str):
        tracking = api.get(f"/v1/orders/{order['id']}/tracking", shopping.buyer).json()
        return tracking["status"] == status and tracking

    for status in ("picked", "delivered"):
        moved = api.post(f"/_courier/simulate/orders/{courier_order_id}/status", json={"status": status})
        assert moved.status_code == 200, moved.text
        assert eventually(lambda status=status: tracked_as(status)), api.get(
            f"/v1/orders/{order['id']}/tracking", shopping.buyer
        ).text

    assert api.get(f"/v1/orders/{order['id']}", shopping.buyer).json()["status"] == "delivered"
    assert [entry["status"] for entry in tracked_as("delivered")["history"]][-2:] == ["picked", "delivered"]
    notified = eventually(
        lambda: [
            n for n in api.get("/v1/notifications", shopping.buyer).json()["items"] if n["type"] == "order.fulfilled"
        ]
    )
    assert notified and notified[0]["title"] == "Order delivered"
    balance = api.get("/v1/admin/ledger/trial-balance", admin).json()
    assert balance["balanced"] is True
    assert any(a["account"].endswith(":cod_receivable") and a["balance"] >= order["total"] for a in balance["accounts"])
