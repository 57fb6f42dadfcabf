"""The capacity model of a flash sale (issue 8): N buyers join one session and pay, through the real handlers on
moto, with every DynamoDB item each request writes and reads recorded; the burst is then scaled to 2 000 paid
joins a second, to show which items would take more writes than DynamoDB gives one item, and what 1 000 paid
joins cost at list prices."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.dynamodb_items import DynamoDBItems, ItemKey, recording_dynamodb_items
from benchmarks.progress import Progress
from benchmarks.report import table
from benchmarks.world import benchmark_world, join, open_session, paid_callback
from emulator.template import Template

JOINS_PER_SECOND = 2_000
# The targets: DynamoDB takes about 1 000 writes a second on one item, half that inside transactions.
MAX_ITEM_WRITES_PER_SECOND = 400
MAX_TRANSACTIONS_PER_JOIN = 2
MAX_READS_PER_JOIN = 1
BUSIEST_SHOWN = 10
PROGRESS_EVERY = 100
JOIN_FUNCTION = "JoinSessionFunction"
CALLBACK_FUNCTION = "XenditInvoiceWebhook"
PER_PAID_JOINS = 1_000

# List prices, ap-southeast-3 (Jakarta), in USD. Not fetched (no network here): list price as of 2024-11 from
# memory, verify at https://aws.amazon.com/dynamodb/pricing/on-demand/ and https://aws.amazon.com/lambda/pricing/.
PRICES_AS_OF = "list price as of 2024-11 (ap-southeast-3, from memory: verify)"
USD_PER_MILLION_WRITE_UNITS = 0.7116  # DynamoDB on-demand, Standard table class
USD_PER_MILLION_READ_UNITS = 0.1423
USD_PER_GB_SECOND_ARM64 = 0.0000133334  # Lambda arm64, first pricing tier
USD_PER_MILLION_LAMBDA_REQUESTS = 0.20
# moto's in-process duration is not what Lambda would bill: these per-invocation durations are the assumption
# the AWS cost uses. A join waits for Xendit to create the invoice (a few hundred ms); a callback only writes.
ASSUMED_AWS_SECONDS = {JOIN_FUNCTION: 0.400, CALLBACK_FUNCTION: 0.100}


def writes_per_second(writes: int, paid_joins: int, joins_per_second: int = JOINS_PER_SECOND) -> float:
    """The rate of an item written ``writes`` times by ``paid_joins`` paid joins (their joins and their PAID
    callbacks), when those run at ``joins_per_second``: the burst then lasts paid_joins / joins_per_second
    seconds."""
    return writes * joins_per_second / paid_joins


@dataclass(frozen=True)
class Invocations:
    """One function's invocations in the burst: what they did to DynamoDB and how long each took here."""

    function: str
    memory_mb: int
    items: DynamoDBItems
    seconds: list[float]

    @property
    def count(self) -> int:
        return len(self.seconds)

    def per_invocation(self, figure: float) -> float:
        return figure / self.count


@dataclass(frozen=True)
class FlashSale:
    buyers: int
    session_id: str
    joins: Invocations
    callbacks: Invocations

    @property
    def items(self) -> DynamoDBItems:
        return self.joins.items + self.callbacks.items

    def busiest(self) -> list[tuple[ItemKey, int, float]]:
        """(item, writes, writes a second at JOINS_PER_SECOND), busiest first."""
        return [
            (item, writes, writes_per_second(writes, self.buyers))
            for item, writes in self.items.writes.most_common(BUSIEST_SHOWN)
        ]

    @property
    def max_item_writes_per_s(self) -> int:
        return round(self.busiest()[0][2])

    def session_items(self) -> tuple[ItemKey | None, list[ItemKey]]:
        """The session item (META) and its capacity shards, among the items the burst touched."""
        pk = ("pk", f"SESSION#{self.session_id}")
        touched = set(self.items.writes) | set(self.items.reads)
        meta = next((item for item in touched if item.key == (pk, ("sk", "META"))), None)
        shards = sorted(item for item in touched if item.key[0] == pk and item.key[1][1].startswith("CAPACITY#"))
        return meta, shards


def _invocations(
    function: str, memory_mb: int, count: int, invoke: Callable[[int], Any], progress: Progress
) -> tuple[Invocations, list[Any]]:
    results, seconds = [], []
    with recording_dynamodb_items() as items:
        for n in range(count):
            started = time.perf_counter()
            results.append(invoke(n))
            seconds.append(time.perf_counter() - started)
            if (n + 1) % PROGRESS_EVERY == 0:
                progress(f"{function}: {n + 1} of {count}")
    return Invocations(function, memory_mb, items, seconds), results


def measure_flash_sale(buyers: int, progress: Progress) -> FlashSale:
    functions = Template.load().functions()
    with benchmark_world() as (world, _):
        session_id = open_session(world, moq=max(1, buyers // 2), target_quantity=buyers)
        progress(f"{buyers} buyers join one session (target {buyers}), each with an Idempotency-Key")
        joins, participations = _invocations(
            JOIN_FUNCTION,
            functions[JOIN_FUNCTION].memory_size,
            buyers,
            lambda n: join(n, session_id, f"flash-sale-{n}"),
            progress,
        )
        for participation in participations:
            world.pay_at_xendit(participation)  # the buyer pays at Xendit: no DynamoDB call
        progress(f"{buyers} PAID callbacks")
        callbacks, _ = _invocations(
            CALLBACK_FUNCTION,
            functions[CALLBACK_FUNCTION].memory_size,
            buyers,
            lambda n: paid_callback(world, participations[n]),
            progress,
        )
    return FlashSale(buyers, session_id, joins, callbacks)


def _verdict(holds: bool) -> str:
    return "PASS" if holds else "FAIL"


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def flash_sale_report(run: FlashSale) -> list[str]:
    names = {run.session_id: "<session>"}
    lines = [
        f"Busiest items at {JOINS_PER_SECOND:,} paid joins a second ({run.buyers} joins and {run.buyers} PAID "
        f"callbacks spread over {run.buyers / JOINS_PER_SECOND:g} s), by writes",
        table(
            ["table", "key", "by joins", "by callbacks", "writes", "per paid join", "writes/s", "reads"],
            [
                [
                    item.table,
                    item.shown(names),
                    str(run.joins.items.writes[item]),
                    str(run.callbacks.items.writes[item]),
                    str(writes),
                    _figure(writes / run.buyers),
                    f"{rate:,.0f}",
                    str(run.items.reads[item]),
                ]
                for item, writes, rate in run.busiest()
            ],
        ),
        f"flash-sale: max_item_writes_per_s={run.max_item_writes_per_s} joins_per_s={JOINS_PER_SECOND}",
        _session_line(run),
        "",
        "Per invocation",
        table(
            [
                "operation",
                "transactions",
                "items in tx",
                "single writes",
                "reads",
                "WRU",
                "RRU",
                "ms here",
                "memory MB",
            ],
            [
                [
                    f"{operation.function} ({label})",
                    *(
                        _figure(operation.per_invocation(figure))
                        for figure in (
                            operation.items.transactions,
                            operation.items.transaction_items,
                            operation.items.single_writes,
                            operation.items.read_calls,
                            operation.items.write_units + operation.items.index_write_units,
                            operation.items.read_units,
                        )
                    ),
                    f"{1000 * sum(operation.seconds) / operation.count:.0f}",
                    str(operation.memory_mb),
                ]
                for operation, label in ((run.joins, "join"), (run.callbacks, "PAID callback"))
            ],
        ),
        "",
        "Targets (issue 8)",
        *_targets(run),
        "",
        f"Cost per {PER_PAID_JOINS:,} paid joins (a join and its PAID callback each), {PRICES_AS_OF}",
        _cost_table(run),
    ]
    return lines


def _session_line(run: FlashSale) -> str:
    meta, shards = run.session_items()
    meta_writes = (run.joins.items.writes[meta], run.callbacks.items.writes[meta]) if meta else (0, 0)
    shard_writes = [run.items.writes[shard] for shard in shards]
    return (
        f"The session item (META): {meta_writes[0]} writes by joins, {meta_writes[1]} by callbacks (the tier and MOQ "
        f"raises); its capacity over {len(shards)} shards, "
        f"{min(shard_writes, default=0)}-{max(shard_writes, default=0)} writes each"
    )


def _targets(run: FlashSale) -> list[str]:
    transactions = run.joins.per_invocation(run.joins.items.transactions)
    reads = run.joins.per_invocation(run.joins.items.read_calls)
    return [
        f"no item above {MAX_ITEM_WRITES_PER_SECOND} writes/s: busiest {run.max_item_writes_per_s:,} writes/s  "
        f"{_verdict(run.max_item_writes_per_s <= MAX_ITEM_WRITES_PER_SECOND)}",
        f"a join makes <= {MAX_TRANSACTIONS_PER_JOIN} transactional writes: {_figure(transactions)}  "
        f"{_verdict(transactions <= MAX_TRANSACTIONS_PER_JOIN)}",
        f"a join makes <= {MAX_READS_PER_JOIN} read: {_figure(reads)}  {_verdict(reads <= MAX_READS_PER_JOIN)}",
    ]


def _cost_table(run: FlashSale) -> str:
    scale = PER_PAID_JOINS / run.buyers
    items = run.items
    operations = (run.joins, run.callbacks)
    requests = scale * sum(operation.count for operation in operations)
    measured_gb_s = scale * sum(operation.memory_mb / 1024 * sum(operation.seconds) for operation in operations)
    assumed_gb_s = scale * sum(
        operation.memory_mb / 1024 * ASSUMED_AWS_SECONDS[operation.function] * operation.count
        for operation in operations
    )
    assumed = ", ".join(f"{function} {1000 * seconds:.0f} ms" for function, seconds in ASSUMED_AWS_SECONDS.items())
    rows = [
        ("DynamoDB write units, tables (WRU)", scale * items.write_units, USD_PER_MILLION_WRITE_UNITS / 1e6),
        (
            "DynamoDB write units, global secondary indexes",
            scale * items.index_write_units,
            USD_PER_MILLION_WRITE_UNITS / 1e6,
        ),
        ("DynamoDB read units (RRU)", scale * items.read_units, USD_PER_MILLION_READ_UNITS / 1e6),
        ("Lambda requests", requests, USD_PER_MILLION_LAMBDA_REQUESTS / 1e6),
        (f"Lambda GB-s, assumed AWS durations ({assumed})", assumed_gb_s, USD_PER_GB_SECOND_ARM64),
        ("Lambda GB-s, durations measured here (moto, not AWS)", measured_gb_s, USD_PER_GB_SECOND_ARM64),
    ]
    priced = [(name, units, units * price) for name, units, price in rows]
    total = sum(usd for _, _, usd in priced[:-1])  # with the assumed durations, not moto's
    return table(
        ["item", "units", "USD"],
        [[name, f"{units:,.1f}", f"{usd:.5f}"] for name, units, usd in priced]
        + [["total (assumed Lambda durations)", "", f"{total:.5f}"]],
    )
