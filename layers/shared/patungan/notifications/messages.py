"""What each notifying domain event tells the user it concerns (NOT-1): the event's data as this context
reads it, and the title and body of the in-app notification it becomes."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel

from patungan.core.clock import parse_iso
from patungan.payments.models import RefundReason

# Western Indonesia Time: fixed UTC+7, no daylight saving, so no tz database is needed.
WIB = timezone(timedelta(hours=7))
# Why a returned parcel's order was cancelled and, when it was paid, refunded (LOG-2).
PARCEL_RETURNED = "parcel_returned"


def format_rupiah(amount: int) -> str:
    """Rupiah for people, as Indonesians write them: 150000 → ``Rp150.000``."""
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp{abs(amount):,}".replace(",", ".")


def format_deadline(moment: str) -> str:
    """An ISO 8601 time in Jakarta time: ``2026-11-21T10:00:00Z`` → ``21 Nov 2026, 17:00 WIB``."""
    local = parse_iso(moment).astimezone(WIB)
    return f"{local.day} {local:%b %Y, %H:%M} WIB"


@dataclass(frozen=True)
class Message:
    title: str
    body: str


class NotifyingEventData(BaseModel):
    """The ``data`` of an event that notifies someone: whom it concerns, and what it says to them.

    Fields other than ``user_id`` and ``is_platform`` are kept on the notification as its ``data``."""

    user_id: str
    is_platform: bool = False

    @abstractmethod
    def message(self) -> Message | None:
        """What the user is told; None when this event, for all its type, is no news to them."""

    def details(self) -> dict[str, Any]:
        return self.model_dump(exclude={"user_id", "is_platform"}, exclude_none=True)


class ParticipantJoined(NotifyingEventData):
    session_id: str
    participant_id: str
    quantity: int
    unit_price: int
    amount: int
    payment_id: str
    invoice_url: str
    product_name: str

    def message(self) -> Message:
        return Message(
            "You joined the group buy",
            f"You joined the group buy for {self.product_name} ({self.quantity} x {format_rupiah(self.unit_price)}). "
            f"Pay {format_rupiah(self.amount)} to secure your place.",
        )


class PaymentCompleted(NotifyingEventData):
    payment_id: str
    amount: int
    currency: str = "IDR"
    purpose: str | None = None
    session_id: str | None = None
    participant_id: str | None = None

    def message(self) -> Message:
        body = f"We received your payment of {format_rupiah(self.amount)}."
        if self.session_id:
            body += " Your place in the group buy is confirmed."
        return Message("Payment received", body)


class PaymentExpired(NotifyingEventData):
    payment_id: str
    amount: int
    session_id: str | None = None
    participant_id: str | None = None

    def message(self) -> Message:
        if self.session_id:
            return Message(
                "Your join expired unpaid",
                f"Your payment of {format_rupiah(self.amount)} was not made in time, so your place in the group "
                "buy was released. You can join again while the session is open.",
            )
        return Message("Payment expired", f"Your payment of {format_rupiah(self.amount)} was not made in time.")


class PaymentReminder(NotifyingEventData):
    session_id: str
    participant_id: str
    amount: int
    invoice_url: str
    deadline: str

    def message(self) -> Message:
        return Message(
            "Payment reminder",
            f"Pay {format_rupiah(self.amount)} before {format_deadline(self.deadline)} "
            "to keep your place in the group buy.",
        )


class OrderCreated(NotifyingEventData):
    order_id: str
    session_id: str | None = None
    total: int
    currency: str = "IDR"
    tier_refund_amount: int | None = None
    product_name: str | None = None

    def message(self) -> Message:
        if not self.session_id:
            return Message("Order placed", f"Your order of {format_rupiah(self.total)} was created.")
        group_buy = f"The group buy for {self.product_name}" if self.product_name else "Your group buy"
        body = f"{group_buy} succeeded and your order of {format_rupiah(self.total)} was created."
        if (self.tier_refund_amount or 0) > 0:
            body += (
                f" The final price came out lower than what you paid, so {format_rupiah(self.tier_refund_amount)} "
                "was credited to your wallet."
            )
        return Message("Group buy succeeded", body)


class OrderProgress(NotifyingEventData):
    """An order's lifecycle event (ORD-5) as ``OrderService.add_event`` writes its data."""

    order_id: str
    total: int


class OrderShipped(OrderProgress):
    """The courier has the parcel (LOG-2, ORD-5)."""

    courier: str | None = None
    waybill_id: str | None = None

    def message(self) -> Message:
        by = f" ({self.courier.upper()}, waybill {self.waybill_id})" if self.courier and self.waybill_id else ""
        return Message(
            "Your order is on its way",
            f"Your order {self.order_id} was handed to the courier{by}. Follow its journey in the app.",
        )


class OrderFulfilled(OrderProgress):
    """The courier delivered the parcel (``order.fulfilled``, ORD-5)."""

    def message(self) -> Message:
        return Message(
            "Order delivered",
            f"Your order {self.order_id} has arrived. Something wrong with it? Contact us before the order completes.",
        )


class OrderCancelled(OrderProgress):
    """A cancelled order. The buyer's own cancel and a paid order's refund already tell them (refund_requested, or
    order.refunded for a wallet); the news is a cash-on-delivery parcel that came back (LOG-2), where no money
    moves and nothing else speaks."""

    reason: str | None = None

    def message(self) -> Message | None:
        if self.reason != PARCEL_RETURNED:
            return None
        return Message(
            "Parcel returned",
            f"Your order {self.order_id} came back to us undelivered, so it was cancelled. You paid nothing: it was "
            "cash on delivery.",
        )


class OrderRefunded(OrderProgress):
    """An order refunded to the buyer's wallet at once (ORD-3): no payment refund follows to tell them, so this
    does. A refund through the payment channel is told by its own refund_requested and refunded events."""

    reason: str | None = None
    refunded_to: str | None = None

    def message(self) -> Message | None:
        if self.refunded_to != "wallet":
            return None
        back = f"{format_rupiah(self.total)} is back in your Patungan wallet."
        if self.reason == PARCEL_RETURNED:
            return Message(
                "Parcel returned",
                f"Your order {self.order_id} came back to us undelivered, so it was cancelled. {back}",
            )
        return Message("Refund completed", f"Your order {self.order_id} was cancelled. {back}")


class OrderCompleted(OrderProgress):
    """The return window after delivery passed (ORD-3)."""

    def message(self) -> Message:
        return Message(
            "Order completed",
            f"Your order {self.order_id} of {format_rupiah(self.total)} is complete. Terima kasih for shopping "
            "with Patungan!",
        )


# Title, then why the refund happens; the body ends with the amount on its way.
_REFUND_REASONS: dict[str, tuple[str, str]] = {
    "session_failed": ("Group buy did not succeed", "The group buy did not reach its minimum order by the deadline."),
    "session_cancelled": ("Group buy cancelled", "The group buy was cancelled."),
    "left": ("You left the group buy", "You left the group buy."),
    "late_payment": ("Payment arrived too late", "Your payment arrived after your place in the group buy expired."),
    "duplicate_charge": ("Paid twice", "You paid a second invoice for the same group buy."),
    "rolled_back": ("Payment returned", "Your payment arrived for a place in the group buy that could not be kept."),
    "order_cancelled": ("Order cancelled", "Your order was cancelled."),
    PARCEL_RETURNED: ("Parcel returned", "Your parcel came back to us undelivered, so your order was cancelled."),
}
# A retail checkout's payment that arrived after its payment window (no session).
_LATE_CHECKOUT_PAYMENT = "Your payment arrived after the checkout's payment window had closed."


class RefundRequested(NotifyingEventData):
    payment_id: str
    refund_id: str
    amount: int
    reason: RefundReason
    session_id: str | None = None

    def message(self) -> Message:
        title, why = _REFUND_REASONS[self.reason]
        if self.reason == "late_payment" and not self.session_id:
            why = _LATE_CHECKOUT_PAYMENT
        return Message(title, f"{why} Your refund of {format_rupiah(self.amount)} is on its way.")


class PaymentRefunded(NotifyingEventData):
    payment_id: str
    refund_id: str
    amount: int
    destination: Literal["xendit", "wallet"]

    def message(self) -> Message:
        where = "your Patungan wallet" if self.destination == "wallet" else "your original payment method"
        return Message("Refund completed", f"Your refund of {format_rupiah(self.amount)} was sent to {where}.")


class WithdrawalSettled(NotifyingEventData):
    """A withdrawal's outcome (WAL-2): paid out, or the money back in the wallet, and why."""

    id: str
    status: Literal["completed", "failed", "reversed", "rejected"]
    amount: int
    net_amount: int
    bank_code: str
    account_number_masked: str
    failure_code: str | None = None

    def message(self) -> Message:
        to = f"{self.bank_code} {self.account_number_masked}"
        back = f"{format_rupiah(self.amount)} is back in your Patungan wallet."
        if self.status == "completed":
            return Message("Withdrawal sent", f"{format_rupiah(self.net_amount)} was sent to {to}.")
        if self.status == "failed":
            why = f" ({self.failure_code})" if self.failure_code else ""
            return Message("Withdrawal failed", f"We could not send your withdrawal to {to}{why}. {back}")
        if self.status == "reversed":
            return Message("Withdrawal returned", f"The bank returned your withdrawal to {to}. {back}")
        return Message("Withdrawal rejected", f"Your withdrawal to {to} was not approved. {back}")


# Event type → how its data reads. A type not listed here notifies nobody.
NOTIFYING_EVENTS: dict[str, type[NotifyingEventData]] = {
    "groupbuy.participant.joined": ParticipantJoined,
    "groupbuy.participant.payment_reminder": PaymentReminder,
    "payment.completed": PaymentCompleted,
    "payment.expired": PaymentExpired,
    "payment.refund_requested": RefundRequested,
    "payment.refunded": PaymentRefunded,
    "order.created": OrderCreated,
    "order.shipped": OrderShipped,
    "order.fulfilled": OrderFulfilled,
    "order.cancelled": OrderCancelled,
    "order.refunded": OrderRefunded,
    "order.completed": OrderCompleted,
    "wallet.withdrawal.completed": WithdrawalSettled,
    "wallet.withdrawal.failed": WithdrawalSettled,
    "wallet.withdrawal.reversed": WithdrawalSettled,
    "wallet.withdrawal.rejected": WithdrawalSettled,
}
