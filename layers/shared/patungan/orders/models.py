"""Orders as the API shows them (API.md "Orders"); totals are integers and always add up (ORD-2)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from patungan.core.pagination import ListOf

OrderStatus = Literal[
    "pending_payment", "paid", "processing", "shipped", "delivered", "completed", "expired", "cancelled", "refunded"
]


class OrderLine(BaseModel):
    product_id: str
    variant_id: str | None = None
    name: str
    quantity: int
    unit_price: int
    discount: int = 0
    amount: int


class Order(BaseModel):
    id: str
    user_id: str
    session_id: str | None = None
    checkout_id: str | None = None
    factory_id: str | None = None
    seller_id: str | None = None
    status: OrderStatus
    lines: list[OrderLine]
    subtotal: int
    shipping: int = 0
    shipping_discount: int = Field(0, description="never above shipping (a shipping coupon)")
    tax: int = 0
    discount: int = 0
    total: int
    currency: str
    shipping_method: str | None = None
    shipping_method_id: str | None = None
    warehouse_id: str | None = Field(None, description="where a retail order ships from (CHK-10)")
    address: dict | None = None
    payment_id: str
    payment_method: Literal["invoice", "wallet", "cod"] | None = Field(
        None, description="how a retail order is paid; cod: the courier collects the total on delivery (CHK-9)"
    )
    shipment_id: str | None = Field(
        None, description="its shipment, once booking began: the order then ships and is no longer cancelled"
    )
    created_at: str
    updated_at: str

    @property
    def is_cod(self) -> bool:
        """Paid in cash to the courier (CHK-9); an order written before ``payment_method`` existed says so by its
        ``payment_id`` alone."""
        return self.payment_method == "cod" or self.payment_id == "cod"

    @model_validator(mode="after")
    def _totals_add_up(self) -> Order:
        if not 0 <= self.shipping_discount <= self.shipping:
            raise ValueError("the shipping discount must lie between zero and the shipping")
        if self.total != self.subtotal + self.shipping - self.shipping_discount + self.tax - self.discount:
            raise ValueError("total must be subtotal + shipping - shipping_discount + tax - discount")
        if sum(line.amount for line in self.lines) != self.subtotal - self.discount:
            raise ValueError("line amounts must add up to the subtotal less the discount")
        return self


class OrderList(ListOf[Order]):
    pass
