"""POST /v1/purchase-orders/{id}/receive: the warehouse records delivered units; the full receipt starts
the escrow release to the factory (GB-14, GB-15, WH-4)."""

from patungan.composition import purchase_order_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.inventory.models import PurchaseOrder, ReceiptInput

app = create_api()


@app.post("/v1/purchase-orders/<id>/receive", summary="Receive a purchase order", responses=documented(PurchaseOrder))
def receive_purchase_order(id: str, body: ReceiptInput):
    received = purchase_order_service().receive(caller(app), id, body.received_quantity)
    return json_response(200, received.model_dump(exclude={"version"}))


lambda_handler = api_handler(app)
