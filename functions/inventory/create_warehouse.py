"""POST /v1/warehouses: an admin registers a warehouse; its code is unique (WH-1)."""

from patungan.composition import warehouse_service
from patungan.core.http import api_handler, caller, create_api, documented, idempotent
from patungan.inventory.warehouses import Warehouse, WarehouseInput

app = create_api()


@app.post("/v1/warehouses", summary="Register a warehouse (admin)", responses=documented(Warehouse, 201, "Created"))
def create_warehouse(body: WarehouseInput):
    principal = caller(app)
    return idempotent(
        app,
        "create_warehouse",
        body.model_dump(),
        lambda: (201, warehouse_service().create(principal, body).model_dump()),
    )


lambda_handler = api_handler(app)
