"""GET /v1/products: active products, newest first, filtered and paginated (CAT-1)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from patungan.catalog.models import ProductList
from patungan.catalog.service import catalog_service
from patungan.core.http import api_handler, create_api, documented, json_response, optional_caller
from patungan.core.pagination import DEFAULT_LIMIT, MAX_LIMIT

app = create_api()


@app.get("/v1/products", summary="List products", responses=documented(ProductList))
def list_products(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query()] = None,
    category: Annotated[str | None, Query()] = None,
    factory_id: Annotated[str | None, Query()] = None,
    seller_id: Annotated[str | None, Query()] = None,
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
    return json_response(200, {"items": [p.model_dump() for p in page.items], "next_cursor": page.next_cursor})


lambda_handler = api_handler(app)
