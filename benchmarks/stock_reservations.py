"""Stock reservations (CHK-3, WH-2; issue 9): DynamoDB calls per reservation of a 10-line cart, per release,
commit and extend, and what one hot item costs: the items and index entries each reservation writes, and a
race of buyers for one product measured on moto (attempts, cancelled transactions)."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from benchmarks.dynamodb_calls import DynamoDBCalls, intercepting_dynamodb_requests
from benchmarks.progress import Progress
from benchmarks.report import table
from emulator import moto_patches
from patungan.composition import stock_service
from patungan.core.errors import Conflict
from patungan.inventory.stock_models import StockLine
from tests.support.aws import local_aws
from tests.support.stock import add_product, receive, stock_world

CART_LINES = 10
RACE_BUYERS = 50
RACE_UNITS = 10
# DynamoDB: one partition (so one item) takes at most 1 000 write units a second; a transactional write of an
# item under 1 KB costs 2 of them.
ITEM_WRITE_UNITS_PER_SECOND = 1_000
TRANSACTIONAL_WRITE_UNITS = 2


@dataclass
class Measured:
    calls: DynamoDBCalls = field(default_factory=DynamoDBCalls)
    cancelled: int = 0
    # Per transaction operation: (table, item kind, index entries it writes).
    writes: Counter[tuple[str, str, int]] = field(default_factory=Counter)


@dataclass(frozen=True)
class Row:
    operation: str
    measured: Measured
    operations: int


@dataclass(frozen=True)
class StockRun:
    rows: list[Row]
    race: Measured
    race_outcomes: Counter[str]
    hot_item_writes: Counter[tuple[str, str, int]]


def _kind(item: dict[str, Any]) -> str:
    return item.get("pk", {}).get("S", "").split("#", 1)[0]


@contextlib.contextmanager
def _measuring() -> Iterator[Measured]:
    measured = Measured()
    lock = threading.Lock()

    def count_then_answer(handler, action: str, answer: Callable[[], Any]) -> Any:
        response = answer()
        with lock:
            measured.calls.by_action[action] += 1
            if action == "TransactWriteItems":
                operations = handler.params.get("TransactItems", [])
                measured.calls.transaction_items += len(operations)
                status = response[0] if isinstance(response, tuple) else 200
                if status != 200:
                    measured.cancelled += 1
                for operation in operations:
                    [body] = operation.values()
                    item = body.get("Item") or body.get("Key") or {}
                    indexes = sum(1 for name in item if name.startswith("gsi") and name.endswith("pk"))
                    measured.writes[(body["TableName"], _kind(item), indexes)] += 1
        return response

    with intercepting_dynamodb_requests(count_then_answer):
        yield measured


def measure_stock(progress: Progress) -> StockRun:
    patches = moto_patches.install(run_function=_unused, deliver_event=_unused, time_scale=1)
    try:
        with open(os.devnull, "w") as nowhere, contextlib.redirect_stdout(nowhere), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            with local_aws():
                return _measure(progress)
    finally:
        patches.undo()


def _measure(progress: Progress) -> StockRun:
    world = stock_world()
    stock = stock_service()
    progress(f"a {CART_LINES}-line cart reserved, extended, released and committed")
    products = [add_product(f"prd_bench_{n}") for n in range(CART_LINES)]
    for product in products:
        receive((world.warehouse.id, product.id, None), 100)
    cart = [StockLine(product.id, None, 1) for product in products]
    rows = []

    def measured(operation: str, times: int, action: Callable[[], Any]) -> list[Any]:
        with _measuring() as counts:
            results = [action() for _ in range(times)]
        rows.append(Row(operation, counts, times))
        return results

    held = measured(
        f"reserve {CART_LINES} lines, warehouse given",
        5,
        lambda: stock.reserve("chk_bench", cart, warehouse_id=world.warehouse.id),
    )
    held += measured(f"reserve {CART_LINES} lines, origin_for finds it", 1, lambda: stock.reserve("chk_bench", cart))
    measured("extend 3 reservations", 1, lambda: stock.extend([r.id for r in held[:3]]))
    releasing = iter(held[:2])
    measured("release", 2, lambda: stock.release(next(releasing).id))
    committing = iter(held[2:4])
    measured("commit", 2, lambda: stock.commit(next(committing).id))

    progress(f"{RACE_BUYERS} buyers race for {RACE_UNITS} units of one item")
    hot = add_product("prd_bench_hot")
    receive((world.warehouse.id, hot.id, None), RACE_UNITS)
    start = threading.Barrier(RACE_BUYERS)

    def buy(n: int) -> str:
        start.wait()
        try:
            stock.reserve(f"chk_race_{n}", [StockLine(hot.id, None, 1)], warehouse_id=world.warehouse.id)
            return "held"
        except Conflict as exc:
            return exc.code

    with _measuring() as race, ThreadPoolExecutor(max_workers=RACE_BUYERS) as pool:
        outcomes = Counter(pool.map(buy, range(RACE_BUYERS)))
    with _measuring() as one:
        stock.reserve("chk_one", [StockLine(products[0].id, None, 1)])
    return StockRun(rows, race, outcomes, one.writes)


def _unused(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the stock benchmark invokes no function through moto")


def stock_report(run: StockRun) -> list[str]:
    rows = [
        [
            row.operation,
            f"{row.measured.calls.total / row.operations:.1f}",
            f"{row.measured.calls.by_action['TransactWriteItems'] / row.operations:.1f}",
            f"{row.measured.calls.transaction_items / row.operations:.1f}",
            f"{(row.measured.calls.total - row.measured.calls.by_action['TransactWriteItems']) / row.operations:.1f}",
        ]
        for row in run.rows
    ]
    lines = [table(["operation", "calls", "transactions", "items in tx", "reads"], rows), ""]
    writes = [
        [f"{kind} ({name})", str(count), str(indexes), str(count * (1 + indexes))]
        for (name, kind, indexes), count in sorted(run.hot_item_writes.items())
    ]
    total = sum(count * (1 + indexes) for (_, _, indexes), count in run.hot_item_writes.items())
    lines.append("Items one reservation of one line writes (one transaction):")
    lines.append(table(["item", "items", "index entries each", "writes incl. indexes"], writes))
    lines.append(f"total writes incl. index entries: {total}")
    per_item = ITEM_WRITE_UNITS_PER_SECOND // TRANSACTIONAL_WRITE_UNITS
    held, refused = run.race_outcomes["held"], run.race_outcomes["insufficient_stock"]
    transactions = run.race.calls.by_action["TransactWriteItems"]
    lines += [
        "",
        f"Race: {RACE_BUYERS} buyers, {RACE_UNITS} units of one item: {held} held, {refused} refused "
        f"insufficient_stock, {sum(run.race_outcomes.values()) - held - refused} other; {transactions} transactions "
        f"({run.race.cancelled} cancelled by a concurrent writer), {run.race.calls.total} DynamoDB calls in all.",
        f"Flash-sale cap for one product in one warehouse: every reservation rewrites its one stock item, so at most "
        f"{per_item} reservations/s by DynamoDB's per-item limit ({ITEM_WRITE_UNITS_PER_SECOND} WCU/s, "
        f"{TRANSACTIONAL_WRITE_UNITS} per transactional write); in practice fewer, since writers of one item are "
        "serialised by its version (one read + one transaction per attempt, a conflict costs another).",
    ]
    return lines
