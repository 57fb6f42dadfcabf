"""Ledger completeness (issue 7; PAY-1, PAY-3, PAY-4, PAY-5, GB-5).

Xendit keeps its fee from every charge: the PAID callback's ``fees`` are booked (gateway fees <- clearing)
once, in the capture's own transaction, and the repair path that applies Xendit's own record books the same
fee. A join whose invoice create failed is rolled back only when Xendit holds no invoice for it; its payment is
kept as ``failed``, so that a charge on an invoice made after all is booked and refunded, never dropped,
never counted as a join."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.xendit import XenditGateway
from patungan.composition import payment_service
from patungan.core.errors import DependencyUnavailable
from patungan.ledger import accounts
from patungan.reconciliation.checkers import PaymentChecker
from patungan.reconciliation.models import Mismatch
from tests.integration.test_xendit_webhook_distrust import Crash, assert_nothing_captured, balance, quarantined
from tests.support.groupbuy import buyer

AMOUNT = 100_000  # one unit at the world's base price
FEES = {"BANK_TRANSFER": 4_000 + 440, "QR_CODE": 700 + 77, "EWALLET": 1_500 + 165}  # fee + 11 % VAT on it


def xendits_callback(world, participation: dict):
    """Deliver the PAID callback exactly as the local Xendit would send it for the participation's invoice."""
    body = world.xendit._invoices[participation["payment"]["invoice_id"]].callback()
    return world.webhook("XenditInvoiceWebhook", json.dumps(body).encode())


def apply_xendits_record(world, participation: dict) -> str:
    """The repair path (reconciliation, the invoice expiry worker): Xendit's own record of the invoice."""
    service = payment_service()
    return service.apply_paid_invoice(service.payment(participation["payment"]["id"]))


def movements_with_fees(world) -> list[dict]:
    return [
        m
        for m in world.items("LedgerTable", "MOVEMENT#")
        if any(e["account"] == accounts.GATEWAY_FEES for e in m["entries"])
    ]


def assert_fee_booked_once(world, fee: int, holding_account: str) -> None:
    """One movement, the charge's own: the amount paid into ``holding_account``, the fee Xendit kept."""
    [movement] = movements_with_fees(world)
    assert movement["type"] == "capture"
    assert sorted((e["account"], e.get("debit", 0), e.get("credit", 0)) for e in movement["entries"]) == sorted(
        [
            (accounts.GATEWAY_CLEARING, AMOUNT, 0),
            (holding_account, 0, AMOUNT),
            (accounts.GATEWAY_FEES, fee, 0),
            (accounts.GATEWAY_CLEARING, 0, fee),
        ]
    )
    assert balance(world, accounts.GATEWAY_FEES) == -fee  # debit: money Xendit kept
    assert world.trial_balance()["balanced"] is True


# ---- the gateway's fee (PAY-5)
@pytest.mark.parametrize(("method", "fee"), FEES.items())
def test_xendits_fee_is_booked_once_with_the_capture_even_when_the_paid_comes_twice(world, method, fee):
    session = world.session(moq=1)
    joined = world.joined(buyer(1), session["id"])
    world.pay_at_xendit(joined, method)

    assert xendits_callback(world, joined).body == {"status": "paid"}
    assert xendits_callback(world, joined).body == {"status": "duplicate"}

    assert_fee_booked_once(world, fee, accounts.session_escrow(session["id"]))
    # Clearing received the amount paid less what Xendit kept; the buyer's escrow holds all they paid.
    assert balance(world, accounts.GATEWAY_CLEARING) == -(AMOUNT - fee)
    assert balance(world, accounts.session_escrow(session["id"])) == AMOUNT
    assert world.payment(joined)["payment_method"] == method


@pytest.mark.parametrize("crash", ["before", "after"])
def test_the_fee_commits_with_the_capture_or_not_at_all(world, crash):
    """A crash at the capture's commit: before it, neither the capture nor the fee exists; after it, both do.
    Xendit's retry then books nothing twice (PAY-3, PAY-5)."""
    session = world.session(moq=1)
    joined = world.joined(buyer(1), session["id"])
    world.pay_at_xendit(joined)
    original = Transaction.commit

    def crash_at_commit(tx):
        if crash == "after":
            original(tx)
        raise Crash(f"died {crash} the commit")

    with mock.patch.object(Transaction, "commit", crash_at_commit):
        assert xendits_callback(world, joined).status == 500

    if crash == "before":
        assert_nothing_captured(world, session["id"], joined)
        assert movements_with_fees(world) == []
        assert balance(world, accounts.GATEWAY_FEES) == 0
        assert xendits_callback(world, joined).body == {"status": "paid"}
    else:
        assert world.payment(joined)["status"] == "paid"
        assert len(movements_with_fees(world)) == 1
        assert xendits_callback(world, joined).body == {"status": "duplicate"}
    assert_fee_booked_once(world, FEES["BANK_TRANSFER"], accounts.session_escrow(session["id"]))
    assert balance(world, accounts.session_escrow(session["id"])) == AMOUNT


def test_the_repair_path_books_the_fee_xendits_record_shows_and_the_late_callback_is_a_duplicate(world):
    session = world.session(moq=1)
    joined = world.joined(buyer(1), session["id"])
    world.pay_at_xendit(joined, "QR_CODE")  # its callback never arrives

    assert apply_xendits_record(world, joined) == "paid"

    payment = world.payment(joined)
    assert (payment["status"], payment["payment_method"]) == ("paid", "QR_CODE")
    paid_at_xendit = world.xendit._invoices[joined["payment"]["invoice_id"]].callback()["paid_at"]
    assert payment["paid_at"][:19] == paid_at_xendit[:19]  # when the buyer paid, not when we repaired it
    assert_fee_booked_once(world, FEES["QR_CODE"], accounts.session_escrow(session["id"]))
    assert xendits_callback(world, joined).body == {"status": "duplicate"}
    assert apply_xendits_record(world, joined) == "duplicate"
    assert_fee_booked_once(world, FEES["QR_CODE"], accounts.session_escrow(session["id"]))
    assert world.get_session(session["id"])["paid_quantity"] == 1


@pytest.mark.parametrize(
    "fees",
    [
        [{"type": "ADMIN", "value": -4_000}],
        [{"type": "ADMIN", "value": 4_000.5}],
        [{"type": "ADMIN"}],
        [{"type": "ADMIN", "value": "4000"}],
        [{"type": "ADMIN", "value": AMOUNT + 1}],
    ],
    ids=["negative", "fraction", "no-value", "text", "more-than-paid"],
)
def test_a_paid_callback_with_fees_that_cannot_be_booked_is_quarantined_not_a_500(world, fees):
    session = world.session(moq=1)
    joined = world.joined(buyer(1), session["id"])
    world.pay_at_xendit(joined)

    response = world.invoice_callback(joined, "PAID", fees=fees)

    assert (response.status, response.body) == (200, {"status": "quarantined"})
    assert quarantined(world, "malformed_fees")["payment_id"] == joined["payment"]["id"]
    assert_nothing_captured(world, session["id"], joined)
    assert movements_with_fees(world) == []
    # The genuine callback still gets through, with its fee.
    assert xendits_callback(world, joined).body == {"status": "paid"}
    assert_fee_booked_once(world, FEES["BANK_TRANSFER"], accounts.session_escrow(session["id"]))


def test_fees_that_are_not_a_list_are_a_422_and_change_nothing(world):
    session = world.session(moq=1)
    joined = world.joined(buyer(1), session["id"])
    world.pay_at_xendit(joined)

    response = world.invoice_callback(joined, "PAID", fees="4440")

    assert response.status == 422
    assert response.body["error"]["code"] == "validation_error"
    assert_nothing_captured(world, session["id"], joined)


# ---- invoice creation idempotent end to end (PAY-1, GB-5)
def created_but_answer_lost(original):
    def create_invoice(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise DependencyUnavailable("the payment provider did not answer; retry shortly")

    return create_invoice


def test_a_join_whose_invoice_create_timed_out_but_exists_at_xendit_is_attached_not_rolled_back(world):
    session = world.session(moq=1)

    with mock.patch.object(XenditGateway, "create_invoice", created_but_answer_lost(XenditGateway.create_invoice)):
        response = world.join(buyer(1), session["id"])

    assert response.status == 201, response.body
    [invoice] = world.invoices_at_xendit(session["id"])
    assert (response.body["payment"]["invoice_id"], response.body["payment"]["invoice_url"]) == (
        invoice.id,
        invoice.invoice_url,
    )
    assert world.payment(response.body)["status"] == "pending"
    assert world.get_session(session["id"])["reserved_quantity"] == 1
    assert world.events("payment.failed") == []
    assert len(world.events("groupbuy.participant.joined")) == 1
    assert world.pay(response.body).body == {"status": "paid"}
    assert world.get_session(session["id"])["paid_quantity"] == 1


def joined_then_rolled_back(world, session_id: str) -> dict:
    """A join whose invoice Xendit made although the create's answer was lost, while Xendit could not even be
    asked about it: the join is rolled back (GB-5) and its payment kept as failed. Returns the participation
    as the buyer would have seen it, with the invoice Xendit holds."""
    with (
        mock.patch.object(XenditGateway, "create_invoice", created_but_answer_lost(XenditGateway.create_invoice)),
        mock.patch.object(XenditGateway, "get_invoice_by_external_id", side_effect=DependencyUnavailable("down")),
    ):
        assert world.join(buyer(1), session_id).status == 503
    [payment] = world.items("PaymentsTable", "PAYMENT#")
    assert (payment["status"], payment.get("invoice_id")) == ("failed", None)
    assert world.my_participations(buyer(1)) == []
    [invoice] = world.invoices_at_xendit(session_id)
    return {"payment": {**payment, "invoice_id": invoice.id}}


def assert_booked_as_owed_back_once(world, session_id: str, rolled_back: dict) -> dict:
    [refund] = world.items("PaymentsTable", "REFUND#")
    assert (refund["reason"], refund["invoice_id"], refund["amount"]) == (
        "rolled_back",
        rolled_back["payment"]["invoice_id"],
        AMOUNT,
    )
    assert balance(world, accounts.ROLLED_BACK_CHARGES) == AMOUNT
    assert balance(world, accounts.session_escrow(session_id)) == 0
    assert_fee_booked_once(world, FEES["BANK_TRANSFER"], accounts.ROLLED_BACK_CHARGES)
    assert world.payment(rolled_back)["status"] == "failed"  # never a join again
    assert world.events("payment.completed") == []
    state = world.get_session(session_id)
    assert (state["paid_quantity"], state["participant_count"]) == (0, 0)
    assert world.my_participations(buyer(1)) == []
    return refund


def test_a_paid_for_a_rolled_back_join_is_booked_and_refunded_once_never_counted(world):
    """Issue 7: a callback for a payment we rolled back was dropped with the money kept at Xendit."""
    session = world.session(moq=1)
    rolled_back = joined_then_rolled_back(world, session["id"])
    world.pay_at_xendit(rolled_back)  # the buyer paid the invoice after all

    assert xendits_callback(world, rolled_back).body == {"status": "refunding_rolled_back"}
    assert xendits_callback(world, rolled_back).body == {"status": "duplicate"}
    assert apply_xendits_record(world, rolled_back) == "duplicate"

    refund = assert_booked_as_owed_back_once(world, session["id"], rolled_back)
    world.process_refunds()
    at_xendit = [r for r in world.xendit._refunds.values() if r.reference_id == refund["id"]]
    assert [(r.invoice.id, r.amount, r.reason) for r in at_xendit] == [
        (rolled_back["payment"]["invoice_id"], AMOUNT, "CANCELLATION")
    ]
    assert world.refund_callback(world.items("PaymentsTable", "REFUND#")[0]).body == {"status": "refunded_to_xendit"}
    assert balance(world, accounts.ROLLED_BACK_CHARGES) == 0
    assert world.payment(rolled_back)["status"] == "failed"
    assert world.quarantined() == []


def test_a_rolled_back_join_paid_at_xendit_is_refunded_once_through_the_repair_path(world):
    session = world.session(moq=1)
    rolled_back = joined_then_rolled_back(world, session["id"])
    world.pay_at_xendit(rolled_back)  # its callback never arrives

    assert apply_xendits_record(world, rolled_back) == "refunding_rolled_back"
    assert apply_xendits_record(world, rolled_back) == "duplicate"
    assert xendits_callback(world, rolled_back).body == {"status": "duplicate"}

    assert_booked_as_owed_back_once(world, session["id"], rolled_back)


def test_the_callback_racing_the_repair_path_for_a_rolled_back_join_refunds_once(world):
    """A race made deterministic: Xendit's PAID lands between the repair path's read and its commit. The repair
    then finds its inbox key taken: one booking, one refund, whichever came first (PAY-3)."""
    session = world.session(moq=1)
    rolled_back = joined_then_rolled_back(world, session["id"])
    world.pay_at_xendit(rolled_back)
    original, commits = Transaction.commit, []

    def the_callback_lands_first(tx):
        commits.append(tx)
        if len(commits) == 1:
            assert xendits_callback(world, rolled_back).body == {"status": "refunding_rolled_back"}
        original(tx)

    with mock.patch.object(Transaction, "commit", the_callback_lands_first):
        assert apply_xendits_record(world, rolled_back) == "duplicate"

    assert_booked_as_owed_back_once(world, session["id"], rolled_back)


def test_reconciliation_refunds_a_rolled_back_join_paid_at_xendit_whose_callback_never_came(world):
    """PAY-8, PAY-1 (issue 7 review): the buyer paid the invoice of a rolled-back join and the PAID was never
    delivered. Reconciliation's PaymentChecker must not pass over the failed payment: the charge is booked as
    owed back and refunded once, reported as repaired; the next run and the late callback change nothing."""
    session = world.session(moq=1)
    rolled_back = joined_then_rolled_back(world, session["id"])
    world.pay_at_xendit(rolled_back)  # its callback never arrives
    checker = PaymentChecker(payment_service())
    notes: list[Mismatch] = []

    def check() -> Mismatch | None:
        [item] = world.items("PaymentsTable", "PAYMENT#")
        return checker.check(item, notes.append)

    mismatch = check()

    assert mismatch is not None
    assert (mismatch.kind, mismatch.resolution) == ("paid_at_gateway_pending_here", "repaired")
    assert (mismatch.ours["status"], mismatch.theirs["status"]) == ("failed", "paid")
    assert notes == [mismatch]  # noted before the repair, so a crash right after it still reports it
    assert_booked_as_owed_back_once(world, session["id"], rolled_back)
    assert check() is None  # the next run finds nothing
    assert xendits_callback(world, rolled_back).body == {"status": "duplicate"}
    assert_booked_as_owed_back_once(world, session["id"], rolled_back)


def test_a_buyer_who_joins_again_after_a_rollback_keeps_only_the_new_join(world):
    """Participant lookups, settlement and escrow release with a failed payment of the same buyer present:
    the rolled-back charge is refunded from its own account, the session's escrow holds the new join only."""
    session = world.session(moq=1)
    rolled_back = joined_then_rolled_back(world, session["id"])
    again = world.joined(buyer(1), session["id"])
    world.pay(again)
    world.pay_at_xendit(rolled_back)
    assert xendits_callback(world, rolled_back).body == {"status": "refunding_rolled_back"}

    assert [(p["id"], p["status"]) for p in world.my_participations(buyer(1))] == [(again["id"], "paid")]
    assert world.settle(session["id"]) == "succeed"
    world.release_escrow(session["id"])

    assert world.get_session(session["id"])["escrow_release_status"] == "released"
    assert balance(world, accounts.session_escrow(session["id"])) == 0
    assert balance(world, accounts.ROLLED_BACK_CHARGES) == AMOUNT  # its refund is still on its way
    world.process_refunds()
    world.refund_callback(world.refund_of(rolled_back))
    assert balance(world, accounts.ROLLED_BACK_CHARGES) == 0
    assert world.trial_balance()["balanced"] is True


# ---- what Xendit charges for a refund (PAY-5)
def left_after_paying(world) -> dict:
    """A buyer paid, left (GB-8), and the refund was sent to Xendit: it waits for Xendit's callback."""
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    world.pay(joined)
    world.leave(buyer(1), session["id"])
    world.process_refunds()
    assert world.refund_of(joined)["status"] == "pending"
    return joined


def test_xendits_refund_fee_is_booked_once_with_the_refunds_completion(world):
    joined = left_after_paying(world)

    assert world.refund_callback(world.refund_of(joined), refund_fee_amount=2_775).body == {
        "status": "refunded_to_xendit"
    }
    assert world.refund_callback(world.refund_of(joined), refund_fee_amount=2_775).body == {
        "status": "already_refunded"
    }

    [movement] = movements_with_fees(world)
    assert movement["type"] == "refund"
    assert balance(world, accounts.GATEWAY_FEES) == -2_775
    # Clearing took the charge in and sent it back out, and Xendit kept the refund's fee on top.
    assert balance(world, accounts.GATEWAY_CLEARING) == 2_775
    assert world.payment(joined)["status"] == "refunded"
    assert world.trial_balance()["balanced"] is True


@pytest.mark.parametrize("fee", [-1, 0.5, "100", AMOUNT + 1], ids=["negative", "fraction", "text", "over-refund"])
def test_a_refund_callback_with_a_fee_that_cannot_be_booked_is_quarantined(world, fee):
    joined = left_after_paying(world)

    assert world.refund_callback(world.refund_of(joined), refund_fee_amount=fee).body == {"status": "quarantined"}

    assert quarantined(world, "malformed_fees")["refund_id"] == world.refund_of(joined)["id"]
    assert world.refund_of(joined)["status"] == "pending"
    assert movements_with_fees(world) == []
    assert world.refund_callback(world.refund_of(joined)).body == {"status": "refunded_to_xendit"}
