"""A hostile review of issue 8 (the session's capacity on shards): each test is a way found for a buyer to be
refused, charged without a place or left without a refund between two steps of a join, a payment, a leave or
a close, made deterministic by running the other writer (or the crash) exactly there; each failed before its
fix."""

from __future__ import annotations

from contextlib import contextmanager
from itertools import count
from unittest import mock

from patungan.adapters.dynamodb import DynamoTable, QueryResult, Transaction
from patungan.composition import groupbuy_repository
from patungan.core.errors import ConcurrentUpdate
from patungan.groupbuy.fill import FillRaiser
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


def _session_items(session_id: str) -> list[dict]:
    """The session's item and its shard items, as get_session's Query reads them."""
    return (
        groupbuy_repository()
        .table.query(
            "pk = :pk AND sk BETWEEN :first AND :meta",
            values={":pk": f"SESSION#{session_id}", ":first": "CAPACITY#", ":meta": "META"},
            consistent=True,
        )
        .items
    )


@contextmanager
def _next_session_query_returns(items: list[dict]):
    """The next Query of a session's items answers ``items`` (what a Query, read-committed item by item, may
    see while a transaction moves units between two shards); later ones read the table."""
    real, answered = DynamoTable.query, []

    def query(self, key_condition, **kwargs):
        if not answered and ":first" in (kwargs.get("values") or {}):
            answered.append(True)
            return QueryResult(items, None)
        return real(self, key_condition, **kwargs)

    with mock.patch.object(DynamoTable, "query", query):
        yield answered


def test_a_read_that_sees_half_of_a_rebalance_is_read_again_not_a_500_settlement_alarm(world):
    """Issue 8 (shares rebalanced as shards run dry), GB-16. A join whose quantity no shard has alone moves
    remaining from a donor shard into another in one transaction; DynamoDB's Query is read-committed per item
    (only TransactGetItems reads a transaction's items as one snapshot), so a reader may see the donor after the
    move and the recipient before it: the shares then sum short of the target. That is a move in flight, not a
    broken invariant: the session is read again (the view answers 200, exact), not refused with a 500 and a
    CRITICAL 'shares do not sum to the target' alarm."""
    session = world.session(target_quantity=40, moq=10, max_per_buyer=20)
    assert len(world.capacity_shards(session["id"])) == 2
    for home in (0, 1):  # one join on each shard (their home is a hash of a random id)
        with mock.patch("patungan.groupbuy.service.home_shard", return_value=home):
            world.joined(buyer(1 + home), session["id"], 15)
    assert [s["remaining"] for s in world.capacity_shards(session["id"])] == [5, 5]
    before = {item["sk"]: item for item in _session_items(session["id"])}
    world.joined(buyer(3), session["id"], 8)  # 5 + 5 left: 3 move from one shard to the other
    after = {item["sk"]: item for item in _session_items(session["id"])}
    donor = next(sk for sk in after if sk.startswith("CAPACITY#") and after[sk]["reserved"] == before[sk]["reserved"])
    torn = [after[sk] if sk == donor else before[sk] for sk in sorted(after)]

    with _next_session_query_returns(torn) as answered:
        view = world.get_session(session["id"])

    assert answered
    assert "error" not in view, view
    assert (view["reserved_quantity"], view["available_quantity"]) == (38, 2)


@contextmanager
def _first_raise_reads(stale: dict[str, dict]):
    """During the first fill raise after a payment, the session's items named in ``stale`` read as they were
    before (read-committed item by item: a read may see one shard before a leave and another after a later
    payment); every other read, and every later raise, reads the table."""
    real_query, real_get, real_raise = DynamoTable.query, DynamoTable.get, FillRaiser.raise_now
    armed = []

    def query(self, key_condition, **kwargs):
        result = real_query(self, key_condition, **kwargs)
        if armed and armed[-1] and ":first" in (kwargs.get("values") or {}):
            return QueryResult([stale.get(item["sk"], item) for item in result.items], result.last_key)
        return result

    def get(self, key, **kwargs):
        if armed and armed[-1] and key.get("sk") in stale and key["pk"] == stale[key["sk"]]["pk"]:
            return stale[key["sk"]]
        return real_get(self, key, **kwargs)

    def raise_now(self, session_id):
        armed.append(not armed)  # only the first raise reads stale
        try:
            return real_raise(self, session_id)
        finally:
            armed.append(False)

    with (
        mock.patch.object(DynamoTable, "query", query),
        mock.patch.object(DynamoTable, "get", get),
        mock.patch.object(FillRaiser, "raise_now", raise_now),
    ):
        yield armed


def test_a_fill_raise_that_reads_a_shard_before_a_leave_and_another_after_a_payment_raises_nothing_unreached(world):
    """GB-6, PAY-7, issue 8. Buyer 1 paid 1 unit on shard 0, then leaves (paid back to 0); buyer 2 then pays 1
    unit on shard 1. Paid never exceeded 1, under the MOQ of 2. The raise after buyer 2's payment reads the
    session item and shard 0 from before the leave and shard 1 after the payment (a Query is read-committed item
    by item): it sums 2. Raising from that sum would declare moq_reached (and its event, and at a tier the same
    way a price lock) for a fill never reached; the raise must hold only if no paid unit left since its read."""
    session = world.session(target_quantity=40, moq=2, max_per_buyer=5, allow_leave_after_payment=True)
    with mock.patch("patungan.groupbuy.service.home_shard", return_value=0):
        assert world.pay(world.joined(buyer(1), session["id"], 1)).status == 200
    with mock.patch("patungan.groupbuy.service.home_shard", return_value=1):
        second = world.joined(buyer(2), session["id"], 1)
    before_leave = {item["sk"]: item for item in _session_items(session["id"]) if item["sk"] != "CAPACITY#01"}
    assert world.leave(buyer(1), session["id"]).status == 200

    with _first_raise_reads(before_leave) as armed:
        assert world.pay(second).status == 200

    assert armed[0] is True  # the stale read was served
    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["status"], state["moq_reached_at"]) == (1, "active", None)
    assert world.events("groupbuy.session.moq_reached") == []


def test_a_reservation_that_committed_although_its_call_failed_is_finished_by_the_join_not_refused(world):
    """Issue 8, GB-3. DynamoDB can commit a transaction and still answer an error (a timeout, a 500 the SDK
    retries without a client token): the join, retrying its reservation after the 'conflict', meets the buyer
    lock its own first attempt took. Without any Idempotency-Key that is still this join: it finishes it (201,
    one reservation, one invoice), not a 409 already_joined the buyer did not cause."""
    session = world.session()
    commit, failed = Transaction.commit, []

    def commit_then_fail_once(tx):
        commit(tx)
        if not failed:
            failed.append(True)
            raise ConcurrentUpdate("the answer was lost; DynamoDB had committed")

    with mock.patch.object(Transaction, "commit", commit_then_fail_once):
        response = world.join(buyer(1), session["id"], 2)

    assert failed
    assert response.status == 201, response.body
    assert response.body["payment"]["invoice_url"]
    assert len(world.invoices_at_xendit(session["id"])) == 1
    state = world.get_session(session["id"])
    assert (state["reserved_quantity"], state["participant_count"]) == (2, 1)
