"""POST /v1/inventory/receipts: warehouse staff receive units into a warehouse's stock (WH-1), audited
``receipt`` in the same transaction (WH-2). A retry with the same Idempotency-Key replays the first answer."""

from patungan.composition import stock_service
from patungan.core.http import api_handler, caller, create_api, documented, header, idempotent
from patungan.inventory.stock_models import InventoryItemView, ReceiptBody

app = create_api()


@app.post("/v1/inventory/receipts", summary="Receive stock", responses=documented(InventoryItemView, 201, "Received"))
def receive_stock(body: ReceiptBody):
    principal = caller(app)
    return idempotent(
        app,
        "receive_stock",
        body.model_dump(),
        lambda: (
            201,
            stock_service()
            .receive(
                principal,
                body.warehouse_id,
                body.product_id,
                body.variant_id,
                body.quantity,
                body.reference,
                header(app, "Idempotency-Key"),
            )
            .view(),
        ),
    )


lambda_handler = api_handler(app)
