"""GET /v1/purchase-orders: all for admins and the warehouse, a factory's own for its staff."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from patungan.composition import purchase_order_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, IdFilter, Limit, page_body
from patungan.inventory.models import PurchaseOrderList, PurchaseOrderStatus

app = create_api()


@app.get("/v1/purchase-orders", summary="List purchase orders", responses=documented(PurchaseOrderList))
def list_purchase_orders(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    session_id: IdFilter = None,
    status: Annotated[PurchaseOrderStatus | None, Query()] = None,
):
    page = purchase_order_service().list(caller(app), limit=limit, cursor=cursor, session_id=session_id, status=status)
    return json_response(200, page_body(page, lambda p: p.model_dump(exclude={"version"})))


lambda_handler = api_handler(app)
