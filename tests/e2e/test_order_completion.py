"""An order's whole journey over HTTP, as the README walks it (issue 11 "Tests": a paid retail order shipped,
tracked, delivered, completed, and a group-buying order likewise; ORD-3, ORD-5, LOG-2, CHK-9). The return window is a setting: a stack started
with ``ORDER_RETURN_WINDOW_SECONDS=0`` (as ``ORDER_RETURN_WINDOW_SECONDS=0 make run`` starts one) completes a
delivered order the next time ``CompleteDeliveredOrders`` fires, and a paid order's money moves from its
checkout escrow to the seller's payable then (review 11, defect R2-2: no test reached ``completed``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import LocalStackClient, running_local_stack
from tests.e2e.test_cart_preview import ADDRESS
from tests.e2e.test_checkout import Shopping
from tests.e2e.test_group_buying import Walkthrough, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api_without_return_window(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackClient]:
    with running_local_stack(
        tmp_path_factory.mktemp("no-return-window"), settings={"ORDER_RETURN_WINDOW_SECONDS": "0"}
    ) as base_url:
        yield LocalStackClient(base_url)


def _deliver_and_complete(api: LocalStackClient, order_id: str, buyer: str, packer: str) -> dict:
    """Book the courier, let it deliver by webhook, then fire CompleteDeliveredOrders until the order completes;
    the shipment as booked."""
    shipped = api.post(f"/v1/orders/{order_id}/shipments", packer, json={})
    assert shipped.status_code == 201, shipped.text
    for status in ("picked", "delivered"):
        moved = api.post(
            f"/_courier/simulate/orders/{shipped.json()['courier_order_id']}/status", json={"status": status}
        )
        assert moved.status_code == 200, moved.text
    delivered = eventually(lambda: api.get(f"/v1/orders/{order_id}", buyer).json()["status"] == "delivered")
    assert delivered, api.get(f"/v1/orders/{order_id}/tracking", buyer).text
    tracking = api.get(f"/v1/orders/{order_id}/tracking", buyer).json()
    assert tracking["waybill_id"] == shipped.json()["waybill_id"]
    assert [entry["status"] for entry in tracking["history"]][-2:] == ["picked", "delivered"]

    def completed_when_fired() -> bool:
        # Each firing completes what was delivered before it (a window of 0 s ends the second after delivery).
        assert api.post("/_local/schedules/CompleteDeliveredOrders/fire").status_code == 202
        return api.get(f"/v1/orders/{order_id}", buyer).json()["status"] == "completed"

    assert eventually(completed_when_fired), api.get(f"/v1/orders/{order_id}", buyer).text
    return shipped.json()


def _balance(api: LocalStackClient, admin: str, account: str) -> int:
    trial = api.get("/v1/admin/ledger/trial-balance", admin).json()
    assert trial["balanced"] is True, trial
    return sum(row["balance"] for row in trial["accounts"] if row["account"] == account)


def test_a_paid_retail_order_is_shipped_delivered_and_completed_after_the_return_window(api_without_return_window):
    """ORD-3/ORD-5 (issue 11, review defect R2-2): paid → shipped → delivered by the courier's webhook →
    completed by CompleteDeliveredOrders, the checkout's escrow paid over to the seller's payable."""
    api = api_without_return_window
    shopping = Shopping(api, "invoice")
    checkout_id, _ = shopping.confirm()
    awaiting = shopping.reaches(checkout_id, "awaiting_payment")
    invoice_id = api.get(f"/v1/payments/{awaiting['payment']['payment_id']}", shopping.buyer).json()["invoice_id"]
    assert api.post(f"/_xendit/simulate/invoices/{invoice_id}/pay", json={}).status_code == 200
    [order] = shopping.reaches(checkout_id, "paid")["orders"]
    admin = api.token("admin-1", ["admin"])
    order = api.get(f"/v1/orders/{order['id']}", admin).json()
    escrow, payable = f"escrow:checkout:{checkout_id}", f"seller:{order['seller_id']}:payable"
    assert _balance(api, admin, escrow) < 0  # the buyer's money, held for the order
    payable_before = _balance(api, admin, payable)

    shipment = _deliver_and_complete(api, order["id"], shopping.buyer, api.token("packer-e2e", ["warehouse"]))
    assert shipment["cod_amount"] is None
    assert _balance(api, admin, escrow) == 0
    assert _balance(api, admin, payable) == payable_before - order["total"]  # credit: owed to the seller


def test_a_group_buying_order_ships_from_the_warehouse_and_completes(api_without_return_window):
    """GB-15 over HTTP (issue 11 "Tests", review defect R2-2): session paid and settled, its purchase order
    received at the warehouse, the buyer's order shipped from the units held for the session, delivered by the
    courier's webhook and completed; the units leave the warehouse."""
    walk = Walkthrough(api_without_return_window)
    api = walk.api
    session = walk.open_session(moq=2)
    buyer = walk.buyer(1)
    walk.pay_by_simulation(walk.join(buyer, session["id"], 2))
    assert eventually(lambda: walk.session(session["id"])["paid_quantity"] == 2)
    walk.pass_the_deadline(session["id"])
    assert eventually(lambda: walk.session(session["id"])["status"] == "in_production"), walk.session(session["id"])
    [order] = api.get("/v1/orders", buyer, params={"session_id": session["id"]}).json()["items"]
    [po] = api.get("/v1/purchase-orders", walk.staff, params={"session_id": session["id"]}).json()["items"]
    received = api.post(f"/v1/purchase-orders/{po['id']}/receive", walk.warehouse, json={"received_quantity": 2})
    assert received.status_code == 200, received.text
    address = api.post("/v1/addresses", buyer, json=ADDRESS)
    assert address.status_code == 201, address.text
    on_hand, reserved = walk.receiving_stock()

    _deliver_and_complete(api, order["id"], buyer, walk.warehouse)

    assert walk.receiving_stock() == (on_hand - 2, reserved - 2)
    assert walk.balanced()


def test_a_parcel_the_courier_calls_off_before_pickup_can_be_booked_again(api_without_return_window):
    """LOG-2: the courier finding no driver (Biteship's courier_not_found) must not strand a COD order."""
    api = api_without_return_window
    shopping = Shopping(api, "cod")
    checkout_id, _ = shopping.confirm()
    [order] = shopping.reaches(checkout_id, "processing")["orders"]
    packer = api.token("packer-e2e", ["warehouse"])
    first = api.post(f"/v1/orders/{order['id']}/shipments", packer, json={})
    assert first.status_code == 201, first.text
    moved = api.post(
        f"/_courier/simulate/orders/{first.json()['courier_order_id']}/status", json={"status": "courier_not_found"}
    )
    assert moved.status_code == 200, moved.text
    assert eventually(
        lambda: api.get(f"/v1/shipments/{first.json()['id']}", packer).json()["status"] == "courier_not_found"
    )

    again = api.post(f"/v1/orders/{order['id']}/shipments", packer, json={})

    assert again.status_code == 201, again.text
    assert again.json()["status"] not in ("courier_not_found", "cancelled", "rejected"), again.text
