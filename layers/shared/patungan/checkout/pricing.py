"""The one pricing engine (CHK-11, ORD-1, ORD-2): preview and confirm both call ``CheckoutPricing.quote``, so a
buyer is charged what the same code showed them.

``price_orders`` is pure integer arithmetic over minor units:

- one order per seller (ORD-1); a line's amount is ``quantity x unit_price - discount``;
- coupons apply in the cart's order, each to what the coupons before it left: an items coupon to its orders'
  lines, a shipping coupon to its orders' shipping, so a discount never exceeds its base and nothing goes negative;
- a coupon's minimum spend is measured on the goods of its scope (its seller's orders, or all) at catalog prices,
  before any coupon: the same figure the cart checks when the coupon is applied (PromotionService.check_for_cart),
  and one that does not depend on the order the coupons were applied in;
- a coupon that takes nothing off (free shipping, or goods another coupon already took all of) is not applied, so
  confirm does not spend one of its limited uses (PRM-2);
- a percent discount is ``base x basis_points // 10000`` (rounded down: the buyer is never promised a fraction the
  seller did not give); a fixed one is capped at the base;
- a discount is split over its lines (or orders' shipping) in proportion to what each has left, by largest
  remainder (core.money.allocate): the parts sum exactly to the discount and none exceeds its own base;
- tax per order is ``(goods after discounts + shipping after its discount) x tax_basis_points / 10000``, rounded
  half up once per order (CHK-11: shipping is taxed after its discount);
- ``total = sum(lines.amount) + shipping - shipping_discount + tax`` per order; the checkout's figures are sums.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Protocol

from patungan.accounts.models import PostalAddress
from patungan.catalog.models import Product
from patungan.checkout.cart import Cart, Shopper
from patungan.checkout.promotions import BASIS_POINTS, CouponNotEligible, Promotion
from patungan.checkout.quote import AppliedCoupon, CheckoutRequest, OrderQuote, Quote, QuoteLine, ShippingMethod
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import BadRequest, Unauthenticated, field_error
from patungan.core.money import allocate
from patungan.core.observability import logger
from patungan.inventory.stock_models import StockLine
from patungan.inventory.warehouses import Warehouse
from patungan.logistics.models import ParcelItem, Place, Rate, RateSource


@dataclass(frozen=True)
class PricedLine:
    product_id: str
    variant_id: str | None
    name: str
    quantity: int
    unit_price: int


@dataclass(frozen=True)
class OrderDraft:
    """One seller's part of the checkout before discounts and tax: its lines, its warehouse, its shipping."""

    seller_id: str | None
    warehouse_id: str
    lines: tuple[PricedLine, ...]
    shipping: int


@dataclass
class _Working:
    draft: OrderDraft
    discounts: list[int]
    shipping_discount: int = 0

    @property
    def remaining(self) -> list[int]:
        return [li.quantity * li.unit_price - d for li, d in zip(self.draft.lines, self.discounts, strict=True)]


@dataclass(frozen=True)
class Priced:
    orders: list[OrderQuote]
    coupons: list[AppliedCoupon]
    warnings: list[str] = field(default_factory=list)


def discount_of(promotion: Promotion, base: int) -> int:
    """What ``promotion`` takes off ``base``: never more than the base, never negative."""
    if base <= 0:
        return 0
    wanted = base * promotion.value // BASIS_POINTS if promotion.kind == "percent" else promotion.value
    return min(base, wanted)


def tax_of(taxable: int, tax_basis_points: int) -> int:
    """Tax on ``taxable`` at ``tax_basis_points`` (1100 = PPN 11 %), rounded half up."""
    return (taxable * tax_basis_points * 2 + BASIS_POINTS) // (2 * BASIS_POINTS)


def price_orders(drafts: Sequence[OrderDraft], promotions: Sequence[Promotion], tax_basis_points: int) -> Priced:
    """The orders' lines, discounts, shipping, tax and totals (see the module's rules). A promotion whose minimum
    spend its orders do not reach, or whose seller has no order here, gives nothing and says so in ``warnings``."""
    working = [_Working(draft, [0] * len(draft.lines)) for draft in drafts]
    coupons: list[AppliedCoupon] = []
    warnings: list[str] = []
    for promotion in promotions:
        scope = [w for w in working if promotion.seller_id is None or w.draft.seller_id == promotion.seller_id]
        spend = sum(li.quantity * li.unit_price for w in scope for li in w.draft.lines)
        if not scope:
            warnings.append(f"coupon {promotion.code}: nothing in the cart from its seller; not applied")
            continue
        if spend < promotion.min_spend:
            warnings.append(f"coupon {promotion.code}: spend at least {promotion.min_spend}; not applied")
            continue
        if promotion.target == "items":
            remaining = [amount for w in scope for amount in w.remaining]
        else:
            remaining = [w.draft.shipping - w.shipping_discount for w in scope]
        discount = discount_of(promotion, sum(remaining))
        if not discount:  # PRM-2: applied coupons are redeemed; one that gives nothing must not spend a use
            warnings.append(f"coupon {promotion.code}: takes nothing off this checkout; not applied")
            continue
        parts = allocate(discount, remaining)
        if promotion.target == "items":
            flat = iter(parts)
            for w in scope:
                w.discounts = [d + next(flat) for d in w.discounts]
        else:
            for w, part in zip(scope, parts, strict=True):
                w.shipping_discount += part
        coupons.append(AppliedCoupon(code=promotion.code, target=promotion.target, discount=discount))
    return Priced([_order(w, tax_basis_points) for w in working], coupons, warnings)


def _order(work: _Working, tax_basis_points: int) -> OrderQuote:
    draft = work.draft
    lines = [
        QuoteLine(
            product_id=li.product_id,
            variant_id=li.variant_id,
            name=li.name,
            quantity=li.quantity,
            unit_price=li.unit_price,
            discount=discount,
            amount=li.quantity * li.unit_price - discount,
        )
        for li, discount in zip(draft.lines, work.discounts, strict=True)
    ]
    goods = sum(line.amount for line in lines)
    tax = tax_of(goods + draft.shipping - work.shipping_discount, tax_basis_points)
    return OrderQuote(
        seller_id=draft.seller_id,
        warehouse_id=draft.warehouse_id,
        lines=lines,
        subtotal=sum(li.quantity * li.unit_price for li in draft.lines),
        shipping=draft.shipping,
        shipping_discount=work.shipping_discount,
        tax=tax,
        discount=sum(work.discounts),
        total=goods + draft.shipping - work.shipping_discount + tax,
    )


# ---------------------------------------------------------------------------------------------- the service
class Origins(Protocol):
    def origin_for(self, seller_id: str | None, lines: list[StockLine]) -> Warehouse: ...


class Rates(Protocol):
    def quote(self, origin: Place, destination: Place, items: Sequence[ParcelItem]) -> list[Rate]: ...


class Addresses(Protocol):
    def get(self, user_id: str, address_id: str) -> PostalAddress: ...


class Coupons(Protocol):
    def usable(self, code: str, customer_id: str | None) -> Promotion: ...


@dataclass(frozen=True)
class OrderLimits:
    """CHK-8: the checkout total must lie in [minimum, maximum]."""

    minimum: int
    maximum: int


class CheckoutPricing:
    def __init__(
        self,
        products: Callable[[str], Product],
        origins: Origins,
        rates: Rates,
        addresses: Addresses,
        coupons: Coupons,
        clock: Clock,
        *,
        tax_basis_points: int,
        limits: OrderLimits,
        currency: str,
    ) -> None:
        self.products = products
        self.origins = origins
        self.rates = rates
        self.addresses = addresses
        self.coupons = coupons
        self.clock = clock
        self.tax_basis_points = tax_basis_points
        self.limits = limits
        self.currency = currency

    def quote(self, shopper: Shopper, request: CheckoutRequest, cart: Cart) -> Quote:
        """Price ``cart`` (as ``CartService.get_for`` returned it: catalog prices now) for delivery to the
        request's address by its shipping method: one order per seller (ORD-1), each shipped from the one
        warehouse holding all its lines (CHK-10; none: 409 insufficient_stock), the cart's coupons applied (one
        no longer usable, e.g. a guest with a per-customer coupon, expired, used up, is left out with a warning;
        PRM-3: ``request.coupon_codes`` is ignored), tax from settings. Refuses: an empty cart (400 cart_empty);
        a shipping_method_id no courier offers for an order (422); an address_id for a guest (401) or not the
        buyer's (404); paying by wallet as a guest (422); a zero total for priced items (400 zero_total, logged
        CRITICAL) or a total outside the order limits (400 order_below_minimum / order_above_maximum): CHK-8.
        Reads only: reserves nothing, redeems nothing."""
        if not cart.items:
            raise BadRequest("the cart is empty", code="cart_empty")
        if request.payment_method == "wallet" and shopper.customer_id is None:
            raise field_error("payment_method", "sign in to pay from your wallet")
        destination = self._destination(shopper, request)
        drafts, method, shipping_warnings = self._drafts(cart, destination, request.shipping_method_id)
        promotions, warnings = self._promotions(cart.coupon_codes, shopper.customer_id)
        priced = price_orders(drafts, promotions, self.tax_basis_points)
        orders = priced.orders
        quote = Quote(
            cart_version=cart.version,
            prices_validated_at=to_iso(self.clock.now()),
            currency=self.currency,
            orders=orders,
            subtotal=sum(o.subtotal for o in orders),
            shipping=sum(o.shipping for o in orders),
            tax=sum(o.tax for o in orders),
            discount=sum(o.discount + o.shipping_discount for o in orders),
            total=sum(o.total for o in orders),
            shipping_method=method,
            warnings=[*shipping_warnings, *warnings, *priced.warnings],
            coupons=priced.coupons,
            address=destination,
        )
        self._guard(quote)
        return quote

    def _guard(self, quote: Quote) -> None:
        if quote.total == 0 and quote.subtotal > 0:
            logger.critical("checkout priced priced items at zero", extra={"quote": quote.model_dump(mode="json")})
            raise BadRequest("priced items cannot be bought for nothing", code="zero_total")
        if quote.total < self.limits.minimum:
            raise BadRequest(f"an order must total at least {self.limits.minimum}", code="order_below_minimum")
        if quote.total > self.limits.maximum:
            raise BadRequest(f"an order may total at most {self.limits.maximum}", code="order_above_maximum")

    def _destination(self, shopper: Shopper, request: CheckoutRequest) -> PostalAddress:
        if request.address is not None:
            return request.address
        if shopper.customer_id is None:
            raise Unauthenticated("sign in to use a saved address (address_id), or send the address")
        return self.addresses.get(shopper.customer_id, str(request.address_id))

    def _drafts(
        self, cart: Cart, destination: PostalAddress, shipping_method_id: str
    ) -> tuple[list[OrderDraft], ShippingMethod, list[str]]:
        """The orders to price, the shipping method and a warning per order priced from the fallback rate table
        (LOG-1: the courier could not answer, never silently)."""
        products = {line.product_id: self.products(line.product_id) for line in cart.items}

        def seller(line_product_id: str) -> str:
            return products[line_product_id].seller_id or ""

        drafts: list[OrderDraft] = []
        warnings: list[str] = []
        method: ShippingMethod | None = None
        lines = sorted(cart.items, key=lambda line: (seller(line.product_id), line.id))
        for seller_id, group in groupby(lines, key=lambda line: seller(line.product_id)):
            items = list(group)
            warehouse = self.origins.origin_for(
                seller_id or None, [StockLine(li.product_id, li.variant_id, li.quantity) for li in items]
            )
            priced = [
                PricedLine(
                    li.product_id,
                    li.variant_id,
                    _name(products[li.product_id], li.variant_id),
                    li.quantity,
                    li.unit_price,
                )
                for li in items
            ]
            parcel = [ParcelItem(p.name, p.unit_price, products[p.product_id].weight_grams, p.quantity) for p in priced]
            rates = self.rates.quote(Place.of(warehouse.address), Place.of(destination), parcel)
            rate = next((r for r in rates if r.shipping_method_id == shipping_method_id), None)
            if rate is None:
                offered = ", ".join(r.shipping_method_id for r in rates) or "none"
                raise field_error(
                    "shipping_method_id", f"{shipping_method_id} does not ship this order; offered: {offered}"
                )
            method = ShippingMethod(
                shipping_method_id=rate.shipping_method_id, courier=rate.courier, service=rate.service
            )
            if rate.source == RateSource.FALLBACK:
                warnings.append(
                    f"shipping from {warehouse.id}: the courier did not answer; {rate.price} is the fallback rate"
                )
            drafts.append(OrderDraft(seller_id or None, warehouse.id, tuple(priced), rate.price))
        assert method is not None  # the cart is not empty
        return drafts, method, warnings

    def _promotions(self, codes: Sequence[str], customer_id: str | None) -> tuple[list[Promotion], list[str]]:
        promotions: list[Promotion] = []
        warnings: list[str] = []
        for code in codes:
            try:
                promotions.append(self.coupons.usable(code, customer_id))
            except CouponNotEligible as refusal:
                warnings.append(f"{refusal.message}; not applied")
        return promotions, warnings


def _name(product: Product, variant_id: str | None) -> str:
    variant = product.variant(variant_id) if variant_id else None
    return f"{product.name} ({variant.name})" if variant else product.name
