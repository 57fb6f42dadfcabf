"""GET /v1/checkout/{id}: the checkout its buyer (or guest) confirmed: status, orders, payment, error."""

from patungan.checkout.confirm import CheckoutView
from patungan.checkout.http import shopper
from patungan.composition import confirm_service
from patungan.core.http import api_handler, create_api, documented, json_response

app = create_api()


@app.get("/v1/checkout/<id>", summary="A checkout", responses=documented(CheckoutView))
def get_checkout(id: str):
    return json_response(200, confirm_service().get(shopper(app), id).model_dump(mode="json"))


lambda_handler = api_handler(app)
