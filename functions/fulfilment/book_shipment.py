"""POST /v1/orders/{id}/shipments: the warehouse, the seller's staff or an admin books the courier for a paid (or
cash-on-delivery) order; the order ships and its stock leaves the books (LOG-2, GB-15, CHK-9). A retry returns the
same shipment: the courier is booked once."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from patungan.composition import shipment_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.fulfilment.models import Shipment, ShipmentBody

app = create_api()


@app.post("/v1/orders/<id>/shipments", summary="Ship an order", responses=documented(Shipment, 201, "Shipped"))
def book_shipment(id: str, body: Annotated[ShipmentBody | None, Body()] = None):
    method = body.shipping_method_id if body else None
    return json_response(201, shipment_service().book(caller(app), id, method).model_dump(exclude={"version"}))


lambda_handler = api_handler(app)
