"""GET /v1/purchase-orders/{id}: admins, the warehouse, or staff of the ordering factory."""

from patungan.composition import purchase_order_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.inventory.models import PurchaseOrder

app = create_api()


@app.get("/v1/purchase-orders/<id>", summary="A purchase order", responses=documented(PurchaseOrder))
def get_purchase_order(id: str):
    return json_response(200, purchase_order_service().get(caller(app), id).model_dump(exclude={"version"}))


lambda_handler = api_handler(app)
