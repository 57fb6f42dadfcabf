"""Reconciliation of withdrawals with Xendit's payouts (PAY-8, WAL-2): ``PayoutChecker`` is the
RecordChecker of IndexedKind.PAYOUTS.

A status Xendit moved on without telling us (a lost callback) is repaired through
``WithdrawalService.apply_payout``, the function the payout webhook calls, so a repair racing a late
webhook converges on one outcome. An approved withdrawal that never recorded a payout (approval crashed or
Xendit was down) gets the payout Xendit has for it attached, or sent. What cannot be repaired safely - our
withdrawal completed while Xendit says it failed, an amount that differs, a payout Xendit does not know -
is reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from patungan.adapters.xendit import Payout, PayoutStatus
from patungan.reconciliation.index import IndexedKind
from patungan.reconciliation.models import Mismatch, MismatchKind, Resolution
from patungan.wallet.models import Withdrawal
from patungan.wallet.repository import withdrawal_from_item
from patungan.wallet.service import PAYOUT_OUTCOMES, WithdrawalService, applied

# Nothing was sent for these, or what was sent is settled at approval (a refusal keeps no payout id).
_NOTHING_AT_XENDIT = frozenset({"requested", "rejected"})


class PayoutChecker:
    kind = IndexedKind.PAYOUTS

    def __init__(self, withdrawals: WithdrawalService) -> None:
        self.withdrawals = withdrawals

    def check(self, item: dict[str, Any], repairing: Callable[[Mismatch], None]) -> Mismatch | None:
        ours = withdrawal_from_item(item)
        if ours.status in _NOTHING_AT_XENDIT:
            return None
        if ours.payout_id is None:
            return self._resume(ours, repairing) if ours.status == "approved" else None
        theirs = self.withdrawals.gateway.get_payout(ours.payout_id)
        if theirs is None:
            return _mismatch("unknown_at_gateway", "reported", ours, None)
        if theirs.reference_id not in (None, ours.id):  # Xendit's record is of another withdrawal: never applied
            return _mismatch("reference_mismatch", "reported", ours, theirs)
        if _amounts_differ(ours, theirs):
            return _mismatch("amount_mismatch", "reported", ours, theirs)
        if _agree(ours, theirs):
            return None
        repairing(_mismatch("payout_status_mismatch", "repaired", ours, theirs))
        outcome = self.withdrawals.apply_payout(ours.id, theirs)
        if applied(outcome):
            return _mismatch("payout_status_mismatch", "repaired", ours, theirs)
        now = self.withdrawals.repository.get(ours.id)
        if _agree(now, theirs):  # the webhook got there first: one outcome, nothing to report
            return None
        return _mismatch("payout_status_mismatch", "reported", now, theirs)

    def _resume(self, ours: Withdrawal, repairing: Callable[[Mismatch], None]) -> Mismatch | None:
        theirs = self.withdrawals.gateway.find_payout_by_reference(ours.id)
        if theirs is not None and _amounts_differ(ours, theirs):
            return _mismatch("amount_mismatch", "reported", ours, theirs)
        repairing(_mismatch("payout_status_mismatch", "repaired", ours, theirs))
        outcome = self.withdrawals.resume_payout(ours.id, theirs)
        now = self.withdrawals.repository.get(ours.id)
        resolution: Resolution = "repaired" if applied(outcome) else "reported"
        if not applied(outcome) and now.payout_id is not None:
            return None  # approval or a webhook attached it meanwhile
        return _mismatch("payout_status_mismatch", resolution, ours, theirs)


def _agree(ours: Withdrawal, theirs: Payout) -> bool:
    expected = PAYOUT_OUTCOMES[theirs.status]
    return ours.status == expected or (ours.status == "approved" and theirs.status is PayoutStatus.PENDING)


def _amounts_differ(ours: Withdrawal, theirs: Payout) -> bool:
    return theirs.amount != ours.net_amount or (theirs.currency is not None and theirs.currency != ours.currency)


def _mismatch(kind: MismatchKind, resolution: Resolution, ours: Withdrawal, theirs: Payout | None) -> Mismatch:
    return Mismatch(
        kind=kind,
        reference_id=ours.id,
        ours={"status": ours.status, "payout_id": ours.payout_id, "amount": ours.net_amount, "currency": ours.currency},
        theirs={}
        if theirs is None
        else {
            "status": theirs.status.value.upper(),
            "payout_id": theirs.id,
            "amount": theirs.amount,
            "currency": theirs.currency,
        },
        resolution=resolution,
    )
