"""POST /v1/purchase-orders/{id}/receive: the warehouse records delivered units; the full receipt starts
the escrow release to the factory (GB-14, GB-15, WH-4). A retry with the same Idempotency-Key replays the
first answer instead of receiving the units again (SYS-4, issue 6 defect 2)."""

from patungan.composition import purchase_order_service
from patungan.core.http import api_handler, caller, create_api, documented, header, idempotent
from patungan.inventory.models import PurchaseOrder, ReceiptInput

app = create_api()


@app.post("/v1/purchase-orders/<id>/receive", summary="Receive a purchase order", responses=documented(PurchaseOrder))
def receive_purchase_order(id: str, body: ReceiptInput):
    principal = caller(app)
    return idempotent(
        app,
        "receive_purchase_order",
        # The order is part of the request: one key reused for another purchase order is refused, not replayed.
        {"purchase_order_id": id, **body.model_dump()},
        lambda: (
            200,
            purchase_order_service()
            .receive(principal, id, body.received_quantity, header(app, "Idempotency-Key"), body.warehouse_id)
            .model_dump(exclude={"version"}),
        ),
    )


lambda_handler = api_handler(app)
