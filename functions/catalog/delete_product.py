"""DELETE /v1/products/{id}: soft delete - the product leaves buyer listings, history keeps it (CAT-1)."""

from patungan.catalog.models import Product
from patungan.catalog.service import catalog_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response

app = create_api()


@app.delete("/v1/products/<id>", summary="Deactivate a product", responses=documented(Product))
def delete_product(id: str):
    return json_response(200, catalog_service().deactivate_product(caller(app), id).model_dump())


lambda_handler = api_handler(app)
