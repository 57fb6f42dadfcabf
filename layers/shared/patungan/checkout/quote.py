"""What one pricing engine computes from a cart, for preview and confirm alike (CHK-11, ORD-1, ORD-2): the
shape of POST /v1/checkout/preview (API.md "Checkout"). Every amount is integer minor units; per order
``sum(lines.amount) + shipping - shipping_discount + tax == total``; the checkout's figures are the sums of
its orders'."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from patungan.accounts.models import PostalAddress
from patungan.core.inputs import ResourceId, single_line

PaymentMethod = Literal["invoice", "cod", "wallet"]
CouponCode = single_line(64)


class CheckoutRequest(BaseModel):
    """The body of preview and confirm (confirm adds ``prices_validated_at``): where to, how, and how to pay."""

    model_config = ConfigDict(extra="forbid")

    address_id: ResourceId | None = None
    address: PostalAddress | None = None
    shipping_method_id: single_line(100)
    coupon_codes: list[CouponCode] | None = Field(
        None, max_length=10, description="ignored: coupon codes live on the cart (PRM-3)"
    )
    payment_method: PaymentMethod

    @model_validator(mode="after")
    def _one_destination(self) -> CheckoutRequest:
        if (self.address_id is None) == (self.address is None):
            raise ValueError("give exactly one of address_id or address")
        return self


class QuoteLine(BaseModel):
    product_id: str
    variant_id: str | None = None
    name: str
    quantity: int
    unit_price: int
    discount: int = 0
    amount: int


class OrderQuote(BaseModel):
    """One order of the checkout: one seller or factory, shipped from one warehouse (ORD-1, CHK-10)."""

    seller_id: str | None = None
    factory_id: str | None = None
    warehouse_id: str
    lines: list[QuoteLine]
    subtotal: int
    shipping: int
    shipping_discount: int = 0
    tax: int
    discount: int = 0
    total: int

    @model_validator(mode="after")
    def _adds_up(self) -> OrderQuote:
        if sum(line.amount for line in self.lines) != self.subtotal - self.discount:
            raise ValueError("line amounts must add up to the subtotal less the discount")
        if sum(line.amount for line in self.lines) + self.shipping - self.shipping_discount + self.tax != self.total:
            raise ValueError("sum(lines.amount) + shipping - shipping_discount + tax must equal total")
        return self


class ShippingMethod(BaseModel):
    shipping_method_id: str
    courier: str
    service: str


class AppliedCoupon(BaseModel):
    """A coupon of the cart that the engine applied, and how much it took off (items or shipping)."""

    code: str
    target: Literal["items", "shipping"]
    discount: int


class Quote(BaseModel):
    cart_version: int
    prices_validated_at: str
    currency: str
    orders: list[OrderQuote]
    subtotal: int
    shipping: int
    tax: int
    discount: int
    total: int
    shipping_method: ShippingMethod
    warnings: list[str] = Field(default_factory=list)
    coupons: list[AppliedCoupon] = Field(
        default_factory=list, description="the cart's coupons applied (one not usable is named in warnings)"
    )
    address: PostalAddress | None = Field(None, description="where the orders go: the order snapshots it (ORD-1)")

    @model_validator(mode="after")
    def _sums_of_orders(self) -> Quote:
        for name in ("subtotal", "shipping", "tax", "total"):
            if getattr(self, name) != sum(getattr(order, name) for order in self.orders):
                raise ValueError(f"{name} must be the sum of the orders' {name}")
        if self.discount != sum(order.discount + order.shipping_discount for order in self.orders):
            raise ValueError("discount must be the sum of the orders' discounts, shipping discounts included")
        return self
