"""CourierWebhook over HTTP with a time it cannot place (review 11 R2 defect 7; LOG-2): an ``updated_at`` without a
UTC offset is refused with 422 naming the field, and changes nothing. Read as UTC, a courier's WIB wall-clock time
(Biteship answers in WIB) lands seven hours ahead; applied, it made every real update for the next ten minutes
(FUTURE_SKEW) "stale", so the parcel's delivery was ignored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emulator.courier import DEFAULT_WEBHOOK_TOKEN
from tests.e2e.test_checkout import Shopping
from tests.e2e.test_group_buying import eventually

pytestmark = pytest.mark.e2e


def test_a_courier_time_without_an_offset_is_refused_and_later_updates_still_apply(api):
    shopping = Shopping(api, "cod")
    checkout_id, _ = shopping.confirm()
    [order] = shopping.reaches(checkout_id, "processing")["orders"]
    packer = api.token("packer-e2e", ["warehouse"])
    shipped = api.post(f"/v1/orders/{order['id']}/shipments", packer, json={})
    assert shipped.status_code == 201, shipped.text
    shipment = shipped.json()
    wib_wall_clock = (datetime.now(UTC) + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%S")

    refused = api.post(
        f"/_url/CourierWebhook/?token={DEFAULT_WEBHOOK_TOKEN}",
        json={
            "event": "order.status",
            "order_id": shipment["courier_order_id"],
            "status": "picked",
            "updated_at": wib_wall_clock,
        },
    )

    assert refused.status_code == 422, refused.text
    assert [detail["field"] for detail in refused.json()["error"]["details"]] == ["body.updated_at"]
    assert api.get(f"/v1/shipments/{shipment['id']}", packer).json()["status"] == shipment["status"]
    moved = api.post(f"/_courier/simulate/orders/{shipment['courier_order_id']}/status", json={"status": "delivered"})
    assert moved.status_code == 200, moved.text
    delivered = eventually(lambda: api.get(f"/v1/orders/{order['id']}", shopping.buyer).json()["status"] == "delivered")
    assert delivered, api.get(f"/v1/orders/{order['id']}/tracking", shopping.buyer).text
