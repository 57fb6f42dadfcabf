"""POST /v1/checkout/preview: the cart priced by the one pricing engine confirm uses (CHK-11): one order per
seller from the warehouse holding its items (ORD-1, CHK-10), coupons, shipping by the chosen method, tax, and
``prices_validated_at`` for confirm to carry (CHK-4). Reserves and redeems nothing."""

from patungan.checkout.http import shopper
from patungan.checkout.quote import CheckoutRequest, Quote
from patungan.composition import cart_service, checkout_pricing, checkout_repository
from patungan.core.http import api_handler, create_api, documented, json_response

app = create_api()


@app.post("/v1/checkout/preview", summary="Preview the checkout's prices", responses=documented(Quote))
def preview(body: CheckoutRequest):
    who = shopper(app)
    quote = checkout_pricing().quote(who, body, cart_service().get_for(who))
    checkout_repository().remember_preview(who.owner_key, quote)  # confirm refuses a price that rose since (CHK-4)
    return json_response(200, quote.model_dump(mode="json"))


lambda_handler = api_handler(app)
