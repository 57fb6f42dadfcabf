"""GET /v1/shipments/{id}: a shipment, for its order's buyer, staff and admins (LOG-2)."""

from patungan.composition import shipment_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.fulfilment.models import Shipment

app = create_api()


@app.get("/v1/shipments/<id>", summary="A shipment", responses=documented(Shipment))
def get_shipment(id: str):
    return json_response(200, shipment_service().get(caller(app), id).model_dump(exclude={"version"}))


lambda_handler = api_handler(app)
