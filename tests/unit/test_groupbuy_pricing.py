"""The tier paid fill reached stays in force (issue 6 defect 3, PAY-7); MOQ is reached once (GB-6, defect 9)."""

from __future__ import annotations

from patungan.groupbuy.models import Session, Tier

TIERS = [Tier(min_fill_percent=50, unit_price=90_000), Tier(min_fill_percent=100, unit_price=80_000)]


def session(**overrides) -> Session:
    fields = {
        "id": "ses_1",
        "product_id": "prd_1",
        "factory_id": "fac_1",
        "product_name": "Kopi",
        "category": "food",
        "status": "active",
        "moq": 10,
        "target_quantity": 20,
        "base_price": 100_000,
        "currency": "IDR",
        "tiers": TIERS,
        "starts_at": "2026-11-30T00:00:00Z",
        "deadline": "2026-12-02T00:00:00Z",
        "max_per_buyer": 5,
        "payment_window_seconds": 3600,
        "allow_leave_after_payment": True,
        "created_by": "staff-1",
        "created_at": "2026-11-30T00:00:00Z",
        "updated_at": "2026-11-30T00:00:00Z",
    }
    return Session(**{**fields, **overrides})


def test_paid_fill_locks_the_cheapest_tier_it_reached_and_never_lowers_it():
    reached = session(paid_quantity=20).fill_changes("2026-11-30T01:00:00Z")
    assert reached["price_locked_at_fill_percent"] == 100

    after_leaving = session(paid_quantity=9, price_locked_at_fill_percent=100)
    assert after_leaving.current_unit_price == 80_000
    assert "price_locked_at_fill_percent" not in after_leaving.fill_changes("2026-11-30T02:00:00Z")
    assert "price_locked_at_fill_percent" not in session(
        paid_quantity=20, price_locked_at_fill_percent=100
    ).fill_changes("2026-11-30T02:00:00Z")


def test_below_the_first_tier_nothing_is_locked():
    assert session(paid_quantity=9).fill_changes("2026-11-30T01:00:00Z") == {}
    assert session(paid_quantity=9).current_unit_price == 100_000


def test_moq_is_reached_once():
    first = session(paid_quantity=10).fill_changes("2026-11-30T01:00:00Z")
    assert (first["status"], first["moq_reached_at"]) == ("moq_reached", "2026-11-30T01:00:00Z")

    again = session(status="moq_reached", paid_quantity=10, moq_reached_at="2026-11-30T01:00:00Z")
    assert "moq_reached_at" not in again.fill_changes("2026-11-30T03:00:00Z")


def test_a_closed_session_is_raised_by_its_claim_not_after():
    assert session(status="closing", paid_quantity=20).fill_changes("2026-11-30T01:00:00Z") == {}
