"""GET /v1/warehouses: admins, warehouse staff and seller staff list the warehouses by code (WH-1)."""

from patungan.composition import warehouse_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, Limit, page_body
from patungan.inventory.warehouses import WarehouseList

app = create_api()


@app.get("/v1/warehouses", summary="List warehouses", responses=documented(WarehouseList))
def list_warehouses(limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    page = warehouse_service().list(caller(app), limit=limit, cursor=cursor)
    return json_response(200, page_body(page, lambda warehouse: warehouse.model_dump()))


lambda_handler = api_handler(app)
