"""The money of one paid retail order going back when the order is cancelled (ORD-3): by its buyer or an admin
before shipping, or because its parcel came back to the warehouse. The order's move and its refund are one
transaction, so an order is never cancelled without its refund, nor refunded twice (the refund ids derive from
the payment or the order)."""

from __future__ import annotations

from patungan.adapters.dynamodb import Transaction
from patungan.checkout.checkouts import CheckoutRepository
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import Conflict
from patungan.ledger import accounts
from patungan.ledger.models import Movement, transfer
from patungan.orders.models import Order
from patungan.orders.service import OrderService
from patungan.payments.models import RefundReason
from patungan.payments.service import PaymentService, report_refund_unavailable


class OrderRefunds:
    def __init__(
        self, checkouts: CheckoutRepository, orders: OrderService, payments: PaymentService, clock: Clock
    ) -> None:
        self.checkouts = checkouts
        self.orders = orders
        self.payments = payments
        self.clock = clock

    def add_refund(self, tx: Transaction, order: Order, reason: RefundReason) -> None:
        """Add to ``tx``: the paid ``order`` (as read, not yet cancelled: this moves it, conditional on that
        status) is cancelled and its money goes back. The whole invoice to the payment channel when that payment
        is exactly this order (the order becomes ``refunded`` when the refund completes); otherwise (one order of
        several on one invoice: a channel refunds an invoice whole, not in parts; or paid from the wallet) to the
        buyer's wallet at once, and the order is ``refunded`` in this same write, with ``order.cancelled`` and
        ``order.refunded`` (ORD-3, ORD-5). A guest has no wallet (CHK-12): a guest's share of an invoice is held
        in REFUNDS_OWED and reported (refund_unavailable), the order ``cancelled``; and a guest's channel refund
        that fails is owed the same way by the refund worker. An order whose checkout is not paid (cash on delivery,
        or an invoice never paid) has nothing to refund: refused."""
        if order.checkout_id is None:
            raise Conflict("a group-buying order is refunded with its session", code="illegal_transition")
        checkout = self.checkouts.get(order.checkout_id)
        if checkout.status != "paid":  # cash on delivery (processing), or never paid: no money to give back
            raise Conflict(f"order {order.id} was not paid: nothing to refund", code="illegal_transition")
        payment = self.payments.repository.find_payment(checkout.retail_payment_id)
        only_order = len(checkout.order_ids) == 1
        if payment is not None and payment.status == "paid" and only_order and payment.amount == order.total:
            self.orders.move_to(tx, order, "cancelled")
            self.payments.request_refund(tx, payment, reason)
            return
        reference = {"checkout_id": checkout.id, "order_id": order.id, "reason": reason}
        if checkout.buyer.customer_id is None:
            # A guest has no wallet, and the channel refunds the invoice whole: the money is owed, held and
            # reported (never a wallet nobody can use); the order stays cancelled, not refunded.
            self.orders.move_to(tx, order, "cancelled")
            self._move_escrow(tx, order, accounts.REFUNDS_OWED, reference)
            tx.after_commit.append(lambda: report_refund_unavailable(order.total, reference))
            return
        self.orders.move_to(tx, order, "refunded", via=("cancelled",), reason=reason, refunded_to="wallet")
        self._move_escrow(tx, order, accounts.buyer_wallet(checkout.buyer.customer_id), reference)

    def _move_escrow(self, tx: Transaction, order: Order, to_account: str, reference: dict[str, str]) -> None:
        """The order's total out of its checkout's escrow, once per order (the movement id)."""
        self.payments.ledger.add_to(
            tx,
            Movement(
                id=f"refund:{order.id}",
                type="refund",
                entries=transfer(
                    debit=accounts.checkout_escrow(reference["checkout_id"]), credit=to_account, amount=order.total
                ),
                currency=order.currency,
                reference=reference,
                created_at=to_iso(self.clock.now()),
            ),
        )
