"""Issue 6: settlement never drops a buyer or leaves money behind (defect 1), nobody is charged above what
they paid (defect 3, PAY-7), near-expiry tops up before reminding and reminds once (defect 6, GB-12,
GB-13), MOQ is reached once and never left (defect 9, GB-2, GB-6).

Races are made deterministic: the conflicting write happens exactly between reading a participant and
committing its settlement transaction (a hook in the DynamoDB client)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from patungan.adapters import dynamodb
from patungan.adapters.dynamodb import Transaction
from patungan.core.errors import ConcurrentUpdate, SettlementInvariantViolated
from patungan.core.observability import logger, metrics
from patungan.groupbuy.settlement import SettlementService
from patungan.ledger import accounts
from tests.integration.test_groupbuy_settlement import TIERS, Crash, balance, fill_in_four_tiers
from tests.support.groupbuy import ADMIN, WAREHOUSE, buyer
from tests.support.lambdas import call_api
from tests.support.ledger import adjust_wallet

Items = list[dict[str, Any]]


def _writes(items: Items, op: str) -> Iterator[dict[str, Any]]:
    return (item[op] for item in items if op in item)


def settles_wallet_of(user_id: str) -> Callable[[Items], bool]:
    """The settlement transaction that credits ``user_id``'s wallet with a tier refund."""
    wallet = accounts.buyer_wallet(user_id)

    def matches(items: Items) -> bool:
        return writes("tier_refund")(items) and any(
            u["Key"]["pk"]["S"].endswith(wallet) for u in _writes(items, "Update")
        )

    return matches


def writes(type_: str) -> Callable[[Items], bool]:
    """The transaction that writes an outbox event or a ledger movement of ``type_``."""
    return lambda items: any(p["Item"].get("type", {}).get("S") == type_ for p in _writes(items, "Put"))


@contextmanager
def conflicting_writer(matches: Callable[[Items], bool], write: Callable[[], None], times: int = 1) -> Iterator[None]:
    """Before each of the first ``times`` transactions ``matches`` picks, another writer changes the same data
    (``write``) and DynamoDB cancels the transaction with ``TransactionConflict``, as it does for real."""
    real_client, fired = dynamodb.client, []

    class Racing:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def transact_write_items(self, TransactItems: Items) -> Any:
            if len(fired) < times and matches(TransactItems):
                fired.append(TransactItems)
                write()
                reasons = [{"Code": "None"}] * len(TransactItems)
                reasons[0] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
                raise ClientError(
                    {
                        "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                        "CancellationReasons": reasons,
                    },
                    "TransactWriteItems",
                )
            return self.inner.transact_write_items(TransactItems=TransactItems)

    def client(name: str) -> Any:
        return Racing(real_client(name)) if name == "dynamodb" else real_client(name)

    with mock.patch.object(dynamodb, "client", client):
        yield
    assert fired, "the race never happened"


@contextmanager
def crash_at(matches: Callable[[Items], bool]) -> Iterator[None]:
    """The Lambda dies at the first transaction ``matches`` picks, before it commits."""
    original = Transaction.commit

    def commit(tx: Transaction) -> None:
        if matches([item.request for item in tx.items]):
            raise Crash("crashed before the transaction")
        original(tx)

    with mock.patch.object(Transaction, "commit", commit):
        yield


def goodwill_credit(user_id: str, amount: int) -> Callable[[], None]:
    """An admin credits the buyer's wallet at that very moment: a real concurrent write (WAL-3)."""

    def write() -> None:
        response = adjust_wallet(user_id, {"amount": amount, "reason": "goodwill"}, ADMIN)
        assert response.status == 201, response.body

    return write


def purchase_orders(world) -> list[dict[str, Any]]:
    return call_api("ListPurchaseOrdersFunction", "GET", "/v1/purchase-orders", claims=WAREHOUSE).body["items"]


def receive_all(world) -> None:
    [po] = purchase_orders(world)
    response = call_api(
        "ReceivePurchaseOrderFunction",
        "POST",
        f"/v1/purchase-orders/{po['id']}/receive",
        resource="/v1/purchase-orders/{id}/receive",
        path_parameters={"id": po["id"]},
        body={"received_quantity": po["quantity"]},
        claims=WAREHOUSE,
    )
    assert response.status == 200, response.body


# ---- defect 1: a buyer silently dropped from settlement (GB-10)
def test_defect1_a_buyer_whose_settlement_meets_a_concurrent_wallet_write_is_retried_not_dropped(world):
    session, _ = fill_in_four_tiers(world)

    with conflicting_writer(settles_wallet_of("buyer-3"), goodwill_credit("buyer-3", 1_000)):
        assert world.settle(session["id"]) == "succeed"

    [order] = world.orders(buyer(3))
    assert (order["total"], order["lines"][0]["unit_price"]) == (400_000, 80_000)
    [mine] = world.my_participations(buyer(3))
    assert (mine["status"], mine["tier_refund_amount"]) == ("ordered", 50_000)
    assert world.wallet(buyer(3)) == 50_000 + 1_000
    assert [world.wallet(buyer(n)) for n in (1, 2, 4)] == [100_000, 100_000, 50_000]
    assert world.get_session(session["id"])["status"] == "in_production"
    [po] = purchase_orders(world)
    assert po["quantity"] == 20
    assert balance(world, accounts.session_escrow(session["id"])) == 20 * 80_000


def test_defect1_a_participant_that_keeps_conflicting_fails_the_page_instead_of_being_skipped(world):
    """Retries are bounded: then the step fails (the state machine retries it later), it never moves on."""
    session, _ = fill_in_four_tiers(world)
    world.step("ClaimSessionFunction", session_id=session["id"])

    with (
        conflicting_writer(settles_wallet_of("buyer-2"), lambda: None, times=5),
        pytest.raises(ConcurrentUpdate),
    ):
        world.step("SettleSessionPageFunction", session_id=session["id"], cursor=None)
    assert world.my_participations(buyer(2))[0]["status"] == "paid"

    world.settle(session["id"])  # the state machine's retry, once the other writer is gone
    assert [world.my_participations(buyer(n))[0]["status"] for n in range(1, 5)] == ["ordered"] * 4
    assert world.get_session(session["id"])["status"] == "in_production"


def test_defect1_success_is_refused_loudly_while_a_paid_participant_has_no_order(world):
    session, paid = fill_in_four_tiers(world)
    world.step("ClaimSessionFunction", session_id=session["id"])
    dropped = paid[1]["id"]
    settle = SettlementService._settle_participant

    def dropping(self, session, participation):  # what the old code did on a conflict: move on
        return False if participation.id == dropped else settle(self, session, participation)

    with mock.patch.object(SettlementService, "_settle_participant", dropping):
        world._pages("SettleSessionPageFunction", session["id"])

    with (
        mock.patch.object(logger, "critical", wraps=logger.critical) as critical,
        mock.patch.object(metrics, "add_metric", wraps=metrics.add_metric) as metric,
        pytest.raises(SettlementInvariantViolated),
    ):
        world.step("FinalizeSessionSuccessFunction", session_id=session["id"])

    [(_, logged)] = [(c.args, c.kwargs["extra"]) for c in critical.call_args_list]
    assert (logged["paid_quantity"], logged["ordered_quantity"], logged["participants_still_paid"]) == (
        20,
        15,
        [dropped],
    )
    assert "SettlementInvariantViolations" in [c.kwargs["name"] for c in metric.call_args_list]
    assert world.get_session(session["id"])["status"] == "closing"
    assert purchase_orders(world) == []

    world._pages("SettleSessionPageFunction", session["id"])  # the page re-run settles the one left
    world.step("FinalizeSessionSuccessFunction", session_id=session["id"])
    assert world.get_session(session["id"])["status"] == "succeeded"
    assert world.wallet(buyer(2)) == 100_000


def test_defect1_completion_is_refused_while_escrow_still_holds_a_payment(world):
    session, paid = fill_in_four_tiers(world)
    world.settle(session["id"])
    receive_all(world)
    kept = paid[2]["id"]
    release = SettlementService._release

    def skipping(self, participation, payee):
        return False if participation.id == kept else release(self, participation, payee)

    world.step("MarkSessionDeliveredFunction", session_id=session["id"])
    with mock.patch.object(SettlementService, "_release", skipping):
        world._pages("ReleaseEscrowPageFunction", session["id"])
    with pytest.raises(SettlementInvariantViolated):
        world.step("CompleteEscrowReleaseFunction", session_id=session["id"])
    assert world.get_session(session["id"])["status"] == "delivered"
    assert world.events("escrow.released") == []

    world.release_escrow(session["id"])
    assert world.get_session(session["id"])["status"] == "completed"
    assert balance(world, accounts.session_escrow(session["id"])) == 0
    [released] = world.events("escrow.released")
    assert released["data"]["amount"] == 1_600_000


def test_defect1_a_late_payment_refund_still_in_flight_does_not_block_completion(world):
    """The guard of the empty-escrow check: money of a refund on its way out is not a leak."""
    session = world.session(moq=1, target_quantity=20, tiers=TIERS)
    world.pay(world.joined(buyer(1), session["id"], quantity=2))
    late = world.joined(buyer(2), session["id"], quantity=1)
    world.step("ClaimSessionFunction", session_id=session["id"])
    world.pay(late)  # after the claim: captured into escrow, its refund requested, not sent yet
    world._pages("SettleSessionPageFunction", session["id"])
    world.step("FinalizeSessionSuccessFunction", session_id=session["id"])
    world.step("RaisePurchaseOrderFunction", session_id=session["id"])
    receive_all(world)

    world.release_escrow(session["id"])

    assert world.get_session(session["id"])["status"] == "completed"
    assert balance(world, accounts.session_escrow(session["id"])) == 100_000  # the late payment, going back
    [released] = world.events("escrow.released")
    assert released["data"]["amount"] == 200_000


def test_defect1_a_late_payment_landing_in_escrow_during_the_release_is_retried_and_left_for_its_refund(world):
    """The conflicting writer is real: Xendit's PAID for an expired invoice lands in the same escrow exactly
    while a release commits. The release is retried in place; the late money stays for its refund."""
    session = world.session(moq=1)
    world.pay(world.joined(buyer(1), session["id"], quantity=2))
    late = world.joined(buyer(2), session["id"])
    world.settle(session["id"])
    receive_all(world)
    world.step("MarkSessionDeliveredFunction", session_id=session["id"])

    def late_paid() -> None:
        assert world.invoice_callback(late).status == 200

    with conflicting_writer(writes("escrow_release"), late_paid):
        world.release_escrow(session["id"])

    assert world.get_session(session["id"])["status"] == "completed"
    assert balance(world, accounts.factory_payable(world.factory_id)) == 200_000
    assert balance(world, accounts.session_escrow(session["id"])) == 100_000
    assert world.refund_of(late)["reason"] == "late_payment"


# ---- defect 3: the final price can exceed what a buyer paid (PAY-7)
def test_defect3_a_paid_buyer_leaving_never_raises_the_price_above_what_others_paid(world):
    session = world.session(moq=5, target_quantity=20, tiers=[{"min_fill_percent": 50, "unit_price": 90_000}])
    first, second = (world.joined(buyer(n), session["id"], quantity=5) for n in (1, 2))
    world.pay(first)
    world.pay(second)  # fill 50 %: 90 000
    third = world.joined(buyer(3), session["id"], quantity=2)
    world.pay(third)
    assert third["unit_price"] == 90_000

    assert world.leave(buyer(1), session["id"]).status == 200  # fill back to 35 %
    state = world.get_session(session["id"])
    assert (state["paid_quantity"], state["current_unit_price"], state["price_locked_at_fill_percent"]) == (
        7,
        90_000,
        50,
    )
    assert world.joined(buyer(4), session["id"], quantity=1)["unit_price"] == 90_000

    assert world.settle(session["id"]) == "succeed"

    assert world.get_session(session["id"])["final_unit_price"] == 90_000
    for who, participation in ((2, second), (3, third)):
        [order] = world.orders(buyer(who))
        assert order["total"] <= participation["amount"]
    assert [o["total"] for o in world.orders(buyer(2))] == [450_000]
    assert [o["total"] for o in world.orders(buyer(3))] == [180_000]
    assert (world.wallet(buyer(2)), world.wallet(buyer(3))) == (50_000, 0)
    assert balance(world, accounts.session_escrow(session["id"])) == 7 * 90_000 + 500_000  # + the leaver's refund


# ---- defect 6: near expiry (GB-12, GB-13)
def test_defect6_a_failing_reminder_walk_does_not_skip_the_top_up_and_a_retry_reminds_nobody_twice(world):
    session = world.session(moq=10, target_quantity=20, tiers=TIERS)
    for n in (1, 2):
        world.pay(world.joined(buyer(n), session["id"], quantity=4))
    for n in (3, 4):
        world.joined(buyer(n), session["id"])

    with crash_at(writes("groupbuy.participant.payment_reminder")), pytest.raises(Crash):
        world.step("SessionNearExpiryFunction", session_id=session["id"])
    assert world.get_session(session["id"])["platform_topup_quantity"] == 2

    retried = world.step("SessionNearExpiryFunction", session_id=session["id"])
    again = world.step("SessionNearExpiryFunction", session_id=session["id"])

    assert (retried["topped_up"], retried["reminded"]) == (0, 2)
    assert (again["topped_up"], again["reminded"]) == (0, 0)
    reminded = [e["data"]["user_id"] for e in world.events("groupbuy.participant.payment_reminder")]
    assert sorted(reminded) == ["buyer-3", "buyer-4"]
    assert len(world.events("groupbuy.session.topped_up")) == 1


def test_defect6_a_buyer_who_pays_during_the_reminder_walk_is_not_reminded(world):
    session = world.session(moq=10, target_quantity=20, tiers=TIERS)
    paying, waiting = (world.joined(buyer(n), session["id"]) for n in (1, 2))

    with conflicting_writer(writes("groupbuy.participant.payment_reminder"), lambda: world.pay(paying)):
        result = world.step("SessionNearExpiryFunction", session_id=session["id"])

    assert result["reminded"] == 1
    [reminder] = world.events("groupbuy.participant.payment_reminder")
    assert reminder["data"]["participant_id"] == waiting["id"]


def test_defect6_nobody_is_reminded_to_pay_into_a_cancelled_session(world):
    session = world.session()
    world.joined(buyer(1), session["id"])
    world.cancel(session["id"])

    assert world.step("SessionNearExpiryFunction", session_id=session["id"]) == {
        "session_id": session["id"],
        "reminded": 0,
        "topped_up": 0,
    }
    assert world.events("groupbuy.participant.payment_reminder") == []


# ---- defect 9: MOQ reached once, never left (GB-2, GB-6); the late payment path
def test_defect9_moq_reached_is_published_once_and_a_paid_leave_does_not_go_back_to_active(world):
    session = world.session(moq=2)
    world.pay(world.joined(buyer(1), session["id"], quantity=2))
    reached_at = world.get_session(session["id"])["moq_reached_at"]
    assert reached_at is not None

    world.leave(buyer(1), session["id"])
    assert world.get_session(session["id"])["status"] == "moq_reached"
    world.pay(world.joined(buyer(2), session["id"], quantity=2))

    state = world.get_session(session["id"])
    assert (state["status"], state["moq_reached_at"], state["paid_quantity"]) == ("moq_reached", reached_at, 2)
    assert len(world.events("groupbuy.session.moq_reached")) == 1


def test_defect9_a_session_that_fell_below_the_moq_after_a_leave_fails_at_the_deadline(world):
    session = world.session(moq=2)
    world.pay(world.joined(buyer(1), session["id"], quantity=2))
    world.leave(buyer(1), session["id"])
    assert world.get_session(session["id"])["status"] == "moq_reached"  # never back to active (GB-2)

    assert world.settle(session["id"]) == "fail"  # the claim decides on the paid quantity
    assert world.get_session(session["id"])["status"] == "failed"


def test_defect9_a_session_back_below_the_moq_can_still_be_topped_up(world):
    """It stays ``moq_reached`` (GB-2), yet the near-expiry top-up still fills what the leaver took (GB-12)."""
    session = world.session(moq=10, target_quantity=20, tiers=TIERS)
    for n, quantity in ((1, 4), (2, 4), (3, 2)):
        world.pay(world.joined(buyer(n), session["id"], quantity=quantity))
    world.leave(buyer(3), session["id"])

    assert world.step("SessionNearExpiryFunction", session_id=session["id"])["topped_up"] == 2
    assert world.settle(session["id"]) == "succeed"
    assert len(world.events("groupbuy.session.moq_reached")) == 1


def test_defect9_a_payment_after_the_claim_no_longer_counts_as_a_participant(world):
    session = world.session()
    joined = world.joined(buyer(1), session["id"])
    assert world.get_session(session["id"])["participant_count"] == 1
    world.step("ClaimSessionFunction", session_id=session["id"])

    world.pay(joined)

    state = world.get_session(session["id"])
    assert (state["participant_count"], state["reserved_quantity"], state["paid_quantity"]) == (0, 0, 0)
    assert [p["status"] for p in world.my_participations(buyer(1))] == ["expired"]
    assert world.refund_of(joined)["reason"] == "late_payment"
