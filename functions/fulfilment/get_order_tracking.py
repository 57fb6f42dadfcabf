"""GET /v1/orders/{id}/tracking: where an order's parcel is, with its history; ``awaiting_shipment`` until it is
booked (LOG-2)."""

from patungan.composition import shipment_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.fulfilment.models import Tracking

app = create_api()


@app.get("/v1/orders/<id>/tracking", summary="An order's tracking", responses=documented(Tracking))
def get_order_tracking(id: str):
    return json_response(200, shipment_service().tracking(caller(app), id).model_dump())


lambda_handler = api_handler(app)
