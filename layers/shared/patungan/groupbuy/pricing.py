"""Tier arithmetic (GB-1, GB-4, GB-10), in integers: fill is compared as paid * 100 ≥ percent * target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TierLike(Protocol):
    min_fill_percent: int
    unit_price: int


def unit_price_at(
    base_price: int,
    tiers: Sequence[TierLike],
    paid_quantity: int,
    target_quantity: int,
    locked_fill_percent: int | None = None,
) -> int:
    """The price in force: the tier with the highest ``min_fill_percent`` ≤ fill (base price below the first).
    A tier paid fill once reached (``locked_fill_percent``) stays in force when buyers leave (defect 3)."""
    price = base_price
    for tier in sorted(tiers, key=lambda t: t.min_fill_percent):
        reached = paid_quantity * 100 >= tier.min_fill_percent * target_quantity
        if reached or (locked_fill_percent is not None and tier.min_fill_percent <= locked_fill_percent):
            price = tier.unit_price
    return price


def highest_tier_reached(tiers: Sequence[TierLike], paid_quantity: int, target_quantity: int) -> int | None:
    """The ``min_fill_percent`` of the cheapest tier ``paid_quantity`` reaches (None below the first tier)."""
    reached = [t.min_fill_percent for t in tiers if paid_quantity * 100 >= t.min_fill_percent * target_quantity]
    return max(reached, default=None)


def fill_percent(paid_quantity: int, target_quantity: int) -> float:
    return round(paid_quantity * 100 / target_quantity, 2)


def tier_refund(paid_unit_price: int, final_unit_price: int, quantity: int) -> int:
    """What a buyer who paid a higher tier gets back when the session closes cheaper (never negative)."""
    return max(paid_unit_price - final_unit_price, 0) * quantity
