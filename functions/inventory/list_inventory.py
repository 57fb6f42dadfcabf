"""GET /v1/inventory: stock for warehouse staff and admins (a warehouse's, a product's, or all of it warehouse after
warehouse); seller staff see their own products' stock only (WH-1)."""

from patungan.composition import stock_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, IdFilter, Limit
from patungan.inventory.stock_models import InventoryItemList

app = create_api()


@app.get("/v1/inventory", summary="List inventory items", responses=documented(InventoryItemList))
def list_inventory(
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None, warehouse_id: IdFilter = None, product_id: IdFilter = None
):
    items, next_cursor = stock_service().list(
        caller(app), warehouse_id=warehouse_id, product_id=product_id, limit=limit, cursor=cursor
    )
    return json_response(200, {"items": [item.view() for item in items], "next_cursor": next_cursor})


lambda_handler = api_handler(app)
