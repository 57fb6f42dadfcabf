"""Unpaid invoices of a session that has closed are expired by a queue worker, not by the settlement or
refund page (defect 5): one slow Xendit call per pending buyer timed a page out and left the session in
``closing``. The page only writes ``groupbuy.participant.invoice_expiry_requested`` through the outbox;
an EventBridge rule routes it to InvoiceExpiryQueue, whose worker expires the invoice at Xendit and then
does our side (GB-10, GB-11); an invoice Xendit reports paid is applied from Xendit's own record. Settlement
does not wait for it: a pending buyer is never ordered."""

from __future__ import annotations

import contextlib

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.xendit import ExpireOutcome
from patungan.core.clock import Clock
from patungan.core.events import DomainEvent
from patungan.core.observability import logger
from patungan.core.retry import retry_stale
from patungan.groupbuy import events
from patungan.groupbuy.models import Participation, Session
from patungan.payments.repository import PaymentMovedOn
from patungan.payments.service import PaymentService

EXPIRY_REQUESTED = "groupbuy.participant.invoice_expiry_requested"


def expiry_requested(participation: Participation, session: Session, clock: Clock) -> DomainEvent:
    return events.participant_event("invoice_expiry_requested", participation, session, clock)


class UnpaidInvoiceExpiry:
    def __init__(self, payments: PaymentService) -> None:
        self.payments = payments

    def expire(self, payment_id: str) -> str:
        """Expire the invoice at Xendit, then the payment and its participation here; safe to run again.
        A gateway outage raises, so the queue retries and finally dead-letters (alarm)."""
        payment = self.payments.payment(payment_id)
        if payment.status == "failed":
            # The repair job rolled the stalled join back (GB-5) after the page queued it: Xendit held no invoice
            # for it, so nothing is left to expire.
            logger.info("no invoice to expire: its join was rolled back", extra={"payment_id": payment_id})
            return "rolled_back"
        if payment.status != "pending":
            return f"already_{payment.status}"  # a duplicate message, the EXPIRED webhook or a payment came first
        if self.payments.expire_invoice(payment) is ExpireOutcome.ALREADY_PAID:
            # Xendit holds the money: apply it now (a late payment, it goes back: purpose.py) rather than wait on
            # a PAID callback that may never be delivered (the buyer would keep no order and no refund).
            return f"paid_late_{self.payments.apply_paid_invoice(payment)}"

        def once() -> None:
            tx = Transaction()
            self.payments.expire_now(tx, self.payments.payment(payment_id))
            tx.commit()

        with contextlib.suppress(PaymentMovedOn):  # the EXPIRED webhook got there first
            retry_stale(once)
        return "expired"
