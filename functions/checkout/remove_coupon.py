"""DELETE /v1/cart/coupons/{code}: take a coupon off the cart (PRM-3)."""

from patungan.checkout.cart import Cart
from patungan.checkout.http import cart_response, shopper
from patungan.composition import cart_service
from patungan.core.http import api_handler, create_api, documented

app = create_api()


@app.delete("/v1/cart/coupons/<code>", summary="Remove a coupon from the cart", responses=documented(Cart))
def remove_coupon(code: str):
    return cart_response(cart_service().remove_coupon(shopper(app), code))


lambda_handler = api_handler(app)
