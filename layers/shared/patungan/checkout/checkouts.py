"""A confirmed checkout as the saga drives it and GET /v1/checkout/{id} shows it (API.md "Checkout"), and its
items in the Orders table: ``CHECKOUT#id`` (the idempotency record too: its id is derived from the buyer, the
Idempotency-Key and the cart's hash, CHK-6), ``CONFIRM_KEY#…`` (the checkout a shopper's key named last) and
``CONFIRM_LOCK#owner`` (one confirm in flight per buyer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.checkout.cart import Shopper
from patungan.checkout.quote import PaymentMethod, Quote
from patungan.core.errors import ConcurrentUpdate, NotFound, RateLimited
from patungan.core.ids import keyed_id

CheckoutStatus = Literal["pending", "awaiting_payment", "paid", "processing", "failed", "expired", "cancelled"]
META = "META"
# Forward-only: a checkout moves only from these states into the key state.
CHECKOUT_TRANSITIONS: dict[str, frozenset[str]] = {
    "awaiting_payment": frozenset({"pending"}),
    "paid": frozenset({"pending", "awaiting_payment"}),
    "processing": frozenset({"pending"}),
    "expired": frozenset({"awaiting_payment"}),
    "failed": frozenset({"pending", "awaiting_payment"}),
    "cancelled": frozenset({"pending", "awaiting_payment"}),
}
_KEYS = {"pk", "sk", "stuck_step", "stuck_at"}


@dataclass(frozen=True)
class Previewed:
    """What a preview showed the shopper (CHK-4): unit prices by line, and the total (None: a preview remembered
    before totals were)."""

    prices: dict[str, int]
    total: int | None


# How the app tries again after a failed checkout (issue 10 leftover 3; CHK-6): the same Idempotency-Key with the
# same cart always answers the same (failed) checkout; a changed cart is a new checkout, whatever the key.
NextStep = Literal["wait", "confirm_with_new_key", "add_to_cart_and_confirm"]


class CheckoutError(BaseModel):
    code: str
    message: str
    details: list[Any] = Field(default_factory=list)
    next_step: NextStep | None = Field(
        None,
        description=(
            "wait: nothing to do, the payment is retried and this checkout shows how to pay; confirm_with_new_key: "
            "the cart still holds what this checkout tried to buy: preview, then confirm with a NEW Idempotency-Key "
            "(this key with this cart answers this failed checkout again); add_to_cart_and_confirm: the cart was "
            "emptied with the cancelled orders: add the items again, preview and confirm (a changed cart is a new "
            "checkout, whatever the key)"
        ),
    )


class Checkout(BaseModel):
    id: str
    buyer: Shopper
    cart_id: str
    cart_version: int
    merged_guest_version: int = 0  # the guest cart shown merged in the cart bought (CHK-12); 0: none
    status: CheckoutStatus
    payment_method: PaymentMethod
    quote: Quote
    coupon_codes: list[str] = Field(default_factory=list)
    cart_hash: str
    address: dict
    payment_id: str | None = None
    invoice_url: str | None = None
    payment_expires_at: str | None = Field(
        None, description="when the invoice the buyer was given stops taking payment"
    )
    # Bumped when an invoice found for the payment can no longer be paid in time (CHK-7): a new payment, a new
    # external id at Xendit, never the unpayable invoice handed out again.
    payment_attempt: int = 0
    orders_placed: bool = False
    task_token: str | None = None
    error: CheckoutError | None = None
    created_at: str
    updated_at: str

    @property
    def order_ids(self) -> list[str]:
        return [keyed_id("ord", self.id, str(n)) for n in range(len(self.quote.orders))]

    @property
    def reservation_ids(self) -> list[str]:
        return [keyed_id("rsv", self.id, str(n)) for n in range(len(self.quote.orders))]

    @property
    def retail_payment_id(self) -> str:
        """The current payment attempt's id (the invoice's external id at Xendit)."""
        if self.payment_attempt == 0:
            return keyed_id("pay", self.id)
        return keyed_id("pay", self.id, str(self.payment_attempt))


def checkout_id_for(owner_key: str, idempotency_key: str, cart_hash: str) -> str:
    """The same buyer, key and cart name the same checkout; a changed cart is a new one (CHK-6)."""
    return keyed_id("chk", owner_key, idempotency_key, cart_hash)


def _key(checkout_id: str) -> dict[str, str]:
    return {"pk": f"CHECKOUT#{checkout_id}", "sk": META}


def _key_of_confirm(owner_key: str, idempotency_key: str) -> dict[str, str]:
    return {"pk": f"CONFIRM_KEY#{keyed_id('key', owner_key, idempotency_key)}", "sk": META}


class CheckoutRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def add(self, tx: Transaction, checkout: Checkout) -> None:
        tx.put(self.table, {**_key(checkout.id), **checkout.model_dump()}, condition="attribute_not_exists(pk)")

    def find(self, checkout_id: str) -> Checkout | None:
        item = self.table.get(_key(checkout_id))
        return None if item is None else Checkout.model_validate({k: v for k, v in item.items() if k not in _KEYS})

    def get(self, checkout_id: str) -> Checkout:
        checkout = self.find(checkout_id)
        if checkout is None:
            raise NotFound(f"no checkout {checkout_id}")
        return checkout

    def change(self, tx: Transaction, checkout: Checkout, *, token_is: str | None = None, **changes: Any) -> Checkout:
        """Write ``changes`` while the checkout is where it was read (its status; with ``token_is``, also its task
        token as read, so a token stored meanwhile is not missed). A status change only as CHECKOUT_TRANSITIONS
        allows. A checkout that moved on fails the transaction as a concurrent change: read again, decide again."""
        status = changes.get("status")
        allowed = CHECKOUT_TRANSITIONS[status] if status else frozenset({checkout.status})
        if status and checkout.status not in allowed:
            raise ConcurrentUpdate(f"checkout {checkout.id} is {checkout.status}, it cannot become {status}")
        names = {f"#c{i}": name for i, name in enumerate(changes)}
        values: dict[str, Any] = {f":c{i}": _plain(value) for i, value in enumerate(changes.values())}
        condition = "#status = :read_status"
        values[":read_status"] = checkout.status
        if token_is is not None or "task_token" not in changes:
            condition += " AND (attribute_not_exists(task_token) OR task_token = :read_token)"
            values[":read_token"] = checkout.task_token
        if "payment_attempt" in changes:  # two retries replacing one invoice move to ONE next attempt
            condition += " AND (attribute_not_exists(payment_attempt) OR payment_attempt = :read_attempt)"
            values[":read_attempt"] = checkout.payment_attempt
        tx.update(
            self.table,
            _key(checkout.id),
            "SET " + ", ".join(f"#c{i} = :c{i}" for i in range(len(changes))),
            condition=condition,
            names={**names, "#status": "status"},
            values=values,
            on_fail=ConcurrentUpdate(f"checkout {checkout.id} changed meanwhile"),
        )
        return checkout.model_copy(update=changes)

    def mark_stuck(self, checkout_id: str, stuck_step: str, at: str) -> None:
        self.table.update(
            _key(checkout_id), "SET stuck_step = :step, stuck_at = :at", values={":step": stuck_step, ":at": at}
        )

    # ---- the confirm a shopper's Idempotency-Key named (CHK-6, SYS-4)
    def remember_key(self, tx: Transaction, owner_key: str, idempotency_key: str, checkout_id: str) -> None:
        """Add to ``tx``: the shopper's key names ``checkout_id``. The checkout's own id needs the cart it bought,
        which its conversion empties; the same confirm retried after that answers this checkout, not cart_empty."""
        tx.put(self.table, {**_key_of_confirm(owner_key, idempotency_key), "checkout_id": checkout_id})

    def find_by_key(self, owner_key: str, idempotency_key: str) -> Checkout | None:
        item = self.table.get(_key_of_confirm(owner_key, idempotency_key))
        return None if item is None else self.find(item["checkout_id"])

    # ---- what the buyer's last preview showed (CHK-4)
    def remember_preview(self, owner_key: str, quote: Quote) -> None:
        """The unit prices and the total a preview showed, under the shopper: confirm refuses any that rose since."""
        prices = {line_key(line.product_id, line.variant_id): line.unit_price for o in quote.orders for line in o.lines}
        self.table.put(
            {
                "pk": f"PREVIEW#{owner_key}",
                "sk": META,
                "prices_validated_at": quote.prices_validated_at,
                "prices": prices,
                "total": quote.total,
            }
        )

    def previewed(self, owner_key: str, prices_validated_at: str) -> Previewed | None:
        """What the shopper's preview at ``prices_validated_at`` showed; None when that is not their last one."""
        item = self.table.get({"pk": f"PREVIEW#{owner_key}", "sk": META})
        if item is None or item.get("prices_validated_at") != prices_validated_at:
            return None
        return Previewed(
            prices={key: int(price) for key, price in item["prices"].items()},
            total=int(item["total"]) if "total" in item else None,
        )

    # ---- one confirm in flight per buyer (CHK-6)
    def lock(self, owner_id: str, checkout_id: str, now: str, until: str) -> None:
        """Hold the buyer's confirm lock for ``checkout_id`` until ``until`` (a crashed confirm's lock lapses);
        held by another confirm → 429."""
        self.table.put(
            {"pk": f"CONFIRM_LOCK#{owner_id}", "sk": META, "checkout_id": checkout_id, "until": until},
            condition="attribute_not_exists(pk) OR #until <= :now OR checkout_id = :checkout",
            names={"#until": "until"},
            values={":now": now, ":checkout": checkout_id},
            on_fail=RateLimited("another checkout of yours is being confirmed; wait for it"),
        )

    def unlock(self, owner_id: str, checkout_id: str) -> None:
        """Release the lock if it is still this checkout's (a later confirm may hold it now)."""
        try:
            self.table.delete(
                {"pk": f"CONFIRM_LOCK#{owner_id}", "sk": META},
                condition="checkout_id = :checkout",
                values={":checkout": checkout_id},
                on_fail=ConcurrentUpdate("the lock is another checkout's"),
            )
        except ConcurrentUpdate:
            return


def line_key(product_id: str, variant_id: str | None) -> str:
    return f"{product_id}#{variant_id or ''}"


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value
