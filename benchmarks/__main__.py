"""``make bench``: print DynamoDB round trips per group-buying operation, settlement wall time, the cost of
reconciling a period's payments with Xendit, the flash sale's capacity model, stock reservations' calls and
hot-item cost, every handler's cold-start import time, and the shipping label's render time.

Settlement is timed for sessions of N paid participants, reconciliation for periods of N payments, on the local
stack's moto (and the local Xendit). Figures go to stdout, progress lines to stderr.

python -m benchmarks [--sizes 100,1000,5000] [--reconciliation-sizes 1000,3000,10000] [--flash-sale-buyers 500]
                     [--only reconciliation]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import textwrap
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

import moto

from benchmarks.checkout import checkout_report, local_stack_report, measure_checkout, measure_local_stack_confirm
from benchmarks.cold_start import TARGET_RATIO, cold_start_table, measure_cold_start
from benchmarks.flash_sale import FlashSale, flash_sale_report, measure_flash_sale
from benchmarks.label import label_report, measure_label
from benchmarks.moto_transactions import measure_transactions, transaction_cost_table
from benchmarks.progress import Progress
from benchmarks.reconciliation import RECONCILIATION_SEEDING, ReconciliationRun, measure_reconciliation
from benchmarks.report import reconciliation_table, round_trip_table, settlement_table
from benchmarks.round_trips import PARTICIPANTS, measure_round_trips
from benchmarks.settlement import SEEDING, SettlementRun, measure_settlement
from benchmarks.stock_reservations import StockRun, measure_stock, stock_report

DEFAULT_SIZES = "100,1000,5000"
DEFAULT_RECONCILIATION_SIZES = "1000,3000,10000"
DEFAULT_FLASH_SALE_BUYERS = 500
# moto as released deep-copies every table a transaction touches, so its settlement time grows faster than
# linearly: past a hundred participants it alone would take longer than the rest of the run.
UNPATCHED_MAX_PARTICIPANTS = 100
NOTES_WIDTH = 110
PARTS = (
    "round-trips",
    "settlement",
    "reconciliation",
    "flash-sale",
    "stock",
    "checkout",
    "cold-start",
    "moto-transactions",
    "label",
)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("a session has at least one participant")
    return sizes


def _buyers(text: str) -> int:
    (buyers,) = _sizes(text)
    return buyers


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=_sizes(DEFAULT_SIZES),
        help=f"paid participants per settled session, comma-separated (default: {DEFAULT_SIZES})",
    )
    parser.add_argument(
        "--reconciliation-sizes",
        type=_sizes,
        default=_sizes(DEFAULT_RECONCILIATION_SIZES),
        help=f"payments in a reconciled period, comma-separated (default: {DEFAULT_RECONCILIATION_SIZES})",
    )
    parser.add_argument(
        "--flash-sale-buyers",
        type=_buyers,
        default=DEFAULT_FLASH_SALE_BUYERS,
        help=f"buyers who join and pay in the flash sale (default: {DEFAULT_FLASH_SALE_BUYERS})",
    )
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="measure only this part (repeatable; default: all of them)",
    )
    return parser.parse_args(argv)


def _settle_in_a_fresh_process(participants: int, *, moto_patched: bool, progress: Progress) -> SettlementRun:
    # A process of its own per run: its peak RSS is its own, and no run inherits another's heap.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as process:
        run = process.submit(measure_settlement, participants, moto_patched=moto_patched, progress=progress)
        return run.result()


def _reconcile_in_a_fresh_process(payments: int, *, progress: Progress) -> ReconciliationRun:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as process:
        return process.submit(measure_reconciliation, payments, progress=progress).result()


def _flash_sale_in_a_fresh_process(buyers: int, *, progress: Progress) -> FlashSale:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as process:
        return process.submit(measure_flash_sale, buyers, progress=progress).result()


def _notes(*paragraphs: str) -> None:
    for paragraph in paragraphs:
        print(textwrap.fill(paragraph, width=NOTES_WIDTH, subsequent_indent="  "))


def main(argv: list[str] | None = None) -> None:
    arguments = _arguments(argv)
    sizes = arguments.sizes
    progress = Progress()
    print(
        f"Patungan benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, moto {moto.__version__} in-process with the local stack's patches"
    )

    parts = arguments.only or PARTS
    if "round-trips" in parts:
        _round_trips(progress)
    if "settlement" in parts:
        _settlement(sizes, progress)
    if "reconciliation" in parts:
        _reconciliation(arguments.reconciliation_sizes, progress)
    if "flash-sale" in parts:
        _flash_sale(arguments.flash_sale_buyers, progress)
    if "stock" in parts:
        _stock(progress)
    if "checkout" in parts:
        _checkout(progress)
    if "cold-start" in parts:
        _cold_start(progress)
    if "moto-transactions" in parts:
        _moto_transactions(progress)
    if "label" in parts:
        _label(progress)
    progress("done")


def _round_trips(progress: Progress) -> None:
    rows = measure_round_trips(progress.about("round trips"))
    print(f"\nDynamoDB round trips per operation (API calls that reach moto; {PARTICIPANTS} buyers a session)")
    print(round_trip_table(rows))
    _notes(
        "Joins go through the join API with a real invoice at the local Xendit; every buyer joined at the base "
        "price and the session closed at the last tier, so each settled participant includes a tier refund.",
        "'items in tx': operations inside TransactWriteItems. Page rows: a session's pages divided by its "
        "participants (each page's own session read and query included).",
    )


def _settlement(sizes: list[int], progress: Progress) -> None:
    runs = []
    for size in sizes:
        if size <= UNPATCHED_MAX_PARTICIPANTS:
            runs.append(_settle_in_a_fresh_process(size, moto_patched=False, progress=progress))
        runs.append(_settle_in_a_fresh_process(size, moto_patched=True, progress=progress))
    print(f"\nSettlement: claim -> every settle page (page size {runs[0].page_size}) -> finalize -> purchase order")
    print(settlement_table(runs))
    _notes(
        f"Seeding (not part of the settlement time): {SEEDING}.",
        "Each step is its handler invoked in-process, warm, with the event the state machine sends. 'calls' and "
        "'items in tx': the DynamoDB calls and transaction operations of the whole settlement.",
        "'as released': seeded with the local stack's moto patches, settled without any of them (moto deep-copies "
        "every table a transaction touches, where the patch saves only the touched items); measured up to "
        f"{UNPATCHED_MAX_PARTICIPANTS} participants only.",
        "Each run is a fresh process; RSS is its high-water mark (ru_maxrss) before seeding, and at the end.",
        "moto's figures show how the work grows with N, not what DynamoDB's throughput would be.",
    )


def _reconciliation(sizes: list[int], progress: Progress) -> None:
    reconciled = [_reconcile_in_a_fresh_process(size, progress=progress) for size in sizes]
    print(
        f"\nReconciliation (PAY-8): the payments' CheckPage loop (batch {reconciled[0].batch_size}, index pages of "
        f"100, {reconciled[0].concurrency} Xendit calls in flight) against the local Xendit"
    )
    print(reconciliation_table(reconciled))
    _notes(
        f"Seeding (not part of the check time): {RECONCILIATION_SEEDING}.",
        "Each page is its handler invoked in-process, warm, with the event the state machine sends. Xendit calls: "
        "requests the gateway made (GET invoice by id); DynamoDB reads: GetItem + Query, writes: every other call "
        "(a reported mismatch is a 2-item transaction, each page's count another).",
        "moto and the local Xendit run in this one process: the time shows how the work grows with N, not what "
        "DynamoDB and Xendit would take.",
    )


def _flash_sale(buyers: int, progress: Progress) -> None:
    run = _flash_sale_in_a_fresh_process(buyers, progress=progress.about("flash sale"))
    print(
        f"\nFlash sale (issue 8): {buyers} buyers join one session and pay; every DynamoDB item each request wrote "
        "and read, scaled to the paid-join rate"
    )
    print("\n".join(flash_sale_report(run)))
    _notes(
        "Joins go through the join API (each with an Idempotency-Key and a real invoice at the local Xendit), "
        "payments through the XenditInvoiceWebhook handler, on moto; the requests run one at a time, so no "
        "conflict happens here: the rates show where they would. Writes: every PutItem, UpdateItem, DeleteItem and "
        "BatchWriteItem item, and every operation inside TransactWriteItems (a ConditionCheck included), whether or "
        "not its condition held; reads: GetItem, Query, BatchGetItem, TransactGetItems calls, and per item "
        "each item they returned.",
        "Not in the loop: the outbox relay (its stream reads, EventBridge puts) and the events' consumers; their "
        "writes are not counted. Index write units count every global secondary index whose key the item "
        "carries at its full size (an upper bound for KEYS_ONLY indexes).",
        "Lambda: memory from template.yaml; 'ms here' is the in-process duration on moto with the local Xendit "
        "on loopback, not what AWS would bill, so the total uses the stated assumed durations instead.",
    )


def _stock_in_a_fresh_process(progress: Progress) -> StockRun:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as process:
        return process.submit(measure_stock, progress=progress).result()


def _checkout(progress: Progress) -> None:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as process:
        runs = process.submit(measure_checkout, progress=progress.about("checkout")).result()
    print("\nConfirm saga (issue 10): DynamoDB calls per checkout paid by invoice, by phase, on moto")
    print("\n".join(checkout_report(runs)))
    _notes(
        "One order (one seller, one warehouse) of N distinct products, one unit each. confirm: the cart, the "
        "preview's prices, the buyer's lock, the reservation and the checkout record (pricing is a plain quote at "
        "catalog prices here; the engine's own reads come on top). Saga steps are their services called as Step "
        "Functions calls them; the PAID webhook goes through its handler. 'to awaiting': confirm plus the three "
        "steps in-process (the local stack adds its HTTP and Lambda hops), the local Xendit included.",
    )
    timings = measure_local_stack_confirm(progress.about("checkout in the local stack"))
    print("\nConfirm to awaiting_payment in the local stack (issue 10): what the buyer's app waits, over HTTP")
    print("\n".join(local_stack_report(timings)))
    _notes(
        "python -m emulator started fresh (as make run does); one-line invoice checkouts of one buyer each: POST "
        "/v1/checkout/confirm, then GET /v1/checkout/{id} every 50 ms until it shows awaiting_payment (the "
        "saga's ReserveStock, PlaceOrders and CreatePayment in moto's Step Functions interpreter, each a Lambda "
        "invocation, and the local Xendit's invoice). The first checkout also pays its functions' cold starts. "
        "The local stack runs one invocation at a time: figures for comparison between runs, not AWS latency.",
    )


def _stock(progress: Progress) -> None:
    run = _stock_in_a_fresh_process(progress.about("stock"))
    print("\nStock reservations (CHK-3, WH-2; issue 9): DynamoDB calls per operation, through StockService on moto")
    print("\n".join(stock_report(run)))
    _notes(
        "reads: the consistent BatchGetItem of the touched stock items (with the reservation: its idempotency "
        "check) before the one transaction, or the reservation's GetItem first for release and commit. 'items in "
        "tx': a stock item and its audit record per line, plus the reservation. Without a warehouse, reserve first "
        "asks origin_for: one index query per distinct product and the warehouse's GetItem (checkout asks it once, "
        "at preview, and reserves in that warehouse at confirm: CHK-10).",
        "Index entries: the stock item sits in gsi1 (its warehouse), gsi2 (its product) and gsi3 (its seller); the "
        "audit record in five indexes (product, actor, and warehouse, action and time, each split over 8 shards "
        "so no index partition takes every write); a held reservation in the expiry index (8 shards).",
    )


def _cold_start(progress: Progress) -> None:
    measured = measure_cold_start(progress.about("cold start"))
    print(
        f"\nCold start (issue 8): each handler's import in a fresh interpreter, median CPU time of {measured.runs}, "
        f"against the baseline's {measured.baseline_seconds * 1000:.0f} ms"
    )
    print(cold_start_table(measured))
    worst = measured.worst
    print(
        f"cold-start: median={measured.median_ratio:.2f}x worst={worst.ratio:.2f}x ({worst.logical_id}) "
        f"target<={TARGET_RATIO}x"
    )
    _notes(
        "Baseline: a fresh interpreter importing boto3, pydantic and Powertools, with a Tracer and one DynamoDB "
        "client built. Handler: its module imported as Lambda imports it (the shared layer on sys.path, the "
        "function's template environment). Interpreter start-up is excluded from both.",
        "A handler builds its boto3 clients on its first invocation, not at import: the baseline's DynamoDB client "
        "(about 60 ms of CPU here) is in the baseline's figure and not in a handler's.",
    )


def _moto_transactions(progress: Progress) -> None:
    progress("moto transactions")
    print(
        "\nmoto transactions (issue 8): one TransactWriteItems (an update and a condition check) on a table of N items"
    )
    print(transaction_cost_table(measure_transactions()))
    _notes(
        "Half of them committed, half cancelled by their condition check. 'as released': moto 5.2.5 deep-copies "
        "the table before every transaction; 'touched items': the local stack's rollback, which the tests take too "
        "(emulator/moto_patches.py cheaper_moto, without its speed patches here), saves only the items the transaction touches.",
    )


def _label(progress: Progress) -> None:
    progress("label")
    print("\nShipping label (LOG-3): render_label's CPU time for one 100 x 150 mm PDF (Code128 and QR of the waybill)")
    print("\n".join(label_report(measure_label())))
    _notes(
        "Warm: the median of repeated renders in this process. First label: the first render here, which imports "
        "reportlab (a handler imports it when it draws its first label, not at its cold start).",
    )


if __name__ == "__main__":
    main()
