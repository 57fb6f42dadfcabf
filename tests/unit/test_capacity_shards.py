"""How a session's target is split over capacity shards and where a join takes its quantity (issue 8)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from patungan.groupbuy.models import CapacityShard
from patungan.groupbuy.repository import MAX_SHARDS, Reservation, plan_reservation, shard_count_for, shares_of


def shards(*remaining: int) -> list[CapacityShard]:
    return [CapacityShard(index=i, remaining=r) for i, r in enumerate(remaining)]


@given(st.integers(min_value=1, max_value=10**9))
def test_the_shares_sum_exactly_to_the_target_and_differ_by_a_unit_at_most(target):
    shares = shares_of(target, shard_count_for(target))
    assert sum(shares) == target
    assert max(shares) - min(shares) <= 1
    assert 1 <= len(shares) <= MAX_SHARDS


def test_a_flash_sale_session_gets_enough_shards_for_400_writes_a_second_each():
    # 2 000 paid joins a second write their shards 4 000 times: 16 shards take 250 each.
    assert shard_count_for(500) == MAX_SHARDS == 16
    assert shard_count_for(20) == 1


def test_a_join_takes_its_home_shard_else_the_next_with_room():
    assert plan_reservation(shards(5, 5, 5), 2, home=1) == Reservation(1, {})
    assert plan_reservation(shards(5, 1, 0), 2, home=1) == Reservation(0, {})


def test_when_no_shard_has_room_alone_the_others_top_up_the_fullest():
    assert plan_reservation(shards(3, 1, 4), 7, home=0) == Reservation(2, {0: 3})
    assert plan_reservation(shards(3, 1, 4), 8, home=0) == Reservation(2, {0: 3, 1: 1})


def test_more_than_all_shards_have_left_is_refused():
    assert plan_reservation(shards(3, 1, 4), 9, home=0) is None


@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=16), st.integers(1, 40), st.data())
def test_a_plan_never_takes_more_than_a_shard_has(remaining, quantity, data):
    home = data.draw(st.integers(0, len(remaining) - 1))
    plan = plan_reservation(shards(*remaining), quantity, home)
    if plan is None:
        assert sum(remaining) < quantity
        return
    assert all(0 < units <= remaining[donor] for donor, units in plan.moves.items())
    assert plan.shard not in plan.moves
    assert remaining[plan.shard] + sum(plan.moves.values()) >= quantity
