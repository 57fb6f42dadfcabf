"""A flash sale on one session (issue 8; GB-3, GB-6, PAY-3, PAY-7, SYS-6): the session's counters move by
conditional atomic ADD, so buyers joining and paying at once do not refuse each other; a conflict DynamoDB
reports on a hot item is retried with backoff, and one left over is a 503 the client (or Xendit) retries,
never a 409 the buyer did not cause."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import boto3
import pytest
from moto.dynamodb.responses import DynamoHandler

from emulator.moto_patches import _serialised
from patungan.composition import groupbuy_repository, groupbuy_service, payment_service
from patungan.core.auth import principal_from_claims
from patungan.core.errors import DomainError
from patungan.groupbuy.fill import FillRaiser
from patungan.groupbuy.models import JoinInput
from patungan.groupbuy.repository import GroupBuyRepository
from patungan.payments.models import InvoiceCallback
from tests.support.groupbuy import buyer


def _pay(world, participation):
    """Xendit's PAID callback for the participation; the refusal's code when the service refuses it."""
    callback = _paid_callback(world, participation)
    try:
        return payment_service().handle_invoice_callback(callback, callback.model_dump_json().encode())
    except DomainError as exc:
        return exc.code


def _paid_callback(world, participation) -> InvoiceCallback:
    payment = participation.payment
    return InvoiceCallback(
        id=payment.invoice_id,
        external_id=payment.id,
        status="PAID",
        amount=payment.amount,
        paid_amount=payment.amount,
        currency="IDR",
        payment_method="BANK_TRANSFER",
    )


def test_fifty_threads_never_push_a_session_of_twenty_past_its_target_nor_join_a_buyer_twice(world):
    """GB-3, GB-6, issue 8. 25 buyers, two threads each, join a session of 20 units truly concurrently through
    the service (only each DynamoDB call is atomic, as in DynamoDB), then all the joined pay at once: exactly
    20 joins, one per buyer at most, the rest told the session is full or that they joined already, never a
    conflict they did not cause; paid never past the target, MOQ reached once."""
    session = world.session(target_quantity=20, moq=10, max_per_buyer=1)
    buyers = [principal_from_claims(buyer(n)) for n in range(25)]

    def join(index):
        try:
            return groupbuy_service().join(buyers[index // 2], session["id"], JoinInput(quantity=1))
        except DomainError as exc:
            return exc.code

    def pay(participation):
        return _pay(world, participation)

    with (
        mock.patch.object(DynamoHandler, "call_action", _serialised(DynamoHandler.call_action)),
        ThreadPoolExecutor(max_workers=50) as pool,
    ):
        outcomes = list(pool.map(join, range(50)))
        joins = [o for o in outcomes if not isinstance(o, str)]
        paid = list(pool.map(pay, joins))

    assert len(joins) == 20
    assert len({p.user_id for p in joins}) == 20
    assert {o for o in outcomes if isinstance(o, str)} <= {"insufficient_quantity", "already_joined"}
    assert paid == ["paid"] * 20
    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["reserved_quantity"], state["participant_count"]) == (20, 0, 20)
    assert (state["status"], state["price_locked_at_fill_percent"]) == ("moq_reached", 100)
    assert len(world.events("groupbuy.session.moq_reached")) == 1


def _join(principal, session_id, quantity):
    try:
        return groupbuy_service().join(principal, session_id, JoinInput(quantity=quantity))
    except DomainError as exc:
        return exc.code


def _shares(world, session_id):
    """(remaining, reserved, paid) of each capacity shard, as stored."""
    return [(s["remaining"], s["reserved"], s["paid"]) for s in world.capacity_shards(session_id)]


@pytest.mark.timeout(900)
def test_a_hundred_and_fifty_threads_sell_out_a_sharded_session_to_the_unit_and_no_further(world):
    """Issue 8 (shards), GB-3, GB-6. A session of 100 units is split over 5 capacity shards; 150 buyers (two
    threads each, 50 at a time) join 1 unit each truly concurrently, then every joined buyer pays at once. Exactly
    100 join, one per buyer, sold out to the unit across every shard; the others are told it is full or that
    they joined already; paid ends at the target and no further, the MOQ reached once."""
    session = world.session(target_quantity=100, moq=50, max_per_buyer=1)
    assert len(world.capacity_shards(session["id"])) == 5
    buyers = [principal_from_claims(buyer(n)) for n in range(150)]

    def pay(participation):
        return _pay(world, participation)

    with (
        mock.patch.object(DynamoHandler, "call_action", _serialised(DynamoHandler.call_action)),
        ThreadPoolExecutor(max_workers=50) as pool,
    ):
        outcomes = list(pool.map(lambda n: _join(buyers[n // 2], session["id"], 1), range(300)))
        joins = [o for o in outcomes if not isinstance(o, str)]
        paid = list(pool.map(pay, joins))

    assert len(joins) == 100
    assert len({p.user_id for p in joins}) == 100
    assert {o for o in outcomes if isinstance(o, str)} <= {"insufficient_quantity", "already_joined"}
    assert paid == ["paid"] * 100
    assert _shares(world, session["id"]) == [(0, 0, 20)] * 5  # every shard sold out, none past its share
    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["reserved_quantity"], state["participant_count"]) == (100, 0, 100)
    assert (state["status"], state["price_locked_at_fill_percent"], state["available_quantity"]) == (
        "moq_reached",
        100,
        0,
    )
    assert len(world.events("groupbuy.session.moq_reached")) == 1


def _stale_reads(session):
    """The join reads ``session`` (read earlier) instead of the session as it is now."""
    return mock.patch.object(GroupBuyRepository, "session_to_change", lambda self, session_id, consistent=True: session)


def test_a_join_whose_home_shard_ran_dry_since_it_read_takes_another_and_sells_out_exactly(world):
    """Issue 8 (shards). Shard 0 of two is sold out after the join read it as empty: the join's take is refused
    with the shard as found, and it joins on shard 1 without reading again. A join of 5 when no shard has 5 left
    alone but the two together have 6 moves the units into one shard in its own transaction; then 2 more are
    refused with the true total left (1), and the shares still sum to the target."""
    session = world.session(target_quantity=50, moq=10, max_per_buyer=11)
    repository = groupbuy_repository()
    read_empty = repository.get_session(session["id"])
    with mock.patch("patungan.groupbuy.service.home_shard", return_value=0):
        for n in range(2):
            world.joined(buyer(n), session["id"], quantity=11)
        world.joined(buyer(2), session["id"], quantity=3)  # shard 0 (25 units) sold out
        with _stale_reads(read_empty):
            moved_on = _join(principal_from_claims(buyer(3)), session["id"], 11)
    assert moved_on.shard == 1
    assert _shares(world, session["id"]) == [(0, 25, 0), (14, 11, 0)]

    with mock.patch("patungan.groupbuy.service.home_shard", return_value=1):
        world.joined(buyer(4), session["id"], quantity=8)  # 6 left, all on shard 1
        world.joined(buyer(5), session["id"], quantity=5)
        response = world.join(buyer(6), session["id"], quantity=2)
    assert (response.status, response.body["error"]["code"]) == (409, "insufficient_quantity")
    assert response.body["error"]["message"] == "only 1 units are left"
    assert sum(sum(share) for share in _shares(world, session["id"])) == 50
    assert world.get_session(session["id"])["available_quantity"] == 1


def test_a_join_that_needs_units_from_two_shards_moves_them_in_its_own_transaction(world):
    """Issue 8 ("shares rebalanced as shards run dry"). Each of two shards has 3 left: a join of 5 succeeds,
    the donor's spare units moved into its shard; reserved + paid stays within the target."""
    session = world.session(target_quantity=50, moq=10, max_per_buyer=11)
    for home, buyers in ((0, (0, 1)), (1, (2, 3))):
        with mock.patch("patungan.groupbuy.service.home_shard", return_value=home):
            for n in buyers:
                world.joined(buyer(n), session["id"], quantity=11)
    assert _shares(world, session["id"]) == [(3, 22, 0), (3, 22, 0)]

    joined = world.joined(buyer(4), session["id"], quantity=5)

    assert joined["quantity"] == 5
    shares = _shares(world, session["id"])
    assert sorted(shares) == [(0, 27, 0), (1, 22, 0)]
    assert sum(sum(share) for share in shares) == 50


def test_a_join_that_read_the_session_open_is_refused_once_it_is_cancelled_and_a_late_payment_goes_back(world):
    """Issue 8, GB-2: closing clears every shard's ``open`` in the cancel's transaction, so a join decided on a
    read from before the cancel is refused (not counted on a closed session), and a payment that lands after the
    close is not counted either: it goes back."""
    session = world.session(target_quantity=50, moq=10)
    paying = world.joined(buyer(1), session["id"], quantity=2)
    read_open = groupbuy_repository().get_session(session["id"])
    assert world.cancel(session["id"]).status == 200

    with _stale_reads(read_open):
        assert _join(principal_from_claims(buyer(2)), session["id"], 1) == "session_not_open"
    assert world.pay(paying).body["status"] == "paid"  # the callback is applied: as a late payment

    assert all(not shard["open"] for shard in world.capacity_shards(session["id"]))
    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["reserved_quantity"], state["participant_count"]) == (0, 0, 0)
    assert world.refund_of(paying)["reason"] == "late_payment"


def test_a_tier_reached_by_a_payment_whose_raise_crashed_is_kept_when_a_paid_buyer_then_leaves(world):
    """PAY-7, GB-6, issue 8. A payment reaches the 50 % tier and the MOQ, then its Lambda dies before it raises
    them on the session item. A paid buyer then leaves: the leave raises what the paid sum reached before it
    takes its units away, so the tier stays locked at 50 % and the MOQ is reached, with its event, once."""
    session = world.session(target_quantity=20, moq=10)
    first = world.joined(buyer(1), session["id"], quantity=5)
    second = world.joined(buyer(2), session["id"], quantity=5)
    assert world.pay(first).status == 200

    def crash(self, read):
        raise RuntimeError("the Lambda ran out of time")

    with mock.patch.object(FillRaiser, "after_payment", crash):
        assert world.pay(second).status >= 500
    assert world.payment(second)["status"] == "paid"  # the capture had committed
    unraised = world.session_item(session["id"])
    assert (unraised["status"], unraised.get("price_locked_at_fill_percent")) == ("active", None)

    assert world.leave(buyer(1), session["id"]).status == 200

    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["price_locked_at_fill_percent"], state["current_unit_price"]) == (
        5,
        50,
        90_000,
    )
    assert state["status"] == "moq_reached"
    assert len(world.events("groupbuy.session.moq_reached")) == 1


def test_a_payment_whose_raise_crashed_is_raised_by_the_claim(world):
    """GB-6, GB-9, issue 8: nothing after the crashed raise but the deadline: the claim decides from the summed
    shards, succeeds, locks the tier and publishes moq_reached once."""
    session = world.session(target_quantity=20, moq=10)
    buyer_of_ten = world.joined(buyer(1), session["id"], quantity=5)
    other = world.joined(buyer(2), session["id"], quantity=5)
    assert world.pay(buyer_of_ten).status == 200
    with mock.patch.object(FillRaiser, "after_payment", lambda self, read: None):
        assert world.pay(other).status == 200

    assert world.step("ClaimSessionFunction", session_id=session["id"])["outcome"] == "succeed"

    item = world.session_item(session["id"])
    assert (item["status"], item["price_locked_at_fill_percent"], item["final_unit_price"]) == ("closing", 50, 90_000)
    assert item["moq_reached_at"] is not None
    assert len(world.events("groupbuy.session.moq_reached")) == 1


def test_a_claim_decided_on_a_read_a_payment_overtook_decides_again_on_the_paid_quantity_that_stays(world):
    """GB-9, GB-6, issue 8. The claim read the shards with 5 paid (below the MOQ of 10); a payment of 5 more lands
    before it commits (its Lambda died before raising it on the session item, so that item is as the claim read
    it). The claim closes every shard only while each still holds the paid count it read, so it is refused and
    decided again: the session succeeds on 10 paid, and no payment lands after the close."""
    session = world.session(target_quantity=20, moq=10)
    first = world.joined(buyer(1), session["id"], quantity=5)
    second = world.joined(buyer(2), session["id"], quantity=5)
    assert world.pay(first).status == 200
    before_second = groupbuy_repository().get_session(session["id"])
    with mock.patch.object(FillRaiser, "after_payment", lambda self, read: None):  # not raised: META as read
        assert world.pay(second).status == 200
    reads = [before_second]
    real = GroupBuyRepository.session_to_change

    def first_read_stale(self, session_id, consistent=True):
        return reads.pop() if reads else real(self, session_id, consistent=consistent)

    with mock.patch.object(GroupBuyRepository, "session_to_change", first_read_stale):
        assert world.step("ClaimSessionFunction", session_id=session["id"])["outcome"] == "succeed"

    assert reads == []  # the stale read was used, and refused
    assert all(not shard["open"] for shard in world.capacity_shards(session["id"]))
    assert world.session_item(session["id"])["status"] == "closing"


def test_a_session_stored_before_the_shards_is_shown_as_stored_and_sharded_by_its_next_join(world):
    """Issue 8 (migration). A session item with its counters on it and no shards (as stored before this change):
    read as it is; the next join gives it shard 00 holding those counters (under the item's version: of four
    buyers joining at once, one shards it and none is refused for it) and joins on it; a payment and a leave of an
    earlier buyer (no shard recorded) count on it too."""
    session = world.session(target_quantity=20, moq=10)
    early = world.joined(buyer(1), session["id"], quantity=3)
    _store_as_before_the_shards(world, session["id"], reserved=3, participants=1)
    assert world.get_session(session["id"])["reserved_quantity"] == 3

    with (
        mock.patch.object(DynamoHandler, "call_action", _serialised(DynamoHandler.call_action)),
        ThreadPoolExecutor(max_workers=4) as pool,
    ):  # four buyers at once: one shards it, the others read it again and join on the shard
        joins = list(pool.map(lambda n: _join(principal_from_claims(buyer(n)), session["id"], 1), range(2, 6)))
    assert all(not isinstance(joined, str) for joined in joins), joins

    assert _shares(world, session["id"]) == [(13, 7, 0)]
    item = world.session_item(session["id"])
    assert (item["shard_count"], "reserved_quantity" in item) == (1, False)
    assert world.pay(early).status == 200
    assert world.leave(buyer(1), session["id"]).status == 200
    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["reserved_quantity"], state["participant_count"]) == (0, 4, 4)


def _store_as_before_the_shards(world, session_id, *, reserved, participants):
    """Rewrite the session as an older release stored it: counters on the item, no shard, no shard_count."""
    table = boto3.resource("dynamodb").Table(world.aws.tables["GroupBuyTable"])
    for shard in world.capacity_shards(session_id):
        table.delete_item(Key={"pk": shard["pk"], "sk": shard["sk"]})
    for participation in world.items("GroupBuyTable", f"SESSION#{session_id}"):
        if participation["sk"].startswith("PART#"):
            table.update_item(
                Key={"pk": participation["pk"], "sk": participation["sk"]},
                UpdateExpression="REMOVE #shard",
                ExpressionAttributeNames={"#shard": "shard"},
            )
    table.update_item(
        Key={"pk": f"SESSION#{session_id}", "sk": "META"},
        UpdateExpression="SET paid_quantity = :zero, reserved_quantity = :r, participant_count = :p REMOVE shard_count",
        ExpressionAttributeValues={":zero": 0, ":r": reserved, ":p": participants},
    )
