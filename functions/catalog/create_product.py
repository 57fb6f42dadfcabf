"""POST /v1/products: admin, or staff of the product's factory or seller, adds a product (CAT-1, CAT-3)."""

from patungan.catalog.models import Product, ProductInput
from patungan.catalog.service import catalog_service
from patungan.core.http import api_handler, caller, create_api, documented, idempotent

app = create_api()


@app.post("/v1/products", summary="Add a product", responses=documented(Product, 201, "Created"))
def create_product(body: ProductInput):
    principal = caller(app)
    return idempotent(
        app,
        "create_product",
        body.model_dump(),
        lambda: (201, catalog_service().create_product(principal, body).model_dump()),
    )


lambda_handler = api_handler(app)
