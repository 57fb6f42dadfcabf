"""POST /v1/sellers: an admin registers a seller (CAT-3)."""

from patungan.catalog.models import Organisation, OrganisationInput
from patungan.catalog.service import catalog_service
from patungan.core.http import api_handler, caller, create_api, documented, idempotent

app = create_api()


@app.post("/v1/sellers", summary="Register a seller (admin)", responses=documented(Organisation, 201, "Created"))
def create_seller(body: OrganisationInput):
    principal = caller(app)
    return idempotent(
        app,
        "create_seller",
        body.model_dump(),
        lambda: (201, catalog_service().create_organisation(principal, "seller", body).model_dump()),
    )


lambda_handler = api_handler(app)
