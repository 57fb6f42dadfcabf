"""The confirm saga's steps (CHK-5, DESIGN.md "checkout"; statemachines/checkout.asl.json runs them): reserve
→ revalidate prices and place the orders (with the coupon usage, PRM-2) → create the payment for the TOTAL
(PAY-7: a Xendit invoice, the wallet, or none for COD, CHK-9) → wait for the payment (task token) → paid: hold
the stock for fulfilment; timeout: expire; any failure: compensate.

Every step is idempotent (deterministic ids for orders, reservations, payment and ledger movements; conditional
state changes), so Step Functions may retry any of them after a crash at any point. A checkout's state and its
orders' states change in ONE transaction with their events and ledger movements."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from patungan.adapters.dynamodb import Transaction
from patungan.adapters.outbox import Outbox
from patungan.adapters.xendit import ExpireOutcome, Invoice, InvoiceStatus
from patungan.checkout.cart import Shopper
from patungan.checkout.checkouts import Checkout, CheckoutError, CheckoutRepository, NextStep
from patungan.checkout.refunds import OrderRefunds
from patungan.core.auth import Principal
from patungan.core.clock import Clock, parse_iso, to_iso
from patungan.core.errors import Conflict, DependencyUnavailable, DomainError, Forbidden, NotFound
from patungan.core.events import new_event
from patungan.core.observability import logger, metrics
from patungan.core.retry import retry_stale
from patungan.inventory.stock import StockService
from patungan.inventory.stock_models import StockLine
from patungan.ledger import accounts
from patungan.ledger.models import Movement, transfer
from patungan.orders.models import Order, OrderLine
from patungan.orders.service import OrderService
from patungan.payments.models import Payment
from patungan.payments.service import PaymentService

ATTEMPTS = 5


class Promotions(Protocol):
    """Coupon usage written inside the orders' own transaction (PRM-2), and given back the same way."""

    def redeem(self, tx: Transaction, codes: list[str], customer_id: str | None, checkout_id: str) -> None: ...

    def give_back(self, tx: Transaction, codes: list[str], checkout_id: str) -> None: ...


class Carts(Protocol):
    def convert(
        self, tx: Transaction, shopper: Shopper, cart_id: str, version: int, merged_guest_version: int
    ) -> None: ...


class TaskTokens(Protocol):
    def succeed(self, token: str, output: dict[str, Any]) -> None: ...


class PriceChanged(Conflict):
    """A unit price rose after the preview the buyer confirmed (CHK-4): the saga fails, nothing is charged."""

    code = "price_changed"


@dataclass(frozen=True)
class SagaTimes:
    payment_window: timedelta


class CheckoutSaga:
    def __init__(
        self,
        checkouts: CheckoutRepository,
        orders: OrderService,
        stock: StockService,
        payments: PaymentService,
        promotions: Promotions,
        carts: Carts,
        task_tokens: TaskTokens,
        refunds: OrderRefunds,
        unit_price_of: Callable[[str, str | None], int],
        outbox: Outbox,
        clock: Clock,
        times: SagaTimes,
    ) -> None:
        self.checkouts = checkouts
        self.orders = orders
        self.stock = stock
        self.payments = payments
        self.promotions = promotions
        self.carts = carts
        self.task_tokens = task_tokens
        self.refunds = refunds
        self.unit_price_of = unit_price_of
        self.outbox = outbox
        self.clock = clock
        self.times = times

    def _now(self) -> str:
        return to_iso(self.clock.now())

    # ------------------------------------------------------------------ forward steps
    def reserve(self, checkout_id: str) -> dict[str, Any]:
        """Hold every order's lines in its warehouse (CHK-3, CHK-10), fail closed: a warehouse that cannot
        answer is an error the state machine retries, never a fallback figure (CHK-2). Confirm reserved already;
        the deterministic ids make this a re-read then."""
        checkout = self.checkouts.get(checkout_id)
        hold_stock(self.stock, checkout, self.times.payment_window)
        return {"checkout_id": checkout.id, "payment_method": checkout.payment_method}

    def place_orders(self, checkout_id: str) -> dict[str, Any]:
        """Revalidate prices (CHK-4: a unit price that rose since the preview fails the checkout before anything
        is charged), then write one order per seller/factory (ORD-1) with the coupon usage (PRM-2), once."""
        checkout = self.checkouts.get(checkout_id)
        if checkout.orders_placed:
            return {"checkout_id": checkout.id}
        risen = [
            {
                "product_id": line.product_id,
                "variant_id": line.variant_id,
                "previous_unit_price": line.unit_price,
                "unit_price": now,
            }
            for order in checkout.quote.orders
            for line in order.lines
            if (now := self.unit_price_of(line.product_id, line.variant_id)) > line.unit_price
        ]
        if risen:
            raise PriceChanged("a price rose since the preview: preview again", details=risen)

        def once() -> None:
            current = self.checkouts.get(checkout_id)
            if current.orders_placed:
                return
            tx = Transaction()
            for order in self._orders_of(current):
                self.orders.add_to(tx, order, checkout_id=current.id)
            if current.coupon_codes:
                self.promotions.redeem(tx, current.coupon_codes, current.buyer.customer_id, current.id)
            # The cart is emptied exactly when its orders exist; a cart changed since confirm fails this (cart_changed).
            self.carts.convert(tx, current.buyer, current.cart_id, current.cart_version, current.merged_guest_version)
            self.checkouts.change(tx, current, orders_placed=True, updated_at=self._now())
            tx.commit()

        retry_stale(once, ATTEMPTS)
        return {"checkout_id": checkout_id}

    def create_payment(self, checkout_id: str) -> dict[str, Any]:
        """The payment for the checkout's TOTAL (PAY-7), by its method. Returns ``{status}``: ``awaiting_payment``
        (an invoice to pay), ``paid`` (the wallet) or ``processing`` (COD)."""
        checkout = self.checkouts.get(checkout_id)
        if checkout.status != "pending":
            outcome = _outcome(checkout)
        elif checkout.payment_method == "cod":
            outcome = self._move(checkout_id, "processing", order_status="processing")
        elif checkout.payment_method == "wallet":
            outcome = self._pay_from_wallet(checkout_id)
        else:
            outcome = self._open_invoice(checkout)
        self.checkouts.unlock(checkout.buyer.owner_key, checkout.id)  # no longer in flight (CHK-6)
        return outcome

    def keep_for_payment_retry(self, checkout_id: str, error: dict[str, Any] | None) -> dict[str, Any]:
        """CHK-7: the payment could not be created (the provider kept failing past the step's retries). Nothing is
        undone: the orders, the coupon use and the reservations stay, the reservations held past the wait for the
        retry plus a whole payment window, and the buyer is told that nothing was charged, that the items stay
        reserved and when the payment is tried again. Answers the wait before that retry (``retry_in_seconds``);
        a checkout that moved on meanwhile is answered as it stands. A reservation lost already fails this step
        (409): the state machine compensates."""
        retry_in = self.times.payment_window
        logger.warning(
            "checkout payment not created; kept for a retry", extra={"checkout_id": checkout_id, **(error or {})}
        )

        def once() -> str:
            checkout = self.checkouts.get(checkout_id)
            if checkout.status != "pending":
                return checkout.status
            self.stock.extend(checkout.reservation_ids, retry_in + self.times.payment_window * 2)
            retry_at = to_iso(self.clock.now() + retry_in)
            kept = CheckoutError(
                code="payment_unavailable",
                message=(
                    "the payment could not be created yet: nothing was charged and your items stay reserved; we try "
                    f"again at {retry_at}, then this checkout shows how to pay"
                ),
                next_step="wait",
            )
            tx = Transaction()
            self.checkouts.change(tx, checkout, error=kept, updated_at=self._now())
            tx.commit()
            return checkout.status

        status = retry_stale(once, ATTEMPTS)
        return {"checkout_id": checkout_id, "status": status, "retry_in_seconds": int(retry_in.total_seconds())}

    def _open_invoice(self, checkout: Checkout) -> dict[str, Any]:
        """The invoice of the checkout's current payment attempt, handed to the buyer only while it can be paid
        (CHK-7): one found at Xendit (its creation's answer lost) that expired or expires too soon is replaced."""
        for _ in range(ATTEMPTS):
            payment = self._current_payment(checkout)
            # External id = our payment id: a retry after a crash finds the invoice instead of opening a second one.
            invoice = self.payments.find_invoice(payment)
            if invoice is not None and not self._payable(invoice):
                replaced = self._replace_unpayable_invoice(checkout, payment, invoice)
                if replaced is not None:
                    return replaced
                checkout = self.checkouts.get(checkout.id)
                continue
            invoice = invoice or self.payments.open_invoice(payment, self.clock.now() + self.times.payment_window)
            return self._hand_out(checkout, payment, invoice)
        raise DependencyUnavailable(f"checkout {checkout.id}: Xendit keeps answering unpayable invoices")

    def _current_payment(self, checkout: Checkout) -> Payment:
        payment = self.payments.repository.find_payment(checkout.retail_payment_id)
        if payment is not None:
            return payment
        payment = self.payments.new_payment(
            checkout.retail_payment_id,
            buyer_id(checkout.buyer),
            "retail_checkout",
            checkout.quote.total,
            checkout.quote.currency,
            f"Patungan checkout {checkout.id}",
            {"checkout_id": checkout.id},
        )
        tx = Transaction()
        self.payments.add_payment(tx, payment)
        with contextlib.suppress(Conflict):  # written by an attempt that crashed before answering
            tx.commit()
        return self.payments.repository.get_payment(payment.id)

    def _payable(self, invoice: Invoice) -> bool:
        """Pending at Xendit with at least half a payment window left to pay it: the buyer is never handed an
        invoice that is expired, or about to, as the checkout's way to pay."""
        left = parse_iso(invoice.expires_at) - self.clock.now()
        return invoice.status is InvoiceStatus.PENDING and left >= self.times.payment_window / 2

    def _replace_unpayable_invoice(
        self, checkout: Checkout, payment: Payment, invoice: Invoice
    ) -> dict[str, Any] | None:
        """The invoice first made unpayable at Xendit (expired there: never two payable invoices for one
        checkout), then the payment expires on our side and the checkout moves to its next payment attempt, whose
        invoice the caller opens (None). An invoice that turns out paid is no invoice to replace: Xendit's record
        of it is applied as its webhook would be (the checkout becomes paid) and the checkout's outcome answered."""
        paid = invoice.status is InvoiceStatus.PAID
        if invoice.status is InvoiceStatus.PENDING:
            paid = self.payments.gateway.expire_invoice(invoice.id).outcome is ExpireOutcome.ALREADY_PAID
        if paid:
            self.payments.apply_paid_invoice(payment)
            return _outcome(self.checkouts.get(checkout.id))
        logger.warning(
            "an invoice found for the checkout can no longer be paid: opening the next payment attempt",
            extra={"checkout_id": checkout.id, "payment_id": payment.id, "invoice_id": invoice.id},
        )

        def once() -> None:
            current = self.checkouts.get(checkout.id)
            if current.status != "pending" or current.payment_attempt != checkout.payment_attempt:
                return  # moved on meanwhile (another retry replaced it, or the checkout ended)
            tx = Transaction()
            stale = self.payments.repository.get_payment(payment.id)
            if stale.status == "pending":
                self.payments.expire_now(tx, stale)
            following = self.checkouts.change(
                tx, current, payment_attempt=current.payment_attempt + 1, updated_at=self._now()
            )
            # The orders name the payment that can pay them (what GET /v1/orders/{id} and their events show).
            for order_id in current.order_ids if current.orders_placed else []:
                self.orders.repository.repay(
                    tx, order_id, following.retail_payment_id, current.retail_payment_id, self._now()
                )
            tx.commit()

        retry_stale(once, ATTEMPTS)
        current = self.checkouts.get(checkout.id)
        return None if current.status == "pending" else _outcome(current)

    def _hand_out(self, checkout: Checkout, payment: Payment, invoice: Invoice) -> dict[str, Any]:
        """The checkout awaits payment of ``invoice``, with its events; a checkout that moved on is answered."""

        def once() -> dict[str, Any]:
            current = self.checkouts.get(checkout.id)
            if current.status != "pending":
                return _outcome(current)
            fresh = self.payments.repository.get_payment(payment.id)
            tx = Transaction()
            if fresh.invoice_id is None:
                self.payments.attach_invoice(tx, fresh, invoice)
            awaiting = self.checkouts.change(
                tx,
                current,
                status="awaiting_payment",
                payment_id=fresh.id,
                invoice_url=invoice.invoice_url,
                payment_expires_at=invoice.expires_at,
                error=None,  # a payment_unavailable shown while it was retried (CHK-7) is past
                updated_at=self._now(),
            )
            for order in self._placed(current):
                self.orders.add_event(tx, "order.payment_pending", order)
            tx.commit()
            return _outcome(awaiting)

        return retry_stale(once, ATTEMPTS)

    def _pay_from_wallet(self, checkout_id: str) -> dict[str, Any]:
        """Debited at once, conditional on the balance (WAL-1), in the transaction that marks the checkout and its
        orders paid: a short wallet fails the checkout (InsufficientFunds), nothing half-done."""

        def once() -> dict[str, Any]:
            checkout = self.checkouts.get(checkout_id)
            if checkout.status != "pending":
                return {"checkout_id": checkout.id, "status": checkout.status}
            if checkout.buyer.customer_id is None:
                raise Conflict("a guest has no wallet", code="wallet_unavailable")
            tx = Transaction()
            self.payments.ledger.add_to(
                tx,
                Movement(
                    id=_wallet_movement_id(checkout),
                    type="wallet_debit",
                    entries=transfer(
                        debit=accounts.buyer_wallet(checkout.buyer.customer_id),
                        credit=accounts.checkout_escrow(checkout.id),
                        amount=checkout.quote.total,
                    ),
                    currency=checkout.quote.currency,
                    reference={"checkout_id": checkout.id},
                    created_at=self._now(),
                ),
            )
            self._settle(tx, checkout, "paid", order_status="paid")
            tx.commit()
            return {"checkout_id": checkout.id, "status": "paid"}

        return retry_stale(once, ATTEMPTS)

    def await_payment(self, checkout_id: str, task_token: str) -> None:
        """Keep the task token the saga waits on; the invoice webhook succeeds it. A payment that arrived before
        the token was kept is answered at once."""

        def once() -> str | None:
            checkout = self.checkouts.get(checkout_id)
            if checkout.status != "awaiting_payment":
                return checkout.status
            tx = Transaction()
            self.checkouts.change(tx, checkout, task_token=task_token, updated_at=self._now())
            tx.commit()
            return None

        settled = retry_stale(once, ATTEMPTS)
        if settled == "paid":  # anything else: the window's timeout decides
            self.task_tokens.succeed(task_token, {"checkout_id": checkout_id, "status": settled})

    def hold_for_fulfilment(self, checkout_id: str) -> dict[str, Any]:
        """Paid (or COD): the reservations hold the stock, without expiry, until the orders ship (commit) or are
        cancelled (release); a paid order's stock never goes back to the shelf on a timer."""
        checkout = self.checkouts.get(checkout_id)
        if checkout.status not in ("paid", "processing"):
            raise Conflict(f"checkout {checkout.id} is {checkout.status}, not paid", code="illegal_transition")
        # An order the buyer cancelled since the payment released its own stock (ORD-3): hold only what is still
        # sold. A refusal with an order cancelled meanwhile is decided again; with none, it is real and raised.
        sold = self._still_sold(checkout)
        while sold:
            try:
                self.stock.hold_until_ended(sold)
                break
            except Conflict:
                before, sold = sold, self._still_sold(checkout)
                if sold == before:
                    raise
        return {"checkout_id": checkout.id, "status": checkout.status}

    # ------------------------------------------------------------------ what the payment webhook does
    def on_paid(self, tx: Transaction, checkout_id: str) -> bool:
        """The invoice is paid: the checkout and its orders become paid in the payment's transaction (conditional:
        a checkout that expired first refuses, and the money goes back). False when it is too late."""
        checkout = self.checkouts.get(checkout_id)
        if checkout.status not in ("pending", "awaiting_payment"):
            return False
        self._settle(tx, checkout, "paid", order_status="paid")
        if checkout.task_token:
            token = checkout.task_token
            tx.after_commit.append(
                lambda: self.task_tokens.succeed(token, {"checkout_id": checkout_id, "status": "paid"})
            )
        return True

    # ------------------------------------------------------------------ timeout and compensations
    def expire(self, checkout_id: str) -> dict[str, Any]:
        """The payment window passed (ORD-3): unless the payment won the race, the checkout and its orders expire,
        the payment with them, coupon usage is given back, the invoice is expired at Xendit and the stock is
        released. Exactly one of paid and expired: both are conditional on ``awaiting_payment``."""

        def once() -> str:
            checkout = self.checkouts.get(checkout_id)
            if checkout.status != "awaiting_payment":
                return checkout.status
            tx = Transaction()
            self._settle(tx, checkout, "expired", order_status="expired")
            payment = self.payments.repository.find_payment(checkout.retail_payment_id)
            if payment is not None and payment.status == "pending":  # Xendit's own EXPIRED may have come first
                self.payments.expire_now(tx, payment)
            tx.commit()
            return "expired"

        status = retry_stale(once, ATTEMPTS)
        if status != "expired":
            return {"checkout_id": checkout_id, "status": status}
        checkout = self.checkouts.get(checkout_id)
        if checkout.payment_id is not None:
            self._close_invoice(self.payments.payment(checkout.payment_id))
        self._release(checkout)
        return {"checkout_id": checkout_id, "status": "expired"}

    def compensate(self, checkout_id: str, error: dict[str, Any] | None) -> dict[str, Any]:
        """A forward step failed for good: undo what the steps before it did (orders cancelled, coupon usage given
        back, payment failed, stock released) and show the buyer why (CHK-5, CHK-7). Idempotent."""
        failure = _failure(error)

        def once() -> str:
            checkout = self.checkouts.get(checkout_id)
            if checkout.status in ("paid", "processing"):
                return checkout.status
            if checkout.status != "failed":
                tx = Transaction()
                self._settle(tx, checkout, "failed", order_status="cancelled", error=_with_next_step(failure, checkout))
                payment = self.payments.repository.find_payment(checkout.retail_payment_id)
                if payment is not None and payment.status == "pending":
                    self.payments.expire_now(tx, payment)
                tx.commit()
            return "failed"

        status = retry_stale(once, ATTEMPTS)
        if status != "failed":
            # Paid after all (a step after the payment failed): the buyer's money holds the orders; never undo it.
            logger.critical(
                "a paid checkout failed a later step", extra={"checkout_id": checkout_id, **failure.model_dump()}
            )
            return {"checkout_id": checkout_id, "status": status}
        checkout = self.checkouts.get(checkout_id)
        payment = self.payments.repository.find_payment(checkout.retail_payment_id)
        if payment is not None and payment.invoice_id is not None:
            self._close_invoice(payment)
        self._release(checkout)
        self.checkouts.unlock(checkout.buyer.owner_key, checkout.id)
        metrics.add_metric(name="CheckoutsFailed", unit="Count", value=1)
        return {"checkout_id": checkout_id, "status": "failed", "error": failure.model_dump()}

    def record_stuck(self, checkout_id: str, step: str, error: dict[str, Any] | None) -> dict[str, Any]:
        """A step or compensation kept failing: shown on the checkout, logged CRITICAL and counted, before the
        execution fails (its ExecutionsFailed alarm). A person has to look: never a silent failure."""
        stuck_step = f"checkout.{step}"
        logger.critical(
            "checkout saga stuck", extra={"checkout_id": checkout_id, "stuck_step": stuck_step, "error": error}
        )
        metrics.add_metric(name="CheckoutsStuck", unit="Count", value=1)
        self.checkouts.mark_stuck(checkout_id, stuck_step, self._now())
        return {"checkout_id": checkout_id, "stuck_step": stuck_step}

    # ------------------------------------------------------------------ cancelling a retail order (ORD-3)
    def cancel_order(self, principal: Principal, order_id: str) -> Order:
        """The buyer (their own, before shipping) or an admin cancels a paid or COD order: it becomes cancelled,
        its stock is released and, when paid, its money goes back in the same transaction (``OrderRefunds``). An
        unpaid order is not cancelled here: it expires with its checkout."""

        def once() -> tuple[Order, Checkout]:
            # Read, decided and written again when another writer got there first (another cancel, a booking, a
            # returned parcel): the order as it is now is cancelled already, or refused for what it has become.
            order = self.orders.get(principal, order_id)
            if not (principal.is_admin or order.user_id == principal.user_id):
                raise Forbidden("only the buyer or an admin cancels an order")
            if order.checkout_id is None:
                raise Conflict("a group-buying order is cancelled with its session", code="illegal_transition")
            checkout = self.checkouts.get(order.checkout_id)
            if order.status in ("cancelled", "refunded"):
                return order, checkout
            if order.status not in ("paid", "processing") or order.shipment_id is not None:
                shipping = " and its shipment is booking" if order.shipment_id else ""
                raise Conflict(
                    f"order {order.id} is {order.status}{shipping}: it can no longer be cancelled",
                    code="illegal_transition",
                )
            tx = Transaction()
            if checkout.payment_method == "cod":
                self.orders.move_to(tx, order, "cancelled")
            else:
                self.refunds.add_refund(tx, order, "order_cancelled")
            tx.commit()
            return self.orders.repository.get(order.id), checkout

        order, checkout = retry_stale(once, ATTEMPTS)
        # Also on a retry: a release that failed after the commit (inventory down) is done now.
        self._release_order_stock(order, checkout)
        return order

    def release_cancelled(self, order_id: str) -> dict[str, Any]:
        """``order.cancelled`` (through the outbox, written with the cancel): the cancelled retail order's stock is
        released even when the cancel ended before releasing it and nobody retried it (its reservation is held for
        fulfilment without expiry: no sweep frees it). Idempotent. An order a shipment holds is left to fulfilment
        (a returned parcel's units come back through its restock, never by releasing its reservation)."""
        order = self.orders.repository.get(order_id)
        if order.checkout_id is None or order.status not in ("cancelled", "refunded") or order.shipment_id:
            return {"order_id": order_id, "released": False}
        self._release_order_stock(order, self.checkouts.get(order.checkout_id))
        return {"order_id": order_id, "released": True}

    def _release_order_stock(self, order: Order, checkout: Checkout) -> None:
        with contextlib.suppress(Conflict, NotFound):  # released or committed already (the stock left), or never held
            self.stock.release(checkout.reservation_ids[checkout.order_ids.index(order.id)])

    def on_refunded(self, tx: Transaction, checkout_id: str) -> None:
        """The payment went back: a cancelled order of the checkout is now refunded (ORD-3)."""
        for order in self._placed(self.checkouts.get(checkout_id)):
            if order.status == "cancelled":
                self.orders.move_to(tx, order, "refunded")

    # ------------------------------------------------------------------ helpers
    def _close_invoice(self, payment: Payment) -> None:
        """The invoice of a checkout that ended unpaid is expired at Xendit. Paid there in the meantime: applied now
        as its webhook would be (the checkout has ended: the money is refunded), under that webhook's inbox key, so
        a lost webhook loses nothing and a late one changes nothing more (ORD-3)."""
        if self.payments.expire_invoice(payment) is ExpireOutcome.ALREADY_PAID:
            self.payments.apply_paid_invoice(payment)

    def _move(self, checkout_id: str, status: str, *, order_status: str) -> dict[str, Any]:
        def once() -> dict[str, Any]:
            checkout = self.checkouts.get(checkout_id)
            if checkout.status != "pending":
                return {"checkout_id": checkout.id, "status": checkout.status}
            tx = Transaction()
            self._settle(tx, checkout, status, order_status=order_status)
            tx.commit()
            return {"checkout_id": checkout.id, "status": status}

        return retry_stale(once, ATTEMPTS)

    def _settle(
        self, tx: Transaction, checkout: Checkout, status: str, *, order_status: str, error: CheckoutError | None = None
    ) -> None:
        """The checkout's and its placed orders' next state, conditional on where each was read, with the events,
        and the coupon usage given back when the orders will never be paid (ORD-3, PRM-2)."""
        changes: dict[str, Any] = {"status": status, "updated_at": self._now()}
        if error is not None:
            changes["error"] = error
        self.checkouts.change(tx, checkout, **changes)
        self.outbox.add(
            tx, new_event(f"checkout.{status}", checkout.id, {"checkout_id": checkout.id, "status": status}, self.clock)
        )
        for order in self._placed(checkout):
            self.orders.move_to(tx, order, order_status)
        if order_status in ("expired", "cancelled") and checkout.orders_placed and checkout.coupon_codes:
            self.promotions.give_back(tx, checkout.coupon_codes, checkout.id)

    def _placed(self, checkout: Checkout) -> list[Order]:
        if not checkout.orders_placed:
            return []
        return [self.orders.repository.get(order_id) for order_id in checkout.order_ids]

    def _still_sold(self, checkout: Checkout) -> list[str]:
        """The reservations of the checkout's orders that are not cancelled (each order has its own)."""
        return [
            reservation_id
            for reservation_id, order in zip(checkout.reservation_ids, self._placed(checkout), strict=True)
            if order.status not in ("cancelled", "refunded")
        ]

    def _release(self, checkout: Checkout) -> None:
        for reservation_id in checkout.reservation_ids:
            try:
                self.stock.release(reservation_id)
            except NotFound:
                continue  # never reserved (the failure came first)

    def _orders_of(self, checkout: Checkout) -> list[Order]:
        """ORD-1: snapshots of what was bought, how it ships and where to, at the quote's prices."""
        now = self._now()
        method = checkout.quote.shipping_method
        return [
            Order(
                id=order_id,
                user_id=buyer_id(checkout.buyer),
                checkout_id=checkout.id,
                factory_id=quoted.factory_id,
                seller_id=quoted.seller_id,
                status="pending_payment",
                lines=[OrderLine(**line.model_dump()) for line in quoted.lines],
                subtotal=quoted.subtotal,
                shipping=quoted.shipping,
                shipping_discount=quoted.shipping_discount,
                tax=quoted.tax,
                discount=quoted.discount,
                total=quoted.total,
                currency=checkout.quote.currency,
                shipping_method=f"{method.courier} {method.service}",
                shipping_method_id=method.shipping_method_id,
                warehouse_id=quoted.warehouse_id,
                address=checkout.address,
                payment_id=_payment_reference(checkout),
                payment_method=checkout.payment_method,
                created_at=now,
                updated_at=now,
            )
            for order_id, quoted in zip(checkout.order_ids, checkout.quote.orders, strict=True)
        ]


def hold_stock(stock: StockService, checkout: Checkout, payment_window: timedelta) -> list[str]:
    """Every order's lines held in its warehouse, under ids derived from the checkout (a retry holds nothing
    twice), for twice the payment window (the saga extends them once paid). Returns the reservations held; on a
    refusal those held already are given back and the refusal raised (all or nothing, CHK-3)."""
    held: list[str] = []
    try:
        for reservation_id, order in zip(checkout.reservation_ids, checkout.quote.orders, strict=True):
            reservation = stock.reserve(
                checkout.id,
                [StockLine(line.product_id, line.variant_id, line.quantity) for line in order.lines],
                payment_window * 2,
                warehouse_id=order.warehouse_id,
                reservation_id=reservation_id,
            )
            if reservation.status != "held":  # made before, and released or expired since: never sold unheld
                raise Conflict(f"reservation {reservation_id} is {reservation.status}", code="reservation_expired")
            held.append(reservation_id)
    except DomainError:
        for reservation_id in held:
            stock.release(reservation_id)
        raise
    return held


def buyer_id(shopper: Shopper) -> str:
    """Who an order and a payment belong to: the buyer, or ``guest:<id>`` (CHK-12; never a real user's id)."""
    return shopper.customer_id or f"{accounts.GUEST_PREFIX}{shopper.guest_id}"


def _outcome(checkout: Checkout) -> dict[str, Any]:
    """What a step answers the state machine: the checkout's status and, while it awaits payment, when the
    invoice's window ends (the saga never expires it before, CHK-7)."""
    outcome = {"checkout_id": checkout.id, "status": checkout.status}
    if checkout.status == "awaiting_payment" and checkout.payment_expires_at is not None:
        outcome["payment_expires_at"] = checkout.payment_expires_at
    return outcome


def _payment_reference(checkout: Checkout) -> str:
    """What pays the order: the invoice payment, the wallet movement, or nothing yet (COD)."""
    return {
        "invoice": checkout.retail_payment_id,
        "wallet": _wallet_movement_id(checkout),
        "cod": "cod",
    }[checkout.payment_method]


def _wallet_movement_id(checkout: Checkout) -> str:
    return f"wallet_debit:{checkout.id}"


def _failure(error: dict[str, Any] | None) -> CheckoutError:
    """What Step Functions caught (``{"Error": class name, "Cause": the Lambda's JSON error}``), as the buyer is
    shown it: a known refusal by its code, otherwise our own message (domain messages are written for buyers)."""
    fallback = "the checkout could not be completed"
    if not error:
        return CheckoutError(code="checkout_failed", message=fallback)
    kind = str(error.get("Error", ""))
    try:
        message = str(json.loads(error.get("Cause") or "{}").get("errorMessage") or "")
    except (TypeError, ValueError):
        message = ""
    codes = {
        "PriceChanged": "price_changed",
        "InsufficientFunds": "insufficient_funds",
        "CouponNotEligible": "coupon_not_eligible",
        "DependencyUnavailable": "payment_unavailable",
    }
    if kind == "DependencyUnavailable":
        # After the retry window too (CHK-7): the orders were cancelled and the cart converted with them.
        fallback = "the payment could not be created: nothing was charged and the items went back on sale"
        message = ""
    return CheckoutError(code=codes.get(kind, "checkout_failed"), message=message or fallback)


def _with_next_step(failure: CheckoutError, checkout: Checkout) -> CheckoutError:
    """The failure as the buyer's app is told it, with how to try again (issue 10 leftover 3). The cart is
    converted exactly when the orders are placed (one transaction): before that it still holds what was bought,
    and the same key with it would answer this failed checkout again (CHK-6), so a new key is needed; after, the
    cart is a new, empty one, and the items added again are a new cart, so a new checkout."""
    if checkout.orders_placed:
        next_step: NextStep = "add_to_cart_and_confirm"
        advice = "your cart was emptied with the cancelled orders: add the items again, preview and confirm"
    else:
        next_step = "confirm_with_new_key"
        advice = "your cart still holds its items: preview and confirm again with a new Idempotency-Key"
    return failure.model_copy(update={"message": f"{failure.message}; {advice}", "next_step": next_step})
