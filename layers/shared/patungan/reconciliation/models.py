"""What a reconciliation run finds (API.md "Money out and reconciliation")."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from patungan.reconciliation.index import IndexedKind

MismatchKind = Literal[
    "paid_at_gateway_pending_here",
    "amount_mismatch",
    "refunded_at_gateway_not_here",
    "payout_status_mismatch",
    "unknown_at_gateway",
    "ledger_unbalanced",
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

    def check(self, item: dict[str, Any]) -> Mismatch | None:
        """``item`` is the record as stored (read from the reconciliation index); None when it agrees."""
        ...
