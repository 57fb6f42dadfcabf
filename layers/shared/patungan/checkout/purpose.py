"""What a retail checkout's invoice payment means, inside the payment's own transaction (PAY-3): paid → the
checkout and its orders are paid and the waiting saga is told; paid after the checkout expired or failed →
the money goes back (a late payment is refunded, never kept)."""

from __future__ import annotations

from patungan.adapters.dynamodb import Transaction
from patungan.checkout.saga import CheckoutSaga
from patungan.ledger import accounts
from patungan.payments.models import Payment, Refund, RefundReason


class RetailPaymentPurpose:
    def __init__(self, saga: CheckoutSaga) -> None:
        self.saga = saga

    def holding_account(self, payment: Payment) -> str:
        return accounts.checkout_escrow(payment.reference["checkout_id"])

    def on_captured(self, tx: Transaction, payment: Payment) -> RefundReason | None:
        return None if self.saga.on_paid(tx, payment.reference["checkout_id"]) else "late_payment"

    def on_expired(self, tx: Transaction, payment: Payment) -> None:
        """Xendit's EXPIRED moves the payment only; the saga's own payment window expires the checkout."""

    def on_refunded(self, tx: Transaction, payment: Payment, refund: Refund) -> None:
        """A cancelled paid order's refund completes it. A late payment's refund completes no order: the checkout
        ended unpaid (expired, or failed with its orders cancelled), and an order never paid is never refunded."""
        if refund.reason in ("order_cancelled", "parcel_returned"):
            self.saga.on_refunded(tx, payment.reference["checkout_id"])
