"""GET /v1/payments/{id}: the payment's owner or an admin sees it; anyone else gets 404."""

from patungan.composition import payment_service
from patungan.core.http import api_handler, caller, create_api, documented, json_response
from patungan.payments.models import Payment

app = create_api()


@app.get("/v1/payments/<id>", summary="A payment", responses=documented(Payment))
def get_payment(id: str):
    return json_response(200, payment_service().get_payment(caller(app), id).model_dump())


lambda_handler = api_handler(app)
