"""The confirm saga (issue 10; CHK-2..10, ORD-1, ORD-3, PAY-7, WAL-1): confirm's synchronous refusals, the
steps as Step Functions calls them (each run again after a crash), the invoice webhook racing the payment
window, wallet and cash on delivery. Real moto tables, the real cart, stock, payments, ledger and the local
Xendit; the pricing engine is replaced by a plain quote of the cart at catalog prices (its own tests cover it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
import requests

from patungan import composition
from patungan.adapters.dynamodb import Transaction
from patungan.checkout.cart import CartItemInput, Shopper
from patungan.checkout.confirm import ConfirmRequest, ConfirmService
from patungan.checkout.promotions import CouponNotEligible, PromotionInput
from patungan.core.auth import Principal, Role
from patungan.core.clock import FixedClock, parse_iso, to_iso
from patungan.core.config import get_settings
from patungan.core.errors import BadRequest, Conflict, DependencyUnavailable, NotFound, RateLimited
from patungan.inventory.stock_models import StockKey, StockLine
from patungan.ledger import accounts
from patungan.ledger.models import AdjustmentInput
from patungan.ledger.repository import ledger
from patungan.ledger.service import ledger_service
from tests.support.checkout import (
    SHIPPING,
    TAX,
    CatalogPricing,
    OrderPerLinePricing,
    Started,
    Tokens,
    confirm_service,
)
from tests.support.groupbuy import FAKE_SECRET_KEY
from tests.support.lambdas import call_api, claims, invoke, load_event
from tests.support.stock import ADDRESS, receive, set_base_price, stock_world

BUYER = Shopper(customer_id="buyer-1")
ADMIN = Principal("admin-1", frozenset({Role.ADMIN}))


@dataclass
class Retail:
    world: Any
    stock: Any
    pricing: CatalogPricing
    confirm: ConfirmService
    started: Started
    tokens: Tokens

    @property
    def saga(self):
        return composition.checkout_saga()

    def preview(self, shopper: Shopper = BUYER) -> str:
        quote = self.pricing.quote(shopper, None, composition.cart_service().get_for(shopper))
        composition.checkout_repository().remember_preview(shopper.owner_key, quote)
        return quote.prices_validated_at

    def confirm_request(self, method: str = "invoice", shopper: Shopper = BUYER) -> ConfirmRequest:
        return ConfirmRequest(
            address=ADDRESS,
            shipping_method_id="jne:reg",
            payment_method=method,
            prices_validated_at=self.preview(shopper),
        )

    def confirm_now(self, method: str = "invoice", key: str = "key-1", shopper: Shopper = BUYER) -> str:
        return self.confirm.confirm(shopper, self.confirm_request(method, shopper), key).checkout_id

    def run_to_payment(self, checkout_id: str) -> dict[str, Any]:
        self.saga.reserve(checkout_id)
        self.saga.place_orders(checkout_id)
        return self.saga.create_payment(checkout_id)

    def checkout(self, checkout_id: str):
        return composition.checkout_repository().get(checkout_id)

    def reserved(self) -> int:
        return (
            composition.stock_service()
            .stock.get(StockKey(self.stock.warehouse.id, self.stock.product.id, None))
            .reserved
        )

    def orders(self, checkout_id: str):
        return [composition.order_service().repository.get(i) for i in self.checkout(checkout_id).order_ids]

    def payment(self, checkout_id: str):
        return composition.payment_service().repository.find_payment(self.checkout(checkout_id).retail_payment_id)

    def pay_and_call_back(self, checkout_id: str) -> str:
        payment = self.payment(checkout_id)
        paid = requests.post(
            f"{self.world.xendit_url}/simulate/invoices/{payment.invoice_id}/pay",
            json={"payment_method": "BANK_TRANSFER"},
            timeout=5,
        )
        assert paid.status_code == 200, paid.text
        response = self.world.invoice_callback({"payment": payment.model_dump()})
        assert response.status == 200, response.body
        return response.body["status"]

    def set_price(self, price: int) -> None:
        set_base_price(self.stock.product.id, price)


@pytest.fixture
def retail(world) -> Retail:
    stock = stock_world()
    receive((stock.warehouse.id, stock.product.id, None), 10)
    composition.cart_service().add_item(BUYER, CartItemInput(product_id=stock.product.id, quantity=2))
    pricing = CatalogPricing(stock.warehouse.id)
    started = Started()
    confirm = confirm_service(pricing, started)
    tokens = Tokens()
    composition.checkout_saga().task_tokens = tokens
    return Retail(world, stock, pricing, confirm, started, tokens)


def test_invoice_checkout_is_paid_for_its_total_and_answers_the_waiting_saga(retail):
    """CHK-5, PAY-7: the invoice is for subtotal + shipping + tax, not the subtotal; the webhook's PAID makes the
    checkout and its order paid in one transaction and succeeds the task the saga waits on."""
    checkout_id = retail.confirm_now()
    assert retail.checkout(checkout_id).status == "pending"
    assert retail.reserved() == 2  # held before the 202 (CHK-2)
    assert retail.run_to_payment(checkout_id)["status"] == "awaiting_payment"
    payment = retail.payment(checkout_id)
    assert payment.amount == 2 * 10_000 + SHIPPING + TAX
    invoice = requests.get(
        f"{retail.world.xendit_url}/v2/invoices/{payment.invoice_id}", auth=(FAKE_SECRET_KEY, ""), timeout=5
    ).json()
    assert invoice["amount"] == payment.amount
    [order] = retail.orders(checkout_id)
    assert (order.status, order.shipping_method_id, order.address["postal_code"]) == (
        "pending_payment",
        "jne:reg",
        ADDRESS["postal_code"],
    )
    retail.saga.await_payment(checkout_id, "token-1")

    assert retail.pay_and_call_back(checkout_id) == "paid"

    assert retail.checkout(checkout_id).status == "paid"
    assert [o.status for o in retail.orders(checkout_id)] == ["paid"]
    assert retail.tokens.succeeded == [("token-1", {"checkout_id": checkout_id, "status": "paid"})]
    view = retail.confirm.get(BUYER, checkout_id)
    assert (view.status, [o.status for o in view.orders], view.payment.amount) == ("paid", ["paid"], payment.amount)
    with pytest.raises(NotFound):  # another buyer's checkout does not exist for them
        retail.confirm.get(Shopper(customer_id="buyer-2"), checkout_id)
    retail.saga.hold_for_fulfilment(checkout_id)
    assert retail.reserved() == 2
    [reservation_id] = retail.checkout(checkout_id).reservation_ids
    assert composition.stock_service().stock.get_reservation(reservation_id).expires_at is None  # until shipped
    assert ledger().account_balance(f"escrow:checkout:{checkout_id}").balance != 0


def test_the_same_key_and_cart_is_the_same_checkout_a_changed_cart_a_new_one(retail):
    """CHK-6: a retried confirm answers the first checkout (one reservation); while it is in flight another
    confirm of the buyer is 429; once it is past, the same key with a changed cart is a new checkout."""
    first = retail.confirm_now()
    assert retail.confirm_now() == first
    assert retail.reserved() == 2
    assert retail.started.executions == [first, first]
    with pytest.raises(RateLimited):
        retail.confirm_now(key="key-2")
    retail.run_to_payment(first)  # no longer in flight
    composition.cart_service().add_item(BUYER, CartItemInput(product_id=retail.stock.product.id, quantity=1))
    second = retail.confirm_now()
    assert second != first


def test_a_price_rise_after_the_preview_refuses_the_confirm_and_holds_nothing(retail):
    """CHK-4: the buyer never pays more than the preview showed: 409 price_changed naming the line, nothing
    reserved, no checkout, no payment."""
    request = ConfirmRequest(
        address=ADDRESS, shipping_method_id="jne:reg", payment_method="invoice", prices_validated_at=retail.preview()
    )
    retail.set_price(12_000)
    with pytest.raises(Conflict) as refused:
        retail.confirm.confirm(BUYER, request, "key-1")
    assert refused.value.code == "price_changed"
    assert refused.value.details == [
        {"product_id": retail.stock.product.id, "variant_id": None, "previous_unit_price": 10_000, "unit_price": 12_000}
    ]
    assert retail.reserved() == 0
    assert retail.started.executions == []
    # The lock is released: a fresh preview confirms at once.
    assert retail.confirm_now()


def test_a_stale_preview_and_an_empty_cart_are_refused(retail):
    request = ConfirmRequest(
        address=ADDRESS,
        shipping_method_id="jne:reg",
        payment_method="invoice",
        prices_validated_at=to_iso(composition.CLOCK.now() - timedelta(minutes=11)),
    )
    with pytest.raises(Conflict) as stale:
        retail.confirm.confirm(BUYER, request, "key-1")
    assert stale.value.code == "prices_stale"
    with pytest.raises(BadRequest) as empty:
        retail.confirm.confirm(Shopper(customer_id="buyer-2"), request, "key-1")
    assert empty.value.code == "cart_empty"


def test_inventory_down_at_confirm_is_503_and_changes_nothing(retail, monkeypatch):
    """CHK-2: fail closed; no fallback figure, no checkout, the lock given back."""

    def down(*args: Any, **kwargs: Any):
        raise DependencyUnavailable("the warehouse did not answer")

    monkeypatch.setattr(composition.stock_service(), "reserve", down)
    with pytest.raises(DependencyUnavailable):
        retail.confirm_now()
    assert retail.started.executions == []
    monkeypatch.undo()
    assert retail.confirm_now()  # not locked out by the failed attempt


def test_stock_short_is_409_naming_the_line(retail):
    """CHK-2: the cart's figure is not binding; another buyer's reservation between preview and confirm is."""
    composition.stock_service().reserve(
        "chk_other", [StockLine(retail.stock.product.id, None, 9)], warehouse_id=retail.stock.warehouse.id
    )
    with pytest.raises(Conflict) as short:
        retail.confirm_now()
    assert short.value.code == "insufficient_stock"
    assert short.value.details[0]["product_id"] == retail.stock.product.id
    assert retail.reserved() == 9


def test_every_step_run_again_after_a_crash_changes_nothing_more(retail, monkeypatch):
    """A crash after each step, then Step Functions' retry: one reservation, one order, one payment, one
    invoice at Xendit (found by its external id, not opened twice), even when the crash came between opening
    the invoice and recording it."""
    checkout_id = retail.confirm_now()
    saga = retail.saga
    saga.reserve(checkout_id)
    saga.reserve(checkout_id)
    saga.place_orders(checkout_id)
    saga.place_orders(checkout_id)
    real_attach = saga.payments.attach_invoice

    def crash(*args: Any, **kwargs: Any):
        raise RuntimeError("crashed after Xendit opened the invoice")

    monkeypatch.setattr(saga.payments, "attach_invoice", crash)
    with pytest.raises(RuntimeError):
        saga.create_payment(checkout_id)
    monkeypatch.setattr(saga.payments, "attach_invoice", real_attach)
    assert saga.create_payment(checkout_id)["status"] == "awaiting_payment"
    assert saga.create_payment(checkout_id)["status"] == "awaiting_payment"
    assert retail.reserved() == 2
    assert len(retail.world.items("OrdersTable", "ORDER#")) == 1
    invoices = requests.get(
        f"{retail.world.xendit_url}/v2/invoices",
        params={"external_id": retail.payment(checkout_id).id},
        auth=(FAKE_SECRET_KEY, ""),
        timeout=5,
    ).json()
    assert len(invoices) == 1


def test_unpaid_checkout_expires_gives_stock_back_and_a_late_payment_is_refunded(retail):
    """ORD-3: the payment window passed: checkout and orders expired, stock released, invoice expired at Xendit.
    Money that arrives after that goes back (a refund), never reopens the checkout."""
    checkout_id = retail.confirm_now()
    retail.run_to_payment(checkout_id)
    retail.saga.await_payment(checkout_id, "token-1")
    assert retail.saga.expire(checkout_id)["status"] == "expired"
    assert retail.saga.expire(checkout_id)["status"] == "expired"  # run again: nothing more
    assert retail.checkout(checkout_id).status == "expired"
    assert [o.status for o in retail.orders(checkout_id)] == ["expired"]
    assert retail.reserved() == 0
    assert retail.payment(checkout_id).status == "expired"

    callback = retail.world.invoice_callback({"payment": retail.payment(checkout_id).model_dump()})
    assert callback.status == 200
    again = retail.world.invoice_callback({"payment": retail.payment(checkout_id).model_dump()})  # Xendit retries
    assert again.status == 200
    assert retail.checkout(checkout_id).status == "expired"
    [refund] = retail.world.items("PaymentsTable", "REFUND#")
    assert (refund["reason"], refund["amount"]) == ("late_payment", retail.payment(checkout_id).amount)
    assert retail.tokens.succeeded == []


def test_payment_racing_the_timeout_has_exactly_one_outcome(retail, monkeypatch):
    """The window closes exactly between the webhook reading the checkout and committing its capture: the
    capture's transaction is refused (the checkout moved on), decided again as too late, and refunded. The
    checkout is expired and only expired; the money is owed back, not kept."""
    checkout_id = retail.confirm_now()
    retail.run_to_payment(checkout_id)
    saga = retail.saga
    real_on_paid = saga.on_paid
    raced: list[str] = []
    timed_out: list[bool] = []

    def on_paid_then_timeout(tx, paid_checkout_id):
        outcome = real_on_paid(tx, paid_checkout_id)
        if not timed_out:  # once: Expire applies Xendit's PAID itself (this hook again, in the same process)
            timed_out.append(True)
            # The saga's Expire task, as Step Functions invokes it (its own function and role).
            raced.append(invoke("ExpireCheckoutFunction", {"checkout_id": paid_checkout_id})["status"])
        return outcome

    monkeypatch.setattr(saga, "on_paid", on_paid_then_timeout)
    retail.pay_and_call_back(checkout_id)
    assert raced == ["expired"]
    assert retail.checkout(checkout_id).status == "expired"
    assert [o.status for o in retail.orders(checkout_id)] == ["expired"]
    [refund] = retail.world.items("PaymentsTable", "REFUND#")
    assert refund["reason"] == "late_payment"


def test_paid_before_the_timeout_step_runs_keeps_the_order(retail):
    checkout_id = retail.confirm_now()
    retail.run_to_payment(checkout_id)
    retail.pay_and_call_back(checkout_id)
    assert retail.saga.expire(checkout_id)["status"] == "paid"
    assert retail.reserved() == 2
    assert retail.world.items("PaymentsTable", "REFUND#") == []


def test_wallet_checkout_is_debited_at_once_and_a_short_wallet_is_refused(retail):
    """WAL-1, CHK-5: the wallet pays the total at once, in the transaction that makes the order paid; a wallet
    short of the total is 409 insufficient_funds before anything is held."""
    with pytest.raises(Conflict) as short:
        retail.confirm_now("wallet")
    assert short.value.code == "insufficient_funds"
    assert retail.reserved() == 0
    ledger_service().adjust_wallet(ADMIN, "buyer-1", AdjustmentInput(amount=50_000, reason="test top-up"))
    checkout_id = retail.confirm_now("wallet", key="key-2")
    assert retail.run_to_payment(checkout_id)["status"] == "paid"
    assert retail.run_to_payment(checkout_id)["status"] == "paid"  # a retry debits nothing more
    assert [o.status for o in retail.orders(checkout_id)] == ["paid"]
    assert ledger().wallet_balance("buyer-1") == 50_000 - (20_000 + SHIPPING + TAX)


def test_cash_on_delivery_creates_no_payment_and_goes_to_processing(retail):
    """CHK-9."""
    checkout_id = retail.confirm_now("cod")
    assert retail.run_to_payment(checkout_id)["status"] == "processing"
    assert [o.status for o in retail.orders(checkout_id)] == ["processing"]
    assert retail.payment(checkout_id) is None
    retail.saga.hold_for_fulfilment(checkout_id)
    assert retail.reserved() == 2


def test_a_price_rise_after_confirm_fails_the_checkout_and_compensates(retail):
    """CHK-4, CHK-5: the saga revalidates; a price that rose fails the step, and the compensation releases the
    stock and shows the buyer why. No order, no payment."""
    checkout_id = retail.confirm_now()
    retail.saga.reserve(checkout_id)
    retail.set_price(15_000)
    with pytest.raises(Conflict):
        retail.saga.place_orders(checkout_id)
    outcome = retail.saga.compensate(checkout_id, {"Error": "PriceChanged", "Cause": "..."})
    assert outcome["status"] == "failed"
    assert retail.saga.compensate(checkout_id, {"Error": "PriceChanged"})["status"] == "failed"
    checkout = retail.checkout(checkout_id)
    assert (checkout.status, checkout.error.code) == ("failed", "price_changed")
    assert retail.reserved() == 0
    assert retail.world.items("OrdersTable", "ORDER#") == []
    assert retail.payment(checkout_id) is None


def test_a_paid_order_cancelled_by_its_buyer_is_refunded_and_its_stock_released(retail):
    """ORD-3: cancelling a paid order refunds it to the channel (the whole invoice); the refund's completion
    makes the order refunded; another buyer cannot cancel it, and an unpaid one is not cancelled here."""
    checkout_id = retail.confirm_now()
    retail.run_to_payment(checkout_id)
    [order] = retail.orders(checkout_id)
    buyer = Principal("buyer-1", frozenset({Role.BUYER}))
    with pytest.raises(Conflict):
        retail.saga.cancel_order(buyer, order.id)  # pending_payment: it expires with its checkout
    retail.pay_and_call_back(checkout_id)
    with pytest.raises(NotFound):
        retail.saga.cancel_order(Principal("buyer-2", frozenset({Role.BUYER})), order.id)

    assert retail.saga.cancel_order(buyer, order.id).status == "cancelled"
    assert retail.saga.cancel_order(buyer, order.id).status == "cancelled"  # again: nothing more
    assert retail.reserved() == 0
    [refund] = retail.world.items("PaymentsTable", "REFUND#")
    assert (refund["reason"], refund["amount"]) == ("order_cancelled", order.total)
    retail.world.deliver_queued("payment.refund_requested", "ProcessRefundsFunction")
    [sent] = retail.world.items("PaymentsTable", "REFUND#")
    assert retail.world.refund_callback(sent).status == 200
    assert [o.status for o in retail.orders(checkout_id)] == ["refunded"]
    assert retail.payment(checkout_id).status == "refunded"


def test_a_wallet_paid_order_cancelled_goes_back_to_the_wallet_at_once_and_ends_refunded(retail):
    """ORD-3 (issue 10 leftover 7): the money is back in the wallet in the cancel's own transaction, so the order
    ends ``refunded`` there, with ``order.cancelled`` and ``order.refunded`` through the outbox (ORD-5); a retry
    refunds nothing twice."""
    ledger_service().adjust_wallet(ADMIN, "buyer-1", AdjustmentInput(amount=50_000, reason="test top-up"))
    checkout_id = retail.confirm_now("wallet")
    retail.run_to_payment(checkout_id)
    [order] = retail.orders(checkout_id)

    cancelled = call_api(
        "CancelOrderFunction", "POST", f"/v1/orders/{order.id}/cancel", claims=claims("buyer-1", "buyer")
    )
    again = call_api("CancelOrderFunction", "POST", f"/v1/orders/{order.id}/cancel", claims=claims("buyer-1", "buyer"))

    assert (cancelled.status, cancelled.body["status"]) == (200, "refunded")
    assert (again.status, again.body["status"]) == (200, "refunded")
    assert [o.status for o in retail.orders(checkout_id)] == ["refunded"]
    assert [e["data"]["order_id"] for e in retail.world.events("order.cancelled")] == [order.id]
    assert [e["data"]["order_id"] for e in retail.world.events("order.refunded")] == [order.id]
    assert ledger().wallet_balance("buyer-1") == 50_000
    assert retail.reserved() == 0


def test_a_payment_before_the_saga_kept_its_token_answers_the_wait_at_once(retail):
    """The webhook can beat the wait: the saga's own wait step sees the checkout paid and succeeds its token."""
    checkout_id = retail.confirm_now()
    retail.run_to_payment(checkout_id)
    retail.pay_and_call_back(checkout_id)
    assert retail.tokens.succeeded == []

    retail.saga.await_payment(checkout_id, "token-late")

    assert retail.tokens.succeeded == [("token-late", {"checkout_id": checkout_id, "status": "paid"})]


def test_a_cart_changed_after_confirm_fails_the_checkout_with_our_own_message(retail):
    """CHK-5: the cart is converted with the orders; one changed since confirm refuses the step, and the
    compensation shows the buyer why, releasing what the checkout held."""
    checkout_id = retail.confirm_now()
    retail.saga.reserve(checkout_id)
    composition.cart_service().add_item(BUYER, CartItemInput(product_id=retail.stock.product.id, quantity=1))
    with pytest.raises(Conflict) as changed:
        retail.saga.place_orders(checkout_id)
    cause = json.dumps({"errorType": "Conflict", "errorMessage": changed.value.message})

    retail.saga.compensate(checkout_id, {"Error": "Conflict", "Cause": cause})

    checkout = retail.checkout(checkout_id)
    assert checkout.status == "failed"
    assert checkout.error.message.startswith("the cart changed since this checkout priced it; ")
    assert retail.reserved() == 0
    assert retail.world.items("OrdersTable", "ORDER#") == []


def test_a_confirm_that_crashed_before_starting_its_saga_is_started_from_its_event(retail, monkeypatch):
    """Issue 10 leftover 5: confirm wrote the checkout (stock held) and died before StartExecution; with no saga
    the checkout stayed ``pending`` until its holds were swept. ``checkout.confirmed`` is written with the
    checkout (outbox), and StartCheckoutSagaFunction starts the saga named by the checkout from it: once, however
    often the event is delivered, and a confirm retried meanwhile starts nothing more."""

    def died(*args: Any) -> bool:
        raise RuntimeError("the confirm's Lambda ended here")

    monkeypatch.setattr(retail.started, "start", died)
    with pytest.raises(RuntimeError):
        retail.confirm_now()
    [confirmed] = retail.world.events("checkout.confirmed")
    checkout_id = confirmed["data"]["checkout_id"]
    assert (retail.checkout(checkout_id).status, retail.reserved()) == ("pending", 2)
    waiting = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}})
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="CheckoutStateMachine", definition=waiting, roleArn="arn:aws:iam::123456789012:role/local"
    )["stateMachineArn"]
    monkeypatch.setenv("CHECKOUT_STATE_MACHINE_ARN", machine)
    get_settings.cache_clear()
    composition.confirm_service.cache_clear()
    try:
        event = {**load_event("eventbridge_payment_completed.json"), "detail-type": "checkout.confirmed"}
        first = invoke("StartCheckoutSagaFunction", {**event, "id": "eb-1", "detail": confirmed})
        again = invoke("StartCheckoutSagaFunction", {**event, "id": "eb-2", "detail": confirmed})
    finally:
        get_settings.cache_clear()
        composition.confirm_service.cache_clear()

    [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert execution["name"] == checkout_id
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started == {"checkout_id": checkout_id, "payment_window_seconds": 900}
    assert first == {"checkout_id": checkout_id, "started": True}
    assert again["checkout_id"] == checkout_id  # delivered twice: still the one execution above


def test_two_confirms_of_one_cart_at_once_make_one_checkout(retail, monkeypatch):
    """CHK-6, deterministic race: a second confirm with the same key runs whole exactly between the first one's
    reservation and its checkout write. Both answer the same checkout; one reservation; one saga name."""
    from patungan.checkout import confirm as confirm_module

    real_hold = confirm_module.hold_stock
    second: list[str] = []

    def hold_then_race(stock, checkout, window):
        held = real_hold(stock, checkout, window)
        if not second:
            second.append("running")
            second[0] = retail.confirm_now()
        return held

    monkeypatch.setattr(confirm_module, "hold_stock", hold_then_race)
    first = retail.confirm_now()

    assert second == [first]
    assert retail.reserved() == 2
    assert len(retail.world.items("OrdersTable", "CHECKOUT#")) == 1
    assert set(retail.started.executions) == {first}


def test_a_second_confirm_with_another_key_while_one_is_in_flight_is_429(retail, monkeypatch):
    """CHK-6: one confirm per shopper in flight; the other is refused before it holds anything."""
    from patungan.checkout import confirm as confirm_module

    real_hold = confirm_module.hold_stock
    refused: list[str] = []

    def hold_then_race(stock, checkout, window):
        if not refused:
            refused.append("running")
            with pytest.raises(RateLimited):
                retail.confirm_now(key="key-other")
            refused[0] = "refused"
        return real_hold(stock, checkout, window)

    monkeypatch.setattr(confirm_module, "hold_stock", hold_then_race)
    retail.confirm_now()

    assert refused == ["refused"]
    assert retail.reserved() == 2


def test_a_cancel_whose_stock_release_failed_releases_it_when_retried(retail, monkeypatch):
    """A crash after the cancel committed (inventory down at the release): the retry, answered as cancelled,
    still gives the stock back; nothing is refunded twice."""
    checkout_id = retail.confirm_now("cod")
    retail.run_to_payment(checkout_id)
    [order] = retail.orders(checkout_id)
    buyer = Principal("buyer-1", frozenset({Role.BUYER}))
    real_release = composition.stock_service().release

    def down(*args: Any, **kwargs: Any):
        raise DependencyUnavailable("the warehouse did not answer")

    monkeypatch.setattr(composition.stock_service(), "release", down)
    with pytest.raises(DependencyUnavailable):
        retail.saga.cancel_order(buyer, order.id)
    assert retail.reserved() == 2
    monkeypatch.setattr(composition.stock_service(), "release", real_release)

    assert retail.saga.cancel_order(buyer, order.id).status == "cancelled"
    assert retail.reserved() == 0


def test_a_wallet_drained_between_confirm_and_payment_fails_the_checkout_and_debits_nothing(retail):
    """WAL-1 under a race: the debit is conditional on the balance when it is written, not on confirm's check.
    The step is refused, the compensation releases the stock and shows insufficient_funds."""
    ledger_service().adjust_wallet(ADMIN, "buyer-1", AdjustmentInput(amount=50_000, reason="test top-up"))
    checkout_id = retail.confirm_now("wallet")
    retail.saga.reserve(checkout_id)
    retail.saga.place_orders(checkout_id)
    ledger_service().adjust_wallet(ADMIN, "buyer-1", AdjustmentInput(amount=-40_000, reason="spent elsewhere"))

    with pytest.raises(Conflict) as short:
        retail.saga.create_payment(checkout_id)
    retail.saga.compensate(checkout_id, {"Error": type(short.value).__name__})

    checkout = retail.checkout(checkout_id)
    assert (checkout.status, checkout.error.code) == ("failed", "insufficient_funds")
    assert [o.status for o in retail.orders(checkout_id)] == ["cancelled"]
    assert ledger().wallet_balance("buyer-1") == 10_000
    assert retail.reserved() == 0


def test_a_failed_checkout_answers_its_key_and_cart_again_and_tells_the_app_how_to_retry(retail):
    """Issue 10 leftover 3 (CHK-6): stock lost after the 202 fails the checkout before any order. The same key with
    the same cart answers that failed checkout again, with its error and ``next_step: confirm_with_new_key`` (the
    cart still holds its items); a new key is a new checkout that goes ahead once the stock is back."""
    first = retail.confirm_now(key="key-1")
    [reservation_id] = retail.checkout(first).reservation_ids
    composition.stock_service().release(reservation_id)  # lapsed before the saga ran
    with pytest.raises(Conflict) as lost:
        retail.saga.reserve(first)
    cause = json.dumps({"errorType": "Conflict", "errorMessage": lost.value.message})
    retail.saga.compensate(first, {"Error": "Conflict", "Cause": cause})

    again = retail.confirm.confirm(BUYER, retail.confirm_request(), "key-1")

    assert (again.checkout_id, again.status) == (first, "failed")
    assert again.error.next_step == "confirm_with_new_key"
    assert "new Idempotency-Key" in again.error.message
    assert retail.reserved() == 0
    second = retail.confirm_now(key="key-2")
    assert second != first and retail.checkout(second).status == "pending"
    assert retail.reserved() == 2


def test_a_checkout_failed_after_its_orders_tells_the_app_to_refill_the_cart_and_the_same_key_then_works(retail):
    """Issue 10 leftover 3 (CHK-6): a checkout failed after its orders were placed (the wallet drained before the
    debit) emptied the cart with them. The same key now answers the failed checkout with ``next_step:
    add_to_cart_and_confirm``; once the items are added again (a new cart) the same key is a new checkout."""
    ledger_service().adjust_wallet(ADMIN, "buyer-1", AdjustmentInput(amount=50_000, reason="test top-up"))
    first = retail.confirm_now("wallet", key="key-1")
    retail.saga.reserve(first)
    retail.saga.place_orders(first)
    ledger_service().adjust_wallet(ADMIN, "buyer-1", AdjustmentInput(amount=-40_000, reason="spent elsewhere"))
    with pytest.raises(Conflict) as short:
        retail.saga.create_payment(first)
    retail.saga.compensate(first, {"Error": type(short.value).__name__})

    again = retail.confirm.confirm(BUYER, retail.confirm_request("wallet"), "key-1")

    assert (again.checkout_id, again.status, again.error.next_step) == (first, "failed", "add_to_cart_and_confirm")
    assert "add the items again" in again.error.message
    ledger_service().adjust_wallet(ADMIN, "buyer-1", AdjustmentInput(amount=40_000, reason="topped up"))
    composition.cart_service().add_item(BUYER, CartItemInput(product_id=retail.stock.product.id, quantity=2))
    retried = retail.confirm_now("wallet", key="key-1")
    assert retried != first
    assert retail.run_to_payment(retried)["status"] == "paid"


def test_a_guest_checks_out_by_invoice_and_cannot_pay_from_a_wallet(retail):
    """CHK-12: a guest (no customer id) confirms, pays and sees the checkout; nothing expects a customer id."""
    guest = GUEST
    composition.cart_service().add_item(guest, CartItemInput(product_id=retail.stock.product.id, quantity=1))
    with pytest.raises(BadRequest):
        retail.confirm_now("wallet", shopper=guest)
    checkout_id = retail.confirm_now(shopper=guest)
    retail.run_to_payment(checkout_id)

    assert retail.pay_and_call_back(checkout_id) == "paid"
    view = retail.confirm.get(guest, checkout_id)
    assert (view.status, [o.user_id for o in view.orders]) == ("paid", [f"guest:{guest.guest_id}"])


GUEST = Shopper(guest_id="0f8fad5b-d9cb-469f-a165-70867728950e")


def _guest_wallets() -> list[str]:
    return [a.account for a in ledger().trial_balance().accounts if a.account.startswith("buyer:guest:")]


def test_a_guests_refund_the_channel_cannot_make_is_owed_and_reported_never_put_in_a_wallet(retail):
    """Issue 10 leftover 4 (CHK-12, ORD-3): a guest paid at a retail outlet, whose channel cannot refund; the order
    is cancelled. The refund worker used to fall back to ``buyer:guest:<id>:wallet``, a wallet no one can open.
    Now the refund is ``failed`` with destination ``owed``, its money held in REFUNDS_OWED (the admin's trial
    balance shows it), ``payment.refund_unavailable`` is published, and the order stays cancelled."""
    composition.cart_service().add_item(GUEST, CartItemInput(product_id=retail.stock.product.id, quantity=1))
    checkout_id = retail.confirm_now(shopper=GUEST)
    retail.run_to_payment(checkout_id)
    payment = retail.payment(checkout_id)
    retail.world.pay_at_xendit({"payment": payment.model_dump()}, method="RETAIL_OUTLET")
    assert retail.world.invoice_callback({"payment": payment.model_dump()}, method="RETAIL_OUTLET").status == 200
    [order] = retail.orders(checkout_id)

    assert retail.saga.cancel_order(ADMIN, order.id).status == "cancelled"
    retail.world.process_refunds()

    [refund] = retail.world.items("PaymentsTable", "REFUND#")
    assert (refund["status"], refund["destination"]) == ("failed", "owed")
    assert ledger().balance(accounts.REFUNDS_OWED) == -order.total  # credit: owed to the guest
    assert _guest_wallets() == []
    assert [e["data"]["refund_id"] for e in retail.world.events("payment.refund_unavailable")] == [refund["id"]]
    assert [o.status for o in retail.orders(checkout_id)] == ["cancelled"]
    assert ledger().trial_balance().balanced


def test_a_guests_share_of_an_invoice_is_owed_and_reported_never_put_in_a_wallet(retail, caplog):
    """Issue 10 leftover 4: one of a guest's two orders on one invoice is cancelled. A channel refunds an invoice
    whole, and a guest has no wallet: the order's total goes from the escrow to REFUNDS_OWED, reported
    (refund_unavailable, CRITICAL); the cancel used to be refused outright. The other order stays paid."""
    receive((retail.stock.warehouse.id, retail.stock.shirt.id, "v_m"), 5)
    composition.cart_service().add_item(GUEST, CartItemInput(product_id=retail.stock.product.id, quantity=1))
    composition.cart_service().add_item(
        GUEST, CartItemInput(product_id=retail.stock.shirt.id, variant_id="v_m", quantity=1)
    )
    retail.confirm = confirm_service(OrderPerLinePricing(retail.stock.warehouse.id), retail.started)
    checkout_id = retail.confirm_now(shopper=GUEST)
    retail.run_to_payment(checkout_id)
    assert retail.pay_and_call_back(checkout_id) == "paid"
    first, second = retail.orders(checkout_id)

    assert retail.saga.cancel_order(ADMIN, first.id).status == "cancelled"
    assert retail.saga.cancel_order(ADMIN, first.id).status == "cancelled"  # again: owed once

    assert ledger().balance(accounts.REFUNDS_OWED) == -first.total
    assert ledger().balance(accounts.checkout_escrow(checkout_id)) == -second.total
    assert _guest_wallets() == []
    assert [o.status for o in retail.orders(checkout_id)] == ["cancelled", "paid"]
    assert any("refund_unavailable" in r.getMessage() and r.levelname == "CRITICAL" for r in caplog.records)
    assert ledger().trial_balance().balanced


def test_coupon_usage_is_written_with_the_orders_and_given_back_when_the_checkout_expires(retail):
    """PRM-2, ORD-3: a coupon with a limit of one is used by the first checkout whose orders are written (in
    their transaction); a second checkout with it fails and is compensated; the first one's expiry gives the
    use back, so the coupon can be used again."""
    promotions = composition.promotion_service()
    promotions.create(PromotionInput(code="SATU", kind="fixed", target="items", value=1, usage_limit=1))
    other = Shopper(customer_id="buyer-2")
    composition.cart_service().add_item(other, CartItemInput(product_id=retail.stock.product.id, quantity=1))
    for shopper in (BUYER, other):
        composition.cart_service().apply_coupon(shopper, "SATU", promotions)
    first = retail.confirm_now(shopper=BUYER)
    second = retail.confirm_now(shopper=other)
    retail.run_to_payment(first)
    retail.saga.reserve(second)
    with pytest.raises(CouponNotEligible):
        retail.saga.place_orders(second)
    retail.saga.compensate(second, {"Error": "CouponNotEligible"})
    assert promotions.get("SATU").used_count == 1
    assert (retail.checkout(second).status, retail.checkout(second).error.code) == ("failed", "coupon_not_eligible")

    retail.saga.expire(first)

    assert promotions.get("SATU").used_count == 0
    assert not promotions.is_redeemed("SATU", first)


def test_a_paid_orders_stock_outlives_the_expiry_sweep(retail, monkeypatch):
    """A paid order's reservation is held until it ships or is cancelled: the sweep that releases expired
    holds, run long after the payment window, leaves it held (was: extended for at most an hour, then swept
    back onto the shelf while the order waited for shipping)."""
    checkout_id = retail.confirm_now("cod")
    retail.run_to_payment(checkout_id)
    retail.saga.hold_for_fulfilment(checkout_id)
    later = FixedClock(composition.CLOCK.now() + timedelta(days=3))
    monkeypatch.setattr(composition.stock_service(), "clock", later)

    assert composition.stock_service().release_expired() == 0
    assert retail.reserved() == 2


def test_a_paid_callback_for_the_subtotal_is_quarantined_and_pays_nothing(retail):
    """PAY-7, PAY-2: a PAID whose amount is not the checkout's total (say, its subtotal) is kept and alarmed,
    never applied: the checkout still awaits its payment."""
    checkout_id = retail.confirm_now()
    retail.run_to_payment(checkout_id)
    payment = retail.payment(checkout_id)
    subtotal = retail.checkout(checkout_id).quote.subtotal

    lie = retail.world.invoice_callback({"payment": payment.model_dump()}, amount=subtotal, paid_amount=subtotal)

    assert lie.body["status"] == "quarantined"
    assert retail.checkout(checkout_id).status == "awaiting_payment"
    assert [o.status for o in retail.orders(checkout_id)] == ["pending_payment"]


def test_a_payment_that_cannot_be_created_keeps_the_stock_for_a_retry_and_tells_the_buyer(retail, monkeypatch):
    """CHK-7 (the review's "reservations lost on payment failure"): Xendit down past the step's retries; the saga
    keeps the checkout, its orders, coupon use and reservations (extended past the retry wait), shows the buyer an
    actionable error, and the retry after the wait opens the invoice for the total on the same reservations."""
    checkout_id = retail.confirm_now()
    retail.saga.reserve(checkout_id)
    retail.saga.place_orders(checkout_id)
    real_open = retail.saga.payments.open_invoice

    def down(*args: Any, **kwargs: Any):
        raise DependencyUnavailable("Xendit did not answer")

    monkeypatch.setattr(retail.saga.payments, "open_invoice", down)
    with pytest.raises(DependencyUnavailable):
        retail.saga.create_payment(checkout_id)
    error = {"Error": "DependencyUnavailable", "Cause": json.dumps({"errorMessage": "Xendit did not answer"})}
    # As Step Functions invokes it (its own function and role), and again (a retried step): the same answer.
    kept = invoke("KeepCheckoutForPaymentRetryFunction", {"checkout_id": checkout_id, "error": error})
    assert invoke("KeepCheckoutForPaymentRetryFunction", {"checkout_id": checkout_id, "error": error}) == kept

    checkout = retail.checkout(checkout_id)
    assert (checkout.status, checkout.error.code) == ("pending", "payment_unavailable")
    assert "nothing was charged" in checkout.error.message and "reserved" in checkout.error.message
    assert [o.status for o in retail.orders(checkout_id)] == ["pending_payment"]
    assert retail.reserved() == 2
    [reservation_id] = checkout.reservation_ids
    held_until = composition.stock_service().stock.get_reservation(reservation_id).expires_at
    # Held past the wait for the retry plus a whole payment window after it.
    assert held_until >= to_iso(composition.CLOCK.now() + 3 * timedelta(minutes=15))
    assert kept["retry_in_seconds"] == 15 * 60

    monkeypatch.setattr(retail.saga.payments, "open_invoice", real_open)
    assert retail.saga.create_payment(checkout_id)["status"] == "awaiting_payment"
    checkout = retail.checkout(checkout_id)
    assert checkout.error is None
    assert retail.payment(checkout_id).amount == checkout.quote.total
    assert retail.reserved() == 2


def test_the_machine_waits_and_retries_a_payment_it_could_not_create_before_compensating():
    """CHK-7 in the state machine: DependencyUnavailable past CreatePayment's retries goes to KeepForPaymentRetry,
    a wait of the payment window, and RetryPayment; only RetryPayment's failure compensates. Every one of those
    retries and, failing, compensates or records the checkout stuck (never a silent end)."""
    with open("statemachines/checkout.asl.json") as definition:
        states = json.load(definition)["States"]
    create_catches = {tuple(c["ErrorEquals"]): c["Next"] for c in states["CreatePayment"]["Catch"]}
    assert create_catches == {("DependencyUnavailable",): "KeepForPaymentRetry", ("States.ALL",): "Compensate"}
    assert states["KeepForPaymentRetry"]["Next"] == "WaitToRetryPayment"
    assert states["KeepForPaymentRetry"]["Catch"][0]["Next"] == "Compensate"
    assert states["WaitToRetryPayment"] == {
        "Type": "Wait",
        "Comment": states["WaitToRetryPayment"]["Comment"],
        "SecondsPath": "$.kept.retry_in_seconds",
        "Next": "RetryPayment",
    }
    retry = states["RetryPayment"]
    assert (retry["Resource"], retry["Next"]) == (states["CreatePayment"]["Resource"], "PaymentCreated")
    assert [c["Next"] for c in retry["Catch"]] == ["Compensate"]
    assert "DependencyUnavailable" in retry["Retry"][0]["ErrorEquals"]


def _lose_the_invoice_answer(retail, monkeypatch, checkout_id: str):
    """The payment step creates the invoice at Xendit, then loses its answer past the step's retries: the checkout
    is kept for the payment retry (CHK-7). Returns the invoice Xendit holds for it."""
    retail.saga.reserve(checkout_id)
    retail.saga.place_orders(checkout_id)
    _create_payment_losing_the_answer(retail, monkeypatch, checkout_id)
    retail.saga.keep_for_payment_retry(checkout_id, {"Error": "DependencyUnavailable"})
    return retail.saga.payments.find_invoice(retail.payment(checkout_id))


def _create_payment_losing_the_answer(retail, monkeypatch, checkout_id: str) -> None:
    """The payment step opens an invoice at Xendit and its answer never comes back (the step fails)."""
    payments = retail.saga.payments
    real_open = payments.open_invoice

    def answer_lost(payment, expires_at):
        real_open(payment, expires_at)
        raise DependencyUnavailable("Xendit did not answer")

    monkeypatch.setattr(payments, "open_invoice", answer_lost)
    with pytest.raises(DependencyUnavailable):
        retail.saga.create_payment(checkout_id)
    monkeypatch.setattr(payments, "open_invoice", real_open)


def _invoice_at_xendit(retail, invoice_id: str) -> dict[str, Any]:
    return requests.get(
        f"{retail.world.xendit_url}/v2/invoices/{invoice_id}", auth=(FAKE_SECRET_KEY, ""), timeout=5
    ).json()


def test_a_payment_retry_never_hands_out_the_lost_invoice_that_expired_meanwhile(retail, monkeypatch):
    """CHK-7 (issue 10 leftover 1): the invoice's create answer was lost and by the payment retry (a payment window
    later) that invoice had expired at Xendit. The retry used to find it by its external id and hand the buyer its
    dead link. Now the expired payment is closed and a new invoice opened under a new external id: payable, for
    the total, and paying it pays the checkout."""
    checkout_id = retail.confirm_now()
    lost = _lose_the_invoice_answer(retail, monkeypatch, checkout_id)
    expired = requests.post(f"{retail.world.xendit_url}/simulate/invoices/{lost.id}/expire", timeout=5)
    assert expired.status_code == 200, expired.text
    first_payment = retail.payment(checkout_id)

    outcome = retail.saga.create_payment(checkout_id)

    checkout = retail.checkout(checkout_id)
    payment = retail.payment(checkout_id)
    assert outcome["status"] == checkout.status == "awaiting_payment"
    assert payment.id != first_payment.id and payment.invoice_id != lost.id
    assert checkout.invoice_url != lost.invoice_url
    invoice = _invoice_at_xendit(retail, payment.invoice_id)
    assert (invoice["status"], invoice["external_id"], invoice["amount"]) == (
        "PENDING",
        payment.id,
        checkout.quote.total,
    )
    assert composition.payment_service().payment(first_payment.id).status == "expired"
    assert outcome["payment_expires_at"] == checkout.payment_expires_at
    assert checkout.payment_expires_at == to_iso(parse_iso(invoice["expiry_date"]))  # Xendit's, to the second
    assert retail.confirm.get(BUYER, checkout_id).payment.expires_at == checkout.payment_expires_at
    retail.saga.await_payment(checkout_id, "token-1")
    assert retail.pay_and_call_back(checkout_id) == "paid"
    assert [o.status for o in retail.orders(checkout_id)] == ["paid"]


def test_a_payment_retry_replaces_a_lost_invoice_about_to_expire_and_leaves_one_payable(retail, monkeypatch):
    """CHK-7 (issue 10 leftover 1): a lost invoice still pending with less than half a payment window left is not
    handed out either: it is expired at Xendit first, so one checkout never has two payable invoices."""
    checkout_id = retail.confirm_now()
    lost = _lose_the_invoice_answer(retail, monkeypatch, checkout_id)
    later = FixedClock(composition.CLOCK.now() + timedelta(minutes=10))  # of a 15-minute window
    monkeypatch.setattr(retail.saga, "clock", later)

    retail.saga.create_payment(checkout_id)

    payment = retail.payment(checkout_id)
    assert _invoice_at_xendit(retail, lost.id)["status"] == "EXPIRED"
    assert _invoice_at_xendit(retail, payment.invoice_id)["status"] == "PENDING"
    # A whole window from the retry (Xendit counts whole seconds), not what was left of the lost one.
    assert retail.checkout(checkout_id).payment_expires_at >= to_iso(later.now() + timedelta(minutes=14))


def test_a_payment_retry_crashing_while_it_replaces_an_invoice_still_ends_with_one_payable_invoice(retail, monkeypatch):
    """CHK-7 (hostile review): the replacement's own create answer is lost too (a crash after the checkout moved to
    its next payment attempt); the step run again finds that invoice and hands it out. Of every invoice Xendit
    holds for the checkout, exactly one can be paid, and it is the one the buyer has."""
    checkout_id = retail.confirm_now()
    lost = _lose_the_invoice_answer(retail, monkeypatch, checkout_id)
    assert requests.post(f"{retail.world.xendit_url}/simulate/invoices/{lost.id}/expire", timeout=5).ok
    _create_payment_losing_the_answer(retail, monkeypatch, checkout_id)

    assert retail.saga.create_payment(checkout_id)["status"] == "awaiting_payment"

    checkout = retail.checkout(checkout_id)
    attempts = [checkout.model_copy(update={"payment_attempt": n}).retail_payment_id for n in range(3)]
    invoices = [
        invoice
        for payment_id in attempts
        for invoice in requests.get(
            f"{retail.world.xendit_url}/v2/invoices",
            params={"external_id": payment_id},
            auth=(FAKE_SECRET_KEY, ""),
            timeout=5,
        ).json()
    ]
    payable = [invoice for invoice in invoices if invoice["status"] == "PENDING"]
    assert [invoice["invoice_url"] for invoice in payable] == [checkout.invoice_url]
    assert len(invoices) == 2


def test_the_payment_window_is_the_only_thing_that_expires_a_checkout():
    """Issue 10 leftover 2: the task that keeps the saga's token (AwaitCheckoutPayment) failing past its retries used
    to be caught with everything else and expire the checkout while its invoice could still be paid. Now only the
    wait's own timeout (the payment window) goes straight to Expire; any other failure waits for the end of the
    invoice's window (the payment step answers it) before Expire, which answers paid if the webhook paid it."""
    with open("statemachines/checkout.asl.json") as definition:
        states = json.load(definition)["States"]
    wait_catches = [(c["ErrorEquals"], c["Next"]) for c in states["WaitForPayment"]["Catch"]]
    assert wait_catches == [(["States.Timeout"], "Expire"), (["States.ALL"], "WaitForPaymentWindowEnd")]
    window_end = states["WaitForPaymentWindowEnd"]
    assert (window_end["Type"], window_end["TimestampPath"], window_end["Next"]) == (
        "Wait",
        "$.payment.payment_expires_at",
        "Expire",
    )
    into_expire = sorted(
        name
        for name, state in states.items()
        if state.get("Next") == "Expire" or any(c["Next"] == "Expire" for c in state.get("Catch", []))
    )
    assert into_expire == ["WaitForPayment", "WaitForPaymentWindowEnd"]
    assert states["ExpiredOrPaid"]["Choices"][0]["Next"] == "HoldForFulfilment"


def test_an_unpaid_order_is_never_refunded(retail):
    """ORD-3 (hostile review of OrderRefunds): a returned parcel or a cancel of an order whose checkout was never
    paid (an invoice still open, or cash on delivery) must not send money that never came in to a wallet: refused,
    nothing written."""
    checkout_id = retail.confirm_now()
    retail.run_to_payment(checkout_id)
    [order] = retail.orders(checkout_id)
    tx = Transaction()

    with pytest.raises(Conflict, match="not paid"):
        composition.order_refunds().add_refund(tx, order, "parcel_returned")

    assert tx.items == []
    assert ledger().wallet_balance("buyer-1") == 0


def test_a_late_checkout_confirmed_event_never_starts_a_second_saga(retail):
    """Issue 10 leftover 5 (hostile review): checkout.confirmed delivered after the checkout's saga ended (failed,
    expired, paid), or the same confirm replayed then, starts nothing."""
    checkout_id = retail.confirm_now()
    retail.saga.compensate(checkout_id, {"Error": "Conflict"})
    before = list(retail.started.executions)

    assert retail.confirm.start_saga(checkout_id) == {"checkout_id": checkout_id, "started": False}
    assert retail.confirm.confirm(BUYER, retail.confirm_request(), "key-1").status == "failed"  # replayed
    assert retail.started.executions == before


def test_an_order_cancelled_before_the_fulfilment_hold_does_not_stick_the_saga(retail):
    """ORD-3 racing the saga: the buyer cancels the paid order between the payment and the HoldForFulfilment
    step. The step holds what is still sold (nothing here) instead of failing on the released reservation and
    sending the checkout to RecordStuck; the stock stays released, the refund stands."""
    ledger_service().adjust_wallet(ADMIN, "buyer-1", AdjustmentInput(amount=50_000, reason="test top-up"))
    checkout_id = retail.confirm_now("wallet")
    assert retail.run_to_payment(checkout_id)["status"] == "paid"
    [order] = retail.orders(checkout_id)
    retail.saga.cancel_order(Principal("buyer-1", frozenset({Role.BUYER})), order.id)

    assert retail.saga.hold_for_fulfilment(checkout_id)["status"] == "paid"

    assert retail.reserved() == 0
    assert ledger().wallet_balance("buyer-1") == 50_000


def test_paid_callbacks_that_lie_about_currency_or_invoice_pay_nothing(retail):
    """PAY-7, PAY-2: a PAID in another currency, naming another invoice, or naming this checkout's payment with
    another checkout's invoice is quarantined; neither checkout is paid; the honest PAID still pays this one."""
    checkout_id = retail.confirm_now()
    retail.run_to_payment(checkout_id)
    other_buyer = Shopper(customer_id="buyer-2")
    composition.cart_service().add_item(other_buyer, CartItemInput(product_id=retail.stock.product.id, quantity=2))
    other_id = retail.confirm_now(shopper=other_buyer)
    retail.run_to_payment(other_id)
    payment, other_payment = retail.payment(checkout_id), retail.payment(other_id)
    assert payment.amount == other_payment.amount  # the same total: only the ids tell them apart

    lies = [
        retail.world.invoice_callback({"payment": payment.model_dump()}, currency="USD"),
        retail.world.invoice_callback({"payment": payment.model_dump()}, id="inv_made_up"),
        retail.world.invoice_callback({"payment": payment.model_dump()}, id=other_payment.invoice_id),
    ]

    assert [lie.body["status"] for lie in lies] == ["quarantined"] * 3
    assert (retail.checkout(checkout_id).status, retail.checkout(other_id).status) == (
        "awaiting_payment",
        "awaiting_payment",
    )
    assert retail.pay_and_call_back(checkout_id) == "paid"
    assert retail.checkout(other_id).status == "awaiting_payment"


@pytest.mark.parametrize("step", ["expire", "compensate"])
def test_a_compensation_crashing_after_its_commit_finishes_when_retried(retail, monkeypatch, step):
    """A crash after the expiry's or the compensation's transaction (inventory down at the release), then Step
    Functions' retry: the stock is released, the coupon use given back exactly once, the orders moved once."""
    promotions = composition.promotion_service()
    promotions.create(PromotionInput(code="SATU", kind="fixed", target="items", value=1, usage_limit=1))
    composition.cart_service().apply_coupon(BUYER, "SATU", promotions)
    checkout_id = retail.confirm_now()
    retail.run_to_payment(checkout_id)
    assert promotions.get("SATU").used_count == 1
    run = {
        "expire": lambda: retail.saga.expire(checkout_id),
        "compensate": lambda: retail.saga.compensate(checkout_id, {"Error": "States.Timeout"}),
    }[step]
    real_release = composition.stock_service().release

    def down(*args: Any, **kwargs: Any):
        raise DependencyUnavailable("the warehouse did not answer")

    monkeypatch.setattr(composition.stock_service(), "release", down)
    with pytest.raises(DependencyUnavailable):
        run()
    assert retail.reserved() == 2
    monkeypatch.setattr(composition.stock_service(), "release", real_release)

    run()
    run()

    assert retail.reserved() == 0
    assert promotions.get("SATU").used_count == 0
    assert [o.status for o in retail.orders(checkout_id)] == [{"expire": "expired", "compensate": "cancelled"}[step]]


def _pay_at_xendit(retail, invoice_id: str) -> None:
    """The buyer pays on Xendit's page; its PAID callback is not delivered (lost, or not yet)."""
    paid = requests.post(
        f"{retail.world.xendit_url}/simulate/invoices/{invoice_id}/pay",
        json={"payment_method": "BANK_TRANSFER"},
        timeout=5,
    )
    assert paid.status_code == 200, paid.text


def test_money_paid_between_the_expiry_and_the_invoice_expiring_at_xendit_is_refunded_without_its_webhook(
    retail, monkeypatch
):
    """ORD-3, PAY-3 (review R3): the buyer pays exactly between the Expire step's commit and its call expiring the
    invoice at Xendit, and the PAID callback is lost. Xendit's answer (already paid) is applied at once, as the
    callback would be: the money is captured and refunded as a late payment; the checkout stays expired."""
    checkout_id = retail.confirm_now()
    retail.run_to_payment(checkout_id)
    retail.saga.await_payment(checkout_id, "token-1")
    payments = retail.saga.payments
    real_expire_invoice = payments.expire_invoice

    def paid_just_before(payment):
        _pay_at_xendit(retail, payment.invoice_id)
        return real_expire_invoice(payment)

    monkeypatch.setattr(payments, "expire_invoice", paid_just_before)
    assert retail.saga.expire(checkout_id)["status"] == "expired"

    assert retail.checkout(checkout_id).status == "expired"
    assert [o.status for o in retail.orders(checkout_id)] == ["expired"]
    assert retail.reserved() == 0
    [refund] = retail.world.items("PaymentsTable", "REFUND#")
    assert (refund["reason"], refund["amount"]) == ("late_payment", retail.checkout(checkout_id).quote.total)
    # The callback, delivered late after all, is the same payment: nothing twice.
    monkeypatch.setattr(payments, "expire_invoice", real_expire_invoice)
    assert retail.world.invoice_callback({"payment": retail.payment(checkout_id).model_dump()}).status == 200
    assert len(retail.world.items("PaymentsTable", "REFUND#")) == 1
    assert retail.tokens.succeeded == []


def test_the_old_invoice_paid_while_a_payment_retry_replaces_it_pays_the_checkout_once(retail, monkeypatch):
    """CHK-7 (review R3): the buyer pays the lost invoice exactly between the retry finding it about to expire and
    the retry expiring it at Xendit. That payment pays the checkout; no second invoice is opened, nothing is
    refunded, the stock stays held."""
    checkout_id = retail.confirm_now()
    lost = _lose_the_invoice_answer(retail, monkeypatch, checkout_id)
    monkeypatch.setattr(retail.saga, "clock", FixedClock(composition.CLOCK.now() + timedelta(minutes=10)))
    gateway = retail.saga.payments.gateway
    real_expire = gateway.expire_invoice

    def paid_just_before(invoice_id):
        _pay_at_xendit(retail, invoice_id)
        return real_expire(invoice_id)

    monkeypatch.setattr(gateway, "expire_invoice", paid_just_before)
    assert retail.saga.create_payment(checkout_id)["status"] == "paid"

    checkout = retail.checkout(checkout_id)
    assert (checkout.status, checkout.payment_attempt) == ("paid", 0)
    assert retail.payment(checkout_id).invoice_id == lost.id
    assert [o.status for o in retail.orders(checkout_id)] == ["paid"]
    assert retail.world.items("PaymentsTable", "REFUND#") == []
    assert retail.saga.hold_for_fulfilment(checkout_id)["status"] == "paid"
    assert retail.reserved() == 2


def test_orders_name_the_payment_that_paid_them_after_a_payment_retry_replaced_the_invoice(retail, monkeypatch):
    """CHK-7, ORD-1 (review R3): after a payment retry replaced a lost, expired invoice, the paid order's payment_id
    is the payment the buyer paid (the one GET /v1/payments/{id} shows paid), not the first, expired attempt."""
    checkout_id = retail.confirm_now()
    lost = _lose_the_invoice_answer(retail, monkeypatch, checkout_id)
    assert requests.post(f"{retail.world.xendit_url}/simulate/invoices/{lost.id}/expire", timeout=5).ok
    assert retail.saga.create_payment(checkout_id)["status"] == "awaiting_payment"
    retail.saga.await_payment(checkout_id, "token-1")
    assert retail.pay_and_call_back(checkout_id) == "paid"

    paid_with = retail.payment(checkout_id)
    assert paid_with.status == "paid"
    [order] = retail.orders(checkout_id)
    assert order.status == "paid"
    assert order.payment_id == paid_with.id
    assert composition.payment_service().payment(order.payment_id).status == "paid"


def test_two_cancels_of_a_wallet_paid_order_at_once_refund_it_once_and_both_answer_it_refunded(retail, monkeypatch):
    """ORD-3 (review R3): the admin's cancel commits exactly between the buyer's cancel reading the paid order and
    committing its own refund. The money goes back once; the buyer's cancel answers the refunded order (what the
    buyer asked for happened), not an error."""
    ledger_service().adjust_wallet(ADMIN, "buyer-1", AdjustmentInput(amount=50_000, reason="test top-up"))
    checkout_id = retail.confirm_now("wallet")
    retail.run_to_payment(checkout_id)
    [order] = retail.orders(checkout_id)
    refunds = retail.saga.refunds
    real_add_refund = refunds.add_refund
    raced: list[str] = []
    interleaved: list[bool] = []

    def admin_cancels_first(tx, read, reason):
        if not interleaved:
            interleaved.append(True)
            raced.append(retail.saga.cancel_order(ADMIN, read.id).status)
        return real_add_refund(tx, read, reason)

    monkeypatch.setattr(refunds, "add_refund", admin_cancels_first)
    buyer = Principal("buyer-1", frozenset({Role.BUYER}))
    assert retail.saga.cancel_order(buyer, order.id).status == "refunded"

    assert raced == ["refunded"]
    assert [o.status for o in retail.orders(checkout_id)] == ["refunded"]
    assert ledger().wallet_balance("buyer-1") == 50_000
    assert [e["data"]["order_id"] for e in retail.world.events("order.refunded")] == [order.id]
    assert retail.reserved() == 0


def test_a_compensation_that_finds_the_handed_out_invoice_paid_refunds_it_without_its_webhook(retail, monkeypatch):
    """CHK-5, ORD-3 (review R3): a step after the invoice was handed out failed for good, and the buyer paid exactly
    between the compensation's commit and its expiring the invoice at Xendit; the PAID callback is lost. The
    compensation applies Xendit's answer (already paid): the money is captured and refunded, the checkout stays
    failed and its stock goes back."""
    checkout_id = retail.confirm_now()
    retail.run_to_payment(checkout_id)
    payments = retail.saga.payments
    real_expire_invoice = payments.expire_invoice

    def paid_just_before(payment):
        _pay_at_xendit(retail, payment.invoice_id)
        return real_expire_invoice(payment)

    monkeypatch.setattr(payments, "expire_invoice", paid_just_before)
    outcome = invoke("CompensateCheckoutFunction", {"checkout_id": checkout_id, "error": {"Error": "RuntimeError"}})

    assert outcome["status"] == retail.checkout(checkout_id).status == "failed"
    assert retail.reserved() == 0
    [refund] = retail.world.items("PaymentsTable", "REFUND#")
    assert (refund["reason"], refund["amount"]) == ("late_payment", retail.checkout(checkout_id).quote.total)
    assert [o.status for o in retail.orders(checkout_id)] == ["cancelled"]
    # The late payment's refund completing refunds the payment; the orders were never paid: they stay cancelled.
    retail.world.deliver_queued("payment.refund_requested", "ProcessRefundsFunction")
    [sent] = retail.world.items("PaymentsTable", "REFUND#")
    assert retail.world.refund_callback(sent).status == 200
    assert retail.payment(checkout_id).status == "refunded"
    assert [o.status for o in retail.orders(checkout_id)] == ["cancelled"]
    assert retail.world.events("order.refunded") == []


def test_a_cancel_that_died_before_releasing_its_stock_is_released_from_its_event_without_a_retry(retail, monkeypatch):
    """ORD-3 (review R3): the cancel committed (order cancelled, money back) and its Lambda ended before releasing
    the stock, and the buyer never retries. The reservation was held for fulfilment without expiry, so no sweep
    would ever free it. ``order.cancelled`` (written with the cancel) releases it: once, however often delivered."""
    ledger_service().adjust_wallet(ADMIN, "buyer-1", AdjustmentInput(amount=50_000, reason="test top-up"))
    checkout_id = retail.confirm_now("wallet")
    retail.run_to_payment(checkout_id)
    retail.saga.hold_for_fulfilment(checkout_id)
    [order] = retail.orders(checkout_id)

    def died(*args: Any, **kwargs: Any):
        raise RuntimeError("the cancel's Lambda ended here")

    monkeypatch.setattr(composition.stock_service(), "release", died)
    with pytest.raises(RuntimeError):
        retail.saga.cancel_order(Principal("buyer-1", frozenset({Role.BUYER})), order.id)
    monkeypatch.undo()
    assert (retail.orders(checkout_id)[0].status, retail.reserved()) == ("refunded", 2)

    [cancelled] = retail.world.events("order.cancelled")
    event = {**load_event("eventbridge_payment_completed.json"), "detail-type": "order.cancelled"}
    first = invoke("ReleaseCancelledOrderStockFunction", {**event, "id": "eb-1", "detail": cancelled})
    again = invoke("ReleaseCancelledOrderStockFunction", {**event, "id": "eb-2", "detail": cancelled})

    assert first == again == {"order_id": order.id, "released": True}
    assert retail.reserved() == 0
    assert ledger().wallet_balance("buyer-1") == 50_000
