"""GET /v1/products: active products, newest first, filtered and paginated (CAT-1)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from patungan.catalog.models import ProductList
from patungan.catalog.service import catalog_service
from patungan.composition import stock_service
from patungan.core.http import api_handler, create_api, documented, json_response, optional_caller
from patungan.core.pagination import DEFAULT_LIMIT, Cursor, IdFilter, Limit, page_body

app = create_api()


@app.get("/v1/products", summary="List products", responses=documented(ProductList))
def list_products(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    category: IdFilter = None,
    factory_id: IdFilter = None,
    seller_id: IdFilter = None,
    include_inactive: Annotated[bool, Query(description="admins and the owner's staff only")] = False,
):
    page = catalog_service().list_products(
        optional_caller(app),
        limit=limit,
        cursor=cursor,
        category=category,
        factory_id=factory_id,
        seller_id=seller_id,
        include_inactive=include_inactive,
    )
    return json_response(200, page_body(page, lambda p: stock_service().with_available(p).model_dump()))


lambda_handler = api_handler(app)
