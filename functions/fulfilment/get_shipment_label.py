"""GET /v1/shipments/{id}/label: the printable shipping label, a 100 x 150 mm PDF, for the warehouse, the
seller's staff and admins (LOG-3)."""

from patungan.composition import shipment_service
from patungan.core.http import api_handler, binary_response, caller, create_api, documented_file

PDF = "application/pdf"
app = create_api()


@app.get("/v1/shipments/<id>/label", summary="A shipment's label", responses=documented_file(PDF, "The label"))
def get_shipment_label(id: str):
    return binary_response(shipment_service().label(caller(app), id), PDF, f"label-{id}.pdf")


lambda_handler = api_handler(app)
