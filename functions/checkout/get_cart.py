"""GET /v1/cart: the buyer's or guest's cart, priced now, with non-binding availability (CHK-1, CHK-2, CHK-12)."""

from patungan.checkout.cart import Cart
from patungan.checkout.http import cart_response, shopper
from patungan.composition import cart_service
from patungan.core.http import api_handler, create_api, documented

app = create_api()


@app.get("/v1/cart", summary="Get the cart", responses=documented(Cart))
def get_cart():
    return cart_response(cart_service().get_for(shopper(app)))


lambda_handler = api_handler(app)
