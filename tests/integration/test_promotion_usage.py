"""Coupon usage under concurrency and failure (PRM-2, ORD-3, CHK-12; issue 10): the usage writes ``redeem`` adds to
the caller's transaction (the one creating the orders) let a limit of one be used once, whoever races; giving a
use back undoes it once. Real threads on moto, each DynamoDB call serialised (moto's transactions are not
thread-safe) and everything between them free to interleave: every buyer reads the promotion before any commits."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from unittest import mock

import pytest
from moto.dynamodb.responses import DynamoHandler

from emulator.moto_patches import _serialised
from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.checkout.promotions import CouponNotEligible, PromotionInput
from patungan.composition import promotion_service
from patungan.core.clock import FixedClock
from patungan.core.config import get_settings
from patungan.core.errors import Conflict, DomainError

BUYERS = 20


def create(code: str, **terms) -> None:
    promotion_service().create(PromotionInput(code=code, kind="fixed", target="items", value=5000, **terms))


def redeem(code: str, customer_id: str | None, checkout_id: str, *, before_commit=None) -> str:
    """What the confirm saga does: the coupon's usage in the transaction that creates the checkout's orders."""
    tx = Transaction()
    tx.put(DynamoTable(get_settings().orders_table), {"pk": f"ORDER#{checkout_id}", "sk": "META"})
    try:
        promotion_service().redeem(tx, [code], customer_id, checkout_id)
        if before_commit:
            before_commit()
        tx.commit()
    except DomainError as refusal:
        return refusal.code
    return "redeemed"


def orders_written() -> int:
    return len(list(DynamoTable(get_settings().orders_table).scan_all()))


def concurrently(work, count: int) -> list:
    with (
        mock.patch.object(DynamoHandler, "call_action", _serialised(DynamoHandler.call_action)),
        ThreadPoolExecutor(max_workers=count) as pool,
    ):
        return list(pool.map(work, range(count)))


def test_twenty_buyers_redeeming_a_single_use_coupon_at_once_use_it_once(aws):
    """PRM-2 (issue 10 test): all twenty read used_count 0 before any commits; one order is created with the
    coupon, nineteen transactions are cancelled whole (no order without its coupon use, none with a second)."""
    create("SEKALI", usage_limit=1)
    all_read = threading.Barrier(BUYERS)

    outcomes = concurrently(lambda n: redeem("SEKALI", f"buyer-{n}", f"chk_{n}", before_commit=all_read.wait), BUYERS)

    assert sorted(outcomes) == ["coupon_not_eligible"] * (BUYERS - 1) + ["redeemed"]
    assert promotion_service().get("SEKALI").used_count == 1
    assert orders_written() == 1


def test_one_customer_racing_checkouts_uses_a_once_per_customer_coupon_once(aws):
    create("PERTAMA", per_customer_limit=1)
    all_read = threading.Barrier(5)

    outcomes = concurrently(lambda n: redeem("PERTAMA", "buyer-1", f"chk_{n}", before_commit=all_read.wait), 5)

    assert sorted(outcomes) == ["coupon_not_eligible"] * 4 + ["redeemed"]
    assert redeem("PERTAMA", "buyer-2", "chk_other") == "redeemed"  # another customer still may
    assert promotion_service().get("PERTAMA").used_count == 2


def test_a_guest_cannot_redeem_a_coupon_that_needs_a_customer(aws):
    """CHK-12: refused (not eligible), nothing crashes, nothing written."""
    create("MEMBER", per_customer_limit=3)

    assert redeem("MEMBER", None, "chk_guest") == "coupon_not_eligible"
    assert orders_written() == 0


def test_a_redeem_retried_after_it_committed_is_refused_as_already_redeemed_and_counts_once(aws):
    """A saga step crashing after its commit and run again: the retry's transaction is cancelled, recognisably."""
    create("ULANG", usage_limit=10)
    assert redeem("ULANG", "buyer-1", "chk_1") == "redeemed"

    with pytest.raises(Conflict) as retried:
        tx = Transaction()
        promotion_service().redeem(tx, ["ULANG"], "buyer-1", "chk_1")
        tx.commit()

    assert retried.value.code == "coupon_already_redeemed"
    assert promotion_service().is_redeemed("ULANG", "chk_1")
    assert promotion_service().get("ULANG").used_count == 1


def test_a_coupon_whose_window_closed_is_not_redeemed(aws):
    past = datetime.now(UTC) - timedelta(days=1)
    create("LEWAT", starts_at=past - timedelta(days=1), ends_at=past)

    assert redeem("LEWAT", "buyer-1", "chk_1") == "coupon_not_eligible"
    assert promotion_service().get("LEWAT").used_count == 0


def test_giving_a_use_back_frees_it_once_however_often_it_is_asked(aws):
    """ORD-3: an expired checkout gives its coupon back; a second (or concurrent) give-back changes nothing more."""
    create("KEMBALI", usage_limit=1, per_customer_limit=1)
    assert redeem("KEMBALI", "buyer-1", "chk_1") == "redeemed"

    def give_back(_: int) -> str:
        tx = Transaction()
        promotion_service().give_back(tx, ["KEMBALI"], "chk_1")
        try:
            tx.commit()
        except DomainError as refused:
            return refused.code
        return "given back"

    outcomes = concurrently(give_back, 3)

    assert "given back" in outcomes
    assert give_back(0) == "given back"  # nothing left to give back: adds nothing, commits nothing
    promotion = promotion_service().get("KEMBALI")
    assert promotion.used_count == 0
    assert not promotion_service().is_redeemed("KEMBALI", "chk_1")
    assert redeem("KEMBALI", "buyer-1", "chk_2") == "redeemed"  # the customer's use is free again too
    with pytest.raises(CouponNotEligible):
        promotion_service().usable("KEMBALI", "buyer-3")  # and the single use taken again


def test_a_coupons_window_in_jakarta_time_opens_and_closes_on_the_second_for_cart_and_redeem_alike(aws, monkeypatch):
    """PRM-1 window edges: created with Jakarta times (+07:00), stored in UTC; usable and redeemable from starts_at
    (inclusive) until ends_at (exclusive), the cart's check and the confirm's conditional write agreeing at each
    edge."""
    jakarta = timezone(timedelta(hours=7))
    starts, ends = datetime(2026, 12, 1, tzinfo=jakarta), datetime(2026, 12, 2, tzinfo=jakarta)
    create("HARBOLNAS", starts_at=starts, ends_at=ends)
    assert promotion_service().get("harbolnas").starts_at == "2026-11-30T17:00:00Z"
    clock = FixedClock(starts - timedelta(seconds=2))
    monkeypatch.setattr(promotion_service(), "clock", clock)

    def usable() -> bool:
        try:
            promotion_service().usable("harbolnas", "buyer-1")
        except CouponNotEligible:
            return False
        return True

    outcomes = []
    for step in (1, 1, 24 * 3600 - 1, 1):  # one second before the start, the start, the last second, the end
        clock.advance(timedelta(seconds=step))
        outcomes.append((usable(), redeem("HARBOLNAS", "buyer-1", f"chk_{clock.now().timestamp():.0f}")))

    assert outcomes == [
        (False, "coupon_not_eligible"),
        (True, "redeemed"),
        (True, "redeemed"),
        (False, "coupon_not_eligible"),
    ]
    assert promotion_service().get("HARBOLNAS").used_count == 2
