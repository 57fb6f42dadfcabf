"""POST /v1/checkout/confirm: what the app must show at once is answered before the 202 (stale preview, risen
price, empty cart, stock short, inventory down, another confirm in flight, wallet short); the saga runs the
rest. The Idempotency-Key and the cart's hash name the checkout (CHK-6): Powertools' replay by key and body
would answer a changed cart with the old checkout, so the checkout record itself is the idempotency record."""

from patungan.checkout.confirm import Accepted, ConfirmRequest
from patungan.checkout.http import shopper
from patungan.composition import confirm_service
from patungan.core.errors import BadRequest
from patungan.core.http import IDEMPOTENCY_HEADER, api_handler, create_api, documented, header, json_response

app = create_api()


@app.post("/v1/checkout/confirm", summary="Confirm the checkout", responses=documented(Accepted, 202, "Accepted"))
def confirm(body: ConfirmRequest):
    key = header(app, IDEMPOTENCY_HEADER)
    if not key or len(key) > 255:
        raise BadRequest("send an Idempotency-Key (at most 255 characters)", code="idempotency_key_required")
    return json_response(202, confirm_service().confirm(shopper(app), body, key).model_dump())


lambda_handler = api_handler(app)
