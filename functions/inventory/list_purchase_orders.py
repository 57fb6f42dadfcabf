"""GET /v1/purchase-orders: all for admins and the warehouse, a factory's own for its staff."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from patungan.composition import purchase_order_service
from patungan.core.http import api_handler, caller, create_api, json_response
from patungan.core.pagination import DEFAULT_LIMIT, MAX_LIMIT

app = create_api()


@app.get("/v1/purchase-orders", summary="List purchase orders")
def list_purchase_orders(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query()] = None,
    session_id: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query()] = None,
):
    page = purchase_order_service().list(caller(app), limit=limit, cursor=cursor, session_id=session_id, status=status)
    return json_response(
        200, {"items": [p.model_dump(exclude={"version"}) for p in page.items], "next_cursor": page.next_cursor}
    )


lambda_handler = api_handler(app)
