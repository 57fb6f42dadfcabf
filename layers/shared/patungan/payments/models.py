"""Payments and refunds as stored and shown (API.md "Payments and webhooks")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PaymentStatus = Literal[
    "pending", "paid", "in_escrow", "released", "refunded", "partially_refunded", "expired", "failed"
]
RefundStatus = Literal["requested", "pending", "succeeded", "failed"]
RefundReason = Literal["session_failed", "session_cancelled", "left", "late_payment"]

# Forward-only (PAY-4): a payment may move only from these states into the key state.
PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    "paid": frozenset({"pending", "expired"}),  # a PAID after our EXPIRED: the money did arrive
    "in_escrow": frozenset({"paid"}),
    "released": frozenset({"in_escrow"}),
    "refunded": frozenset({"paid", "in_escrow"}),
    "expired": frozenset({"pending"}),
    "failed": frozenset({"pending"}),
}


class Payment(BaseModel):
    id: str
    user_id: str
    purpose: Literal["groupbuy_escrow", "groupbuy_topup"]
    status: PaymentStatus
    amount: int
    currency: str
    escrow: bool
    reference: dict[str, str] = Field(default_factory=dict, description="what the payment is for, by id")
    description: str
    invoice_id: str | None = None
    invoice_url: str | None = None
    expires_at: str | None = None
    paid_at: str | None = None
    payment_method: str | None = None
    refunded_amount: int = 0
    created_at: str
    updated_at: str


class Refund(BaseModel):
    id: str
    payment_id: str
    user_id: str
    amount: int
    currency: str
    reason: RefundReason
    status: RefundStatus
    destination: Literal["xendit", "wallet"] | None = None
    provider_refund_id: str | None = None
    reference: dict[str, str] = Field(default_factory=dict)
    created_at: str
    updated_at: str


class InvoiceCallback(BaseModel):
    """Xendit's invoice callback (the fields we rely on; Xendit sends more)."""

    model_config = ConfigDict(extra="allow")

    id: str
    external_id: str
    status: str
    amount: float | int | None = None
    paid_amount: float | int | None = None
    paid_at: str | None = None
    payment_method: str | None = None
    payment_channel: str | None = None


class RefundCallbackData(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    reference_id: str
    status: str | None = None
    amount: float | int | None = None
    failure_code: str | None = None


class RefundCallback(BaseModel):
    model_config = ConfigDict(extra="allow")

    event: str
    data: RefundCallbackData
