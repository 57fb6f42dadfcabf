"""GET /v1/orders/{id}/tracking for an order that has no parcel (review 11 R2 defect 8; LOG-2, ORD-3): only an
order that can still ship (paid, or cash on delivery) is ``awaiting_shipment``; a cancelled one says so, as the
app would otherwise tell its buyer a parcel is coming that never will."""

from __future__ import annotations

import pytest

from tests.e2e.test_checkout import Shopping

pytestmark = pytest.mark.e2e


def test_a_cancelled_order_is_not_awaiting_shipment(api):
    shopping = Shopping(api, "cod")
    checkout_id, _ = shopping.confirm()
    [order] = shopping.reaches(checkout_id, "processing")["orders"]
    tracking = api.get(f"/v1/orders/{order['id']}/tracking", shopping.buyer)
    assert tracking.status_code == 200, tracking.text
    assert tracking.json()["status"] == "awaiting_shipment"

    cancelled = api.post(f"/v1/orders/{order['id']}/cancel", shopping.buyer)
    assert cancelled.status_code == 200, cancelled.text

    tracking = api.get(f"/v1/orders/{order['id']}/tracking", shopping.buyer)
    assert tracking.status_code == 200, tracking.text
    assert tracking.json() == {"status": "cancelled", "waybill_id": None, "courier": None, "history": []}
