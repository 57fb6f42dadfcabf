"""Checkout helpers for tests and benchmarks: a plain pricing of the cart at catalog prices (the pricing engine's
own tests cover the engine), and recorders for the saga's starts and task-token answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from patungan import composition
from patungan.checkout.cart import Shopper
from patungan.checkout.confirm import ConfirmService, ConfirmSettings
from patungan.checkout.quote import AppliedCoupon, OrderQuote, Quote, QuoteLine, ShippingMethod
from patungan.core.clock import to_iso
from patungan.ledger.repository import ledger

SHIPPING = 9_000
TAX = 1_100


class CatalogPricing:
    """The cart at the catalog's prices now, one order from the test's warehouse, flat shipping and tax."""

    def __init__(self, warehouse_id: str) -> None:
        self.warehouse_id = warehouse_id

    def quote(self, shopper: Shopper, request: Any, cart: Any) -> Quote:
        lines = [
            QuoteLine(
                product_id=item.product_id,
                variant_id=item.variant_id,
                name=item.product_id,
                quantity=item.quantity,
                unit_price=(price := composition.unit_price(item.product_id, item.variant_id)),
                amount=price * item.quantity,
            )
            for item in cart.items
        ]
        goods = sum(line.amount for line in lines)
        order = OrderQuote(
            seller_id="sel_toko",
            warehouse_id=self.warehouse_id,
            lines=lines,
            subtotal=goods,
            shipping=SHIPPING,
            tax=TAX,
            total=goods + SHIPPING + TAX,
        )
        return Quote(
            cart_version=cart.version,
            prices_validated_at=to_iso(composition.CLOCK.now()),
            currency="IDR",
            orders=[order],
            subtotal=goods,
            shipping=SHIPPING,
            tax=TAX,
            discount=0,
            total=order.total,
            shipping_method=ShippingMethod(shipping_method_id="jne:reg", courier="jne", service="reg"),
            # Applied as they stand on the cart (a fixed zero discount: usage is what the saga records).
            address=request.address if request is not None else None,
            coupons=[AppliedCoupon(code=code, target="items", discount=0) for code in cart.coupon_codes],
        )


class OrderPerLinePricing(CatalogPricing):
    """The catalog pricing, one order per line (as many sellers would give): several orders on one invoice."""

    def quote(self, shopper: Shopper, request: Any, cart: Any) -> Quote:
        whole = super().quote(shopper, request, cart)
        orders = [
            OrderQuote(
                seller_id=order.seller_id,
                warehouse_id=order.warehouse_id,
                lines=[line],
                subtotal=line.amount,
                shipping=0,
                tax=0,
                total=line.amount,
            )
            for order in whole.orders
            for line in order.lines
        ]
        goods = sum(order.total for order in orders)
        return whole.model_copy(update={"orders": orders, "subtotal": goods, "shipping": 0, "tax": 0, "total": goods})


@dataclass
class Started:
    executions: list[str] = field(default_factory=list)

    def start(self, state_machine_arn: str, name: str, input_json: str) -> bool:
        self.executions.append(name)
        return True


@dataclass
class Tokens:
    succeeded: list[tuple[str, dict]] = field(default_factory=list)

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self.succeeded.append((token, output))


def confirm_service(pricing: CatalogPricing, started: Started) -> ConfirmService:
    """The confirm service of the composition root, with ``pricing`` and a recorder for the saga's starts."""
    return ConfirmService(
        composition.checkout_repository(),
        composition.order_service().repository,
        composition.cart_service(),
        pricing,
        ledger(),
        composition.stock_service(),
        started,
        composition.outbox(),
        composition.CLOCK,
        ConfirmSettings(
            state_machine_arn="arn:checkout", payment_window=timedelta(minutes=15), lock_for=timedelta(minutes=2)
        ),
    )
