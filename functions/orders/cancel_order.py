"""POST /v1/orders/{id}/cancel: the buyer (own, before shipping) or an admin cancels a retail order; a paid one is
refunded (ORD-3)."""

from patungan.composition import checkout_saga
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.orders.models import Order

app = create_api()


@app.post("/v1/orders/<id>/cancel", summary="Cancel an order", responses=documented(Order))
def cancel_order(id: str):
    return json_response(200, checkout_saga().cancel_order(caller(app), id).model_dump())


lambda_handler = api_handler(app)
