"""What a reconciliation run finds (API.md "Money out and reconciliation")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from patungan.reconciliation.index import IndexedKind

MismatchKind = Literal[
    "paid_at_gateway_pending_here",
    "amount_mismatch",
    "refunded_at_gateway_not_here",
    "payout_status_mismatch",
    "unknown_at_gateway",
    "ledger_unbalanced",
    "not_paid_at_gateway",  # we hold a payment as paid that Xendit has not been paid
    "refund_status_mismatch",  # we completed a refund through Xendit that Xendit says failed
    "expired_at_gateway_pending_here",  # the invoice ran out at Xendit, its EXPIRED callback never reached us
    "reference_mismatch",  # the record Xendit answers with names another of our records than the one we asked for
]
Resolution = Literal["repaired", "reported"]


class Mismatch(BaseModel):
    """One record on which we and Xendit disagree, and what the run did about it."""

    kind: MismatchKind
    reference_id: str = Field(description="our id of the payment, refund or withdrawal")
    ours: dict[str, Any] = Field(default_factory=dict, description="our record's relevant fields")
    theirs: dict[str, Any] = Field(default_factory=dict, description="Xendit's record's relevant fields")
    resolution: Resolution


class RecordChecker(Protocol):
    """Compares one kind of our records with Xendit's and repairs the safe differences through the code
    path the missing webhook would have taken (so a repair and a late webhook converge on one outcome)."""

    kind: IndexedKind

    def check(self, item: dict[str, Any], repairing: Callable[[Mismatch], None]) -> Mismatch | None:
        """``item`` is the record as stored (read from the reconciliation index); None when it agrees. Just
        before a repair, ``repairing`` is told the mismatch as found (resolution "repaired"), so the repair is
        reported even if the page dies before it returns."""
        ...


RunStatus = Literal["running", "done", "failed"]
# Far from datetime's limits, so a period's arithmetic never overflows on what a client sends.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2999


class RunInput(BaseModel):
    """The period to check, ``[from, to)``; by default the last 48 hours up to now (so today's drift is found)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: datetime | None = Field(None, alias="from", description="ISO 8601 UTC; default: `to` minus 48 hours")
    to: datetime | None = Field(None, description="ISO 8601 UTC; default: now")

    @field_validator("from_", "to")
    @classmethod
    def _utc_and_plausible(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class CheckedCounts(BaseModel):
    payments: int = 0
    refunds: int = 0
    payouts: int = 0


class RunView(BaseModel):
    """A reconciliation run as API.md shows it (plus its period, error and totals)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    status: RunStatus
    from_: str = Field(alias="from")
    to: str
    started_at: str
    finished_at: str | None = None
    checked: CheckedCounts
    mismatches: list[Mismatch] = Field(description="the first MAX_MISMATCHES_SHOWN, by kind and reference id")
    mismatch_totals: dict[str, int] = Field(description='{"repaired": n, "reported": m}')
    ledger_balanced: bool | None = Field(None, description="null until the ledger has been checked")
    error: str | None = Field(None, description="why a failed run stopped")


class RunOpening(BaseModel):
    """The input of a run's execution: everything its first state needs to create the run."""

    model_config = ConfigDict(populate_by_name=True)

    run_id: str
    from_: str = Field(alias="from")
    to: str
    started_at: str
    trigger: str


class StartedRun(BaseModel):
    id: str
    status: RunStatus
