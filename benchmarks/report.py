"""The figures as plain-text tables."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.dynamodb_calls import NAMED_ACTIONS
from benchmarks.reconciliation import ReconciliationRun
from benchmarks.round_trips import RoundTrips
from benchmarks.settlement import SettlementRun


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """First column left-aligned (names), the others right-aligned (numbers)."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True))]
        )

    return "\n".join([line(headers), line(["-" * width for width in widths]), *map(line, rows)])


def _per(count: int, operations: int) -> str:
    value = count / operations
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def round_trip_table(rows: Sequence[RoundTrips]) -> str:
    headers = ["operation", *NAMED_ACTIONS, "other", "calls", "items in tx", "averaged over"]
    return table(
        headers,
        [
            [
                row.operation,
                *(_per(row.calls.by_action[action], row.operations) for action in NAMED_ACTIONS),
                _per(row.calls.other, row.operations),
                _per(row.calls.total, row.operations),
                _per(row.calls.transaction_items, row.operations),
                str(row.operations),
            ]
            for row in rows
        ],
    )


def settlement_table(runs: Sequence[SettlementRun]) -> str:
    headers = [
        "participants",
        "moto",
        "seeding s",
        "pages",
        "claim s",
        "pages s",
        "finalize+PO s",
        "settlement s",
        "participants/s",
        "calls",
        "items in tx",
        "RSS MB start/peak",
    ]
    return table(
        headers,
        [
            [
                f"{run.participants:,}",
                "local stack" if run.moto_patched else "as released",
                f"{run.seeding_seconds:.1f}",
                str(run.pages),
                f"{run.claim_seconds:.3f}",
                f"{run.pages_seconds:.2f}",
                f"{run.finalize_seconds:.3f}",
                f"{run.total_seconds:.2f}",
                f"{run.participants / run.total_seconds:.0f}",
                f"{run.calls.total:,}",
                f"{run.calls.transaction_items:,}",
                f"{run.rss_before_seeding_mb:.0f}/{run.peak_rss_mb:.0f}",
            ]
            for run in runs
        ],
    )


def reconciliation_table(runs: Sequence[ReconciliationRun]) -> str:
    headers = [
        "payments",
        "seeding s",
        "pages",
        "check s",
        "s per 10 000",
        "payments/s",
        "Xendit calls/payment",
        "DynamoDB reads/payment",
        "DynamoDB writes/payment",
        "reported",
    ]
    return table(
        headers,
        [
            [
                f"{run.payments:,}",
                f"{run.seeding_seconds:.1f}",
                str(run.pages),
                f"{run.seconds:.2f}",
                f"{run.seconds * 10_000 / run.payments:.1f}",
                f"{run.payments / run.seconds:.0f}",
                f"{run.xendit_calls / run.payments:.3f}",
                f"{(run.calls.by_action['GetItem'] + run.calls.by_action['Query']) / run.payments:.3f}",
                f"{(run.calls.total - run.calls.by_action['GetItem'] - run.calls.by_action['Query']) / run.payments:.3f}",
                str(run.reported),
            ]
            for run in runs
        ],
    )
