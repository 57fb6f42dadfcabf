"""What a payment means for a group-buy participation, inside the payment's own transaction (PAY-3):
paid → the participation is paid and counts towards the MOQ (GB-6); expired → its quantity is released
(GB-7); refunded → the participation is refunded. A payment that arrives too late goes back."""

from __future__ import annotations

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.clock import Clock, to_iso
from patungan.groupbuy import events
from patungan.groupbuy.fill import FillRaiser
from patungan.groupbuy.models import JOINABLE, Participation, PaymentSummary
from patungan.groupbuy.repository import GroupBuyRepository
from patungan.ledger import accounts
from patungan.payments.models import Payment, Refund, RefundReason


class GroupBuyPaymentPurpose:
    def __init__(self, repository: GroupBuyRepository, outbox: Outbox, clock: Clock) -> None:
        self.repository = repository
        self.outbox = outbox
        self.clock = clock
        self.fill = FillRaiser(repository, outbox, clock)

    def holding_account(self, payment: Payment) -> str:
        return accounts.session_escrow(payment.reference["session_id"])

    def _participation(self, payment: Payment) -> Participation:
        return self.repository.get_participation(payment.reference["session_id"], payment.reference["participant_id"])

    @staticmethod
    def _summary(participation: Participation, payment: Payment) -> PaymentSummary:
        return participation.payment.model_copy(update={"status": payment.status})

    def on_captured(self, tx: Transaction, payment: Payment) -> RefundReason | None:
        participation = self._participation(payment)
        if participation.status != "pending_payment":
            return "late_payment"  # expired or left before the money arrived: it goes back
        # A stale read is safe: a capture on a closed shard is refused and decided again (now as too late).
        session = self.repository.session_to_change(participation.session_id, consistent=False)
        now = to_iso(self.clock.now())
        if session.status not in JOINABLE:
            # Paid after the session closed: too late to count; the join ends as if its invoice had expired
            # (quantity released, no longer counted as a participant) and the money goes back.
            self.repository.end_unpaid(
                tx, participation, status="expired", payment=self._summary(participation, payment), now=now
            )
            return "late_payment"
        paid = self.repository.change_participation(
            tx,
            participation,
            expected_status="pending_payment",
            clear_stalled=True,
            status="paid",
            payment=self._summary(participation, payment),
            updated_at=now,
        )
        # On the participation's shard only (a closed shard refuses: decided again, as too late); what the paid sum
        # reaches is raised on the session item once this has committed (fill.py, GB-6, PAY-7).
        self.repository.capture(tx, paid)
        tx.after_commit.append(lambda: self.fill.after_payment(session))
        self.outbox.add(tx, events.participant_event("paid", paid, session, self.clock))
        return None

    def on_expired(self, tx: Transaction, payment: Payment) -> None:
        participation = self._participation(payment)
        if participation.status != "pending_payment":
            return
        session = self.repository.session_to_change(participation.session_id)
        now = to_iso(self.clock.now())
        expired = self.repository.end_unpaid(
            tx, participation, status="expired", payment=self._summary(participation, payment), now=now
        )
        self.outbox.add(tx, events.participant_event("expired", expired, session, self.clock))

    def on_refunded(self, tx: Transaction, payment: Payment, refund: Refund) -> None:
        participation = self._participation(payment)
        refundable = frozenset({"paid", "left", "expired"})
        if participation.status not in refundable:
            return
        self.repository.change_participation(
            tx,
            participation,
            expected_status=refundable,
            status="refunded",
            payment=self._summary(participation, payment),
            updated_at=to_iso(self.clock.now()),
        )
