"""The reconciliation index (PAY-8): every payment, refund and payout item carries the UTC day it was
created in index gsi1 of the Payments table, so a run reads one period's records by day, never by scan.

Written once, when the item is created; a run for ``[from, to)`` queries each day's partition of each kind
between the two instants."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from patungan.core.clock import parse_iso


class IndexedKind(StrEnum):
    PAYMENTS = "PAYMENTS"
    REFUNDS = "REFUNDS"
    PAYOUTS = "PAYOUTS"


def day_partition(kind: IndexedKind, day: str) -> str:
    """The gsi1pk of ``kind``'s records created on ``day`` (YYYY-MM-DD, UTC)."""
    return f"{kind.value}#{day}"


def index_keys(kind: IndexedKind, created_at: str, item_id: str) -> dict[str, str]:
    """The gsi1 attributes of a record created at ``created_at`` (ISO 8601 UTC)."""
    moment: datetime = parse_iso(created_at)
    return {"gsi1pk": day_partition(kind, moment.strftime("%Y-%m-%d")), "gsi1sk": f"{created_at}#{item_id}"}
