"""Ledger movements the tests post (money into and out of a buyer's wallet), and the admin adjustment route."""

from __future__ import annotations

from patungan.ledger import accounts
from patungan.ledger.models import Movement, transfer
from tests.support.lambdas import ApiResponse, call_api

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


def adjust_wallet(user_id: str, body: dict, who: dict[str, str], headers: dict[str, str] | None = None) -> ApiResponse:
    """POST /v1/admin/wallets/{user_id}/adjustments (WAL-3)."""
    return call_api(
        "CreateWalletAdjustmentFunction",
        "POST",
        f"/v1/admin/wallets/{user_id}/adjustments",
        resource="/v1/admin/wallets/{user_id}/adjustments",
        path_parameters={"user_id": user_id},
        body=body,
        claims=who,
        headers=headers,
    )
