"""A flash sale on one session (issue 8; GB-3, GB-6, PAY-3, PAY-7, SYS-6): the session's counters move by
conditional atomic ADD, so buyers joining and paying at once do not refuse each other; a conflict DynamoDB
reports on a hot item is retried with backoff, and one left over is a 503 the client (or Xendit) retries,
never a 409 the buyer did not cause."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
from moto.dynamodb.responses import DynamoHandler

from emulator.moto_patches import _serialised
from patungan.adapters.dynamodb import Transaction
from patungan.composition import groupbuy_repository, groupbuy_service, payment_service
from patungan.core.auth import principal_from_claims
from patungan.core.errors import ConcurrentUpdate, DomainError
from patungan.groupbuy.models import JoinInput
from patungan.ledger import accounts
from patungan.payments.models import InvoiceCallback
from tests.support.conflicts import transaction_conflicts
from tests.support.groupbuy import buyer

# The issue asks for 500; moto deep-copies a table on every transaction, so 500 buyers take over 20 minutes
# here. 100 keep every interleaving (joins, payments, Xendit's retries, MOQ and tier crossings) in minutes.
BUYERS = 100


def _until_not_503(request):
    """What a client does with a 503 (and Xendit with any non-200): ask again. How many 503s it saw, too."""
    retried = 0
    while (response := request()).status == 503:
        assert response.body["error"]["code"] == "concurrent_update", response.body
        retried += 1
    return response, retried


@pytest.mark.timeout(900)
def test_a_hundred_buyers_join_and_pay_under_transaction_conflicts_and_each_is_settled_once(world):
    """Defect 'no 409 storms': TransactionConflict injected at random on every transaction touching the session
    item or a balance item; joins and PAID callbacks interleave (Xendit retrying some). Every buyer joins and
    pays without a 409, the quantities are exact, MOQ is reached once, the price locked at full fill, and the
    settlement gives each buyer one order and their exact tier refund, with the ledger balanced."""
    rng = random.Random(8)
    quantities = {n: rng.randint(1, 3) for n in range(1, BUYERS + 1)}
    target = sum(quantities.values())
    session = world.session(target_quantity=target, moq=target // 2, max_per_buyer=3)
    session_id = session["id"]

    def hot(pk: str, sk: str) -> bool:
        return (pk, sk) == (f"SESSION#{session_id}", "META") or "BALANCE" in sk

    joined, statuses, retried = {}, Counter(), Counter()
    with transaction_conflicts(hot, rate=0.5) as injector:
        for n, quantity in quantities.items():
            response, again = _until_not_503(lambda n=n, quantity=quantity: world.join(buyer(n), session_id, quantity))
            retried["join"] += again
            assert response.status == 201, (n, response.body)
            joined[n] = response.body
            if n % 4 == 0:  # payments arrive while others are still joining, some twice (Xendit retries)
                for m in range(n - 3, n + 1):
                    for _ in range(2 if m % 10 == 0 else 1):
                        response, again = _until_not_503(lambda m=m: world.invoice_callback(joined[m], "PAID"))
                        retried["callback"] += again
                        assert response.status == 200, (m, response.body)
                        statuses[response.body["status"]] += 1
    assert injector.injected > BUYERS // 2  # the conflicts really happened
    assert statuses == {"paid": BUYERS, "duplicate": BUYERS // 10}

    state = world.get_session(session_id)
    assert (state["paid_quantity"], state["reserved_quantity"], state["participant_count"]) == (target, 0, BUYERS)
    assert (state["status"], state["price_locked_at_fill_percent"], state["available_quantity"]) == (
        "moq_reached",
        100,
        0,
    )
    assert len(world.events("groupbuy.session.moq_reached")) == 1

    assert world.settle(session_id) == "succeed"
    orders = [o for o in world.items("OrdersTable", "ORDER#") if o["sk"] == "META"]
    assert sorted(o["user_id"] for o in orders) == sorted(f"buyer-{n}" for n in quantities)
    assert sum(o["lines"][0]["quantity"] for o in orders) == target
    balances = {a["account"]: a["credit"] - a["debit"] for a in world.trial_balance()["accounts"]}
    for n, participation in joined.items():
        expected = (participation["unit_price"] - 80_000) * quantities[n]
        assert balances.get(accounts.buyer_wallet(f"buyer-{n}"), 0) == expected, n
    assert balances[accounts.session_escrow(session_id)] == target * 80_000
    assert world.trial_balance()["balanced"] is True


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
        callback = _paid_callback(world, participation)
        try:
            return payment_service().handle_invoice_callback(callback, callback.model_dump_json().encode())
        except DomainError as exc:
            return exc.code

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


def test_a_payment_decided_on_an_older_read_neither_skips_the_tier_it_crosses_nor_reaches_the_moq_twice(world):
    """PAY-7, GB-6, issue 8. No version check stops a capture computed from a session read before another
    payment landed: its condition pins the paid quantity to the band (between MOQ and tier thresholds) it
    computed for, so it is refused and decided again from a fresh read."""
    session = world.session(target_quantity=20, moq=10, max_per_buyer=5)
    for n in range(4):
        world.joined(buyer(n), session["id"], quantity=5)
    repository = groupbuy_repository()

    def capture(read):
        tx = Transaction()
        repository.capture(tx, read, 5, "2026-11-30T01:00:00Z")
        tx.commit()

    before_any = repository.get_session(session["id"])
    capture(before_any)  # paid 5: below the MOQ and the first tier
    with pytest.raises(ConcurrentUpdate):
        capture(before_any)  # thinks paid goes 0 -> 5, but it would go 5 -> 10: the MOQ and the 50 % tier
    before_moq = repository.get_session(session["id"])
    capture(before_moq)
    with pytest.raises(ConcurrentUpdate):
        capture(before_moq)  # would reach the MOQ a second time
    capture(repository.get_session(session["id"]))

    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["reserved_quantity"]) == (15, 5)
    assert (state["status"], state["price_locked_at_fill_percent"], state["moq_reached_at"]) == (
        "moq_reached",
        50,
        "2026-11-30T01:00:00Z",
    )
