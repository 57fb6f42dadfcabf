"""Session lifecycle steps, each called by a Task of the session state machines (GB-9..GB-15).

Every step is safe to run again: the claim is a conditional write (GB-9), every per-participant change
is one transaction conditional on the participant's state, and orders, tier refunds, refunds and
releases have deterministic ids. Participants are processed a page at a time; the state machine loops
with the cursor, so a session of any size stays within Step Functions' limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import ConcurrentUpdate, Conflict, SettlementInvariantViolated
from patungan.core.events import new_event
from patungan.core.observability import logger, metrics
from patungan.core.retry import MAX_ATTEMPTS, back_off, retry_stale
from patungan.groupbuy import events
from patungan.groupbuy.expiry import expiry_requested
from patungan.groupbuy.models import CLAIMABLE, JOINABLE, PLATFORM_USER_ID, Participation, Session
from patungan.groupbuy.pricing import tier_refund, unit_price_at
from patungan.groupbuy.repository import GroupBuyRepository
from patungan.groupbuy.service import new_join
from patungan.inventory.service import PurchaseOrderService
from patungan.ledger import accounts
from patungan.ledger.models import Entry, Movement
from patungan.orders.models import Order, OrderLine
from patungan.orders.service import OrderService
from patungan.payments.models import RefundReason
from patungan.payments.service import Ledger, PaymentService

REMINDERS_PER_TRANSACTION = 25  # two items each; a transaction holds at most 100


class EscrowLedger(Ledger, Protocol):
    def balance(self, account: str) -> int: ...


def commit_unless_done(build: Callable[[], Transaction], done: Callable[[], bool]) -> bool:
    """Commit the transaction ``build`` makes; False when a re-read (``done``) shows an earlier run did the work.

    A refused commit is never taken as "done" by itself: a transaction cancelled by another writer on the
    same wallet or escrow (ConcurrentUpdate) is a Conflict too (defect 1). So: re-read; done → move on; a
    concurrent writer → build again after a jittered backoff, a bounded number of times, then fail the step
    (the state machine retries it); any other refusal fails the step."""
    attempts = 0
    while True:
        try:
            build().commit()
            return True
        except Conflict as exc:
            if done():
                return False
            attempts += 1
            if not isinstance(exc, ConcurrentUpdate) or attempts == MAX_ATTEMPTS:
                raise
            back_off(attempts)


@dataclass(frozen=True)
class TopUpPolicy:
    """GB-12: near the deadline the platform buys the missing units when real paid fill is at least
    ``floor_percent`` of the MOQ (and the missing units are still available)."""

    enabled: bool
    floor_percent: int

    def units_for(self, session: Session) -> int:
        missing = session.moq - session.paid_quantity
        if not self.enabled or session.status not in JOINABLE or missing <= 0 or session.platform_topup_quantity:
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
        ledger: EscrowLedger,
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
        escrow_released: int | None = None,
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
            if escrow_released is not None:
                self.outbox.add(
                    tx,
                    new_event(
                        "escrow.released",
                        session_id,
                        {
                            "session_id": session_id,
                            "factory_id": session.factory_id,
                            "amount": escrow_released,
                            "currency": session.currency,
                        },
                        self.clock,
                    ),
                )
            tx.commit()
            logger.info("session moved on", extra={"session_id": session_id, "from": session.status, "to": target})
            return {"session_id": session_id, "status": target, "changed": True}

        return retry_stale(once)

    def _refuse(self, session_id: str, message: str, **figures: Any) -> SettlementInvariantViolated:
        """An invariant does not hold: say so loudly (CRITICAL log, metric) and refuse to move on."""
        logger.critical(message, extra={"session_id": session_id, **figures})
        metrics.add_metric(name="SettlementInvariantViolations", unit="Count", value=1)
        return SettlementInvariantViolated(f"session {session_id}: {message}", details=[figures])

    def _participations(self, session_id: str) -> Iterator[Participation]:
        cursor = None
        while True:
            page = self.repository.participations_page(session_id, limit=self.page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # ---- before the deadline
    def activate(self, session_id: str) -> dict[str, Any]:
        session = self.repository.get_session(session_id)
        if session.status != "forming":
            return {"session_id": session_id, "status": session.status, "changed": False}
        return self._transition(session_id, {"forming"}, "active", "activated")

    def near_expiry(self, session_id: str) -> dict[str, Any]:
        """GB-13: the platform top-up decision (GB-12) first, so a failing reminder walk cannot skip it; then
        reminders to buyers who have not paid yet, each sent once however often the step is retried."""
        topped_up = self._top_up(session_id)
        reminded = self._remind_unpaid(session_id)
        logger.info("near expiry", extra={"session_id": session_id, "topped_up": topped_up, "reminded": reminded})
        return {"session_id": session_id, "reminded": reminded, "topped_up": topped_up}

    def _remind_unpaid(self, session_id: str) -> int:
        session = self.repository.get_session(session_id)
        if session.status not in JOINABLE:
            return 0  # cancelled: nothing left to pay for
        reminded = 0
        unpaid = [p for p in self._participations(session_id) if p.status == "pending_payment" and not p.reminded_at]
        for start in range(0, len(unpaid), REMINDERS_PER_TRANSACTION):
            reminded += self._remind(session, unpaid[start : start + REMINDERS_PER_TRANSACTION])
        return reminded

    def _remind(self, session: Session, batch: list[Participation]) -> int:
        """One reminder each, marked on the participation in the same transaction. A refused batch (someone
        paid, left or was reminded meanwhile) is re-read and sent again without them."""
        attempts = 0
        while True:
            tx, now = Transaction(), self._now()
            for participation in batch:
                self.repository.change_participation(
                    tx, participation, expected_status="pending_payment", once="reminded_at", reminded_at=now
                )
                self.outbox.add(tx, events.participant_event("payment_reminder", participation, session, self.clock))
            try:
                tx.commit()
                return len(batch)
            except Conflict:
                attempts += 1
                if attempts == MAX_ATTEMPTS:
                    raise
                current = [self.repository.get_participation(session.id, p.id) for p in batch]
                batch = [p for p in current if p.status == "pending_payment" and not p.reminded_at]
                back_off(attempts)

    def _top_up(self, session_id: str) -> int:
        units = 0

        def build() -> Transaction:
            nonlocal units
            session = self.repository.session_to_change(session_id, meta_first=True)  # raised under META's version
            units = self.topup.units_for(session)
            tx = Transaction()
            if units == 0:
                return tx
            now = self._now()
            # The session as it is with the top-up paid: the tier and MOQ it reaches are raised in this transaction.
            topped = session.model_copy(update={"paid_quantity": session.paid_quantity + units})
            changes = topped.fill_changes(now)
            unit_price = unit_price_at(
                session.base_price,
                session.tiers,
                topped.paid_quantity,
                session.target_quantity,
                changes.get("price_locked_at_fill_percent", session.price_locked_at_fill_percent),
            )
            participation, payment = new_join(
                self.payments, session, PLATFORM_USER_ID, units, unit_price, now, platform=True
            )
            # The platform's lock item makes the top-up happen at most once per session.
            self.repository.add_participation(tx, participation, stalled_since=None)
            self.payments.add_platform_payment(tx, payment, accounts.PLATFORM_TOPUP)
            self.repository.take_paid(tx, session, units)
            changed = self.repository.change_session(
                tx, topped, **changes, platform_topup_quantity=units, updated_at=now
            )
            self.outbox.add(tx, events.session_event("topped_up", changed, self.clock, topup_quantity=units))
            if "status" in changes:
                self.outbox.add(tx, events.session_event("moq_reached", changed, self.clock))
            return tx

        def topped_up_before() -> bool:
            return self.repository.get_session(session_id).platform_topup_quantity > 0

        if not commit_unless_done(build, topped_up_before) or units == 0:
            return 0
        metrics.add_metric(name="PlatformTopUps", unit="Count", value=1)
        return units

    # ---- at the deadline (GB-9)
    def claim(self, session_id: str) -> dict[str, Any]:
        """Claim the session (``closing``) and decide the outcome from the paid quantity summed over its shards,
        once: every shard closed in the same transaction, valid only while no payment landed since the read, so
        the decision is on the paid quantity that stays. What a payment reached but never raised (a crash after
        it) is raised here: its tier lock, and ``moq_reached`` with its event (GB-6)."""

        def once() -> dict[str, Any]:
            session = self.repository.session_to_change(session_id)
            if session.outcome is not None:
                return {"session_id": session_id, "outcome": session.outcome}  # claimed before: resume
            if session.status not in CLAIMABLE:
                return {"session_id": session_id, "outcome": "none"}  # cancelled, or settled already
            succeeded = session.paid_quantity >= session.moq
            now = self._now()
            unraised = session.fill_changes(now)
            raised = session.model_copy(update=unraised)
            tx = Transaction()
            self.repository.change_session(
                tx,
                session,
                **{
                    **unraised,
                    "status": "closing",
                    "outcome": "succeed" if succeeded else "fail",
                    "final_unit_price": raised.current_unit_price if succeeded else None,
                    "updated_at": now,
                },
            )
            if "status" in unraised:
                self.outbox.add(tx, events.session_event("moq_reached", raised, self.clock))
            self.repository.close_capacity(tx, session, pin_paid=True)
            tx.commit()
            logger.info(
                "session claimed",
                extra={
                    "session_id": session_id,
                    "outcome": "succeed" if succeeded else "fail",
                    "paid_quantity": session.paid_quantity,
                    "moq": session.moq,
                    "final_unit_price": session.current_unit_price if succeeded else None,
                },
            )
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
        settled = expired = 0
        for participation in page.items:
            if participation.status == "paid":
                settled += self._settle_participant(session, participation)
            elif participation.status == "pending_payment":
                self._expire_unpaid(session, participation)
                expired += 1
        logger.info(
            "settlement page",
            extra={
                "session_id": session_id,
                "cursor": cursor,
                "participants": len(page.items),
                "settled": settled,
                "unpaid_expiries_queued": expired,
                "done": page.next_cursor is None,
            },
        )
        return {"session_id": session_id, "cursor": page.next_cursor, "done": page.next_cursor is None}

    def _settle_participant(self, session: Session, participation: Participation) -> bool:
        def settled_before() -> bool:
            current = self.repository.get_participation(session.id, participation.id)
            if current.status == "ordered":
                logger.info("participant already settled", extra={"participant_id": participation.id})
            return current.status == "ordered"

        return commit_unless_done(lambda: self._settlement(session, participation), settled_before)

    def _settlement(self, session: Session, participation: Participation) -> Transaction:
        """An order at the final price, never above what the participant paid (PAY-7, defect 3), the
        difference back to their wallet (GB-10), the payment held in escrow until delivery: one transaction."""
        unit_price = min(session.final_unit_price, participation.unit_price)
        payment = self.payments.payment(participation.payment.id)
        refund = tier_refund(participation.unit_price, unit_price, participation.quantity)
        now = self._now()
        tx = Transaction()
        order_id = None
        if not participation.is_platform:
            subtotal = unit_price * participation.quantity
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
                        unit_price=unit_price,
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
        return tx

    def _expire_unpaid(self, session: Session, participation: Participation) -> None:
        """Queue the expiry of an unpaid invoice (groupbuy/expiry.py): no Xendit call in a page."""
        tx = Transaction()
        self.outbox.add(tx, expiry_requested(participation, session, self.clock))
        tx.commit()

    def finalize_success(self, session_id: str) -> dict[str, Any]:
        """The session succeeded only if every paid unit is ordered: no participant left ``paid`` and the
        ordered quantity (the top-up's included) equals the paid quantity the claim decided on (defect 1)."""
        session = self.repository.get_session(session_id)
        if session.status == "closing":
            self._check_all_ordered(session)
        return self._transition(
            session_id,
            {"closing"},
            "succeeded",
            "succeeded",
            later=frozenset({"in_production", "delivered", "completed"}),
        )

    def _check_all_ordered(self, session: Session) -> None:
        ordered_quantity, still_paid = 0, []
        for participation in self._participations(session.id):
            if participation.status == "ordered":
                ordered_quantity += participation.quantity
            elif participation.status == "paid":
                still_paid.append(participation.id)
        if still_paid or ordered_quantity != session.paid_quantity:
            raise self._refuse(
                session.id,
                "settlement incomplete: paid units without an order",
                paid_quantity=session.paid_quantity,
                ordered_quantity=ordered_quantity,
                participants_still_paid=still_paid,
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
            logger.info(
                "purchase order raised",
                extra={"session_id": session_id, "purchase_order_id": po.id, "quantity": session.paid_quantity},
            )
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
        requested = 0
        for participation in page.items:
            if participation.status == "paid":
                requested += self._request_refund(participation, reason)
            elif participation.status == "pending_payment":
                self._expire_unpaid(session, participation)
        logger.info(
            "refund page",
            extra={
                "session_id": session_id,
                "cursor": cursor,
                "participants": len(page.items),
                "refunds_requested": requested,
                "done": page.next_cursor is None,
            },
        )
        return {"session_id": session_id, "cursor": page.next_cursor, "done": page.next_cursor is None}

    def _request_refund(self, participation: Participation, reason: RefundReason) -> bool:
        payment = self.payments.payment(participation.payment.id)

        def build() -> Transaction:
            tx = Transaction()
            self.payments.request_refund(tx, payment, reason)
            return tx

        return commit_unless_done(build, lambda: self.payments.refund_requested(payment))

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
        released = 0
        for participation in page.items:
            if participation.status == "ordered":
                released += self._release(participation, payee)
        logger.info(
            "escrow release page",
            extra={"session_id": session_id, "cursor": cursor, "released": released, "done": page.next_cursor is None},
        )
        return {"session_id": session_id, "cursor": page.next_cursor, "done": page.next_cursor is None}

    def _release(self, participation: Participation, payee: str) -> bool:
        payment = self.payments.payment(participation.payment.id)
        if payment.status != "in_escrow":
            return False  # released by an earlier run; complete_release checks that escrow is empty

        def build() -> Transaction:
            tx = Transaction()
            self.payments.release_escrow(tx, payment, payee, payment.amount - (participation.tier_refund_amount or 0))
            return tx

        def released_before() -> bool:
            return self.payments.payment(participation.payment.id).status == "released"

        return commit_unless_done(build, released_before)

    def complete_release(self, session_id: str) -> dict[str, Any]:
        """Every payment released: the session is completed and ``escrow.released`` published (PAY-9). Only if
        the session's escrow holds nothing but refunds still on their way out (GB-14: never completed with
        escrow unreleased)."""
        session = self.repository.get_session(session_id)
        released = self._check_escrow_released(session) if session.status == "delivered" else None
        return self._transition(
            session_id,
            {"delivered"},
            "completed",
            "completed",
            escrow_released=released,
            escrow_release_status="released",
        )

    def _check_escrow_released(self, session: Session) -> int:
        """What the factory was paid; refuses when escrow still holds more than the refunds in flight (a late
        or left payment whose refund has not completed yet).

        Refunds complete and late payments land while the walk reads the participations: only a walk during
        which the escrow balance did not move is compared with it, else the two readings disagree with
        nothing wrong and the session is stranded in its stuck state."""
        escrow = accounts.session_escrow(session.id)
        held = -self.ledger.balance(escrow)  # escrow is credit-normal
        for _ in range(MAX_ATTEMPTS):
            released, refunds_in_flight = self._released_and_refunds_in_flight(session)
            held_before, held = held, -self.ledger.balance(escrow)
            if held == held_before:
                break
        if held != refunds_in_flight:
            raise self._refuse(
                session.id,
                "escrow not empty after release",
                escrow_balance=held,
                refunds_in_flight=refunds_in_flight,
                released=released,
            )
        return released

    def _released_and_refunds_in_flight(self, session: Session) -> tuple[int, int]:
        released = refunds_in_flight = 0
        for participation in self._participations(session.id):
            if participation.status == "ordered":
                released += participation.amount - (participation.tier_refund_amount or 0)
            elif participation.status in {"left", "expired"}:
                payment = self.payments.payment(participation.payment.id)
                if payment.status == "paid":  # captured, its refund requested but not completed yet
                    refunds_in_flight += payment.amount
        return released, refunds_in_flight

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
