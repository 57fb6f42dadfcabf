"""GET /v1/sellers/{id}: any signed-in user sees a seller (CAT-3)."""

from patungan.catalog.models import Organisation
from patungan.catalog.service import catalog_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response

app = create_api()


@app.get("/v1/sellers/<id>", summary="A seller", responses=documented(Organisation))
def get_seller(id: str):
    caller(app)
    return json_response(200, catalog_service().get_organisation("seller", id).model_dump())


lambda_handler = api_handler(app)
