"""POST /v1/cart/items: add a retail product (variant) to the cart; the same item again adds to its line (CHK-1).
An Idempotency-Key makes a retried add add once."""

from patungan.checkout.cart import Cart, CartItemInput
from patungan.checkout.http import shopper
from patungan.composition import cart_service
from patungan.core.http import api_handler, create_api, documented, idempotent

app = create_api()


@app.post("/v1/cart/items", summary="Add an item to the cart", responses=documented(Cart))
def add_cart_item(body: CartItemInput):
    who = shopper(app)
    return idempotent(
        app,
        "add_cart_item",
        body.model_dump(),
        lambda: (200, cart_service().add_item(who, body).model_dump(mode="json")),
    )


lambda_handler = api_handler(app)
