"""A flash sale on one session (issue 8; GB-3, GB-6, PAY-3, PAY-7, SYS-6): the session's counters move by
conditional atomic ADD, so buyers joining and paying at once do not refuse each other; a conflict DynamoDB
reports on a hot item is retried with backoff, and one left over is a 503 the client (or Xendit) retries,
never a 409 the buyer did not cause."""

from __future__ import annotations

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
from patungan.payments.models import InvoiceCallback
from tests.support.groupbuy import buyer


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
