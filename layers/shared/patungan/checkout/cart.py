"""The cart (CHK-1, CHK-12, PRM-3): a buyer's (by token) or a guest's (by ``X-Guest-Id``), one DynamoDB item per
owner holding its lines and coupon codes. Every mutation writes the whole item on the condition that its version
is the one read and bumps it, so concurrent adds never lose one another (a conflicted write reads and runs again).

Only retail products are sold through the cart: a seller's (stock holder's), active. A factory's products are
made to order and sold by group buying (REQUIREMENTS.md "Factory group buying"); they hold no warehouse stock a
checkout could reserve, so adding one is 422. Prices are not stored: a cart shows, and a checkout prices, each
line at the catalog's price now; ``available`` is the non-binding figure of CHK-2 (confirm reserves).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.catalog.models import Product
from patungan.core.auth import Principal
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import BadRequest, ConcurrentUpdate, Conflict, NotFound, Unauthenticated, field_error
from patungan.core.ids import keyed_id, new_id
from patungan.core.inputs import Quantity, ResourceId, single_line
from patungan.core.retry import retry_stale

# A guest id is the app's own random id (a UUID is what we document); anything else is refused before it becomes
# part of a key.
GUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9-]{16,64}$")
MAX_COUPONS = 5


class Shopper(BaseModel):
    """Who a cart belongs to: a signed-in buyer (``customer_id``) or a guest (``guest_id`` only). When both are
    known, the buyer owns the cart and the guest's cart is merged into it (once)."""

    model_config = ConfigDict(frozen=True)

    customer_id: str | None = None
    guest_id: str | None = None

    @classmethod
    def of(cls, principal: Principal | None, guest_id: str | None) -> Shopper:
        """The shopper of a request: a signed-in caller must be a buyer (403 otherwise); without a token, an
        ``X-Guest-Id`` is required (401) and must look like the UUID the app generates (400)."""
        if guest_id is not None and not GUEST_ID_PATTERN.match(guest_id):
            raise BadRequest(
                "X-Guest-Id must be the app's random id: 16-64 letters, digits or dashes (a UUID)",
                code="invalid_guest_id",
            )
        if principal is not None:
            principal.require_buyer()
            return cls(customer_id=principal.user_id, guest_id=guest_id)
        if guest_id is None:
            raise Unauthenticated("sign in, or send X-Guest-Id to shop as a guest")
        return cls(guest_id=guest_id)

    @property
    def owner_key(self) -> str:
        return f"USER#{self.customer_id}" if self.customer_id else f"GUEST#{self.guest_id}"


class CartItemInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ResourceId
    variant_id: ResourceId | None = None
    quantity: Quantity


class CartItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Quantity


class CouponInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: single_line(64) = Field(description="the coupon's code (case does not matter)")


class CartLine(BaseModel):
    id: str
    product_id: str
    variant_id: str | None = None
    quantity: int
    unit_price: int = Field(description="the catalog's price now (minor units)")
    available: int = Field(description="units in stock over all warehouses now: not binding, confirm reserves")


class CartTotals(BaseModel):
    subtotal: int = Field(description="sum of quantity x unit_price; discounts, shipping and tax come with preview")
    item_count: int
    currency: str


class Cart(BaseModel):
    """The cart as GET /v1/cart shows it (API.md "Cart and checkout")."""

    id: str
    version: int
    items: list[CartLine]
    coupon_codes: list[str]
    totals: CartTotals
    _merged_guest_version: int = PrivateAttr(0)

    @property
    def merged_guest_version(self) -> int:
        """The version of the buyer's guest cart this cart shows merged (0: none): the one guest cart a checkout of
        this cart may delete when it converts it (CHK-12). Not shown to the buyer."""
        return self._merged_guest_version

    def content_hash(self) -> str:
        """What a confirm's idempotency covers (CHK-6): the cart id, every line's product, variant, quantity and
        unit price, and the coupon codes. The same cart hashes the same whatever order its lines are in; any
        change a buyer could make, or a price change, gives another hash."""
        content = {
            "cart_id": self.id,
            "lines": sorted(
                [line.product_id, line.variant_id or "", line.quantity, line.unit_price] for line in self.items
            ),
            "coupons": sorted(self.coupon_codes),
        }
        return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class StoredLine:
    id: str
    product_id: str
    variant_id: str | None
    quantity: int


@dataclass(frozen=True)
class StoredCart:
    """The cart item as stored: lines without prices (priced when shown), its version, its coupon codes."""

    owner_key: str
    id: str
    version: int  # 0: no cart stored yet
    lines: tuple[StoredLine, ...]
    coupon_codes: tuple[str, ...]


class Products(Protocol):
    def __call__(self, product_id: str) -> Product: ...


class Availability(Protocol):
    def available_by_product(self, product_id: str) -> dict[str | None, int]: ...


class CouponChecks(Protocol):
    def check_for_cart(self, code: str, customer_id: str | None, lines: Iterable[tuple[str, int]]) -> str: ...


class CartRepository:
    """One item per owner: ``CART#<owner>`` / ``CART``. Writes are conditional on the version read."""

    SK = "CART"

    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    @staticmethod
    def key(owner_key: str) -> dict[str, str]:
        return {"pk": f"CART#{owner_key}", "sk": CartRepository.SK}

    def load(self, owner_key: str) -> StoredCart:
        item = self.table.get(self.key(owner_key))
        if item is None:  # the same id until it is first saved: a cart shown twice is one cart
            return StoredCart(owner_key, keyed_id("cart", owner_key), 0, (), ())
        return StoredCart(
            owner_key,
            item["id"],
            item["version"],
            tuple(StoredLine(li["id"], li["product_id"], li.get("variant_id"), li["quantity"]) for li in item["lines"]),
            tuple(item.get("coupon_codes", [])),
        )

    def _item(self, cart: StoredCart, now: str) -> dict[str, Any]:
        return {
            **self.key(cart.owner_key),
            "id": cart.id,
            "version": cart.version,
            "lines": [
                {"id": li.id, "product_id": li.product_id, "variant_id": li.variant_id, "quantity": li.quantity}
                for li in cart.lines
            ],
            "coupon_codes": list(cart.coupon_codes),
            "updated_at": now,
        }

    def save(self, tx: Transaction, previous_version: int, cart: StoredCart, now: str) -> None:
        """Add the write of ``cart`` to ``tx``, on the condition that the stored version is still
        ``previous_version`` (0: no cart stored); otherwise the transaction fails with ConcurrentUpdate."""
        stale = ConcurrentUpdate("the cart changed while this request ran; retry")
        if previous_version == 0:
            tx.put(self.table, self._item(cart, now), condition="attribute_not_exists(pk)", on_fail=stale)
        else:
            tx.put(
                self.table,
                self._item(cart, now),
                condition="version = :v",
                values={":v": previous_version},
                on_fail=stale,
            )

    def convert(
        self,
        tx: Transaction,
        cart_id: str,
        version: int,
        emptied: StoredCart,
        guest: tuple[str, int] | None,
        now: str,
    ) -> None:
        """Add to ``tx``: cart ``cart_id`` at ``version`` replaced by ``emptied`` (version 0: a cart only ever shown,
        a buyer's guest cart merged into nothing stored yet), and the merged guest cart, if any (its owner key and
        the version that was merged), deleted on the condition that it is still that version."""
        changed = Conflict("the cart changed since this checkout priced it", code="cart_changed")
        if version == 0:
            condition, values = "attribute_not_exists(pk)", None
        else:
            condition, values = "id = :id AND version = :v", {":id": cart_id, ":v": version}
        item = {**self._item(emptied, now), "converted_cart_id": cart_id}
        tx.put(self.table, item, condition=condition, values=values, on_fail=changed)
        if guest is not None:
            guest_owner_key, guest_version = guest
            tx.delete(
                self.table,
                self.key(guest_owner_key),
                condition="version = :g",
                values={":g": guest_version},
                on_fail=changed,
            )

    def delete(self, tx: Transaction, cart: StoredCart) -> None:
        tx.delete(
            self.table,
            self.key(cart.owner_key),
            condition="version = :v",
            values={":v": cart.version},
            on_fail=ConcurrentUpdate("the guest cart changed while it was merged; retry"),
        )


class CartService:
    def __init__(
        self,
        repository: CartRepository,
        products: Products,
        availability: Availability,
        clock: Clock,
        *,
        max_lines: int,
        max_quantity: int,
        currency: str,
    ) -> None:
        self.repository = repository
        self.products = products
        self.availability = availability
        self.clock = clock
        self.max_lines = max_lines
        self.max_quantity = max_quantity
        self.currency = currency

    # ------------------------------------------------------------------ reading
    def get_for(self, shopper: Shopper) -> Cart:
        """The shopper's cart, priced now, with non-binding availability (an empty cart, version 0, when none is
        stored). Reads only. For a buyer who also sends a guest id, the guest cart's lines and coupons are shown
        merged into the buyer's (quantities of one item added up), at the buyer cart's stored version; the
        buyer's next change to the cart saves the merge and deletes the guest cart in one transaction, so a
        guest cart merges exactly once (and ``convert`` deletes it too)."""
        current, guest = self._current(shopper)
        shown = self._shown(current)
        shown._merged_guest_version = guest.version if guest else 0
        return shown

    # ------------------------------------------------------------------ mutations (CHK-1)
    def add_item(self, shopper: Shopper, item: CartItemInput) -> Cart:
        """Add ``quantity`` of a product (variant); the same product and variant again adds to its line. The
        product must be an active retail product with stock for the quantity (non-binding check: 409
        insufficient_stock when it is short now)."""
        self._sellable(item.product_id, item.variant_id)

        def change(cart: StoredCart) -> StoredCart:
            line = next(
                (li for li in cart.lines if (li.product_id, li.variant_id) == (item.product_id, item.variant_id)),
                None,
            )
            if line is None:
                kept = cart.lines
                if len(kept) >= self.max_lines:  # lines gone off sale are not shown: they give their place up
                    kept = tuple(li for li in kept if self._unit_price(li) is not None)
                if len(kept) >= self.max_lines:
                    raise field_error("product_id", f"a cart holds at most {self.max_lines} different items")
                line = StoredLine(new_id("line"), item.product_id, item.variant_id, 0)
                lines = (*kept, line)
            else:
                lines = cart.lines
            quantity = line.quantity + item.quantity
            self._check_quantity(item.product_id, item.variant_id, quantity)
            return _with_lines(cart, tuple(_requantified(li, line.id, quantity) for li in lines))

        return self._mutate(shopper, change)

    def update_item(self, shopper: Shopper, item_id: str, update: CartItemUpdate) -> Cart:
        """Set a line's quantity (404 when the cart has no such line)."""

        def change(cart: StoredCart) -> StoredCart:
            line = _line(cart, item_id)
            self._check_quantity(line.product_id, line.variant_id, update.quantity)
            return _with_lines(cart, tuple(_requantified(li, item_id, update.quantity) for li in cart.lines))

        return self._mutate(shopper, change)

    def remove_item(self, shopper: Shopper, item_id: str) -> Cart:
        """Remove a line (404 when the cart has no such line)."""

        def change(cart: StoredCart) -> StoredCart:
            _line(cart, item_id)
            return _with_lines(cart, tuple(li for li in cart.lines if li.id != item_id))

        return self._mutate(shopper, change)

    def apply_coupon(self, shopper: Shopper, code: str, coupons: CouponChecks) -> Cart:
        """Put a coupon on the cart (PRM-3: the cart is the one place coupon codes live) once ``coupons`` finds
        it eligible for this shopper and cart (422 coupon_not_eligible with the reason otherwise). Applying a
        code already on the cart changes nothing."""

        def change(cart: StoredCart) -> StoredCart:
            shown = self._shown(cart)
            amounts = [(line.product_id, line.quantity * line.unit_price) for line in shown.items]
            normalised = coupons.check_for_cart(code, shopper.customer_id, amounts)
            if normalised in cart.coupon_codes:
                return cart
            if len(cart.coupon_codes) >= MAX_COUPONS:
                raise field_error("code", f"a cart holds at most {MAX_COUPONS} coupons")
            return StoredCart(cart.owner_key, cart.id, cart.version, cart.lines, (*cart.coupon_codes, normalised))

        return self._mutate(shopper, change)

    def remove_coupon(self, shopper: Shopper, code: str) -> Cart:
        """Take a coupon off the cart (404 when it is not on it)."""
        normalised = code.strip().upper()

        def change(cart: StoredCart) -> StoredCart:
            if normalised not in cart.coupon_codes:
                raise NotFound(f"coupon {normalised} is not on the cart")
            remaining = tuple(c for c in cart.coupon_codes if c != normalised)
            return StoredCart(cart.owner_key, cart.id, cart.version, cart.lines, remaining)

        return self._mutate(shopper, change)

    # ------------------------------------------------------------------ checkout's interface (CHK-5, CHK-6)
    def convert(self, tx: Transaction, shopper: Shopper, cart_id: str, version: int, merged_guest_version: int) -> None:
        """Add to the caller's ``tx`` the write that ends cart ``cart_id`` at ``version`` as bought: the owner's
        cart becomes a new, empty cart (new id, no lines, no coupons, version + 1). Conditional on the stored cart
        still being ``cart_id`` at ``version``: if the buyer changed the cart since (or it was converted
        already), ``tx`` fails with Conflict ``cart_changed`` and commits nothing. The caller commits ``tx``
        (with its order writes, so the cart is emptied exactly when the checkout's orders exist). When the cart
        bought showed the buyer's guest cart merged (``Cart.merged_guest_version`` > 0), that guest cart is deleted
        in ``tx`` as well, on the condition that it is still that version: a guest cart that changed since, or that
        another buyer merged meanwhile, fails ``tx`` (``cart_changed``) rather than be bought by one buyer and kept
        by another (CHK-12); a guest cart started after the cart was priced is left alone: it was not bought."""
        merged_guest = (
            (Shopper(guest_id=shopper.guest_id).owner_key, merged_guest_version)
            if shopper.customer_id and shopper.guest_id and merged_guest_version
            else None
        )
        emptied = StoredCart(shopper.owner_key, new_id("cart"), version + 1, (), ())
        self.repository.convert(tx, cart_id, version, emptied, merged_guest, to_iso(self.clock.now()))

    # ------------------------------------------------------------------ internals
    def _mutate(self, shopper: Shopper, change: Callable[[StoredCart], StoredCart]) -> Cart:
        def attempt() -> StoredCart:
            current, guest = self._current(shopper)
            changed = change(current)
            if changed == current and guest is None:
                return current
            return self._save(current, changed, guest)

        return self._shown(retry_stale(attempt))

    def _save(self, current: StoredCart, changed: StoredCart, guest: StoredCart | None) -> StoredCart:
        """Write ``changed`` as the next version of ``current`` (and delete the merged guest cart, in the same
        transaction): both conditional on the versions read, so a concurrent writer makes this attempt fail and
        run again on what it wrote."""
        saved = StoredCart(changed.owner_key, changed.id, current.version + 1, changed.lines, changed.coupon_codes)
        tx = Transaction()
        self.repository.save(tx, current.version, saved, to_iso(self.clock.now()))
        if guest is not None:
            self.repository.delete(tx, guest)
        tx.commit()
        return saved

    def _current(self, shopper: Shopper) -> tuple[StoredCart, StoredCart | None]:
        """The shopper's cart (its stored version) and, for a buyer who also sent a guest id whose cart is still
        stored, that guest cart, whose lines (quantities added up) and coupons the returned cart already holds:
        the next write saves the merge and deletes the guest cart, so it merges exactly once. The merge keeps the
        cart's bounds: quantities are capped at the most per line, lines past the most per cart are not taken
        over (the cart shown is what the buyer will check out)."""
        cart = self.repository.load(shopper.owner_key)
        if shopper.customer_id is None or shopper.guest_id is None:
            return cart, None
        guest = self.repository.load(Shopper(guest_id=shopper.guest_id).owner_key)
        if guest.version == 0:
            return cart, None
        lines = list(cart.lines)
        for line in guest.lines:
            index = next(
                (
                    i
                    for i, li in enumerate(lines)
                    if (li.product_id, li.variant_id) == (line.product_id, line.variant_id)
                ),
                None,
            )
            if index is None:
                if len(lines) < self.max_lines:
                    lines.append(line)
            else:
                quantity = min(self.max_quantity, lines[index].quantity + line.quantity)
                lines[index] = _requantified(lines[index], lines[index].id, quantity)
        coupons = tuple(dict.fromkeys((*cart.coupon_codes, *guest.coupon_codes)))[:MAX_COUPONS]
        return StoredCart(cart.owner_key, cart.id, cart.version, tuple(lines), coupons), guest

    def _sellable(self, product_id: str, variant_id: str | None) -> Product:
        try:
            product = self.products(product_id)
        except NotFound:
            raise field_error("product_id", f"no product {product_id}") from None
        if product.status != "active":
            raise field_error("product_id", f"product {product_id} is not on sale")
        if product.seller_id is None:
            raise field_error("product_id", "a factory's product is sold by group buying only, not through the cart")
        if variant_id is None and product.variants:
            raise field_error("variant_id", f"choose one of product {product_id}'s variants")
        if variant_id is not None and product.variant(variant_id) is None:
            raise field_error("variant_id", f"product {product_id} has no variant {variant_id}")
        return product

    def _check_quantity(self, product_id: str, variant_id: str | None, quantity: int) -> None:
        if quantity > self.max_quantity:
            raise field_error("quantity", f"at most {self.max_quantity} of one item per cart")
        available = self.availability.available_by_product(product_id).get(variant_id, 0)
        if quantity > available:
            raise Conflict(
                f"only {available} in stock",
                code="insufficient_stock",
                details=[
                    {"product_id": product_id, "variant_id": variant_id, "requested": quantity, "available": available}
                ],
            )

    def _unit_price(self, stored: StoredLine) -> int | None:
        """The catalog's price of a line now; None when it is no longer on sale (gone, inactive, its variant
        removed): such a line is not in the cart a buyer sees or checks out."""
        try:
            product = self.products(stored.product_id)
        except NotFound:
            return None
        variant = product.variant(stored.variant_id) if stored.variant_id else None
        if product.status != "active" or (stored.variant_id is not None and variant is None):
            return None
        return variant.price if variant else product.base_price

    def _shown(self, cart: StoredCart) -> Cart:
        lines = []
        for stored in cart.lines:
            unit_price = self._unit_price(stored)
            if unit_price is None:
                continue
            lines.append(
                CartLine(
                    id=stored.id,
                    product_id=stored.product_id,
                    variant_id=stored.variant_id,
                    quantity=stored.quantity,
                    unit_price=unit_price,
                    available=self.availability.available_by_product(stored.product_id).get(stored.variant_id, 0),
                )
            )
        totals = CartTotals(
            subtotal=sum(li.quantity * li.unit_price for li in lines),
            item_count=sum(li.quantity for li in lines),
            currency=self.currency,
        )
        return Cart(id=cart.id, version=cart.version, items=lines, coupon_codes=list(cart.coupon_codes), totals=totals)


def _line(cart: StoredCart, item_id: str) -> StoredLine:
    line = next((li for li in cart.lines if li.id == item_id), None)
    if line is None:
        raise NotFound(f"no item {item_id} in the cart")
    return line


def _requantified(line: StoredLine, line_id: str, quantity: int) -> StoredLine:
    return StoredLine(line.id, line.product_id, line.variant_id, quantity) if line.id == line_id else line


def _with_lines(cart: StoredCart, lines: tuple[StoredLine, ...]) -> StoredCart:
    return StoredCart(cart.owner_key, cart.id, cart.version, lines, cart.coupon_codes)
