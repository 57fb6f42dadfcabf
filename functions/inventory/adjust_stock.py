"""POST /v1/inventory/adjustments: warehouse staff correct on_hand by a delta with a reason (WH-1), audited
``adjustment``; on_hand never drops below what is reserved (409 insufficient_stock)."""

from patungan.composition import stock_service
from patungan.core.http import api_handler, caller, create_api, documented, header, idempotent
from patungan.inventory.stock_models import AdjustmentBody, InventoryItemView

app = create_api()


@app.post("/v1/inventory/adjustments", summary="Adjust stock", responses=documented(InventoryItemView))
def adjust_stock(body: AdjustmentBody):
    principal = caller(app)
    return idempotent(
        app,
        "adjust_stock",
        body.model_dump(),
        lambda: (
            200,
            stock_service()
            .adjust(
                principal,
                body.warehouse_id,
                body.product_id,
                body.variant_id,
                body.delta,
                body.reason,
                header(app, "Idempotency-Key"),
            )
            .view(),
        ),
    )


lambda_handler = api_handler(app)
