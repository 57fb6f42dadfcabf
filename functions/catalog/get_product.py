"""GET /v1/products/{id}: a product; inactive ones only for their managers (CAT-1)."""

from patungan.catalog.models import Product
from patungan.catalog.service import catalog_service
from patungan.composition import stock_service
from patungan.core.http import api_handler, create_api, documented, json_response, optional_caller

app = create_api()


@app.get("/v1/products/<id>", summary="A product", responses=documented(Product))
def get_product(id: str):
    product = catalog_service().get_product(optional_caller(app), id)
    return json_response(200, stock_service().with_available(product).model_dump())


lambda_handler = api_handler(app)
