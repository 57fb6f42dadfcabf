"""GET /v1/factories/{id}: any signed-in user sees a factory."""

from patungan.catalog.models import Organisation
from patungan.catalog.service import catalog_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response

app = create_api()


@app.get("/v1/factories/<id>", summary="A factory", responses=documented(Organisation))
def get_factory(id: str):
    caller(app)
    return json_response(200, catalog_service().get_organisation("factory", id).model_dump())


lambda_handler = api_handler(app)
