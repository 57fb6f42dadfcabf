"""Leave and cancel honour Idempotency-Key (SYS-4, issue 6 defect 9): the same key replays the first answer,
even after the state moved on (no 409 for a retry); a key reused for another session is 422."""

from __future__ import annotations

from tests.support.groupbuy import buyer


def test_a_retried_leave_replays_the_first_answer(world):
    session = world.session()
    world.pay(world.joined(buyer(1), session["id"], quantity=2))

    first = world.leave(buyer(1), session["id"], idempotency_key="leave-1")
    retried = world.leave(buyer(1), session["id"], idempotency_key="leave-1")
    unkeyed = world.leave(buyer(1), session["id"])

    assert (first.status, first.body["status"]) == (200, "left")
    assert (retried.status, retried.body) == (200, first.body)
    assert unkeyed.status == 404
    assert len(world.events("payment.refund_requested")) == 1
    assert world.get_session(session["id"])["paid_quantity"] == 0


def test_a_leave_key_reused_for_another_session_is_refused(world):
    first, second = world.session(), world.session()
    world.joined(buyer(1), first["id"])
    world.joined(buyer(1), second["id"])
    assert world.leave(buyer(1), first["id"], idempotency_key="leave-1").status == 200

    reused = world.leave(buyer(1), second["id"], idempotency_key="leave-1")

    assert reused.status == 422
    assert reused.body["error"]["code"] == "idempotency_key_reused"
    assert [p["status"] for p in world.my_participations(buyer(1), session_id=second["id"])] == ["pending_payment"]


def test_a_retried_cancel_replays_the_first_answer(world):
    session = world.session()

    first = world.cancel(session["id"], idempotency_key="cancel-1")
    retried = world.cancel(session["id"], idempotency_key="cancel-1")
    unkeyed = world.cancel(session["id"])

    assert (first.status, first.body["status"]) == (200, "cancelled")
    assert (retried.status, retried.body) == (200, first.body)
    assert unkeyed.status == 409
    assert len(world.events("groupbuy.session.cancelled")) == 1


def test_a_cancel_key_reused_for_another_session_is_refused(world):
    first, second = world.session(), world.session()
    world.cancel(first["id"], idempotency_key="cancel-1")

    reused = world.cancel(second["id"], idempotency_key="cancel-1")

    assert reused.status == 422
    assert reused.body["error"]["code"] == "idempotency_key_reused"
    assert world.get_session(second["id"])["status"] == "active"
