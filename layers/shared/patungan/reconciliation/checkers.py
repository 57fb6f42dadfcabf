"""Our payments and refunds against Xendit's records (PAY-8).

A safe difference is repaired through the code path the missing webhook would have taken (a PAID we never
heard of: ``PaymentService.apply_paid_invoice``; an EXPIRED we never heard of, for a payment still pending:
``PaymentService.apply_expired_invoice``; a refund Xendit settled without telling us:
``PaymentService.apply_refund_record``), so a repair and a late webhook converge on one outcome (the same inbox
key, conditional writes). Everything else is reported, never guessed at - a Xendit record that names another
of our records than the one asked for above all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from patungan.adapters.xendit import Invoice, InvoiceStatus, PaymentRejected, RefundStatus
from patungan.adapters.xendit import Refund as XenditRefund
from patungan.payments.models import Payment, Refund
from patungan.payments.service import PaymentService
from patungan.reconciliation.index import IndexedKind
from patungan.reconciliation.models import Mismatch, MismatchKind, Resolution

UNPAID_HERE = {"pending", "expired"}
PAID_HERE = {"paid", "in_escrow", "released", "refunded", "partially_refunded"}
ROLLED_BACK = "failed"  # its join was rolled back (PAY-1): a charge on its invoice is owed back to the buyer
PLATFORM_FUNDED = "PLATFORM"  # a top-up the platform paid itself (GB-12): never at Xendit
SETTLED_AT_XENDIT = {RefundStatus.SUCCEEDED, RefundStatus.FAILED}


def _mismatch(kind: MismatchKind, reference_id: str, ours: Any, theirs: Any, resolution: Resolution) -> Mismatch:
    return Mismatch(kind=kind, reference_id=reference_id, ours=ours, theirs=theirs, resolution=resolution)


def _payment_fields(payment: Payment) -> dict[str, Any]:
    return {
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
        "invoice_id": payment.invoice_id,
    }


def _invoice_fields(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "external_id": invoice.external_id,
        "status": invoice.status.value,
        "amount": invoice.amount,
        "currency": invoice.currency,
    }


def _refund_fields(refund: Refund) -> dict[str, Any]:
    return {
        "status": refund.status,
        "amount": refund.amount,
        "currency": refund.currency,
        "destination": refund.destination,
        "provider_refund_id": refund.provider_refund_id,
    }


def _xendit_refund_fields(refund: XenditRefund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "reference_id": refund.reference_id,
        "status": refund.status.value,
        "amount": refund.amount,
        "currency": refund.currency,
    }


class PaymentChecker:
    kind = IndexedKind.PAYMENTS

    def __init__(self, payments: PaymentService) -> None:
        self.payments = payments

    def check(self, item: dict[str, Any], repairing: Callable[[Mismatch], None]) -> Mismatch | None:
        payment = Payment.model_validate(item)
        if payment.payment_method == PLATFORM_FUNDED:
            return None
        ours = _payment_fields(payment)
        try:
            invoice = (
                self.payments.gateway.get_invoice(payment.invoice_id)
                if payment.invoice_id
                else self.payments.find_invoice(payment)
            )
        except PaymentRejected as refusal:
            return _mismatch("unknown_at_gateway", payment.id, ours, {"error": refusal.gateway_code}, "reported")
        if invoice is None:
            # No invoice was ever attached, and Xendit has none for it: a join still opening its invoice (the
            # stalled-join repair, GB-5, finishes or rolls it back) - unless we hold it as paid.
            if payment.status in PAID_HERE:
                return _mismatch("unknown_at_gateway", payment.id, ours, {}, "reported")
            return None
        theirs = _invoice_fields(invoice)
        if invoice.external_id != payment.id:  # Xendit's record is of another payment: nothing of it is applied
            return _mismatch("reference_mismatch", payment.id, ours, theirs, "reported")
        if invoice.amount != payment.amount or (invoice.currency or payment.currency) != payment.currency:
            return _mismatch("amount_mismatch", payment.id, ours, theirs, "reported")
        # apply_*_invoice reads the invoice the payment names; a payment whose join never attached it names the
        # one Xendit found by our external id (the callback path then confirms and attaches it).
        found = payment.model_copy(update={"invoice_id": invoice.id})
        if invoice.status is InvoiceStatus.PAID and payment.status in UNPAID_HERE:
            repair = _mismatch("paid_at_gateway_pending_here", payment.id, ours, theirs, "repaired")
            repairing(repair)
            return self._repaired(repair, self.payments.apply_paid_invoice(found), "paid", PAID_HERE)
        if invoice.status is InvoiceStatus.PAID and payment.status == ROLLED_BACK:
            return self._refund_rolled_back(found, ours, theirs, repairing)
        if invoice.status is InvoiceStatus.EXPIRED and payment.status == "pending":
            # Its EXPIRED callback was lost: the buyer can no longer pay, so the payment expires as the
            # callback (and the expiry worker) would have it, never staying pending for ever.
            repair = _mismatch("expired_at_gateway_pending_here", payment.id, ours, theirs, "repaired")
            repairing(repair)
            return self._repaired(repair, self.payments.apply_expired_invoice(found), "expired", {"expired"})
        if invoice.status is not InvoiceStatus.PAID and payment.status in PAID_HERE:
            return _mismatch("not_paid_at_gateway", payment.id, ours, theirs, "reported")
        return None

    def _repaired(self, repair: Mismatch, outcome: str, applied: str, agreeing: set[str]) -> Mismatch | None:
        if outcome == applied:
            return repair
        if outcome in {"duplicate", "stale"} and self.payments.payment(repair.reference_id).status in agreeing:
            return None  # the callback got there first: we agree with Xendit now
        return repair.model_copy(update={"ours": {**repair.ours, "repair": outcome}, "resolution": "reported"})

    def _refund_rolled_back(
        self, found: Payment, ours: dict[str, Any], theirs: dict[str, Any], repairing: Callable[[Mismatch], None]
    ) -> Mismatch | None:
        """A charge on a rolled-back join's invoice whose PAID never came: applied as that callback would be
        (booked as owed back and refunded, the payment left failed), once."""
        invoice_id = found.invoice_id or ""
        if self.payments.unheld_charge_refunded(found, invoice_id):
            return None  # booked and being (or already) refunded
        repair = _mismatch("paid_at_gateway_pending_here", found.id, ours, theirs, "repaired")
        repairing(repair)
        outcome = self.payments.apply_paid_invoice(found)
        if outcome == "refunding_rolled_back":
            return repair
        if self.payments.unheld_charge_refunded(found, invoice_id):
            return None  # the callback got there first
        return repair.model_copy(update={"ours": {**repair.ours, "repair": outcome}, "resolution": "reported"})


class RefundChecker:
    kind = IndexedKind.REFUNDS

    def __init__(self, payments: PaymentService) -> None:
        self.payments = payments

    def check(self, item: dict[str, Any], repairing: Callable[[Mismatch], None]) -> Mismatch | None:
        refund = Refund.model_validate(item)
        if refund.destination != "xendit" or refund.provider_refund_id is None:
            return None  # never sent to Xendit (a wallet refund) or not sent yet (the refund worker's)
        ours = _refund_fields(refund)
        try:
            found = self.payments.gateway.get_refund(refund.provider_refund_id)
        except PaymentRejected as refusal:
            return _mismatch("unknown_at_gateway", refund.id, ours, {"error": refusal.gateway_code}, "reported")
        theirs = _xendit_refund_fields(found)
        if found.reference_id not in (None, refund.id):  # Xendit's record is of another refund: never applied
            return _mismatch("reference_mismatch", refund.id, ours, theirs, "reported")
        if found.amount != refund.amount or (found.currency or refund.currency) != refund.currency:
            return _mismatch("amount_mismatch", refund.id, ours, theirs, "reported")
        if refund.status == "pending" and found.status in SETTLED_AT_XENDIT:
            repairing(_mismatch("refunded_at_gateway_not_here", refund.id, ours, theirs, "repaired"))
            return self._repair_settled(refund, ours, theirs)
        if refund.status == "succeeded" and found.status is RefundStatus.FAILED:
            return _mismatch("refund_status_mismatch", refund.id, ours, theirs, "reported")
        return None

    def _repair_settled(self, refund: Refund, ours: dict[str, Any], theirs: dict[str, Any]) -> Mismatch | None:
        outcome = self.payments.apply_refund_record(refund)
        if outcome.startswith("refunded_to_"):
            return _mismatch("refunded_at_gateway_not_here", refund.id, ours, theirs, "repaired")
        if outcome in {"duplicate", "already_refunded"}:
            return None  # the callback got there first
        return _mismatch("refunded_at_gateway_not_here", refund.id, {**ours, "repair": outcome}, theirs, "reported")
