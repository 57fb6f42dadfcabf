"""POST /v1/cart/coupons: put a coupon on the cart, the one place coupon codes live (PRM-3); one the shopper may
not use is 422 coupon_not_eligible with the reason (PRM-1, CHK-12)."""

from patungan.checkout.cart import Cart, CouponInput
from patungan.checkout.http import cart_response, shopper
from patungan.composition import cart_service, promotion_service
from patungan.core.http import api_handler, create_api, documented

app = create_api()


@app.post("/v1/cart/coupons", summary="Apply a coupon to the cart", responses=documented(Cart))
def apply_coupon(body: CouponInput):
    return cart_response(cart_service().apply_coupon(shopper(app), body.code, promotion_service()))


lambda_handler = api_handler(app)
