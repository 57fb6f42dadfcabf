"""A hostile review of issue 8 (the session's capacity on shards): each test is a way found for a buyer to be
refused, charged without a place or left without a refund between two steps of a join, a payment, a leave or
a close, made deterministic by running the other writer (or the crash) exactly there; each failed before its
fix."""

from __future__ import annotations

from itertools import count

from tests.support.conflicts import transaction_conflicts
from tests.support.groupbuy import buyer


def _attach_conflicts(times: int):
    """The join's second transaction (the invoice attached on the buyer's own participation) cancelled with
    TransactionConflict ``times`` times: the first transaction touching a PART# item (the reservation) passes."""
    touches = count()

    def hot(pk: str, sk: str) -> bool:
        return sk.startswith("PART#") and 1 <= next(touches) <= times

    return transaction_conflicts(hot, rate=1.0)


def test_a_conflict_on_attaching_the_invoice_is_retried_not_a_503_for_a_join_that_went_through(world):
    """Issue 8 ('never a 409 for a conflict the buyer did not cause'), GB-3, GB-5. The join reserved, then
    attaching its invoice met a TransactionConflict twice: the attach is conditional and idempotent, so it is
    retried with backoff and the buyer gets 201 with the invoice, not a 503 whose retry would say 409
    already_joined."""
    session = world.session()

    with _attach_conflicts(2) as injector:
        response = world.join(buyer(1), session["id"], 2)

    assert injector.injected == 2
    assert response.status == 201, response.body
    assert response.body["payment"]["invoice_url"]
    assert world.join(buyer(1), session["id"], 2).body["error"]["code"] == "already_joined"
    assert len(world.invoices_at_xendit(session["id"])) == 1


def test_a_join_retried_with_its_idempotency_key_after_a_503_on_the_attach_finishes_it_not_a_409(world):
    """Issue 8, SYS-4, GB-3. Attaching the invoice conflicted every time, so the join answered 503 although its
    reservation committed (Powertools forgets the key of a failed request). The client retries with the same
    Idempotency-Key: that is the same join, finished with the invoice Xendit already holds (201), not a 409
    already_joined the buyer did not cause, and not a second invoice."""
    session = world.session()

    with _attach_conflicts(1000):
        first = world.join(buyer(1), session["id"], 2, idempotency_key="join-1")
    retried = world.join(buyer(1), session["id"], 2, idempotency_key="join-1")

    assert first.status == 503, first.body
    assert retried.status == 201, retried.body
    assert retried.body["payment"]["invoice_url"]
    assert len(world.invoices_at_xendit(session["id"])) == 1
    [mine] = world.my_participations(buyer(1))
    assert (mine["id"], mine["payment"]["invoice_id"]) == (retried.body["id"], retried.body["payment"]["invoice_id"])
    another_key = world.join(buyer(1), session["id"], 2, idempotency_key="join-2")
    assert (another_key.status, another_key.body["error"]["code"]) == (409, "already_joined")
    state = world.get_session(session["id"])
    assert (state["reserved_quantity"], state["participant_count"]) == (2, 1)
