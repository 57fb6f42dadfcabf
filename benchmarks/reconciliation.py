"""Reconciliation (PAY-8) of a period of N payments: the CheckPage loop over the payments, each page its handler
invoked as the Reconciliation state machine invokes it, against the local Xendit over HTTP (the real SDK).

Counted: the Xendit calls the page makes (``XenditGateway._call``, wrapped to count, product code unchanged) and
the DynamoDB calls that reach moto; timed: the whole loop, warm."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import perf_counter
from unittest import mock

from benchmarks.dynamodb_calls import DynamoDBCalls, counting_dynamodb_calls
from benchmarks.progress import Progress
from benchmarks.world import benchmark_world, expect
from emulator.xendit import LocalInvoice
from patungan.adapters.dynamodb import Transaction
from patungan.adapters.xendit import XenditGateway
from patungan.composition import payment_service, reconciliation_service
from patungan.core.clock import to_iso
from patungan.core.config import get_settings
from tests.support.groupbuy import GroupBuyWorld
from tests.support.lambdas import handler_module, invoke

CHECK_PAGE = "CheckReconciliationPageFunction"
MISMATCH_EVERY = 100  # one payment in a hundred has an amount Xendit disagrees with (reported, never repaired)
SEEDING_PROGRESS_EVERY = 2000
RECONCILIATION_SEEDING = (
    "each payment written through PaymentService.add_payment (pending, with its gsi1 index keys) and its "
    f"PENDING invoice put straight into the local Xendit's memory; one in {MISMATCH_EVERY} with another amount "
    "at Xendit"
)


@dataclass(frozen=True)
class ReconciliationRun:
    payments: int
    batch_size: int
    concurrency: int
    seeding_seconds: float
    pages: int
    seconds: float
    xendit_calls: int
    calls: DynamoDBCalls
    reported: int


def measure_reconciliation(payments: int, *, progress: Progress) -> ReconciliationRun:
    progress = progress.about(f"reconciliation of {payments:,} payments")
    with benchmark_world() as (world, _):
        handler_module(CHECK_PAGE)  # a warm container
        started = perf_counter()
        seed_payments(world, payments, progress)
        seeding_seconds = perf_counter() - started
        now = datetime.now(UTC)
        run_id = f"rec_bench_{payments}"
        reconciliation_service().runs.add_run(
            run_id, to_iso(now - timedelta(hours=48)), to_iso(now + timedelta(hours=1)), to_iso(now), "benchmark"
        )
        progress("checking")
        xendit_calls = 0
        call = XenditGateway._call

        def count_then_call(gateway: XenditGateway, operation: str, request, **kwargs):
            nonlocal xendit_calls
            xendit_calls += 1
            return call(gateway, operation, request, **kwargs)

        with counting_dynamodb_calls() as calls, mock.patch.object(XenditGateway, "_call", count_then_call):
            pages, cursor, done = 0, None, False
            started = perf_counter()
            while not done:
                page = invoke(CHECK_PAGE, {"run_id": run_id, "kind": "PAYMENTS", "cursor": cursor})
                cursor, done = page["cursor"], page["done"]
                pages += 1
            seconds = perf_counter() - started
        run = reconciliation_service().runs.view(run_id)
        expect(
            run.checked.payments == payments,
            f"{run.checked.payments} of {payments} payments were checked in {run.from_} .. {run.to}, {pages} pages",
        )
        settings = get_settings()
        return ReconciliationRun(
            payments=payments,
            batch_size=settings.reconciliation_batch_size,
            concurrency=settings.reconciliation_concurrency,
            seeding_seconds=seeding_seconds,
            pages=pages,
            seconds=seconds,
            xendit_calls=xendit_calls,
            calls=calls,
            reported=run.mismatch_totals["reported"],
        )


def seed_payments(world: GroupBuyWorld, count: int, progress: Progress) -> None:
    """``count`` pending payments of the last hour, each with its invoice at the local Xendit; see SEEDING."""
    payments = payment_service()
    now = datetime.now(UTC)
    for n in range(count):
        payment = payments.new_payment(
            f"pay_bench_{n:07d}", f"bench-buyer-{n}", "groupbuy_escrow", 100_000, "IDR", "benchmark", {}
        )
        invoice_id = f"inv_bench_{n:07d}"
        tx = Transaction()
        payments.add_payment(tx, payment.model_copy(update={"invoice_id": invoice_id}))
        tx.commit()
        world.xendit._invoices[invoice_id] = LocalInvoice(
            id=invoice_id,
            external_id=payment.id,
            amount=payment.amount + (1 if n % MISMATCH_EVERY == 0 else 0),
            currency="IDR",
            description="benchmark",
            payer_email=None,
            success_redirect_url=None,
            failure_redirect_url=None,
            metadata=None,
            invoice_url=f"{world.xendit_url}/invoices/{invoice_id}",
            created=now,
            updated=now,
            expiry_date=now + timedelta(days=1),
        )
        if (n + 1) % SEEDING_PROGRESS_EVERY == 0:
            progress(f"{n + 1:,}/{count:,} seeded")
