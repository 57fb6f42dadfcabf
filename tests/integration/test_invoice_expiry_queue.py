"""Unpaid invoices of a closed session are expired by the InvoiceExpiryQueue worker, not inside a settlement
or refund page (defect 5, GB-10, GB-11): with Xendit unreachable the pages still finish, the session
settles, and the invoices are expired once Xendit answers again; a buyer who pays first is left to the
PAID webhook's late-payment path."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.support.groupbuy import buyer


def settle_without_the_worker(world, session_id: str) -> list[dict]:
    """The group_session machine's steps from the deadline on; the queue worker has not run yet."""
    assert world.step("ClaimSessionFunction", session_id=session_id)["outcome"] == "succeed"
    pages, page = [], {"cursor": None, "done": False}
    while not page["done"]:
        page = world.step("SettleSessionPageFunction", session_id=session_id, cursor=page["cursor"])
        pages.append(page)
    world.step("FinalizeSessionSuccessFunction", session_id=session_id)
    world.step("RaisePurchaseOrderFunction", session_id=session_id)
    return pages


def invoice_status(world, participation: dict) -> str:
    return world.xendit._invoices[participation["payment"]["invoice_id"]].status


def test_settlement_finishes_with_xendit_down_and_the_queue_expires_the_unpaid_invoice_later(world):
    session = world.session(moq=1)
    world.pay(world.joined(buyer(1), session["id"]))
    unpaid = world.joined(buyer(2), session["id"], quantity=2)
    world.xendit_down()

    pages = settle_without_the_worker(world, session["id"])

    assert pages[-1]["done"] is True
    assert world.get_session(session["id"])["status"] == "in_production"
    assert (world.payment(unpaid)["status"], invoice_status(world, unpaid)) == ("pending", "PENDING")
    [queued] = world.events("groupbuy.participant.invoice_expiry_requested")
    assert queued["data"]["payment_id"] == unpaid["payment"]["id"]

    with pytest.raises(BatchProcessingError):  # the whole batch failed: SQS retries it, then dead-letters
        world.expire_unpaid_invoices()
    assert world.payment(unpaid)["status"] == "pending"

    world.xendit_up()
    assert world.expire_unpaid_invoices() == {"batchItemFailures": []}

    assert invoice_status(world, unpaid) == "EXPIRED"
    assert world.payment(unpaid)["status"] == "expired"
    assert [p["status"] for p in world.my_participations(buyer(2))] == ["expired"]
    assert world.orders(buyer(2)) == []

    assert world.expire_unpaid_invoices() == {"batchItemFailures": []}  # a redelivered message changes nothing
    assert world.payment(unpaid)["status"] == "expired"
    assert world.trial_balance()["balanced"] is True


def test_the_refund_page_of_a_failed_session_queues_the_expiry_instead_of_calling_xendit(world):
    session = world.session(moq=5)
    unpaid = world.joined(buyer(1), session["id"])
    assert world.step("ClaimSessionFunction", session_id=session["id"])["outcome"] == "fail"
    world.step("MarkSessionFailedFunction", session_id=session["id"])
    world.xendit_down()

    page = world.step("RefundSessionPageFunction", session_id=session["id"], cursor=None)

    assert page["done"] is True
    assert world.payment(unpaid)["status"] == "pending"
    world.xendit_up()
    world.expire_unpaid_invoices()
    assert (world.payment(unpaid)["status"], invoice_status(world, unpaid)) == ("expired", "EXPIRED")


def test_a_buyer_who_pays_before_the_worker_runs_is_left_to_the_late_payment_path(world):
    session = world.session(moq=1)
    world.pay(world.joined(buyer(1), session["id"]))
    late = world.joined(buyer(2), session["id"])
    settle_without_the_worker(world, session["id"])
    world.pay_at_xendit(late)

    assert world.expire_unpaid_invoices() == {"batchItemFailures": []}
    assert world.payment(late)["status"] == "paid"  # not expired under a paid invoice: applied from Xendit's record

    assert world.invoice_callback(late, "PAID").body == {"status": "duplicate"}

    refund = world.refund_of(late)
    assert (refund["reason"], refund["amount"]) == ("late_payment", 100_000)
    assert world.orders(buyer(2)) == []
    assert world.trial_balance()["balanced"] is True
