"""Money allocation is exact (DESIGN "Money", ORD-2): the parts always sum to the whole."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patungan.core.money import allocate, percent_of


@given(
    total=st.integers(min_value=-(10**12), max_value=10**12),
    weights=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=50).filter(any),
)
def test_parts_always_sum_to_the_whole(total, weights):
    parts = allocate(total, weights)

    assert sum(parts) == total
    assert len(parts) == len(weights)


@given(
    total=st.integers(min_value=0, max_value=10**12),
    weights=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=30),
)
def test_each_part_is_within_one_unit_of_its_exact_share(total, weights):
    parts = allocate(total, weights)

    for part, weight in zip(parts, weights, strict=True):
        exact = total * weight / sum(weights)
        assert abs(part - exact) < 1


def test_leftover_units_go_to_the_largest_remainders():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(10_000, [3, 7]) == [3000, 7000]
    assert allocate(5, [1, 2]) == [2, 3]
    assert allocate(0, [1, 2]) == [0, 0]


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_invalid_weights_are_refused(weights):
    with pytest.raises(ValueError):
        allocate(100, weights)


def test_percent_of_rounds_half_up_in_integers():
    assert percent_of(150_000, 11) == 16_500
    assert percent_of(5, 50) == 3
    assert percent_of(4, 50) == 2
