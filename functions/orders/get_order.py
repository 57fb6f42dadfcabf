"""GET /v1/orders/{id}: an order its buyer, its factory or seller, or an admin may see (ORD-6)."""

from patungan.composition import order_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.orders.models import Order

app = create_api()


@app.get("/v1/orders/<id>", summary="An order", responses=documented(Order))
def get_order(id: str):
    return json_response(200, order_service().get(caller(app), id).model_dump())


lambda_handler = api_handler(app)
