"""POST /v1/shipping/rates: what each courier service charges for these items, from the warehouse holding them
(CHK-10) to a postal code or to one of the caller's addresses (LOG-1). Public: a guest gets rates by postal
code; a bearer token, when sent, is verified here (a forged one is 401) and lets the caller name an address_id.
A rate the courier could not give is flagged ``source: "fallback"``."""

from patungan.composition import shipping_rates_service
from patungan.core.http import api_handler, create_api, documented, json_response, optional_caller
from patungan.logistics.models import RatesRequest, ShippingRates

app = create_api()


@app.post("/v1/shipping/rates", summary="Get shipping rates", responses=documented(ShippingRates))
def get_shipping_rates(body: RatesRequest):
    viewer = optional_caller(app)
    return json_response(200, shipping_rates_service().rates(viewer, body).model_dump(mode="json"))


lambda_handler = api_handler(app)
