"""Payment use cases: escrow invoices, webhooks (verified, recorded once, forward-only), refunds.

A callback's inbox record, the payment's transition, its ledger entries and what it means for the thing
paid for (the ``PaymentPurpose``: a group-buy participation) are ONE transaction (PAY-3, PAY-5)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Literal, Protocol

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.adapters.xendit import (
    ExpireOutcome,
    Invoice,
    InvoiceStatus,
    PaymentRejected,
    RefundNotSupported,
    RefundStatus,
    XenditGateway,
)
from patungan.adapters.xendit import RefundReason as XenditRefundReason
from patungan.core.auth import Principal
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import ConcurrentUpdate, Conflict, NotFound
from patungan.core.observability import logger, metrics
from patungan.core.retry import back_off
from patungan.ledger import accounts
from patungan.ledger.models import Entry, Movement, MovementType, transfer
from patungan.payments import events
from patungan.payments.models import (
    PAYMENT_TRANSITIONS,
    InvoiceCallback,
    MalformedFees,
    Payment,
    QuarantineReason,
    Refund,
    RefundCallback,
    RefundCallbackData,
    RefundReason,
    fee_in_rupiah,
)
from patungan.payments.repository import DuplicateWebhook, PaymentMovedOn, PaymentsRepository
from patungan.payments.webhooks import quarantine_callback

# A concurrent change to the same session/participation makes a transaction stale: read again and retry.
MAX_ATTEMPTS = 5
PAID_STATUSES = {"PAID", "SETTLED"}
_XENDIT_REFUND_REASON = {
    "session_failed": XenditRefundReason.CANCELLATION,
    "session_cancelled": XenditRefundReason.CANCELLATION,
    "left": XenditRefundReason.REQUESTED_BY_CUSTOMER,
    "late_payment": XenditRefundReason.OTHERS,
    "duplicate_charge": XenditRefundReason.DUPLICATE,
    "rolled_back": XenditRefundReason.CANCELLATION,
    "order_cancelled": XenditRefundReason.REQUESTED_BY_CUSTOMER,
    "parcel_returned": XenditRefundReason.CANCELLATION,
}
# Where a charge the payment does not hold waits, owed back, until its refund completes.
_UNHELD_CHARGE_ACCOUNTS = {
    "duplicate_charge": accounts.DUPLICATE_CHARGES,
    "rolled_back": accounts.ROLLED_BACK_CHARGES,
}


class PaymentPurpose(Protocol):
    """What a payment pays for (a group-buy participation) reacts inside the payment's own transaction."""

    def holding_account(self, payment: Payment) -> str: ...

    def on_captured(self, tx: Transaction, payment: Payment) -> RefundReason | None:
        """Add the captured payment's effects to ``tx``; a reason means: the money must go back."""

    def on_expired(self, tx: Transaction, payment: Payment) -> None: ...

    def on_refunded(self, tx: Transaction, payment: Payment, refund: Refund) -> None: ...


class Ledger(Protocol):
    def add_to(self, tx: Transaction, movement: Movement) -> Transaction: ...


class PaymentService:
    def __init__(
        self,
        repository: PaymentsRepository,
        ledger: Ledger,
        outbox: Outbox,
        gateway: Callable[[], XenditGateway],
        purposes: dict[str, PaymentPurpose],
        clock: Clock,
    ) -> None:
        self.repository = repository
        self.ledger = ledger
        self.outbox = outbox
        self._gateway = gateway
        self.purposes = purposes
        self.clock = clock

    @property
    def gateway(self) -> XenditGateway:
        return self._gateway()

    def _now(self) -> str:
        return to_iso(self.clock.now())

    # ---- creating escrow payments
    def new_payment(
        self,
        payment_id: str,
        user_id: str,
        purpose: str,
        amount: int,
        currency: str,
        description: str,
        reference: dict[str, str],
    ) -> Payment:
        now = self._now()
        return Payment(
            id=payment_id,
            user_id=user_id,
            purpose=purpose,
            status="pending",
            amount=amount,
            currency=currency,
            escrow=True,
            reference=reference,
            description=description,
            created_at=now,
            updated_at=now,
        )

    def add_payment(self, tx: Transaction, payment: Payment) -> None:
        self.repository.add_payment(tx, payment)

    def open_invoice(self, payment: Payment, expires_at: datetime) -> Invoice:
        """The Xendit invoice for ``payment`` (external id = our payment id, so a retry finds it)."""
        duration = max(int((expires_at - self.clock.now()).total_seconds()), 1)
        return self.gateway.create_invoice(
            external_id=payment.id,
            amount=payment.amount,
            description=payment.description,
            payer_email=None,
            duration_seconds=duration,
            success_redirect_url=None,
            metadata={"purpose": payment.purpose, **payment.reference},
        )

    def find_invoice(self, payment: Payment) -> Invoice | None:
        return self.gateway.get_invoice_by_external_id(payment.id)

    def attach_invoice(self, tx: Transaction, payment: Payment, invoice: Invoice) -> Payment:
        attached = self.repository.change_payment(
            tx,
            payment,
            invoice_id=invoice.id,
            invoice_url=invoice.invoice_url,
            expires_at=invoice.expires_at,
            updated_at=self._now(),
        )
        self.outbox.add(tx, events.payment_event("payment.intent_created", attached, self.clock))
        self.outbox.add(tx, events.invoice_event("invoice.created", attached, self.clock))
        return attached

    def fail_payment(self, tx: Transaction, payment: Payment) -> Payment:
        """No invoice could be created or found: the payment fails (PAY-4, PAY-9 payment.failed). It is kept, so
        that a charge on an invoice whose creation only seemed to fail is refunded, not lost (PAY-1)."""
        failed = self.repository.fail_payment(tx, payment, self._now())
        self.outbox.add(tx, events.payment_event("payment.failed", failed, self.clock, reason="invoice_not_created"))
        return failed

    def add_platform_payment(self, tx: Transaction, payment: Payment, funding_account: str) -> Payment:
        """A payment funded from inside the platform (the top-up, GB-12): written paid, with its entries."""
        paid = payment.model_copy(update={"status": "paid", "paid_at": self._now(), "payment_method": "PLATFORM"})
        self.repository.add_payment(tx, paid)
        self._post(tx, f"capture:{paid.id}", "topup", funding_account, self._purpose(paid).holding_account(paid), paid)
        self.outbox.add(tx, events.payment_event("payment.completed", paid, self.clock))
        return paid

    def hold_in_escrow(self, tx: Transaction, payment: Payment) -> Payment:
        """The session succeeded: the payment now backs an order and waits for delivery (PAY-4)."""
        return self.repository.change_payment(tx, payment, status="in_escrow", updated_at=self._now())

    def release_escrow(self, tx: Transaction, payment: Payment, payee_account: str, amount: int) -> Payment:
        """Delivery recorded: the escrowed amount goes to the factory, state and entries at once (PAY-6)."""
        released = self.repository.change_payment(tx, payment, status="released", updated_at=self._now())
        if amount > 0:
            self._post(
                tx,
                f"release:{payment.id}",
                "escrow_release",
                self._purpose(payment).holding_account(payment),
                payee_account,
                released,
                amount=amount,
            )
        return released

    # ---- invoice webhooks (PAY-2, PAY-3, PAY-4)
    def handle_invoice_callback(self, callback: InvoiceCallback, body: bytes) -> str:
        """Apply a verified invoice callback once. A PAID moves money only when it matches the payment it
        names (invoice, amount, currency); anything else is quarantined: kept, alarmed, never captured."""
        status = callback.status.upper()
        if status not in PAID_STATUSES | {"EXPIRED"}:
            return "ignored"
        kind = "PAID" if status in PAID_STATUSES else "EXPIRED"
        key = f"invoice:{callback.id}:{kind}"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if self.repository.webhook_seen(key):  # a fast answer; the conditional put below is the guarantee
                return "duplicate"
            payment = self.repository.find_payment(callback.external_id)
            try:
                if kind == "PAID":
                    return self._on_paid(key, payment, callback, body)
                return self._on_expired(key, payment, callback)
            except DuplicateWebhook:
                return "duplicate"
            except (ConcurrentUpdate, PaymentMovedOn):
                back_off(attempt)  # the payment or the session changed under us: decide again from what it is now
        raise ConcurrentUpdate("the payment kept changing; Xendit will retry")

    def apply_paid_invoice(self, payment: Payment) -> str:
        """Xendit says the payment's invoice is paid, yet no PAID callback has been applied (it may never be
        delivered): apply Xendit's own record of the invoice, read with our key, exactly as its callback
        would be, under the callback's inbox key, so the callback, if it ever comes, is a duplicate. A payment
        that holds no invoice (a join rolled back, or not attached yet) is looked up by its external id."""
        invoice = self._invoice_at_xendit(payment, InvoiceStatus.PAID)
        record = InvoiceCallback(
            id=invoice.id,
            external_id=invoice.external_id,
            status="PAID",
            amount=invoice.amount,
            # Xendit invoices take no partial payments: a PAID invoice whose record omits it was paid in full.
            paid_amount=invoice.amount if invoice.paid_amount is None else invoice.paid_amount,
            currency=invoice.currency,
            paid_at=invoice.paid_at,
            payment_method=invoice.payment_method,
            fees=[{"type": fee.type, "value": fee.value} for fee in invoice.fees],
        )
        return self.handle_invoice_callback(record, record.model_dump_json().encode())

    def apply_expired_invoice(self, payment: Payment) -> str:
        """Xendit says the payment's invoice expired, yet no EXPIRED callback has been applied: apply Xendit's
        record as that callback would be (the payment expires, and what it was for with it), under the
        callback's inbox key. Never moves a payment that is no longer pending (the callback path refuses)."""
        invoice = self._invoice_at_xendit(payment, InvoiceStatus.EXPIRED)
        record = InvoiceCallback(
            id=invoice.id,
            external_id=invoice.external_id,
            status="EXPIRED",
            amount=invoice.amount,
            currency=invoice.currency,
        )
        return self.handle_invoice_callback(record, record.model_dump_json().encode())

    def _invoice_at_xendit(self, payment: Payment, status: InvoiceStatus) -> Invoice:
        """Xendit's record of the payment's invoice (looked up by our external id when the payment holds none),
        which must be in ``status``."""
        invoice = (
            self.gateway.get_invoice(payment.invoice_id)
            if payment.invoice_id is not None
            else self.find_invoice(payment)
        )
        if invoice is None:
            raise PaymentMovedOn(f"Xendit holds no invoice for payment {payment.id}")
        if invoice.status is not status:
            raise PaymentMovedOn(f"invoice {invoice.id} is {invoice.status}, not {status}")
        return invoice

    def _on_paid(self, key: str, payment: Payment | None, callback: InvoiceCallback, body: bytes) -> str:
        if payment is None:
            return self._quarantine(key, "invoice", "unknown_payment", callback.id, body)
        if (mismatch := _paid_mismatch(payment, callback)) is not None:
            return self._quarantine(key, "invoice", mismatch, callback.id, body, payment_id=payment.id)
        if payment.invoice_id == callback.id:
            return self._capture_once(key, payment, callback)
        # A charge on an invoice the payment does not hold: not attached yet (a join the repair job has not
        # reached) or a second invoice. Only Xendit's own record, read with our key, says it is ours.
        if not self._charge_confirmed(payment, callback):
            reason = "not_confirmed_by_xendit" if payment.invoice_id is None else "invoice_mismatch"
            return self._quarantine(key, "invoice", reason, callback.id, body, payment_id=payment.id)
        if payment.invoice_id is None and payment.status in PAYMENT_TRANSITIONS["paid"]:
            return self._capture_once(key, payment, callback)  # attaches the invoice it captures
        return self._refund_unheld_charge(key, payment, callback)

    def _capture_once(self, key: str, payment: Payment, callback: InvoiceCallback) -> str:
        if payment.status not in PAYMENT_TRANSITIONS["paid"]:
            self._record_only(key)  # already captured through this invoice: never capture twice
            return "stale"
        tx = Transaction()
        self.repository.record_webhook(tx, key, self._now())
        self._capture(tx, payment, callback)
        tx.commit()
        return "paid"

    def _on_expired(self, key: str, payment: Payment | None, callback: InvoiceCallback) -> str:
        if payment is None:
            logger.warning("invoice callback for an unknown payment", extra={"external_id": callback.external_id})
            return "unknown_payment"
        if payment.invoice_id not in (None, callback.id):
            # Another invoice for the same payment ran out; the one the buyer was given may still be paid.
            logger.warning(
                "EXPIRED for an invoice the payment does not hold",
                extra={"payment_id": payment.id, "invoice_id": callback.id, "held_invoice_id": payment.invoice_id},
            )
            return "ignored"
        if payment.status != "pending":
            self._record_only(key)  # e.g. EXPIRED after PAID: never move a payment backwards
            return "stale"
        tx = Transaction()
        self.repository.record_webhook(tx, key, self._now())
        self._expire(tx, payment)
        tx.commit()
        return "expired"

    def _charge_confirmed(self, payment: Payment, callback: InvoiceCallback) -> bool:
        """Xendit's record of the invoice (not the callback's word): paid, for this payment, in full."""
        try:
            invoice = self.gateway.get_invoice(callback.id)
        except PaymentRejected:
            return False  # Xendit knows no such invoice of ours
        return (
            invoice.external_id == payment.id
            and invoice.status is InvoiceStatus.PAID
            and invoice.amount == payment.amount
            and invoice.currency == payment.currency
        )

    def _refund_unheld_charge(self, key: str, payment: Payment, callback: InvoiceCallback) -> str:
        """A charge Xendit confirms that the payment cannot hold: another invoice for the same payment was
        paid, or the invoice of a join that was rolled back (the payment failed, PAY-1). Booked as owed back,
        with Xendit's fee, and refunded, with the inbox record in one transaction; the payment itself (and
        the join it was for) is untouched: a rolled-back join never comes back."""
        reason: RefundReason = "rolled_back" if payment.status == "failed" else "duplicate_charge"
        tx = Transaction()
        self.repository.record_webhook(tx, key, self._now())
        self._post_charge(tx, f"{reason}:{callback.id}", _UNHELD_CHARGE_ACCOUNTS[reason], payment, callback)
        refund = self.request_refund(tx, payment, reason, invoice_id=callback.id)
        tx.commit()
        logger.warning(
            "a charge the payment cannot hold is being refunded",
            extra={"payment_id": payment.id, "invoice_id": callback.id, "refund_id": refund.id, "reason": reason},
        )
        if reason == "rolled_back":
            metrics.add_metric(name="RolledBackChargesRefunded", unit="Count", value=1)
            return "refunding_rolled_back"
        metrics.add_metric(name="DuplicateChargesRefunded", unit="Count", value=1)
        return "refunding_duplicate"

    def _quarantine(
        self,
        key: str,
        kind: Literal["invoice", "refund"],
        reason: QuarantineReason,
        callback_id: str,
        body: bytes,
        *,
        payment_id: str | None = None,
        refund_id: str | None = None,
    ) -> str:
        return quarantine_callback(
            self.repository,
            key,
            body,
            self._now(),
            kind=kind,
            reason=reason,
            callback_id=callback_id,
            payment_id=payment_id,
            refund_id=refund_id,
        )

    def _record_only(self, key: str) -> None:
        tx = Transaction()
        self.repository.record_webhook(tx, key, self._now())
        with contextlib.suppress(DuplicateWebhook):
            tx.commit()

    def _capture(self, tx: Transaction, payment: Payment, callback: InvoiceCallback) -> None:
        paid = self.repository.change_payment(
            tx,
            payment,
            invoice_is=callback.id,
            status="paid",
            invoice_id=callback.id,
            paid_at=callback.paid_at or self._now(),
            payment_method=callback.payment_method,
            updated_at=self._now(),
        )
        purpose = self._purpose(paid)
        self._post_charge(tx, f"capture:{paid.id}", purpose.holding_account(paid), paid, callback)
        self.outbox.add(tx, events.payment_event("payment.completed", paid, self.clock))
        self.outbox.add(tx, events.invoice_event("invoice.paid", paid, self.clock))
        refund_reason = purpose.on_captured(tx, paid)
        if refund_reason is not None:
            metrics.add_metric(name="LatePaymentsRefunded", unit="Count", value=1)
            self.request_refund(tx, paid, refund_reason)

    def _expire(self, tx: Transaction, payment: Payment) -> None:
        if payment.status != "pending":
            raise PaymentMovedOn(f"payment {payment.id} is already {payment.status}")
        expired = self.repository.change_payment(tx, payment, status="expired", updated_at=self._now())
        self._purpose(expired).on_expired(tx, expired)
        self.outbox.add(tx, events.payment_event("payment.expired", expired, self.clock))
        if expired.invoice_id:
            self.outbox.add(tx, events.invoice_event("invoice.overdue", expired, self.clock))

    def expire_invoice(self, payment: Payment) -> ExpireOutcome:
        """Expire the invoice at Xendit (the buyer can no longer pay it)."""
        if payment.invoice_id is None:
            return ExpireOutcome.ALREADY_EXPIRED
        return self.gateway.expire_invoice(payment.invoice_id).outcome

    def cancel_unpaid(self, tx: Transaction, payment: Payment) -> Payment:
        """The buyer left before paying (their invoice is already expired at Xendit): the payment only."""
        expired = self.repository.change_payment(tx, payment, status="expired", updated_at=self._now())
        self.outbox.add(tx, events.payment_event("payment.expired", expired, self.clock))
        return expired

    def expire_now(self, tx: Transaction, payment: Payment) -> None:
        """Our side of an expiry we caused (leaving, settlement), without waiting for the webhook."""
        self._expire(tx, payment)

    # ---- refunds (GB-8, GB-11): requested in the caller's transaction, sent by the refund worker
    def request_refund(
        self, tx: Transaction, payment: Payment, reason: RefundReason, invoice_id: str | None = None
    ) -> Refund:
        """One full refund per payment (its id says so: no double refund); with ``invoice_id``, of a second
        charge on that invoice instead (one per invoice)."""
        now = self._now()
        refund = Refund(
            id=_refund_id(payment, invoice_id),
            invoice_id=invoice_id,
            payment_id=payment.id,
            user_id=payment.user_id,
            amount=payment.amount,
            currency=payment.currency,
            reason=reason,
            status="requested",
            reference=payment.reference,
            created_at=now,
            updated_at=now,
        )
        self.repository.add_refund(tx, refund)
        self.outbox.add(tx, events.refund_event("payment.refund_requested", refund, self.clock))
        return refund

    def refund_requested(self, payment: Payment) -> bool:
        """Whether the payment's one full refund exists (requested before: a re-read, not a guess)."""
        try:
            self.repository.get_refund(_refund_id(payment))
        except NotFound:
            return False
        return True

    def unheld_charge_refunded(self, payment: Payment, invoice_id: str) -> bool:
        """Whether a charge on ``invoice_id`` that the payment cannot hold was booked and its refund requested."""
        return self.repository.find_refund(_refund_id(payment, invoice_id)) is not None

    def process_refund(self, refund_id: str) -> str:
        """Send a requested refund to Xendit (idempotency key = refund id); a channel that cannot refund
        gets the money in the buyer's wallet instead. Raises on a gateway outage so the queue retries."""
        refund = self.repository.get_refund(refund_id)
        if refund.status != "requested":
            return "already_sent"
        payment = self.repository.get_payment(refund.payment_id)
        invoice_id = refund.invoice_id or payment.invoice_id
        if invoice_id is None:
            return self._complete_refund(refund, payment, destination="wallet")
        try:
            sent = self.gateway.create_refund(
                refund.id, invoice_id, refund.amount, _XENDIT_REFUND_REASON[refund.reason]
            )
        except RefundNotSupported:
            return self._complete_refund(refund, payment, destination="wallet")
        if sent.status is RefundStatus.SUCCEEDED:
            return self._complete_refund(refund, payment, destination="xendit", provider_refund_id=sent.id)
        tx = Transaction()
        self.repository.change_refund(
            tx,
            refund,
            frozenset({"requested"}),
            status="pending",
            destination="xendit",
            provider_refund_id=sent.id,
            updated_at=self._now(),
        )
        try:
            tx.commit()
        except Conflict:
            return "already_sent"  # the webhook was faster than this write
        return "sent"

    def handle_refund_callback(self, callback: RefundCallback, body: bytes) -> str:
        """Apply a verified refund callback once; one that does not match our refund (amount, currency,
        invoice, Xendit's refund id) is quarantined, never applied."""
        key = f"refund:{callback.data.id}:{callback.event}"
        if callback.event not in {"refund.succeeded", "refund.failed"}:
            return "ignored"
        refund = self.repository.find_refund(callback.data.reference_id)
        if refund is None:
            return self._quarantine(key, "refund", "unknown_refund", callback.data.id, body)
        payment = self.repository.get_payment(refund.payment_id)
        if (mismatch := _refund_mismatch(refund, payment, callback)) is not None:
            return self._quarantine(
                key, "refund", mismatch, callback.data.id, body, payment_id=payment.id, refund_id=refund.id
            )
        # A channel that failed to refund still owes the buyer: the wallet takes it (DESIGN "refund").
        destination = "xendit" if callback.event == "refund.succeeded" else "wallet"
        fee = _refund_fee(refund, callback) if destination == "xendit" else 0  # read by _refund_mismatch
        try:
            outcome = self._complete_refund(
                refund, payment, destination, provider_refund_id=callback.data.id, inbox_key=key, fee=fee
            )
        except DuplicateWebhook:
            return "duplicate"
        if outcome == "already_refunded" and self.repository.get_refund(refund.id).destination != destination:
            # Completed the other way (a refund's completion is final): if this callback is true the buyer was
            # paid twice, or not at all. Nothing more is booked; a person must look.
            return self._quarantine(
                key,
                "refund",
                "contradicts_completed_refund",
                callback.data.id,
                body,
                payment_id=payment.id,
                refund_id=refund.id,
            )
        return outcome

    def apply_refund_record(self, refund: Refund) -> str:
        """Xendit has settled a refund we sent, yet no callback has been applied (it may never be delivered):
        apply Xendit's own record of the refund, read with our key, exactly as its callback would be, under
        the callback's inbox key, so the callback, if it ever comes, is a duplicate (PAY-8)."""
        if refund.provider_refund_id is None:
            raise Conflict(f"refund {refund.id} was never sent to Xendit", code="refund_state_conflict")
        found = self.gateway.get_refund(refund.provider_refund_id)
        if found.status not in {RefundStatus.SUCCEEDED, RefundStatus.FAILED}:
            raise Conflict(f"refund {found.id} is {found.status} at Xendit, not settled", code="refund_state_conflict")
        record = RefundCallback(
            event=f"refund.{found.status}",
            data=RefundCallbackData(
                id=found.id,
                reference_id=found.reference_id or refund.id,
                invoice_id=found.invoice_id,
                status=found.status.upper(),
                amount=found.amount,
                currency=found.currency,
                refund_fee_amount=found.fee,
            ),
        )
        return self.handle_refund_callback(record, record.model_dump_json().encode())

    def _complete_refund(
        self,
        refund: Refund,
        payment: Payment,
        destination: str,
        provider_refund_id: str | None = None,
        inbox_key: str | None = None,
        fee: int = 0,
    ) -> str:
        """Complete the refund once: its state, the payment's, the ledger (with ``fee``, what Xendit charged for
        the refund) and the event in one transaction. A refund the channel could not make goes to the buyer's
        wallet; a guest has none (CHK-12): the refund is then ``failed`` with destination ``owed``, its money held
        in REFUNDS_OWED and reported, the payment and its order unchanged (issue 10 leftover 4)."""
        owed = (
            destination == "wallet" and payment.purpose != "groupbuy_topup" and not accounts.has_wallet(payment.user_id)
        )
        for _ in range(MAX_ATTEMPTS):
            refund = self.repository.get_refund(refund.id)
            payment = self.repository.get_payment(payment.id)
            if refund.status in ("succeeded", "failed"):
                if inbox_key:
                    self._record_only(inbox_key)
                return "already_refunded"
            tx = Transaction()
            if inbox_key:
                self.repository.record_webhook(tx, inbox_key, self._now())
            done = self.repository.change_refund(
                tx,
                refund,
                frozenset({"requested", "pending"}),
                status="failed" if owed else "succeeded",
                destination="owed" if owed else destination,
                provider_refund_id=provider_refund_id or refund.provider_refund_id,
                updated_at=self._now(),
            )
            if refund.returns_unheld_charge:
                source = _UNHELD_CHARGE_ACCOUNTS[refund.reason]  # the payment itself stays as it is
            elif owed:
                source = self._purpose(payment).holding_account(payment)
            else:
                payment = self.repository.change_payment(
                    tx, payment, status="refunded", refunded_amount=refund.amount, updated_at=self._now()
                )
                source = self._purpose(payment).holding_account(payment)
                self._purpose(payment).on_refunded(tx, payment, done)
            if destination == "xendit":
                credit_account = accounts.GATEWAY_CLEARING
            else:
                credit_account = accounts.REFUNDS_OWED if owed else self._wallet_for(payment)
            entries = transfer(debit=source, credit=credit_account, amount=refund.amount) + _fee_entries(fee)
            self._book(tx, f"refund:{refund.id}", "refund", entries, payment)
            event = "payment.refund_unavailable" if owed else "payment.refunded"
            self.outbox.add(tx, events.refund_event(event, done, self.clock))
            try:
                tx.commit()
            except ConcurrentUpdate:
                continue
            if owed:
                report_refund_unavailable(done.amount, {"payment_id": payment.id, "refund_id": done.id})
                return "refund_unavailable"
            metrics.add_metric(name="RefundsCompleted", unit="Count", value=1)
            return f"refunded_to_{destination}"
        raise ConcurrentUpdate("the refund kept changing; it will be retried")

    @staticmethod
    def _wallet_for(payment: Payment) -> str:
        # The platform's own top-up goes back to where it came from, a buyer's refund to their wallet.
        return (
            accounts.PLATFORM_TOPUP if payment.purpose == "groupbuy_topup" else accounts.buyer_wallet(payment.user_id)
        )

    # ---- reading
    def get_payment(self, principal: Principal, payment_id: str) -> Payment:
        payment = self.repository.get_payment(payment_id)
        if payment.user_id != principal.user_id and not principal.is_admin:
            raise NotFound(f"no payment {payment_id}")
        return payment

    def payment(self, payment_id: str) -> Payment:
        return self.repository.get_payment(payment_id)

    # ---- helpers
    def _purpose(self, payment: Payment) -> PaymentPurpose:
        return self.purposes[payment.purpose]

    def _post_charge(
        self, tx: Transaction, movement_id: str, holding_account: str, payment: Payment, callback: InvoiceCallback
    ) -> None:
        """A charge at Xendit (PAY-5): what was paid goes from clearing to ``holding_account`` and, in the same
        movement, the fee Xendit kept of it to gateway fees (it never reaches our balance: clearing holds that
        much less). The buyer's money is held in full; the fee is the platform's cost."""
        entries = transfer(debit=accounts.GATEWAY_CLEARING, credit=holding_account, amount=payment.amount)
        self._book(tx, movement_id, "capture", entries + _fee_entries(callback.fee_total()), payment)

    def _post(
        self,
        tx: Transaction,
        movement_id: str,
        movement_type: MovementType,
        debit_account: str,
        credit_account: str,
        payment: Payment,
        amount: int | None = None,
    ) -> None:
        value = payment.amount if amount is None else amount
        self._book(
            tx, movement_id, movement_type, transfer(debit=debit_account, credit=credit_account, amount=value), payment
        )

    def _book(
        self, tx: Transaction, movement_id: str, movement_type: MovementType, entries: list[Entry], payment: Payment
    ) -> None:
        self.ledger.add_to(
            tx,
            Movement(
                id=movement_id,
                type=movement_type,
                entries=entries,
                currency=payment.currency,
                reference={"payment_id": payment.id, **payment.reference},
                created_at=self._now(),
            ),
        )


def _fee_entries(fee: int) -> list[Entry]:
    """What Xendit kept (PAY-5): an expense of ours that never reaches, or leaves, our balance at Xendit."""
    return transfer(debit=accounts.GATEWAY_FEES, credit=accounts.GATEWAY_CLEARING, amount=fee) if fee > 0 else []


def _refund_fee(refund: Refund, callback: RefundCallback) -> int:
    """What Xendit charged for a refund it made; more than the refund itself is not a fee we book."""
    fee = fee_in_rupiah(callback.data.refund_fee_amount or 0)
    if fee > refund.amount:
        raise MalformedFees(f"a refund fee of {fee} for a refund of {refund.amount}")
    return fee


def _refund_id(payment: Payment, invoice_id: str | None = None) -> str:
    """One full refund per payment (no double refund); one per invoice for a charge the payment cannot hold."""
    refund_id = f"ref_{payment.id.removeprefix('pay_')}"
    return refund_id if invoice_id is None else f"{refund_id}_{invoice_id}"


def _same_amount(value: float | int | None, amount: int) -> bool:
    return value is not None and not isinstance(value, bool) and value == amount


def _paid_mismatch(payment: Payment, callback: InvoiceCallback) -> QuarantineReason | None:
    """Why a PAID cannot be this payment's money (its invoice is checked by the caller), or None."""
    if callback.currency != payment.currency:
        return "currency_mismatch"
    if not _same_amount(callback.paid_amount, payment.amount) or (
        callback.amount is not None and not _same_amount(callback.amount, payment.amount)
    ):
        return "amount_mismatch"
    try:
        fee = callback.fee_total()
    except MalformedFees:
        return "malformed_fees"
    if fee > payment.amount:
        return "malformed_fees"  # Xendit keeps its fee out of what was paid: it cannot keep more
    return None


def _refund_mismatch(refund: Refund, payment: Payment, callback: RefundCallback) -> QuarantineReason | None:
    """Why a refund callback is not about this refund of ours, or None."""
    data = callback.data
    if data.currency != refund.currency:
        return "currency_mismatch"
    if not _same_amount(data.amount, refund.amount):
        return "amount_mismatch"
    if data.invoice_id != (refund.invoice_id or payment.invoice_id):
        return "invoice_mismatch"
    if refund.provider_refund_id is not None and data.id != refund.provider_refund_id:
        return "refund_id_mismatch"
    try:
        _refund_fee(refund, callback)
    except MalformedFees:
        return "malformed_fees"
    return None


def report_refund_unavailable(amount: int, reference: dict[str, str]) -> None:
    """Money owed back that no channel and no wallet could take (a guest's): it waits in REFUNDS_OWED, and a
    person must pay it out. Logged CRITICAL (code refund_unavailable) and counted, never silent."""
    logger.critical(
        "refund_unavailable: a guest's refund could go neither to the payment channel nor to a wallet; it is held "
        f"in {accounts.REFUNDS_OWED} until paid out by hand",
        extra={"code": "refund_unavailable", "amount": amount, **reference},
    )
    metrics.add_metric(name="RefundsUnavailable", unit="Count", value=1)
