"""PATCH /v1/products/{id}: the product's managers change it (CAT-1, CAT-3)."""

from patungan.catalog.models import Product, ProductUpdate
from patungan.catalog.service import catalog_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response

app = create_api()


@app.patch("/v1/products/<id>", summary="Change a product", responses=documented(Product))
def update_product(id: str, body: ProductUpdate):
    return json_response(200, catalog_service().update_product(caller(app), id, body).model_dump())


lambda_handler = api_handler(app)
