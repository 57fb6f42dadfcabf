"""The cart routes' shared edge: who the shopper is (a buyer's token or a guest's ``X-Guest-Id``) and the cart
as they answer it."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from patungan.checkout.cart import Cart, Shopper
from patungan.core.http import header, json_response, optional_caller

GUEST_HEADER = "X-Guest-Id"


def shopper(app: APIGatewayRestResolver) -> Shopper:
    """The shopper of this request: a verified buyer token (a forged one is 401), or a guest's id, or both (the
    guest's cart then merges into the buyer's)."""
    return Shopper.of(optional_caller(app), header(app, GUEST_HEADER))


def cart_response(cart: Cart) -> Response:
    return json_response(200, cart.model_dump(mode="json"))
