"""Session lifecycle steps, each called by a Task of the session state machines (GB-9..GB-15).

Every step is safe to run again: the claim is a conditional write (GB-9), every per-participant change
is one transaction conditional on the participant's state, and orders, tier refunds, refunds and
releases have deterministic ids. Participants are processed a page at a time; the state machine loops
with the cursor, so a session of any size stays within Step Functions' limits."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import Conflict
from patungan.core.events import new_event
from patungan.core.observability import logger, metrics
from patungan.groupbuy import events
from patungan.groupbuy.expiry import expiry_requested
from patungan.groupbuy.models import CLAIMABLE, PLATFORM_USER_ID, Participation, Session
from patungan.groupbuy.pricing import tier_refund, unit_price_at
from patungan.groupbuy.repository import GroupBuyRepository
from patungan.groupbuy.service import new_join, retry_stale
from patungan.inventory.service import PurchaseOrderService
from patungan.ledger import accounts
from patungan.ledger.models import Entry, Movement
from patungan.orders.models import Order, OrderLine
from patungan.orders.service import OrderService
from patungan.payments.repository import PaymentMovedOn, RefundAlreadyRequested
from patungan.payments.service import Ledger, PaymentService


@dataclass(frozen=True)
class TopUpPolicy:
    """GB-12: near the deadline the platform buys the missing units when real paid fill is at least
    ``floor_percent`` of the MOQ (and the missing units are still available)."""

    enabled: bool
    floor_percent: int

    def units_for(self, session: Session) -> int:
        missing = session.moq - session.paid_quantity
        if not self.enabled or session.status != "active" or missing <= 0 or session.platform_topup_quantity:
            return 0
        if session.paid_quantity * 100 < self.floor_percent * session.moq or missing > session.open_quantity:
            return 0
        return missing


class SettlementService:
    def __init__(
        self,
        repository: GroupBuyRepository,
        payments: PaymentService,
        orders: OrderService,
        purchase_orders: PurchaseOrderService,
        ledger: Ledger,
        outbox: Outbox,
        clock: Clock,
        *,
        page_size: int,
        topup: TopUpPolicy,
    ) -> None:
        self.repository = repository
        self.payments = payments
        self.orders = orders
        self.purchase_orders = purchase_orders
        self.ledger = ledger
        self.outbox = outbox
        self.clock = clock
        self.page_size = page_size
        self.topup = topup

    def _now(self) -> str:
        return to_iso(self.clock.now())

    def _transition(
        self,
        session_id: str,
        allowed: set[str],
        target: str,
        event: str | None = None,
        escrow_event: bool = False,
        later: frozenset[str] = frozenset(),
        **changes: Any,
    ) -> dict[str, Any]:
        """Move the session to ``target`` from one of ``allowed`` (conditional, GB-2). Already there, or in
        one of the ``later`` states (a duplicate or retried execution): nothing to do."""

        def once() -> dict[str, Any]:
            session = self.repository.get_session(session_id)
            if session.status == target or session.status in later:
                return {"session_id": session_id, "status": target, "changed": False}
            if session.status not in allowed:
                raise Conflict(
                    f"session {session_id} is {session.status}, not {'/'.join(sorted(allowed))}",
                    code="illegal_transition",
                )
            tx = Transaction()
            changed = self.repository.change_session(tx, session, status=target, updated_at=self._now(), **changes)
            if event:
                self.outbox.add(tx, events.session_event(event, changed, self.clock))
            if escrow_event:
                self.outbox.add(
                    tx,
                    new_event(
                        "escrow.released",
                        session_id,
                        {
                            "session_id": session_id,
                            "factory_id": session.factory_id,
                            "amount": (session.final_unit_price or 0) * session.paid_quantity,
                            "currency": session.currency,
                        },
                        self.clock,
                    ),
                )
            tx.commit()
            return {"session_id": session_id, "status": target, "changed": True}

        return retry_stale(once)

    # ---- before the deadline
    def activate(self, session_id: str) -> dict[str, Any]:
        session = self.repository.get_session(session_id)
        if session.status != "forming":
            return {"session_id": session_id, "status": session.status, "changed": False}
        return self._transition(session_id, {"forming"}, "active", "activated")

    def near_expiry(self, session_id: str) -> dict[str, Any]:
        """GB-13: reminders to buyers who have not paid yet, and the platform top-up decision (GB-12)."""
        reminded = self._remind_unpaid(session_id)
        topped_up = retry_stale(lambda: self._top_up(session_id))
        return {"session_id": session_id, "reminded": reminded, "topped_up": topped_up}

    def _remind_unpaid(self, session_id: str) -> int:
        session = self.repository.get_session(session_id)
        reminded, cursor = 0, None
        while True:
            page = self.repository.participations_page(session_id, limit=self.page_size, cursor=cursor)
            unpaid = [p for p in page.items if p.status == "pending_payment"]
            for start in range(0, len(unpaid), 25):  # a transaction holds at most 100 items
                tx = Transaction()
                for participation in unpaid[start : start + 25]:
                    self.outbox.add(
                        tx, events.participant_event("payment_reminder", participation, session, self.clock)
                    )
                tx.commit()
            reminded += len(unpaid)
            if page.next_cursor is None:
                return reminded
            cursor = page.next_cursor

    def _top_up(self, session_id: str) -> int:
        session = self.repository.get_session(session_id)
        units = self.topup.units_for(session)
        if units == 0:
            return 0
        unit_price = unit_price_at(
            session.base_price, session.tiers, session.paid_quantity + units, session.target_quantity
        )
        now = self._now()
        participation, payment = new_join(
            self.payments, session, PLATFORM_USER_ID, units, unit_price, now, platform=True
        )
        tx = Transaction()
        # The platform's lock item makes the top-up happen at most once per session.
        self.repository.add_participation(tx, participation, stalled_since=None)
        self.payments.add_platform_payment(tx, payment, accounts.PLATFORM_TOPUP)
        changed = self.repository.change_session(
            tx,
            session,
            paid_quantity=session.paid_quantity + units,
            platform_topup_quantity=units,
            status="moq_reached" if session.paid_quantity + units >= session.moq else session.status,
            updated_at=now,
        )
        self.outbox.add(tx, events.session_event("topped_up", changed, self.clock, topup_quantity=units))
        if changed.status == "moq_reached":
            self.outbox.add(tx, events.session_event("moq_reached", changed, self.clock))
        try:
            tx.commit()
        except Conflict as exc:
            if exc.code == "already_joined":
                return 0  # a previous run of this step already topped up
            raise
        metrics.add_metric(name="PlatformTopUps", unit="Count", value=1)
        return units

    # ---- at the deadline (GB-9)
    def claim(self, session_id: str) -> dict[str, Any]:
        """Claim the session (``closing``) and decide the outcome from the paid quantity, once."""

        def once() -> dict[str, Any]:
            session = self.repository.get_session(session_id)
            if session.outcome is not None:
                return {"session_id": session_id, "outcome": session.outcome}  # claimed before: resume
            if session.status not in CLAIMABLE:
                return {"session_id": session_id, "outcome": "none"}  # cancelled, or settled already
            succeeded = session.paid_quantity >= session.moq
            tx = Transaction()
            self.repository.change_session(
                tx,
                session,
                status="closing",
                outcome="succeed" if succeeded else "fail",
                final_unit_price=session.current_unit_price if succeeded else None,
                updated_at=self._now(),
            )
            tx.commit()
            return {"session_id": session_id, "outcome": "succeed" if succeeded else "fail"}

        return retry_stale(once)

    def settle_page(self, session_id: str, cursor: str | None) -> dict[str, Any]:
        """GB-10: for a page of participants: an order each, tier refunds to wallets, unpaid invoices expired."""
        session = self.repository.get_session(session_id)
        if session.outcome != "succeed":
            raise Conflict(f"session {session_id} is not settling", code="illegal_transition")
        if session.status != "closing":
            return {"session_id": session_id, "cursor": None, "done": True}  # settled by an earlier run
        page = self.repository.participations_page(session_id, limit=self.page_size, cursor=cursor)
        for participation in page.items:
            if participation.status == "paid":
                self._settle_participant(session, participation)
            elif participation.status == "pending_payment":
                self._expire_unpaid(session, participation)
        return {"session_id": session_id, "cursor": page.next_cursor, "done": page.next_cursor is None}

    def _settle_participant(self, session: Session, participation: Participation) -> None:
        final_price = session.final_unit_price
        payment = self.payments.payment(participation.payment.id)
        refund = tier_refund(participation.unit_price, final_price, participation.quantity)
        now = self._now()
        tx = Transaction()
        order_id = None
        if not participation.is_platform:
            subtotal = final_price * participation.quantity
            order = Order(
                id=f"ord_{participation.id.removeprefix('par_')}",  # ORD-4: the participant id is the key
                user_id=participation.user_id,
                session_id=session.id,
                factory_id=session.factory_id,
                status="paid",
                lines=[
                    OrderLine(
                        product_id=session.product_id,
                        variant_id=session.variant_id,
                        name=session.product_name,
                        quantity=participation.quantity,
                        unit_price=final_price,
                        amount=subtotal,
                    )
                ],
                subtotal=subtotal,
                total=subtotal,
                currency=session.currency,
                payment_id=payment.id,
                created_at=now,
                updated_at=now,
            )
            self.orders.add_to(tx, order, tier_refund_amount=refund)
            order_id = order.id
        held = self.payments.hold_in_escrow(tx, payment)
        self.repository.change_participation(
            tx,
            participation,
            expected_status="paid",
            status="ordered",
            order_id=order_id,
            tier_refund_amount=refund,
            payment=participation.payment.model_copy(update={"status": held.status}),
            updated_at=now,
        )
        if refund > 0:
            wallet = (
                accounts.PLATFORM_TOPUP if participation.is_platform else accounts.buyer_wallet(participation.user_id)
            )
            self.ledger.add_to(
                tx,
                Movement(
                    id=f"tier_refund:{participation.id}",
                    type="tier_refund",
                    entries=[
                        Entry(account=accounts.session_escrow(session.id), debit=refund),
                        Entry(account=wallet, credit=refund),
                    ],
                    currency=session.currency,
                    reference={"session_id": session.id, "participant_id": participation.id},
                    created_at=now,
                ),
            )
        try:
            tx.commit()
        except Conflict:
            logger.info("participant already settled", extra={"participant_id": participation.id})

    def _expire_unpaid(self, session: Session, participation: Participation) -> None:
        """Queue the expiry of an unpaid invoice (groupbuy/expiry.py): no Xendit call in a page."""
        tx = Transaction()
        self.outbox.add(tx, expiry_requested(participation, session, self.clock))
        tx.commit()

    def finalize_success(self, session_id: str) -> dict[str, Any]:
        return self._transition(
            session_id,
            {"closing"},
            "succeeded",
            "succeeded",
            later=frozenset({"in_production", "delivered", "completed"}),
        )

    def raise_purchase_order(self, session_id: str) -> dict[str, Any]:
        """GB-15: one purchase order to the factory for everything paid; the session goes into production."""

        def once() -> dict[str, Any]:
            session = self.repository.get_session(session_id)
            if session.status in {"in_production", "delivered", "completed"}:
                return {"session_id": session_id, "status": session.status, "changed": False}
            if session.status != "succeeded":
                raise Conflict(f"session {session_id} is {session.status}", code="illegal_transition")
            tx = Transaction()
            po = self.purchase_orders.raise_for_session(
                tx,
                session_id=session.id,
                factory_id=session.factory_id,
                product_id=session.product_id,
                variant_id=session.variant_id,
                product_name=session.product_name,
                quantity=session.paid_quantity,
            )
            changed = self.repository.change_session(tx, session, status="in_production", updated_at=self._now())
            self.outbox.add(tx, events.session_event("in_production", changed, self.clock, purchase_order_id=po.id))
            tx.commit()
            return {"session_id": session_id, "status": "in_production", "purchase_order_id": po.id}

        return retry_stale(once)

    # ---- failure (GB-11) and cancellation
    def mark_failed(self, session_id: str) -> dict[str, Any]:
        return self._transition(session_id, {"closing"}, "failed", "failed")

    def refund_page(self, session_id: str, cursor: str | None) -> dict[str, Any]:
        """Every paid participant gets a full refund request (sent durably by the refund worker); unpaid
        invoices are expired."""
        session = self.repository.get_session(session_id)
        if session.status not in {"failed", "cancelled"}:
            raise Conflict(f"session {session_id} is {session.status}: nothing to refund", code="illegal_transition")
        reason = "session_failed" if session.status == "failed" else "session_cancelled"
        page = self.repository.participations_page(session_id, limit=self.page_size, cursor=cursor)
        for participation in page.items:
            if participation.status == "paid":
                tx = Transaction()
                self.payments.request_refund(tx, self.payments.payment(participation.payment.id), reason)
                with contextlib.suppress(RefundAlreadyRequested):
                    tx.commit()
            elif participation.status == "pending_payment":
                self._expire_unpaid(session, participation)
        return {"session_id": session_id, "cursor": page.next_cursor, "done": page.next_cursor is None}

    # ---- delivery and escrow release (GB-14, PAY-6)
    def mark_delivered(self, session_id: str) -> dict[str, Any]:
        return self._transition(
            session_id,
            {"in_production"},
            "delivered",
            "delivered",
            later=frozenset({"completed"}),
            escrow_release_status="pending",
        )

    def release_page(self, session_id: str, cursor: str | None) -> dict[str, Any]:
        session = self.repository.get_session(session_id)
        if session.status == "completed":
            return {"session_id": session_id, "cursor": None, "done": True}
        if session.status != "delivered":
            raise Conflict(f"session {session_id} is {session.status}, not delivered", code="illegal_transition")
        page = self.repository.participations_page(session_id, limit=self.page_size, cursor=cursor)
        payee = accounts.factory_payable(session.factory_id)
        for participation in page.items:
            if participation.status != "ordered":
                continue
            payment = self.payments.payment(participation.payment.id)
            if payment.status != "in_escrow":
                continue
            tx = Transaction()
            self.payments.release_escrow(tx, payment, payee, payment.amount - (participation.tier_refund_amount or 0))
            with contextlib.suppress(PaymentMovedOn):  # released by an earlier run
                tx.commit()
        return {"session_id": session_id, "cursor": page.next_cursor, "done": page.next_cursor is None}

    def complete_release(self, session_id: str) -> dict[str, Any]:
        """Every payment released: the session is completed and ``escrow.released`` published (PAY-9)."""
        return self._transition(
            session_id, {"delivered"}, "completed", "completed", escrow_event=True, escrow_release_status="released"
        )

    def record_release_failure(self, session_id: str, error: dict[str, Any]) -> dict[str, Any]:
        """GB-14: the session shows that its escrow release failed; the state machine retries later."""
        logger.error("escrow release failed", extra={"session_id": session_id, "error": error})
        metrics.add_metric(name="EscrowReleaseFailures", unit="Count", value=1)

        def once() -> None:
            session = self.repository.get_session(session_id)
            tx = Transaction()
            self.repository.change_session(tx, session, escrow_release_status="failed", updated_at=self._now())
            tx.commit()

        retry_stale(once)
        return {"session_id": session_id, "escrow_release_status": "failed"}
