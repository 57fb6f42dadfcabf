"""GET /v1/inventory/discrepancies: the cycle counts of a period per item, net discrepancy and its value at
the catalog unit price (WH-3)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from patungan.composition import stock_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.core.pagination import IdFilter
from patungan.inventory.stock_models import DiscrepancyReport

app = create_api()
Moment = Annotated[str | None, Query(max_length=40, description="ISO 8601 time (UTC)")]


@app.get("/v1/inventory/discrepancies", summary="Cycle-count discrepancies", responses=documented(DiscrepancyReport))
def list_discrepancies(
    warehouse_id: IdFilter = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40, description="ISO 8601 time (UTC)")] = None,
    to: Moment = None,
):
    report = stock_service().discrepancies(caller(app), warehouse_id=warehouse_id, from_=from_, to=to)
    return json_response(200, report.model_dump())


lambda_handler = api_handler(app)
