"""Ledger movements the tests post: money into and out of a buyer's wallet."""

from __future__ import annotations

from patungan.ledger import accounts
from patungan.ledger.models import Movement, transfer

AT = "2026-11-21T10:00:00Z"


def wallet_credit(user_id: str, amount: int, movement_id: str, created_at: str = AT) -> Movement:
    """A refund paid into the wallet from money the gateway collected."""
    return Movement(
        id=movement_id,
        type="wallet_credit",
        entries=transfer(debit=accounts.GATEWAY_CLEARING, credit=accounts.buyer_wallet(user_id), amount=amount),
        reference={"user_id": user_id},
        created_at=created_at,
    )


def wallet_debit(user_id: str, amount: int, movement_id: str, created_at: str = AT) -> Movement:
    """A purchase paid from the wallet."""
    return Movement(
        id=movement_id,
        type="wallet_debit",
        entries=transfer(debit=accounts.buyer_wallet(user_id), credit=accounts.PLATFORM_REVENUE, amount=amount),
        created_at=created_at,
    )
