"""Group-buying use cases for people: create, list and read sessions, join, leave, cancel (GB-1..GB-8,
GB-16). Settlement lives in ``settlement.py``; what a payment means for a join in ``purpose.py``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.adapters.xendit import ExpireOutcome, Invoice
from patungan.catalog.models import Product
from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock, parse_iso, to_iso
from patungan.core.errors import BadRequest, Conflict, DomainError, Forbidden, NotFound, field_error
from patungan.core.ids import new_id
from patungan.core.observability import logger, metrics
from patungan.core.pagination import Page
from patungan.core.retry import retry_stale
from patungan.groupbuy import events
from patungan.groupbuy.fill import raise_fill
from patungan.groupbuy.models import (
    CANCELLABLE,
    JOINABLE,
    MAX_SESSION_DAYS,
    JoinInput,
    Participation,
    PaymentSummary,
    Session,
    SessionInput,
)
from patungan.groupbuy.repository import (
    GroupBuyRepository,
    JoinRetried,
    ShardShort,
    StaleSession,
    home_shard,
    plan_reservation,
)
from patungan.payments.models import Payment
from patungan.payments.service import PaymentService

# An invoice expires before the deadline (GB-7): by a tenth of the time left, at most five minutes.
MAX_INVOICE_MARGIN = timedelta(minutes=5)
# Reminders and the top-up decision run an hour before the deadline, or a quarter of a short session before.
NEAR_EXPIRY_LEAD = timedelta(hours=1)


class GroupBuyService:
    def __init__(
        self,
        repository: GroupBuyRepository,
        payments: PaymentService,
        outbox: Outbox,
        product_of: Callable[[str], Product],
        clock: Clock,
    ) -> None:
        self.repository = repository
        self.payments = payments
        self.outbox = outbox
        self.product_of = product_of
        self.clock = clock

    def _now(self) -> str:
        return to_iso(self.clock.now())

    # ---- sessions (GB-1, GB-2, GB-16)
    def create_session(self, principal: Principal, data: SessionInput) -> Session:
        principal.require(Role.FACTORY)
        try:
            product = self.product_of(data.product_id)
        except NotFound as exc:
            raise field_error("product_id", f"no product {data.product_id}") from exc
        if product.factory_id is None or product.status != "active":
            raise field_error("product_id", "group buying needs an active product of a factory")
        if not principal.is_admin and not principal.is_factory_staff_of(product.factory_id):
            raise Forbidden("only staff of the product's factory may open a session for it")
        if data.variant_id is not None and product.variant(data.variant_id) is None:
            raise field_error("variant_id", f"product {product.id} has no variant {data.variant_id}")
        now = self.clock.now()
        # A session cannot start before it exists (nor at a moment so far back it has no UTC form).
        starts_at = max(data.starts_at or now, now)
        if data.deadline <= now:
            raise field_error("deadline", "must be in the future")
        if data.deadline > now + timedelta(days=MAX_SESSION_DAYS):
            raise field_error("deadline", f"must be at most {MAX_SESSION_DAYS} days ahead")
        session = Session(
            id=new_id("ses"),
            product_id=product.id,
            variant_id=data.variant_id,
            factory_id=product.factory_id,
            product_name=_product_name(product, data.variant_id),
            category=product.category,
            product_version=product.version,
            status="active" if starts_at <= now else "forming",
            moq=data.moq,
            target_quantity=data.target_quantity,
            base_price=data.base_price,
            currency=product.currency,
            tiers=data.tiers,
            starts_at=to_iso(starts_at),
            deadline=to_iso(data.deadline),
            max_per_buyer=data.max_per_buyer,
            payment_window_seconds=data.payment_window_seconds,
            allow_leave_after_payment=data.allow_leave_after_payment,
            created_by=principal.user_id,
            created_at=to_iso(now),
            updated_at=to_iso(now),
        )
        near_expiry_at = data.deadline - min(NEAR_EXPIRY_LEAD, (data.deadline - max(starts_at, now)) / 4)
        # The event starts the session's lifecycle state machine (GB-9), which waits on these times.
        created = events.session_event(
            "created", session, self.clock, starts_at=session.starts_at, near_expiry_at=to_iso(near_expiry_at)
        )
        return self.repository.add_session(session, created)

    def get_session(self, session_id: str) -> Session:
        return self.repository.get_session(session_id)

    def view(self, session: Session) -> dict[str, Any]:
        """The session as the API shows it, with live fill, current tier and time left (GB-16)."""
        return session.view(self.clock.now())

    def detail(self, session: Session, viewer: Principal | None) -> dict[str, Any]:
        """The session view with the viewer's own participation in it (GB-16); null for the anonymous."""
        mine = self.repository.latest_participation_of(session.id, viewer.user_id) if viewer else None
        return {**self.view(session), "my_participation": mine.model_dump() if mine else None}

    def list_sessions(
        self, *, limit: int, cursor: str | None, status: str | None, factory_id: str | None, category: str | None
    ) -> Page[Session]:
        return self.repository.list_sessions(
            limit=limit, cursor=cursor, status=status, factory_id=factory_id, category=category
        )

    def cancel(self, principal: Principal, session_id: str) -> Session:
        """Admin cancels before closing; the cancelled event starts the refund of every paid buyer."""
        principal.require(Role.ADMIN)

        def cancel_once() -> Session:
            session = self.repository.session_to_change(session_id)
            if session.status not in CANCELLABLE:
                raise Conflict(f"a {session.status} session cannot be cancelled", code="illegal_transition")
            tx = Transaction()
            cancelled = self.repository.change_session(tx, session, status="cancelled", updated_at=self._now())
            self.repository.close_capacity(tx, session)  # no join nor payment lands after the cancel
            self.outbox.add(tx, events.session_event("cancelled", cancelled, self.clock))
            tx.commit()
            return cancelled

        return retry_stale(cancel_once)

    def refresh_product(self, product: Product) -> int:
        """``catalog.product.updated``: open sessions keep showing the product's current name and category
        (listing filters use them). A repeated or older event than the copy changes nothing."""
        refreshed = 0
        for session_id in self.repository.session_ids_of_product(product.id):
            refreshed += retry_stale(lambda session_id=session_id: self._refresh_copy(session_id, product))
        return refreshed

    def _refresh_copy(self, session_id: str, product: Product) -> int:
        session = self.repository.get_session(session_id)
        if session.status not in CANCELLABLE or session.product_version >= product.version:
            return 0
        tx = Transaction()
        self.repository.change_session(
            tx,
            session,
            product_name=_product_name(product, session.variant_id),
            category=product.category,
            product_version=product.version,
            updated_at=self._now(),
        )
        tx.commit()
        return 1

    # ---- joining (GB-3, GB-4, GB-5)
    def join(
        self, principal: Principal, session_id: str, data: JoinInput, *, request_key: str | None = None
    ) -> Participation:
        """``request_key``: the request's Idempotency-Key. A join whose reservation committed although it answered
        an error (its invoice not attached: a conflict left over, a crash) is finished by the same request
        retried, not refused as already joined: the buyer did not cause that 409 (issue 8, SYS-4). Without a
        key, the request is this call: a reservation committed although its answer was lost is finished by the
        call's own retry."""
        principal.require_buyer()  # buyers only (API.md): an admin's role does not stand in for a buyer's
        request = _request_digest(request_key, data) if request_key else new_id("req")
        try:
            participation, payment, session = retry_stale(lambda: self._reserve(principal, session_id, data, request))
        except JoinRetried as retried:
            return self._finish_join(session_id, retried.participation_id)
        return self._invoice_and_attach(participation, payment, session)

    def _finish_join(self, session_id: str, participation_id: str) -> Participation:
        """The join an earlier run of this request reserved, with its invoice: the one Xendit holds for its
        payment (never a second), else a new one as a join opens it; as it is, once its invoice is attached or it
        moved on."""
        participation = self.repository.get_participation(session_id, participation_id)
        if participation.status != "pending_payment" or participation.payment.invoice_id is not None:
            return participation
        payment = self.payments.payment(participation.payment.id)
        session = self.repository.get_session(session_id)
        if (invoice := self.payments.find_invoice(payment)) is not None:
            return self._attach_invoice(participation, payment, invoice, session)
        return self._invoice_and_attach(participation, payment, session)

    def _invoice_and_attach(self, participation: Participation, payment: Payment, session: Session) -> Participation:
        """The reserved join's invoice opened and attached; a join left without one is rolled back (GB-5)."""
        try:
            invoice = self.payments.open_invoice(payment, self._invoice_expiry(session))
        except DomainError:
            # A create whose answer was lost (a timeout) may have made the invoice all the same (PAY-1).
            invoice = self._invoice_made_anyway(payment)
            if invoice is None:
                if (attached := self.roll_back_join(participation, payment)) is not None:
                    return attached  # the repair job found and attached the invoice meanwhile
                raise
        return self._attach_invoice(participation, payment, invoice, session)

    def _invoice_made_anyway(self, payment: Payment) -> Invoice | None:
        """The invoice Xendit holds for ``payment`` although creating it failed, or None. If Xendit cannot
        even be asked, None: the join is rolled back and its payment kept as failed, so that a charge on an
        invoice that did exist is refunded when it arrives (PaymentService.fail_payment)."""
        try:
            return self.payments.find_invoice(payment)
        except DomainError:
            logger.warning("no answer on whether a failed invoice was made", extra={"payment_id": payment.id})
            return None

    def _reserve(
        self, principal: Principal, session_id: str, data: JoinInput, request: str | None
    ) -> tuple[Participation, Payment, Session]:
        """The join's one read (the session with its shards), then its transaction: the buyer's lock (GB-3), the
        participation, the reservation on a shard that has room (repository.plan_reservation) and the payment.
        A shard found shorter than read is known from the refusal itself: the join plans again, at most once
        per shard, and is refused only when the shards have not the quantity left between them."""
        session = self.repository.session_to_change(session_id, consistent=False)
        now = self.clock.now()
        if session.status not in JOINABLE or now >= parse_iso(session.deadline):
            raise Conflict(f"the session is {session.status}, not open for joining", code="session_not_open")
        if data.quantity > session.max_per_buyer:
            raise field_error("quantity", f"at most {session.max_per_buyer} per buyer")
        unit_price = session.current_unit_price
        if (data.unit_price is not None and data.unit_price != unit_price) or (
            data.total is not None and data.total != unit_price * data.quantity
        ):
            raise BadRequest(
                "the price changed: the session's current price is not what you were shown",
                code="price_mismatch",
                details=[
                    {"field": "unit_price", "current_unit_price": unit_price, "total": unit_price * data.quantity}
                ],
            )
        participation, payment = new_join(
            self.payments, session, principal.user_id, data.quantity, unit_price, to_iso(now)
        )
        shards = {shard.index: shard for shard in session.shards}
        home = home_shard(participation.id, len(shards))
        for _ in range(len(shards) + 1):  # each refusal tells of one shard: the last plan may find none has room
            reservation = plan_reservation(shards.values(), data.quantity, home)
            if reservation is None:
                left = sum(max(shard.remaining, 0) for shard in shards.values())
                raise Conflict(f"only {left} units are left", code="insufficient_quantity")
            participation = participation.model_copy(update={"shard": reservation.shard})
            tx = Transaction()
            self.repository.add_participation(tx, participation, stalled_since=to_iso(now), request=request)
            self.repository.reserve(tx, session.id, reservation, data.quantity)
            self.payments.add_payment(tx, payment)
            try:
                tx.commit()
            except ShardShort as short:
                shards[short.shard.index] = short.shard
                continue
            metrics.add_metric(name="SessionJoins", unit="Count", value=1)
            return participation, payment, session
        raise StaleSession("the session's capacity kept moving; retry")

    def _invoice_expiry(self, session: Session) -> datetime:
        now, deadline = self.clock.now(), parse_iso(session.deadline)
        margin = min(MAX_INVOICE_MARGIN, (deadline - now) / 10)
        return min(now + timedelta(seconds=session.payment_window_seconds), deadline - margin)

    def _attach_invoice(
        self, participation: Participation, payment: Payment, invoice: Invoice, session: Session | None = None
    ) -> Participation:
        """The invoice recorded on the join's payment and participation, with the joined event (for which the
        session the join read is enough: its name and deadline). The buyer's own items, yet a conflict there (a
        PAID callback, the repair job, DynamoDB's contention) is retried with backoff: the write is conditional on
        the participation still pending and changes nothing twice (issue 8: the join went through, no 503)."""
        session = session or self.repository.get_session(participation.session_id)

        def attach_once() -> Participation:
            tx = Transaction()
            attached = self.payments.attach_invoice(tx, payment, invoice)
            joined = self.repository.change_participation(
                tx,
                participation,
                expected_status="pending_payment",
                clear_stalled=True,
                payment=self._summary(attached),
                updated_at=self._now(),
            )
            self.outbox.add(tx, events.participant_event("joined", joined, session, self.clock))
            tx.commit()
            return joined

        return retry_stale(attach_once)

    def roll_back_join(self, participation: Participation, payment: Payment) -> Participation | None:
        """Undo a join whose invoice could not be created (GB-5); its payment is kept as failed (PAY-1). A
        rollback overtaken by the repair job (which attached the invoice, or rolled the join back itself) is
        no failure: the join with its invoice is returned, or None. If the join is really left without an
        invoice, say so loudly: the repair job finds the participation by its stalled marker."""

        def remove_once() -> None:
            self.repository.session_to_change(participation.session_id)  # its capacity sharded, if stored before
            tx = Transaction()
            self.repository.remove_participation(tx, participation)
            self.repository.release_reservation(tx, participation)
            self.payments.fail_payment(tx, payment)
            tx.commit()

        try:
            retry_stale(remove_once)
        except Exception:
            state, joined = self._join_after_failed_rollback(participation, payment)
            if state != "broken":
                logger.info(
                    f"join rollback overtaken: the join was {state} meanwhile",
                    extra={"participation_id": participation.id, "payment_id": payment.id},
                )
                return joined
            logger.critical(
                "join rollback failed: participation left without an invoice",
                extra={
                    "session_id": participation.session_id,
                    "participation_id": participation.id,
                    "payment_id": payment.id,
                    "user_id": participation.user_id,
                },
            )
            metrics.add_metric(name="JoinRollbackFailed", unit="Count", value=1)
        return None

    def _join_after_failed_rollback(
        self, participation: Participation, payment: Payment
    ) -> tuple[str, Participation | None]:
        """What a join whose rollback failed is now, re-read: ("attached", the participation) when its payment
        holds an invoice (the repair job attached it, or a PAID captured it), ("rolled_back", None) when it is
        gone and its payment failed, else ("broken", None)."""
        try:
            payment = self.payments.payment(payment.id)
            current = self.repository.get_participation(participation.session_id, participation.id)
        except NotFound:
            return ("rolled_back" if payment.status == "failed" else "broken"), None
        except Exception:
            logger.exception("a join whose rollback failed cannot be read back", extra={"payment_id": payment.id})
            return "broken", None
        if payment.invoice_id is not None:
            return "attached", current
        return "broken", None

    def repair_stalled_joins(self, older_than: timedelta, limit: int = 100) -> dict[str, int]:
        """Joins left without an invoice (a crash between the two writes, a failed rollback): attach the
        invoice Xendit has for them, or roll them back. Runs on a schedule."""
        repaired = {"attached": 0, "rolled_back": 0}
        cutoff = to_iso(self.clock.now() - older_than)
        for participation in self.repository.stalled_participations(older_than=cutoff, limit=limit):
            payment = self.payments.payment(participation.payment.id)
            invoice = self.payments.find_invoice(payment)
            if invoice is not None:
                self._attach_invoice(participation, payment, invoice)
                repaired["attached"] += 1
            elif self.roll_back_join(participation, payment) is not None:
                repaired["attached"] += 1  # a join attached its invoice meanwhile
            else:
                repaired["rolled_back"] += 1
        return repaired

    # ---- leaving (GB-8)
    def leave(self, principal: Principal, session_id: str) -> Participation:
        principal.require_buyer()  # buyers only (API.md), as joining is
        participation = self.repository.active_participation_of(session_id, principal.user_id)
        if participation is None:
            raise NotFound("you have no participation in this session")
        payment = self.payments.payment(participation.payment.id)
        if participation.status == "pending_payment":
            if self.payments.expire_invoice(payment) is ExpireOutcome.ALREADY_PAID:
                raise Conflict("your payment has just gone through; try again in a moment", code="payment_in_flight")
            return retry_stale(lambda: self._leave_unpaid(participation, payment))
        if participation.status == "paid":
            return retry_stale(lambda: self._leave_paid(participation, payment))
        raise Conflict(f"a {participation.status} participation cannot be left", code="illegal_transition")

    def _leave_unpaid(self, participation: Participation, payment: Payment) -> Participation:
        self.repository.session_to_change(participation.session_id)  # its capacity sharded, if stored before
        tx = Transaction()
        self.payments.cancel_unpaid(tx, payment)
        left = self.repository.end_unpaid(
            tx,
            participation,
            status="left",
            payment=self._summary(payment.model_copy(update={"status": "expired"})),
            now=self._now(),
        )
        tx.commit()
        return left

    def _leave_paid(self, participation: Participation, payment: Payment) -> Participation:
        session = self.repository.session_to_change(participation.session_id)
        if not session.allow_leave_after_payment:
            raise Conflict("this session does not allow leaving after payment", code="leave_not_allowed")
        if session.status not in JOINABLE or self.clock.now() >= parse_iso(session.deadline):
            raise Conflict(f"the session is {session.status}: too late to leave", code="session_not_open")
        tx = Transaction()
        left = self.repository.change_participation(
            tx, participation, expected_status="paid", status="left", updated_at=self._now()
        )
        self.repository.release_lock(tx, participation)
        # The status stays: GB-2 has no way back from moq_reached (the claim decides on paid quantity), and
        # the tier paid fill reached stays in force (price_locked_at_fill_percent, defect 3): what the paid sum
        # reached with this buyer's units is raised first, in this transaction, which holds only while no
        # shard's paid count moved since the read (a payment not raised yet is not lost either).
        raised = raise_fill(tx, self.repository, self.outbox, self.clock, session)
        if raised is session:  # nothing to raise: META's version moves all the same, so that a raise that read a
            # shard before this leave does not land (its sum may count these units: repository.get_session)
            raised = self.repository.change_session(tx, session, updated_at=self._now())
        self.repository.release_paid(tx, session, participation)
        changed = raised.model_copy(update={"paid_quantity": session.paid_quantity - participation.quantity})
        self.payments.request_refund(tx, payment, "left")
        self.outbox.add(tx, events.participant_event("left", left, changed, self.clock))
        tx.commit()
        return left

    # ---- reading (GB-16)
    def participations_of(
        self, principal: Principal, *, limit: int, cursor: str | None, session_id: str | None
    ) -> Page[Participation]:
        principal.require_buyer()  # buyers only (API.md): another role has none, and is told so, not shown []
        return self.repository.participations_of_user(
            principal.user_id, limit=limit, cursor=cursor, session_id=session_id
        )

    @staticmethod
    def _summary(payment: Payment) -> PaymentSummary:
        return PaymentSummary(
            id=payment.id,
            status=payment.status,
            invoice_id=payment.invoice_id,
            invoice_url=payment.invoice_url,
            amount=payment.amount,
            expires_at=payment.expires_at,
        )


def _request_digest(request_key: str, data: JoinInput) -> str:
    """What names a join request on the buyer's lock: its Idempotency-Key with its body (another body under the
    same key is another join, refused as already joined)."""
    return hashlib.sha256(f"{request_key}\n{data.model_dump_json()}".encode()).hexdigest()


def _product_name(product: Product, variant_id: str | None) -> str:
    variant = product.variant(variant_id) if variant_id else None
    return f"{product.name} ({variant.name})" if variant else product.name


def new_join(
    payments: PaymentService,
    session: Session,
    user_id: str,
    quantity: int,
    unit_price: int,
    now: str,
    *,
    platform: bool = False,
) -> tuple[Participation, Payment]:
    """A participation and the escrow payment behind it, not yet written: a buyer's (pending, paid through a
    Xendit invoice) or the platform's top-up (paid from the platform's own account, GB-12)."""
    participation_id, payment_id = new_id("par"), new_id("pay")
    amount = unit_price * quantity
    payment = payments.new_payment(
        payment_id,
        user_id,
        "groupbuy_topup" if platform else "groupbuy_escrow",
        amount,
        session.currency,
        f"Platform top-up of {session.id}"
        if platform
        else f"{session.product_name} x{quantity} (group buy {session.id})",
        {"session_id": session.id, "participant_id": participation_id},
    )
    status = "paid" if platform else "pending"
    participation = Participation(
        id=participation_id,
        session_id=session.id,
        user_id=user_id,
        quantity=quantity,
        unit_price=unit_price,
        amount=amount,
        currency=session.currency,
        status="paid" if platform else "pending_payment",
        payment=PaymentSummary(id=payment_id, status=status, amount=amount),
        is_platform=platform,
        created_at=now,
        updated_at=now,
    )
    return participation, payment
