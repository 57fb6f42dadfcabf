"""What a session's paid fill reached, raised on its session item (issue 8): the tier it locks in (PAY-7) and
``moq_reached`` with its event, once (GB-6). Payments add to the capacity shards, not to the session item, so the
sum is read back after a payment commits (the session item first: a sum read across a paid leave is not raised,
repository.get_session) and the session item raised from it by a version-checked write, only ever up. A crash
between the payment and the raise is repaired by the next payment or leave (which raise from the sum they read) and
by the claim, which decides from the summed shards and raises what is left."""

from __future__ import annotations

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import DomainError
from patungan.core.observability import logger, metrics
from patungan.core.retry import retry_stale
from patungan.groupbuy import events
from patungan.groupbuy.models import Session
from patungan.groupbuy.repository import GroupBuyRepository


def raise_fill(
    tx: Transaction, repository: GroupBuyRepository, outbox: Outbox, clock: Clock, session: Session
) -> Session:
    """Add to ``tx`` the session item's raise to what ``session``'s summed paid fill reached (nothing if it shows
    it already), valid only at the version read, with the ``moq_reached`` event when the MOQ is reached now."""
    changes = session.fill_changes(to_iso(clock.now()))
    if not changes:
        return session
    changed = repository.change_session(tx, session, **changes, updated_at=to_iso(clock.now()))
    if "status" in changes:
        outbox.add(tx, events.session_event("moq_reached", changed, clock))
    return changed


class FillRaiser:
    def __init__(self, repository: GroupBuyRepository, outbox: Outbox, clock: Clock) -> None:
        self.repository = repository
        self.outbox = outbox
        self.clock = clock

    def raise_now(self, session_id: str) -> Session:
        """Read the summed shards and raise the session item to them; a concurrent change is re-read, with backoff."""

        def once() -> Session:
            tx = Transaction()
            read = self.repository.get_session(session_id, meta_first=True)  # a sum never reached is not raised
            raised = raise_fill(tx, self.repository, self.outbox, self.clock, read)
            tx.commit()
            return raised

        return retry_stale(once)

    def after_payment(self, read: Session) -> None:
        """After a payment on the session ``read`` before it committed: nothing to read back once that session
        shows the MOQ and the last tier. Not raised now (the database busy, the item kept changing): the payment
        stands, and the next payment, leave or the claim raises from the sum; said loudly here."""
        if not read.fill_can_rise:
            return
        try:
            self.raise_now(read.id)
        except DomainError:
            logger.warning(
                "session fill not raised after a payment; the next change does", extra={"session_id": read.id}
            )
            metrics.add_metric(name="SessionFillRaiseDeferred", unit="Count", value=1)
