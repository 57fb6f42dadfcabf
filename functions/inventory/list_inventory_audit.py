"""GET /v1/inventory/audit: the audit log (WH-2) by item, product, warehouse, actor, action and time, newest
first, read through keys and indexes (no scan)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from patungan.composition import stock_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, IdFilter, Limit
from patungan.inventory.stock_models import AuditAction, AuditRecordList
from patungan.inventory.stock_repository import AuditQuery

app = create_api()
Moment = Annotated[str | None, Query(max_length=40, description="ISO 8601 time (UTC)")]


@app.get("/v1/inventory/audit", summary="The inventory audit log", responses=documented(AuditRecordList))
def list_inventory_audit(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    warehouse_id: IdFilter = None,
    product_id: IdFilter = None,
    variant_id: IdFilter = None,
    actor_id: IdFilter = None,
    action: Annotated[AuditAction | None, Query()] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40, description="ISO 8601 time (UTC)")] = None,
    to: Moment = None,
):
    query = AuditQuery(
        warehouse_id=warehouse_id,
        product_id=product_id,
        variant_id=variant_id,
        actor_id=actor_id,
        action=action,
        from_=from_,
        to=to,
    )
    records, next_cursor = stock_service().audit_log(caller(app), query, limit=limit, cursor=cursor)
    return json_response(200, {"items": [r.model_dump() for r in records], "next_cursor": next_cursor})


lambda_handler = api_handler(app)
