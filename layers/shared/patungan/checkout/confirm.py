"""POST /v1/checkout/confirm and GET /v1/checkout/{id} (API.md "Checkout"; CHK-2, CHK-4, CHK-6, CHK-8).

Confirm answers what the app must show at once before its 202: a stale preview, a risen price, an empty cart,
stock short, inventory down, another confirm in flight, a short wallet. It reserves the stock itself (fail
closed), records the checkout (its id is the idempotency record: buyer + Idempotency-Key + cart hash) and
starts the saga, named by the checkout, which runs the rest (checkout/saga.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from pydantic import BaseModel, Field

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.checkout.cart import Cart, Shopper
from patungan.checkout.checkouts import (
    Checkout,
    CheckoutError,
    CheckoutRepository,
    Previewed,
    checkout_id_for,
    line_key,
)
from patungan.checkout.quote import CheckoutRequest, Quote
from patungan.checkout.saga import hold_stock
from patungan.core.clock import Clock, parse_iso, to_iso
from patungan.core.errors import BadRequest, Conflict, DomainError, NotFound
from patungan.core.events import new_event
from patungan.inventory.stock import StockService
from patungan.orders.models import Order
from patungan.orders.repository import OrdersRepository

PREVIEW_VALID_FOR = timedelta(minutes=10)
# A clock a little ahead of ours on the client's side is not a stale preview; one far ahead is no preview of ours.
CLOCK_SKEW = timedelta(minutes=1)


class Carts(Protocol):
    def get_for(self, shopper: Shopper) -> Cart: ...


class Pricing(Protocol):
    def quote(self, shopper: Shopper, request: CheckoutRequest, cart: Cart) -> Quote: ...


class Wallets(Protocol):
    def wallet_balance(self, user_id: str) -> int: ...


class Executions(Protocol):
    def start(self, state_machine_arn: str, name: str, input_json: str) -> bool: ...


class ConfirmRequest(CheckoutRequest):
    prices_validated_at: str = Field(max_length=64, description="the preview's, as it answered it (CHK-4)")


class Accepted(BaseModel):
    checkout_id: str
    status: str
    error: CheckoutError | None = Field(
        None, description="a failed checkout's reason and next_step: the same key and cart answer it again (CHK-6)"
    )


class CheckoutPayment(BaseModel):
    payment_id: str | None = None
    method: str
    amount: int
    currency: str
    invoice_url: str | None = None
    expires_at: str | None = Field(None, description="when the invoice stops taking payment (the payment window)")


class CheckoutView(BaseModel):
    checkout_id: str
    status: str
    orders: list[Order]
    payment: CheckoutPayment | None = None
    error: CheckoutError | None = None


@dataclass(frozen=True)
class ConfirmSettings:
    state_machine_arn: str
    payment_window: timedelta
    lock_for: timedelta


class ConfirmService:
    def __init__(
        self,
        checkouts: CheckoutRepository,
        orders: OrdersRepository,
        carts: Carts,
        pricing: Pricing,
        wallets: Wallets,
        stock: StockService,
        executions: Executions,
        outbox: Outbox,
        clock: Clock,
        settings: ConfirmSettings,
    ) -> None:
        self.checkouts = checkouts
        self.orders = orders
        self.carts = carts
        self.pricing = pricing
        self.wallets = wallets
        self.stock = stock
        self.executions = executions
        self.outbox = outbox
        self.clock = clock
        self.settings = settings

    def confirm(self, shopper: Shopper, request: ConfirmRequest, idempotency_key: str) -> Accepted:
        cart = self.carts.get_for(shopper)
        if not cart.items:
            # The same confirm again after its checkout emptied the cart: that checkout (CHK-6, SYS-4).
            replayed = self.checkouts.find_by_key(shopper.owner_key, idempotency_key)
            if replayed is not None:
                return self._started(replayed)
            raise BadRequest("the cart is empty", code="cart_empty")
        checkout_id = checkout_id_for(shopper.owner_key, idempotency_key, cart.content_hash())
        existing = self.checkouts.find(checkout_id)
        if existing is not None:  # the same key and the same cart: the same checkout (CHK-6)
            return self._started(existing)
        self._fresh_preview(request.prices_validated_at)
        previewed = self.checkouts.previewed(shopper.owner_key, request.prices_validated_at)
        if previewed is None:
            raise Conflict("that is not your last preview: preview again", code="prices_stale")
        now = self.clock.now()
        self.checkouts.lock(shopper.owner_key, checkout_id, to_iso(now), to_iso(now + self.settings.lock_for))
        try:
            checkout = self._new_checkout(checkout_id, idempotency_key, shopper, request, cart, previewed)
        except DomainError:
            self.checkouts.unlock(shopper.owner_key, checkout_id)
            raise
        return self._started(checkout)

    def _new_checkout(
        self,
        checkout_id: str,
        idempotency_key: str,
        shopper: Shopper,
        request: ConfirmRequest,
        cart: Cart,
        previewed: Previewed,
    ) -> Checkout:
        quote = self.pricing.quote(
            shopper, CheckoutRequest.model_validate(request.model_dump(exclude={"prices_validated_at"})), cart
        )
        _refuse_risen_prices(previewed, quote)
        if request.payment_method == "wallet":
            if shopper.customer_id is None:
                raise BadRequest("a guest has no wallet: pay by invoice or cash on delivery", code="wallet_unavailable")
            if self.wallets.wallet_balance(shopper.customer_id) < quote.total:
                raise Conflict("the wallet holds less than the total", code="insufficient_funds")
        now = to_iso(self.clock.now())
        checkout = Checkout(
            id=checkout_id,
            buyer=shopper,
            cart_id=cart.id,
            cart_version=cart.version,
            merged_guest_version=cart.merged_guest_version,
            status="pending",
            payment_method=request.payment_method,
            quote=quote,
            coupon_codes=[applied.code for applied in quote.coupons],  # a coupon left out is not used
            cart_hash=cart.content_hash(),
            address=_destination(quote),
            created_at=now,
            updated_at=now,
        )
        # Held before the 202 (CHK-2): stock short → 409 naming the lines, inventory down → 503, nothing kept.
        hold_stock(self.stock, checkout, self.settings.payment_window)
        tx = Transaction()
        self.checkouts.add(tx, checkout)
        self.checkouts.remember_key(tx, shopper.owner_key, idempotency_key, checkout.id)
        # The saga is started from this event as well (start_saga): a crash between this commit and the start
        # below leaves no checkout pending, unstarted, with its stock held (issue 10 leftover 5).
        self.outbox.add(tx, new_event("checkout.confirmed", checkout.id, {"checkout_id": checkout.id}, self.clock))
        try:
            tx.commit()
        except Conflict:  # the same confirm, twice at once: the first one's checkout is the answer
            return self.checkouts.get(checkout_id)
        return checkout

    def _started(self, checkout: Checkout) -> Accepted:
        self._start(checkout)
        return Accepted(checkout_id=checkout.id, status=checkout.status, error=checkout.error)

    def start_saga(self, checkout_id: str) -> dict[str, Any]:
        """``checkout.confirmed`` (through the outbox, written with the checkout): the checkout's saga is started
        even if confirm crashed before starting it; started already (the usual case), nothing happens."""
        return {"checkout_id": checkout_id, "started": self._start(self.checkouts.get(checkout_id))}

    def _start(self, checkout: Checkout) -> bool:
        """The saga, named by the checkout: starting it again is harmless (a retry after a crash). A checkout no
        longer pending has had its saga: never a second one (a replayed confirm, a late event)."""
        if checkout.status != "pending":
            return False
        return self.executions.start(
            self.settings.state_machine_arn,
            checkout.id,
            json.dumps(
                {
                    "checkout_id": checkout.id,
                    "payment_window_seconds": int(self.settings.payment_window.total_seconds()),
                }
            ),
        )

    def _fresh_preview(self, prices_validated_at: str) -> None:
        try:
            validated_at = parse_iso(prices_validated_at)
        except ValueError as exc:
            raise BadRequest("prices_validated_at is not an ISO 8601 time", code="prices_stale") from exc
        now = self.clock.now()
        if not now - PREVIEW_VALID_FOR <= validated_at <= now + CLOCK_SKEW:
            raise Conflict("the preview is older than 10 minutes: preview again", code="prices_stale")

    # ---- reading
    def get(self, shopper: Shopper, checkout_id: str) -> CheckoutView:
        checkout = self.checkouts.find(checkout_id)
        if checkout is None or checkout.buyer.owner_key != shopper.owner_key:
            raise NotFound(f"no checkout {checkout_id}")
        orders = [self.orders.get(order_id) for order_id in checkout.order_ids] if checkout.orders_placed else []
        payment = CheckoutPayment(
            payment_id=checkout.payment_id,
            method=checkout.payment_method,
            amount=checkout.quote.total,
            currency=checkout.quote.currency,
            invoice_url=checkout.invoice_url,
            expires_at=checkout.payment_expires_at,
        )
        return CheckoutView(
            checkout_id=checkout.id, status=checkout.status, orders=orders, payment=payment, error=checkout.error
        )


def _refuse_risen_prices(previewed: Previewed, quote: Quote) -> None:
    """CHK-4: the buyer never pays more than the preview showed; a price that fell is passed on. Refused before
    anything is reserved or charged. A line the preview did not show is a changed cart: preview again. A total
    above the preview's with no unit price risen (a coupon used up or ended since, a shipping rate risen) is
    refused the same way, naming no line."""
    prices = previewed.prices
    risen = [
        {
            "product_id": line.product_id,
            "variant_id": line.variant_id,
            "previous_unit_price": prices.get(key),
            "unit_price": line.unit_price,
        }
        for order in quote.orders
        for line in order.lines
        if (key := line_key(line.product_id, line.variant_id)) not in prices or line.unit_price > prices[key]
    ]
    if risen:
        raise Conflict("a price rose since the preview: preview again", code="price_changed", details=risen)
    if previewed.total is not None and quote.total > previewed.total:
        raise Conflict(
            f"the total rose from {previewed.total} to {quote.total} since the preview (a coupon or shipping "
            "changed): preview again",
            code="price_changed",
        )


def _destination(quote: Quote) -> dict[str, Any]:
    """Where the orders go, as the pricing engine resolved it (an address_id: the buyer's own, ORD-1)."""
    if quote.address is None:
        raise ValueError("the pricing engine quoted no destination address")
    return quote.address.model_dump()
