"""A join is never a silent orphan (GB-5): a crash between the join and its invoice, or a rollback that
fails, is logged CRITICAL with a metric and repaired by the scheduled job. Retried joins are idempotent
(SYS-4); unpaid buyers are reminded before the deadline (GB-13)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any
from unittest import mock

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.xendit import XenditGateway
from patungan.composition import groupbuy_service
from patungan.core.clock import FixedClock
from patungan.core.errors import DependencyUnavailable
from patungan.groupbuy.repository import GroupBuyRepository
from tests.support.groupbuy import buyer


class Crash(Exception):
    """The Lambda died here."""


def run_repair_job_later(world) -> dict:
    """The schedule runs a few minutes after the join was left stalled."""
    service = groupbuy_service()
    with mock.patch.object(service, "clock", FixedClock(service.clock.now() + timedelta(minutes=3))):
        return world.step("RepairStalledJoinsFunction")


def test_a_crash_after_the_invoice_was_created_is_repaired_by_attaching_it(world):
    session = world.session()
    original = Transaction.commit
    calls = []

    def crash_on_the_second_commit(tx):
        calls.append(tx)
        if len(calls) == 2:
            raise Crash("died before attaching the invoice")
        original(tx)

    with mock.patch.object(Transaction, "commit", crash_on_the_second_commit):
        assert world.join(buyer(1), session["id"]).status == 500  # what the app saw of the crash

    assert run_repair_job_later(world) == {"attached": 1, "rolled_back": 0}
    [mine] = world.my_participations(buyer(1))
    assert mine["payment"]["invoice_url"]
    assert len(world.invoices_at_xendit(session["id"])) == 1
    assert run_repair_job_later(world) == {"attached": 0, "rolled_back": 0}


def test_a_failed_rollback_is_critical_and_the_repair_job_rolls_the_join_back(world, caplog, capsys):
    session = world.session()
    world.xendit_down()
    with (
        mock.patch.object(GroupBuyRepository, "remove_participation", side_effect=Crash("database gone")),
        caplog.at_level(logging.CRITICAL),
    ):
        response = world.join(buyer(1), session["id"])

    assert response.status == 503
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert critical and "join rollback failed" in critical[0].getMessage()
    assert "JoinRollbackFailed" in capsys.readouterr().out
    assert world.get_session(session["id"])["reserved_quantity"] == 1
    world.xendit_up()

    assert run_repair_job_later(world) == {"attached": 0, "rolled_back": 1}
    state = world.get_session(session["id"])
    assert (state["reserved_quantity"], state["participant_count"]) == (0, 0)
    # PAY-1: the payment is kept, failed, so that a charge on an invoice made after all is refunded
    assert [p["status"] for p in world.items("PaymentsTable", "PAYMENT#")] == ["failed"]
    assert world.join(buyer(1), session["id"]).status == 201


def join_rolled_back_while(world, caplog, session_id: str, overtake, *, invoice_made: bool = True) -> Any:
    """A join whose invoice create's answer is lost (Xendit made the invoice, or not) while Xendit cannot be
    asked about it, so it rolls back; ``overtake()`` runs once, right before the rollback's writes. The join's
    response."""
    real_create, real_find = XenditGateway.create_invoice, XenditGateway.get_invoice_by_external_id
    real_remove = GroupBuyRepository.remove_participation
    lookups, overtaken = [], []

    def created_but_answer_lost(self, *args, **kwargs):
        if invoice_made:
            real_create(self, *args, **kwargs)
        raise DependencyUnavailable("the payment provider did not answer; retry shortly")

    def unreachable_for_the_join(self, external_id):
        lookups.append(external_id)
        if len(lookups) == 1:
            raise DependencyUnavailable("down")
        return real_find(self, external_id)

    def overtaken_first(self, tx, participation):
        if not overtaken:
            overtaken.append(True)  # before: the overtaking write may roll the join back itself
            overtake()
        return real_remove(self, tx, participation)

    with (
        mock.patch.object(XenditGateway, "create_invoice", created_but_answer_lost),
        mock.patch.object(XenditGateway, "get_invoice_by_external_id", unreachable_for_the_join),
        mock.patch.object(GroupBuyRepository, "remove_participation", overtaken_first),
        caplog.at_level(logging.WARNING),
    ):
        response = world.join(buyer(1), session_id)
    assert overtaken
    return response


def assert_no_rollback_alarm(caplog, capsys) -> None:
    assert not [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "JoinRollbackFailed" not in capsys.readouterr().out


def test_a_rollback_overtaken_by_the_repair_job_attaching_the_invoice_keeps_the_join_without_an_alarm(
    world, caplog, capsys
):
    """Deterministic (GB-5, PAY-1, issue 7 review): the repair job attaches the invoice Xendit did make right
    before the rollback writes. The rollback then fails its condition although all is well: the join stands,
    with its invoice, the buyer is told so, and nothing is alarmed."""
    session = world.session()

    response = join_rolled_back_while(world, caplog, session["id"], lambda: run_repair_job_later(world))

    assert response.status == 201, response.body
    [invoice] = world.invoices_at_xendit(session["id"])
    assert response.body["payment"]["invoice_url"] == invoice.invoice_url
    [mine] = world.my_participations(buyer(1))
    assert (mine["status"], mine["payment"]["invoice_url"]) == ("pending_payment", invoice.invoice_url)
    assert [p["status"] for p in world.items("PaymentsTable", "PAYMENT#")] == ["pending"]
    assert world.get_session(session["id"])["reserved_quantity"] == 1
    assert_no_rollback_alarm(caplog, capsys)
    assert run_repair_job_later(world) == {"attached": 0, "rolled_back": 0}


def test_a_rollback_overtaken_by_the_paid_invoice_being_captured_keeps_the_join_without_an_alarm(world, caplog, capsys):
    """Deterministic (GB-5, PAY-1, PAY-3, issue 7 review): the buyer paid the invoice Xendit did make and its
    PAID is captured (which attaches the invoice) right before the rollback writes: the join stands, paid,
    counted once, and nothing is alarmed."""
    session = world.session()

    def paid_and_captured():
        [invoice] = world.invoices_at_xendit(session["id"])
        world.pay_at_xendit({"payment": {"invoice_id": invoice.id}})
        body = world.xendit._invoices[invoice.id].callback()
        assert world.webhook("XenditInvoiceWebhook", json.dumps(body).encode()).body == {"status": "paid"}

    response = join_rolled_back_while(world, caplog, session["id"], paid_and_captured)

    assert response.status == 201, response.body
    [mine] = world.my_participations(buyer(1))
    assert mine["status"] == "paid"
    assert [p["status"] for p in world.items("PaymentsTable", "PAYMENT#")] == ["paid"]
    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["reserved_quantity"], state["participant_count"]) == (1, 0, 1)
    assert world.items("PaymentsTable", "REFUND#") == []
    assert_no_rollback_alarm(caplog, capsys)
    assert world.trial_balance()["balanced"] is True


def test_a_rollback_overtaken_by_the_repair_jobs_own_rollback_is_not_alarmed(world, caplog, capsys):
    """GB-5 (issue 7 review): the repair job rolls the same join back first; the join's rollback then fails its
    condition, re-reads, finds it rolled back and answers as a rollback does, without an alarm."""
    session = world.session()

    def the_repair_job_rolls_it_back():
        assert run_repair_job_later(world) == {"attached": 0, "rolled_back": 1}

    response = join_rolled_back_while(world, caplog, session["id"], the_repair_job_rolls_it_back, invoice_made=False)

    assert response.status == 503
    assert world.my_participations(buyer(1)) == []
    assert [p["status"] for p in world.items("PaymentsTable", "PAYMENT#")] == ["failed"]
    state = world.get_session(session["id"])
    assert (state["reserved_quantity"], state["participant_count"]) == (0, 0)
    assert_no_rollback_alarm(caplog, capsys)


def test_a_retried_join_with_the_same_idempotency_key_returns_the_first_answer(world):
    session = world.session()
    key = {"Idempotency-Key": "join-once"}

    from tests.support.lambdas import call_api

    def join():
        return call_api(
            "JoinSessionFunction",
            "POST",
            f"/v1/sessions/{session['id']}/join",
            resource="/v1/sessions/{id}/join",
            path_parameters={"id": session["id"]},
            body={"quantity": 2},
            claims=buyer(1),
            headers=key,
        )

    first, retried = join(), join()

    assert first.status == retried.status == 201
    assert retried.body == first.body
    assert len(world.invoices_at_xendit(session["id"])) == 1


def test_unpaid_buyers_are_reminded_before_the_deadline(world):
    session = world.session(moq=10)
    world.pay(world.joined(buyer(1), session["id"]))
    unpaid = world.joined(buyer(2), session["id"])

    result = world.step("SessionNearExpiryFunction", session_id=session["id"])

    assert result["reminded"] == 1
    [reminder] = world.events("groupbuy.participant.payment_reminder")
    assert (reminder["data"]["user_id"], reminder["data"]["invoice_url"]) == (
        "buyer-2",
        unpaid["payment"]["invoice_url"],
    )


def test_an_expiry_queued_for_a_join_the_repair_job_then_rolled_back_is_done_not_dead_lettered(world):
    """GB-5 meets GB-10: the settlement page queued the expiry of a stalled join (no invoice yet); the repair
    job rolled that join back before the queue worker ran. Nothing is left to expire: the worker says so
    instead of failing until the message reaches the dead-letter queue and alarms over nothing."""
    session = world.session(moq=1)
    world.pay(world.joined(buyer(1), session["id"]))
    world.xendit_down()
    with mock.patch.object(GroupBuyRepository, "remove_participation", side_effect=Crash("database gone")):
        assert world.join(buyer(2), session["id"]).status == 503  # left stalled: pending, no invoice
    world.xendit_up()
    assert world.step("ClaimSessionFunction", session_id=session["id"])["outcome"] == "succeed"
    assert world.step("SettleSessionPageFunction", session_id=session["id"], cursor=None)["done"] is True
    assert len(world.events("groupbuy.participant.invoice_expiry_requested")) == 1

    assert run_repair_job_later(world) == {"attached": 0, "rolled_back": 1}

    assert world.expire_unpaid_invoices() == {"batchItemFailures": []}
    assert [p["status"] for p in world.my_participations(buyer(2))] == []
