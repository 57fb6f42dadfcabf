"""Money is an integer number of the currency's minor units (IDR has none), never a float."""

from __future__ import annotations

DEFAULT_CURRENCY = "IDR"


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` so that the parts sum exactly to ``total``.

    Largest remainder: every part gets its floor share, then the units left over go one each
    to the parts with the largest fractional remainders (ties: earlier part first).
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("weights must not all be zero")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    floors = [magnitude * w // weight_sum for w in weights]
    remainders = [magnitude * w % weight_sum for w in weights]
    leftover = magnitude - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:leftover]:
        floors[i] += 1
    return [sign * part for part in floors]


def percent_of(amount: int, percent: int) -> int:
    """``percent`` % of ``amount``, rounded half up, in integer arithmetic."""
    return (amount * percent * 2 + 100) // 200
