"""GET /v1/orders: a buyer's own orders, a factory's or seller's orders, or all for an admin (ORD-6)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from patungan.composition import order_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, IdFilter, Limit, page_body
from patungan.orders.models import OrderList, OrderStatus

app = create_api()


@app.get("/v1/orders", summary="List orders", responses=documented(OrderList))
def list_orders(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    session_id: IdFilter = None,
    status: Annotated[OrderStatus | None, Query()] = None,
):
    page = order_service().list(caller(app), limit=limit, cursor=cursor, session_id=session_id, status=status)
    return json_response(200, page_body(page, lambda o: o.model_dump()))


lambda_handler = api_handler(app)
