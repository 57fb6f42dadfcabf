"""Settlement wall time for a session of N paid participants: claim → every settle page → finalize →
purchase order, each step its handler invoked as the group_session state machine invokes it."""

from __future__ import annotations

import resource
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter

from benchmarks.dynamodb_calls import DynamoDBCalls, counting_dynamodb_calls
from benchmarks.progress import Progress
from benchmarks.world import benchmark_world, expect, open_session, paid_callback, run_pages, step
from patungan.adapters.dynamodb import Transaction
from patungan.composition import groupbuy_repository, payment_service
from patungan.core.clock import to_iso
from patungan.core.config import get_settings
from patungan.groupbuy.service import new_join
from patungan.payments.models import Payment
from tests.support.groupbuy import GroupBuyWorld
from tests.support.lambdas import handler_module

CLAIM, SETTLE_PAGE, FINALIZE, RAISE_PURCHASE_ORDER = SETTLEMENT_FUNCTIONS = (
    "ClaimSessionFunction",
    "SettleSessionPageFunction",
    "FinalizeSessionSuccessFunction",
    "RaisePurchaseOrderFunction",
)
SEEDING_PROGRESS_EVERY = 1000
SEEDING = (
    "each join written through the repositories as the join's own transaction writes it "
    "(GroupBuyRepository.add_participation + the session's counters + PaymentService.add_payment; "
    "an invoice id attached, none created at Xendit), then each payment made paid through the PAID webhook "
    "handler (XenditInvoiceWebhook)"
)


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class SettlementRun:
    participants: int
    moto_patched: bool
    page_size: int
    seeding_seconds: float
    claim_seconds: float
    pages_seconds: float
    finalize_seconds: float  # finalize and the purchase order
    pages: int
    calls: DynamoDBCalls
    rss_before_seeding_mb: float
    peak_rss_mb: float

    @property
    def total_seconds(self) -> float:
        return self.claim_seconds + self.pages_seconds + self.finalize_seconds


def measure_settlement(participants: int, *, moto_patched: bool, progress: Progress) -> SettlementRun:
    progress = progress.about(f"{participants:,} participants, {'local stack' if moto_patched else 'moto as released'}")
    with benchmark_world() as (world, patches):
        session_id = open_session(world, moq=max(participants // 2, 1), target_quantity=participants)
        for function in SETTLEMENT_FUNCTIONS:
            handler_module(function)  # warm containers: importing a handler is not part of settling
        rss_before_seeding = peak_rss_mb()
        started = perf_counter()
        seed_paid_participants(world, session_id, participants, progress)
        seeding_seconds = perf_counter() - started
        if not moto_patched:
            patches.undo()  # seeded quickly with the patches; only the settlement runs on moto as released
        progress("settling")
        with counting_dynamodb_calls() as calls:
            marks = [perf_counter()]
            outcome = step(CLAIM, session_id)["outcome"]
            marks.append(perf_counter())
            pages = run_pages(SETTLE_PAGE, session_id, progress)
            marks.append(perf_counter())
            step(FINALIZE, session_id)
            purchase_order = step(RAISE_PURCHASE_ORDER, session_id)
            marks.append(perf_counter())
        expect(outcome == "succeed", f"the session was claimed as {outcome}")
        expect(purchase_order.get("status") == "in_production", f"the purchase order step said {purchase_order}")
        return SettlementRun(
            participants=participants,
            moto_patched=moto_patched,
            page_size=get_settings().settlement_page_size,
            seeding_seconds=seeding_seconds,
            claim_seconds=marks[1] - marks[0],
            pages_seconds=marks[2] - marks[1],
            finalize_seconds=marks[3] - marks[2],
            pages=pages,
            calls=calls,
            rss_before_seeding_mb=rss_before_seeding,
            peak_rss_mb=peak_rss_mb(),
        )


def seed_paid_participants(world: GroupBuyWorld, session_id: str, count: int, progress: Progress) -> None:
    """``count`` buyers who joined and paid; see ``SEEDING``."""
    repository, payments = groupbuy_repository(), payment_service()
    session = repository.get_session(session_id)
    pending: list[Payment] = []
    for n in range(count):
        participation, payment = new_join(
            payments, session, f"seed-buyer-{n}", 1, session.current_unit_price, to_iso(datetime.now(UTC))
        )
        # The PAID webhook captures only the invoice the payment holds (PAY-2): seed it with one.
        payment = payment.model_copy(update={"invoice_id": f"inv_{payment.id}"})
        tx = Transaction()
        repository.add_participation(tx, participation, stalled_since=None)
        session = repository.change_session(
            tx,
            session,
            reserved_quantity=session.reserved_quantity + 1,
            participant_count=session.participant_count + 1,
            updated_at=payment.created_at,
        )
        payments.add_payment(tx, payment)
        tx.commit()
        pending.append(payment)
        if (n + 1) % SEEDING_PROGRESS_EVERY == 0:
            progress(f"{n + 1:,}/{count:,} joined")
    for n, payment in enumerate(pending):
        invoice = {"id": payment.id, "invoice_id": payment.invoice_id, "amount": payment.amount}
        paid_callback(world, {"payment": invoice})
        if (n + 1) % SEEDING_PROGRESS_EVERY == 0:
            progress(f"{n + 1:,}/{count:,} paid")
    paid = repository.get_session(session_id)
    expect(paid.paid_quantity == count, f"{paid.paid_quantity} of {count} seeded participants are paid")
