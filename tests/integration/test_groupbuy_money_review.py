"""A hostile review of the merged money core (issue 6): each test is a way found to block, lose or mis-book
money between two steps of the group-buy lifecycle, made deterministic by running the other writer exactly
there; each failed before its fix."""

from __future__ import annotations

from collections.abc import Callable
from unittest import mock

import pytest

from patungan.groupbuy.settlement import SettlementService
from patungan.ledger import accounts
from tests.integration.test_groupbuy_settlement import balance
from tests.integration.test_groupbuy_settlement_invariants import receive_all
from tests.support.groupbuy import buyer


def after_the_walk(write: Callable[[], None]):
    """Patch the settlement's walk over a session's participations so that ``write`` runs once, right after
    the last participation was read (before whatever the step reads next)."""
    walk, fired = SettlementService._participations, []

    def walking(self, session_id):
        yield from walk(self, session_id)
        if not fired:
            fired.append(True)
            write()

    return mock.patch.object(SettlementService, "_participations", walking), fired


def delivered_with_a_late_payment(world) -> tuple[dict, dict]:
    """A session that succeeded, was delivered and released, while a late payment's refund is still owed."""
    session = world.session(moq=1)
    world.pay(world.joined(buyer(1), session["id"], quantity=2))
    late = world.joined(buyer(2), session["id"])
    world.step("ClaimSessionFunction", session_id=session["id"])
    world.pay(late, method="RETAIL_OUTLET")  # captured after the claim: its refund is requested, not sent yet
    world._pages("SettleSessionPageFunction", session["id"])
    world.step("FinalizeSessionSuccessFunction", session_id=session["id"])
    world.step("RaisePurchaseOrderFunction", session_id=session["id"])
    receive_all(world)
    world.step("MarkSessionDeliveredFunction", session_id=session["id"])
    world._pages("ReleaseEscrowPageFunction", session["id"])
    return session, late


def test_a_late_refund_completing_while_completion_checks_escrow_does_not_strand_the_session(world):
    """GB-14, defect 1's check: the refund worker sends the late payment back exactly between the check's walk
    (which counted it as still owed) and its reading of the escrow balance (which no longer holds it). The
    check took the two readings for a leak and the session went to its stuck state with nothing wrong."""
    session, late = delivered_with_a_late_payment(world)
    racing, fired = after_the_walk(world.process_refunds)

    with racing:
        world.step("CompleteEscrowReleaseFunction", session_id=session["id"])

    assert fired
    assert world.refund_of(late)["status"] == "succeeded"
    assert world.get_session(session["id"])["status"] == "completed"
    assert balance(world, accounts.session_escrow(session["id"])) == 0
    [released] = world.events("escrow.released")
    assert released["data"]["amount"] == 200_000


# ---- refund callbacks that contradict each other (PAY-2, PAY-3)
@pytest.mark.parametrize(
    ("first", "then"),
    [("refund.failed", "refund.succeeded"), ("refund.succeeded", "refund.failed")],
    ids=["failed-then-succeeded", "succeeded-then-failed"],
)
def test_a_refund_callback_contradicting_how_the_refund_was_completed_is_quarantined_not_acknowledged(
    world, first, then
):
    """The first callback completed the refund (refund.failed: to the wallet; refund.succeeded: at Xendit).
    A later callback for the same refund saying the opposite was answered ``already_refunded`` and dropped
    without a trace: yet if it is true the buyer was paid twice (wallet and card) or not at all. It is
    quarantined and alarmed; the books keep the first completion, exactly once."""
    session = world.session()
    joined = world.joined(buyer(1), session["id"], quantity=2)
    world.pay(joined)
    world.leave(buyer(1), session["id"])
    world.process_refunds()
    sent = world.refund_of(joined)
    assert world.refund_callback(sent, first).status == 200

    response = world.refund_callback(sent, then)

    assert response.body == {"status": "quarantined"}
    [item] = world.quarantined()
    assert (item["reason"], item["kind"], item["refund_id"]) == ("contradicts_completed_refund", "refund", sent["id"])
    assert world.refund_callback(sent, then).body == {"status": "duplicate"}
    assert world.refund_callback(sent, first).body == {"status": "already_refunded"}
    refund = world.refund_of(joined)
    assert (refund["status"], refund["destination"]) == (
        "succeeded",
        "wallet" if first == "refund.failed" else "xendit",
    )
    assert world.wallet(buyer(1)) == (200_000 if first == "refund.failed" else 0)
    assert len([m for m in world.items("LedgerTable", "MOVEMENT#") if m["type"] == "refund"]) == 1


# ---- a payment Xendit holds is never left waiting on a callback that may never come (GB-10, GB-11, PAY-3)
def test_the_expiry_worker_applies_a_payment_xendit_holds_instead_of_dropping_it(world):
    """The buyer paid just before the worker came to expire their invoice, and Xendit's PAID callback is lost
    (its retries spent while our endpoint failed). The worker read Xendit's answer (already paid) and
    dropped it: the buyer kept ``pending_payment`` with no order and no refund while Xendit held their money,
    and the session completed without a trace of it. The worker applies Xendit's own record (read with our
    key) as the callback would, as a late payment that goes back; the callback, should it come, is a
    duplicate."""
    session = world.session(moq=1)
    world.pay(world.joined(buyer(1), session["id"]))
    late = world.joined(buyer(2), session["id"])
    world.step("ClaimSessionFunction", session_id=session["id"])
    world._pages("SettleSessionPageFunction", session["id"])  # queues the expiry of the unpaid invoice
    world.pay_at_xendit(late)  # the buyer pays before the worker runs; the callback never arrives

    assert world.expire_unpaid_invoices() == {"batchItemFailures": []}

    assert world.payment(late)["status"] == "paid"
    refund = world.refund_of(late)
    assert (refund["reason"], refund["amount"]) == ("late_payment", 100_000)
    assert [p["status"] for p in world.my_participations(buyer(2))] == ["expired"]
    assert balance(world, accounts.session_escrow(session["id"])) == 100_000 + 100_000
    assert world.invoice_callback(late, "PAID").body == {"status": "duplicate"}
    world.process_refunds()
    assert len(world.items("PaymentsTable", "REFUND#")) == 1
