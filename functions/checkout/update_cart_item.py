"""PATCH /v1/cart/items/{item_id}: set a cart line's quantity (CHK-1)."""

from patungan.checkout.cart import Cart, CartItemUpdate
from patungan.checkout.http import cart_response, shopper
from patungan.composition import cart_service
from patungan.core.http import api_handler, create_api, documented

app = create_api()


@app.patch("/v1/cart/items/<item_id>", summary="Change a cart item's quantity", responses=documented(Cart))
def update_cart_item(item_id: str, body: CartItemUpdate):
    return cart_response(cart_service().update_item(shopper(app), item_id, body))


lambda_handler = api_handler(app)
