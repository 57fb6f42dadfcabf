"""Ledger use cases behind the API: a user's own wallet (WAL-1), admin adjustments (WAL-3), the trial
balance (PAY-5). Other contexts post their movements through ``Ledger`` inside their own transactions."""

from __future__ import annotations

from functools import cache

from patungan.core.auth import Principal, Role
from patungan.core.clock import Clock, SystemClock, to_iso
from patungan.core.ids import keyed_id, new_id
from patungan.core.money import DEFAULT_CURRENCY
from patungan.core.pagination import Page
from patungan.ledger import accounts
from patungan.ledger.models import (
    Adjustment,
    AdjustmentInput,
    Movement,
    TrialBalance,
    Wallet,
    WalletTransaction,
    transfer,
)
from patungan.ledger.repository import Ledger, MovementAlreadyPosted, ledger


class LedgerService:
    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        self.ledger = ledger
        self.clock = clock

    # ---- the caller's own wallet: there is no way to name another user's
    def wallet(self, principal: Principal) -> Wallet:
        return self.ledger.wallet(principal.user_id)

    def wallet_transactions(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[WalletTransaction]:
        return self.ledger.wallet_transactions(principal.user_id, limit, cursor)

    # ---- admin
    def adjust_wallet(
        self, principal: Principal, user_id: str, data: AdjustmentInput, request_key: str | None = None
    ) -> Adjustment:
        """Credit (amount > 0) or debit (amount < 0) a wallet against the platform's adjustments account,
        recording who did it and why (WAL-3); a debit never takes the wallet below zero (WAL-1). A request's
        Idempotency-Key names the adjustment: a retry whose first attempt was posted (and then crashed before
        answering) answers that adjustment instead of posting a second one (SYS-4)."""
        principal.require(Role.ADMIN)
        adjustment_id = (
            keyed_id("adj", principal.user_id, user_id, str(data.amount), data.reason, request_key)
            if request_key
            else new_id("adj")
        )
        adjustment = Adjustment(
            id=adjustment_id,
            user_id=user_id,
            amount=data.amount,
            currency=DEFAULT_CURRENCY,
            reason=data.reason,
            admin_id=principal.user_id,
            created_at=to_iso(self.clock.now()),
        )
        wallet = accounts.buyer_wallet(user_id)
        debit, credit = (
            (accounts.PLATFORM_ADJUSTMENTS, wallet) if data.amount > 0 else (wallet, accounts.PLATFORM_ADJUSTMENTS)
        )
        movement_id = f"adjustment:{adjustment.id}"
        try:
            self.ledger.post(
                Movement(
                    id=movement_id,
                    type="adjustment",
                    entries=transfer(debit=debit, credit=credit, amount=abs(data.amount)),
                    currency=adjustment.currency,
                    reference={"adjustment_id": adjustment.id, "admin_id": principal.user_id, "reason": data.reason},
                    created_at=adjustment.created_at,
                )
            )
        except MovementAlreadyPosted:
            posted_at = self.ledger.posted_at(movement_id)
            if posted_at is None:
                raise
            return adjustment.model_copy(update={"created_at": posted_at})
        return adjustment

    def trial_balance(self, principal: Principal) -> TrialBalance:
        principal.require(Role.ADMIN)
        return self.ledger.trial_balance()


@cache
def ledger_service() -> LedgerService:
    return LedgerService(ledger(), SystemClock())
