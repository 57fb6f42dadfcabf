"""Events payments publish (PAY-9), through the outbox."""

from __future__ import annotations

from patungan.core.clock import Clock
from patungan.core.events import DomainEvent, new_event
from patungan.payments.models import Payment, Refund


def _payment_data(payment: Payment) -> dict:
    return {
        "payment_id": payment.id,
        "user_id": payment.user_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "purpose": payment.purpose,
        **payment.reference,
    }


def payment_event(type_: str, payment: Payment, clock: Clock, **extra: object) -> DomainEvent:
    return new_event(type_, payment.id, {**_payment_data(payment), **extra}, clock)


def invoice_event(type_: str, payment: Payment, clock: Clock) -> DomainEvent:
    return new_event(
        type_,
        payment.invoice_id or payment.id,
        {**_payment_data(payment), "invoice_id": payment.invoice_id, "invoice_url": payment.invoice_url},
        clock,
    )


def refund_event(type_: str, refund: Refund, clock: Clock) -> DomainEvent:
    return new_event(
        type_,
        refund.payment_id,
        {
            "payment_id": refund.payment_id,
            "refund_id": refund.id,
            "user_id": refund.user_id,
            "amount": refund.amount,
            "currency": refund.currency,
            "reason": refund.reason,
            "destination": refund.destination,
            **refund.reference,
        },
        clock,
    )
