"""Deadline settlement (GB-9..GB-15, ORD-4, PAY-5, PAY-6): orders, tier refunds, purchase order, escrow
release, failure refunds, platform top-up; and a crash after any transaction, then a retry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest

from patungan.adapters.dynamodb import Transaction
from patungan.ledger import accounts
from tests.support.groupbuy import ADMIN, WAREHOUSE, buyer
from tests.support.lambdas import call_api

TIERS = [{"min_fill_percent": 50, "unit_price": 90_000}, {"min_fill_percent": 100, "unit_price": 80_000}]


class Crash(Exception):
    """The Lambda died here."""


@contextmanager
def crash_after(commits: int) -> Iterator[None]:
    """Let ``commits`` transactions through, then die at the next one, as a timed-out Lambda would."""
    original, done = Transaction.commit, []

    def commit(tx: Transaction) -> None:
        if len(done) >= commits:
            raise Crash(f"crashed before transaction {commits + 1}")
        original(tx)
        done.append(tx)

    with mock.patch.object(Transaction, "commit", commit):
        yield


def balance(world, account: str) -> int:
    rows = [a for a in world.trial_balance()["accounts"] if a["account"] == account]
    return rows[0]["credit"] - rows[0]["debit"] if rows else 0


def fill_in_four_tiers(world):
    """Four buyers of 5 units pay in turn: 100k, 100k, then 90k twice; full fill makes the final price 80k."""
    session = world.session(moq=10, target_quantity=20, tiers=TIERS)
    paid = []
    for n in range(1, 5):
        joined = world.joined(buyer(n), session["id"], quantity=5)
        world.pay(joined)
        paid.append(joined)
    return session, paid


def test_success_gives_orders_exact_tier_refunds_and_a_purchase_order(world):
    session, paid = fill_in_four_tiers(world)
    assert [p["unit_price"] for p in paid] == [100_000, 100_000, 90_000, 90_000]

    outcome = world.settle(session["id"])

    assert outcome == "succeed"
    state = world.get_session(session["id"])
    assert (state["status"], state["final_unit_price"]) == ("in_production", 80_000)
    assert [world.wallet(buyer(n)) for n in range(1, 5)] == [100_000, 100_000, 50_000, 50_000]
    for n in range(1, 5):
        [order] = world.orders(buyer(n))
        assert (order["session_id"], order["total"], order["status"]) == (session["id"], 400_000, "paid")
        assert order["lines"][0]["unit_price"] == 80_000
        [mine] = world.my_participations(buyer(n))
        assert (mine["status"], mine["order_id"]) == ("ordered", order["id"])
    assert mine["tier_refund_amount"] == 50_000
    [po] = call_api("ListPurchaseOrdersFunction", "GET", "/v1/purchase-orders", claims=world.staff).body["items"]
    assert (po["quantity"], po["status"], po["session_id"]) == (20, "open", session["id"])
    assert balance(world, accounts.session_escrow(session["id"])) == 20 * 80_000
    assert world.trial_balance()["balanced"] is True


def test_unpaid_joins_are_expired_at_the_deadline(world):
    session = world.session(moq=1)
    paid = world.joined(buyer(1), session["id"])
    world.pay(paid)
    unpaid = world.joined(buyer(2), session["id"], quantity=2)

    world.settle(session["id"])

    assert world.xendit._invoices[unpaid["payment"]["invoice_id"]].status == "EXPIRED"
    assert world.payment(unpaid)["status"] == "expired"
    assert [p["status"] for p in world.my_participations(buyer(2))] == ["expired"]
    assert world.orders(buyer(2)) == []


def test_delivery_releases_escrow_to_the_factory_once(world):
    session, _ = fill_in_four_tiers(world)
    world.settle(session["id"])
    [po] = call_api("ListPurchaseOrdersFunction", "GET", "/v1/purchase-orders", claims=WAREHOUSE).body["items"]

    def receive(quantity, who=WAREHOUSE):
        return call_api(
            "ReceivePurchaseOrderFunction",
            "POST",
            f"/v1/purchase-orders/{po['id']}/receive",
            resource="/v1/purchase-orders/{id}/receive",
            path_parameters={"id": po["id"]},
            body={"received_quantity": quantity},
            claims=who,
        )

    assert receive(5, who=buyer(1)).status == 403
    assert receive(15).body["status"] == "open"
    assert world.events("warehouse.po_received") == []
    assert receive(6).status == 422
    assert receive(5).body["status"] == "received"
    world.release_escrow(session["id"])
    world.release_escrow(session["id"])

    state = world.get_session(session["id"])
    assert (state["status"], state["escrow_release_status"]) == ("completed", "released")
    assert balance(world, accounts.factory_payable(world.factory_id)) == 1_600_000
    assert balance(world, accounts.session_escrow(session["id"])) == 0
    [released] = world.events("escrow.released")
    assert released["data"]["amount"] == 1_600_000
    assert world.trial_balance()["balanced"] is True


def test_failure_refunds_every_paid_buyer_in_full(world):
    session = world.session(moq=10)
    by_transfer = world.joined(buyer(1), session["id"], quantity=3)
    at_retail_outlet = world.joined(buyer(2), session["id"], quantity=2)
    unpaid = world.joined(buyer(3), session["id"])
    world.pay(by_transfer)
    world.pay(at_retail_outlet, method="RETAIL_OUTLET")  # this channel cannot refund: wallet instead

    assert world.settle(session["id"]) == "fail"
    world.refund_session(session["id"])
    world.refund_callback(world.refund_of(by_transfer))

    assert world.get_session(session["id"])["status"] == "failed"
    assert world.refund_of(by_transfer)["destination"] == "xendit"
    assert world.refund_of(at_retail_outlet)["destination"] == "wallet"
    assert world.wallet(buyer(2)) == 200_000
    assert world.wallet(buyer(1)) == 0
    assert {p["status"] for n in (1, 2) for p in world.my_participations(buyer(n))} == {"refunded"}
    assert world.payment(unpaid)["status"] == "expired"
    assert balance(world, accounts.session_escrow(session["id"])) == 0
    assert world.trial_balance()["balanced"] is True
    assert sorted(e["data"]["reason"] for e in world.events("payment.refund_requested")) == ["session_failed"] * 2


def test_a_refund_that_fails_at_xendit_goes_to_the_wallet(world):
    session = world.session(moq=10)
    joined = world.joined(buyer(1), session["id"], quantity=2)
    world.pay(joined)
    world.settle(session["id"])
    world.refund_session(session["id"])

    world.refund_callback(world.refund_of(joined), "refund.failed")
    world.refund_callback(world.refund_of(joined), "refund.failed")

    assert world.refund_of(joined)["destination"] == "wallet"
    assert world.wallet(buyer(1)) == 200_000
    assert world.payment(joined)["status"] == "refunded"
    assert world.trial_balance()["balanced"] is True


def test_cancelling_refunds_paid_buyers(world):
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    world.pay(joined)
    world.cancel(session["id"])

    world.refund_session(session["id"])

    assert world.refund_of(joined)["reason"] == "session_cancelled"
    assert world.settle(session["id"]) == "none"


def test_the_platform_tops_up_a_nearly_full_session_once(world):
    session = world.session(moq=10, target_quantity=20, tiers=TIERS)
    for n in range(1, 3):
        world.pay(world.joined(buyer(n), session["id"], quantity=4))

    first = world.step("SessionNearExpiryFunction", session_id=session["id"])
    second = world.step("SessionNearExpiryFunction", session_id=session["id"])
    world.settle(session["id"])

    assert (first["topped_up"], second["topped_up"]) == (2, 0)
    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["platform_topup_quantity"], state["participant_count"]) == (10, 2, 2)
    assert state["final_unit_price"] == 90_000
    assert all(not p.get("is_platform") for n in (1, 2) for p in world.my_participations(buyer(n)))
    assert len(call_api("ListOrdersFunction", "GET", "/v1/orders", claims=ADMIN).body["items"]) == 2
    [po] = call_api("ListPurchaseOrdersFunction", "GET", "/v1/purchase-orders", claims=ADMIN).body["items"]
    assert po["quantity"] == 10
    assert world.trial_balance()["balanced"] is True


def test_no_top_up_below_the_floor(world):
    session = world.session(moq=10)
    world.pay(world.joined(buyer(1), session["id"], quantity=5))

    assert world.step("SessionNearExpiryFunction", session_id=session["id"])["topped_up"] == 0
    assert world.settle(session["id"]) == "fail"


def ledger_snapshot(world) -> dict[str, int]:
    return {a["account"]: a["balance"] for a in world.trial_balance()["accounts"]}


@pytest.mark.parametrize("commits", [0, 1, 2, 3, 4, 5, 6])
def test_success_interrupted_after_any_transaction_then_retried_settles_once(world, commits):
    session, _ = fill_in_four_tiers(world)

    with crash_after(commits), pytest.raises(Crash):
        world.settle(session["id"])
    world.settle(session["id"])
    world.settle(session["id"])

    assert [world.wallet(buyer(n)) for n in range(1, 5)] == [100_000, 100_000, 50_000, 50_000]
    assert len(call_api("ListOrdersFunction", "GET", "/v1/orders", claims=ADMIN).body["items"]) == 4
    assert len(world.items("InventoryTable", "PO#")) == 1
    assert world.get_session(session["id"])["status"] == "in_production"
    assert world.trial_balance()["balanced"] is True


@pytest.mark.parametrize("commits", [0, 1, 2, 3, 4])
def test_release_interrupted_then_retried_releases_once(world, commits):
    """A crash before each release and before completing; the retry passes the empty-escrow check (defect 1)."""
    session, _ = fill_in_four_tiers(world)
    world.settle(session["id"])
    world.step("MarkSessionDeliveredFunction", session_id=session["id"])

    with crash_after(commits), pytest.raises(Crash):
        world.release_escrow(session["id"])
    assert world.get_session(session["id"])["status"] == "delivered"
    world.release_escrow(session["id"])

    assert balance(world, accounts.factory_payable(world.factory_id)) == 1_600_000
    assert balance(world, accounts.session_escrow(session["id"])) == 0
    assert world.get_session(session["id"])["status"] == "completed"
    [released] = world.events("escrow.released")
    assert released["data"]["amount"] == 1_600_000
    assert world.trial_balance()["balanced"] is True


@pytest.mark.parametrize("commits", [0, 1, 2])
def test_failure_refunds_interrupted_then_retried_refund_once(world, commits):
    session = world.session(moq=10)
    joined = [world.joined(buyer(n), session["id"], quantity=2) for n in (1, 2, 3)]
    for participation in joined:
        world.pay(participation, method="RETAIL_OUTLET")
    world.settle(session["id"])

    with crash_after(commits), pytest.raises(Crash):
        world.refund_session(session["id"])
    world.refund_session(session["id"])
    world.process_refunds()

    assert [world.wallet(buyer(n)) for n in (1, 2, 3)] == [200_000] * 3
    assert len(world.items("PaymentsTable", "REFUND#")) == 3
    assert balance(world, accounts.session_escrow(session["id"])) == 0
    assert world.trial_balance()["balanced"] is True
