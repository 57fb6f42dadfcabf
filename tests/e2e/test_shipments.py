"""Shipping over HTTP in the local stack (issue 11; LOG-2, LOG-3, CHK-9): a cash-on-delivery order is booked with
the local courier by the warehouse, shipped with its waybill and COD amount, tracked by its buyer, and its label
opens as a one-page PDF."""

from __future__ import annotations

import pypdfium2
import pytest

from tests.e2e.test_checkout import Shopping

pytestmark = pytest.mark.e2e


def test_a_cod_order_ships_with_the_local_courier_and_its_label_opens_as_a_pdf(api):
    shopping = Shopping(api, "cod")
    checkout_id, _ = shopping.confirm()
    [order] = shopping.reaches(checkout_id, "processing")["orders"]
    warehouse = api.token("packer-e2e", ["warehouse"])

    shipped = api.post(f"/v1/orders/{order['id']}/shipments", warehouse, json={})
    again = api.post(f"/v1/orders/{order['id']}/shipments", warehouse)

    assert shipped.status_code == 201, shipped.text
    shipment = shipped.json()
    assert (again.status_code, again.json()) == (201, shipment)  # one shipment, one courier booking
    assert shipment["waybill_id"] and shipment["cod_amount"] == order["total"]
    assert api.get(f"/v1/orders/{order['id']}", shopping.buyer).json()["status"] == "shipped"
    tracked = api.get(f"/v1/orders/{order['id']}/tracking", shopping.buyer).json()
    assert (tracked["status"], tracked["waybill_id"]) == (shipment["status"], shipment["waybill_id"])
    assert api.post(f"/v1/orders/{order['id']}/shipments", shopping.buyer).status_code == 403

    label = api.get(shipment["label_url"], warehouse, headers={"Accept": "application/pdf"})

    assert label.status_code == 200, label.text
    assert label.headers["content-type"] == "application/pdf"
    document = pypdfium2.PdfDocument(label.content)
    assert len(document) == 1
    assert shipment["waybill_id"] in document[0].get_textpage().get_text_bounded()
