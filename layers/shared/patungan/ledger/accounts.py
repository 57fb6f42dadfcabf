"""Ledger account names: the only place they are spelled (DESIGN "Ledger").

A buyer's wallet is credit-normal (the platform owes its owner what was credited to it); the other
accounts may run either way."""

from __future__ import annotations

PLATFORM_REVENUE = "platform:revenue"
PLATFORM_TOPUP = "platform:topup"
PLATFORM_ADJUSTMENTS = "platform:adjustments"
GATEWAY_CLEARING = "gateway:xendit:clearing"
GATEWAY_FEES = "gateway:xendit:fees"
# A buyer charged twice (a second invoice paid): the money is owed back until its refund completes.
DUPLICATE_CHARGES = "gateway:xendit:duplicate_charges"
# Money held out of a wallet for a withdrawal between its request and its payout's outcome (WAL-2).
WITHDRAWALS_HELD = "platform:withdrawals:held"
# Paid for a join that was rolled back (its payment failed, PAY-1): owed back until its refund completes.
ROLLED_BACK_CHARGES = "gateway:xendit:rolled_back_charges"

# What a buyer is owed back that could go neither to the payment channel nor to a wallet (a guest has none): held
# here, its balance in the trial balance, until support pays it out (issue 10 leftover 4).
REFUNDS_OWED = "platform:refunds:owed"

_WALLET_PREFIX, _WALLET_SUFFIX = "buyer:", ":wallet"
# A guest checkout's buyer (CHK-12): an owner of orders and payments, never of a wallet.
GUEST_PREFIX = "guest:"


def _named(template: str, owner_id: str) -> str:
    if not owner_id:
        raise ValueError("an account needs the id of its owner")
    return template.format(owner_id)


def buyer_wallet(user_id: str) -> str:
    if not has_wallet(user_id):
        raise ValueError(f"{user_id} is a guest: a guest has no wallet")
    return _named(_WALLET_PREFIX + "{}" + _WALLET_SUFFIX, user_id)


def has_wallet(user_id: str) -> bool:
    return not user_id.startswith(GUEST_PREFIX)


def session_escrow(session_id: str) -> str:
    return _named("escrow:session:{}", session_id)


def checkout_escrow(checkout_id: str) -> str:
    """What a retail checkout's buyer paid, held until its orders are delivered or refunded."""
    return _named("escrow:checkout:{}", checkout_id)


def factory_payable(factory_id: str) -> str:
    return _named("factory:{}:payable", factory_id)


def courier_receivable(courier: str) -> str:
    """Cash a courier collected on delivery (CHK-9) and owes the platform until it remits it."""
    return _named("courier:{}:cod_receivable", courier)


def seller_payable(seller_id: str) -> str:
    """What the platform owes a seller for its delivered orders (a COD collection, a completed paid order)."""
    return _named("seller:{}:payable", seller_id)


def is_wallet(account: str) -> bool:
    """A buyer's wallet: the accounts that may never go below zero (WAL-1)."""
    return account.startswith(_WALLET_PREFIX) and account.endswith(_WALLET_SUFFIX)
