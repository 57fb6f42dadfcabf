"""DELETE /v1/cart/items/{item_id}: take a line out of the cart (CHK-1)."""

from patungan.checkout.cart import Cart
from patungan.checkout.http import cart_response, shopper
from patungan.composition import cart_service
from patungan.core.http import api_handler, create_api, documented

app = create_api()


@app.delete("/v1/cart/items/<item_id>", summary="Remove a cart item", responses=documented(Cart))
def remove_cart_item(item_id: str):
    return cart_response(cart_service().remove_item(shopper(app), item_id))


lambda_handler = api_handler(app)
