"""POST /v1/inventory/cycle-counts: a counted quantity; the discrepancy is applied as an audited
``cycle_count`` change (WH-3)."""

from patungan.composition import stock_service
from patungan.core.http import api_handler, caller, create_api, documented, header, idempotent
from patungan.inventory.stock_models import CycleCount, CycleCountBody

app = create_api()


@app.post("/v1/inventory/cycle-counts", summary="Record a cycle count", responses=documented(CycleCount, 201))
def record_cycle_count(body: CycleCountBody):
    principal = caller(app)
    return idempotent(
        app,
        "record_cycle_count",
        body.model_dump(),
        lambda: (
            201,
            stock_service()
            .count(
                principal,
                body.warehouse_id,
                body.product_id,
                body.variant_id,
                body.counted_quantity,
                body.note,
                header(app, "Idempotency-Key"),
            )
            .model_dump(),
        ),
    )


lambda_handler = api_handler(app)
