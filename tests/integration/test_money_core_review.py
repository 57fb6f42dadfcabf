"""A hostile review of the merged money core (issue 6): each test is a way found to block, lose or mis-book
money between two steps of the group-buy lifecycle, made deterministic by running the other writer exactly
there; each failed before its fix."""

from __future__ import annotations

from collections.abc import Callable
from unittest import mock

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
