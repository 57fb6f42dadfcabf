"""Events group buying publishes (through the outbox)."""

from __future__ import annotations

from typing import Any

from patungan.core.clock import Clock
from patungan.core.events import DomainEvent, new_event
from patungan.groupbuy.models import Participation, Session


def session_event(type_: str, session: Session, clock: Clock, **extra: Any) -> DomainEvent:
    data = {
        "session_id": session.id,
        "factory_id": session.factory_id,
        "product_id": session.product_id,
        "product_name": session.product_name,
        "status": session.status,
        "paid_quantity": session.paid_quantity,
        "moq": session.moq,
        "deadline": session.deadline,
        **extra,
    }
    return new_event(f"groupbuy.session.{type_}", session.id, data, clock)


def participant_event(
    type_: str, participation: Participation, session: Session, clock: Clock, **extra: Any
) -> DomainEvent:
    data = {
        "session_id": session.id,
        "participant_id": participation.id,
        "user_id": participation.user_id,
        "is_platform": participation.is_platform,
        "quantity": participation.quantity,
        "unit_price": participation.unit_price,
        "amount": participation.amount,
        "payment_id": participation.payment.id,
        "invoice_url": participation.payment.invoice_url,
        "product_name": session.product_name,
        "deadline": session.deadline,
        **extra,
    }
    return new_event(f"groupbuy.participant.{type_}", participation.id, data, clock)
