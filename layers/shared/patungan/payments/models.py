"""Payments and refunds as stored and shown (API.md "Payments and webhooks")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PaymentStatus = Literal[
    "pending", "paid", "in_escrow", "released", "refunded", "partially_refunded", "expired", "failed"
]
RefundStatus = Literal["requested", "pending", "succeeded", "failed"]
RefundReason = Literal[
    "session_failed",
    "session_cancelled",
    "left",
    "late_payment",
    "duplicate_charge",  # a second invoice of one payment was paid
    "rolled_back",  # paid for a join that was rolled back (its payment failed): never a join (PAY-1)
    "order_cancelled",  # a paid retail order cancelled before shipping (ORD-3)
    "parcel_returned",  # a paid retail order's parcel came back to the warehouse: cancelled (ORD-3)
]
QuarantineReason = Literal[
    "unknown_payment",
    "unknown_refund",
    "currency_mismatch",
    "amount_mismatch",
    "invoice_mismatch",
    "refund_id_mismatch",
    "contradicts_completed_refund",  # a refund callback saying the opposite of how the refund was completed
    "not_confirmed_by_xendit",
    "unknown_withdrawal",  # a payout callback naming no withdrawal of ours
    "payout_id_mismatch",  # a payout callback naming another payout than the one the withdrawal sent
    "contradicts_settled_payout",  # a payout callback saying the opposite of how the withdrawal settled
    "malformed_fees",  # fees that are not whole, non-negative rupiah: the fee Xendit kept cannot be booked
]
UNHELD_CHARGE_REASONS = frozenset({"duplicate_charge", "rolled_back"})
# An id a callback names is a key in our tables: bounded (DynamoDB keys hold at most 2 KB).
CallbackId = Annotated[str, Field(min_length=1, max_length=255)]

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
    purpose: Literal["groupbuy_escrow", "groupbuy_topup", "retail_checkout"]
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
    destination: Literal["xendit", "wallet", "owed"] | None = Field(
        None, description="owed: neither the channel nor a wallet could take it (a guest's): held for a payout by hand"
    )
    provider_refund_id: str | None = None
    invoice_id: str | None = Field(
        default=None, description="the invoice refunded when it is not the payment's own (a duplicate charge)"
    )
    reference: dict[str, str] = Field(default_factory=dict)
    created_at: str
    updated_at: str

    @property
    def returns_unheld_charge(self) -> bool:
        """A charge the payment does not hold (a second invoice, or a payment whose join was rolled back):
        owed back from its own account, and the payment itself stays as it is."""
        return self.reason in UNHELD_CHARGE_REASONS


class QuarantinedCallback(BaseModel):
    """A callback that did not match what it names (PAY-2): kept as received, never applied, alarmed."""

    inbox_key: str
    kind: Literal["invoice", "refund", "payout"]
    reason: QuarantineReason
    callback_id: str
    payment_id: str | None = None
    refund_id: str | None = None
    withdrawal_id: str | None = None
    callback: str = Field(description="the body as received (cut at MAX_QUARANTINED_BODY characters)")
    received_at: str


class InvoiceCallback(BaseModel):
    """Xendit's invoice callback (the fields we rely on; Xendit sends more)."""

    model_config = ConfigDict(extra="allow")

    id: CallbackId
    external_id: CallbackId
    status: str
    amount: float | int | None = None
    paid_amount: float | int | None = None
    currency: str | None = None
    paid_at: str | None = None
    payment_method: str | None = None
    payment_channel: str | None = None
    fees: list[Any] | None = Field(default=None, description="[{type, value}]: what Xendit kept (PAY-5)")

    def fee_total(self) -> int:
        """The fees Xendit kept from this payment, in rupiah. Raises MalformedFees unless every fee's value is
        a whole, non-negative number (IDR has no fractions; a negative fee would be money Xendit added)."""
        return sum(fee_in_rupiah(fee.get("value") if isinstance(fee, dict) else fee) for fee in self.fees or ())


def fee_in_rupiah(value: Any) -> int:
    """A fee Xendit reports, as integer rupiah. Raises MalformedFees unless it is a whole, non-negative number
    (IDR has no fractions; a negative fee would be money Xendit added)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or not float(value).is_integer():
        raise MalformedFees(f"not a fee in whole rupiah: {value!r}")
    return int(value)


class MalformedFees(ValueError):
    """A callback's ``fees`` cannot be read as whole, non-negative rupiah."""


class RefundCallbackData(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: CallbackId
    reference_id: CallbackId
    invoice_id: str | None = None
    status: str | None = None
    amount: float | int | None = None
    currency: str | None = None
    failure_code: str | None = None
    refund_fee_amount: Any = Field(default=None, description="what Xendit charged for the refund (PAY-5)")


class RefundCallback(BaseModel):
    model_config = ConfigDict(extra="allow")

    event: str
    data: RefundCallbackData

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, value: Any) -> Any:
        return unnest_data(value)


def unnest_data(value: Any) -> Any:
    """A callback whose ``data`` is nested once more (``data.data``, as Xendit's docs show refunds and
    payouts, unlike its SDK) as one with ``data`` at the top: both are accepted."""
    if isinstance(value, dict) and isinstance(data := value.get("data"), dict) and isinstance(data.get("data"), dict):
        return {**value, "data": data["data"]}
    return value
