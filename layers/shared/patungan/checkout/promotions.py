"""Promotions (PRM-1..3): coupons of a percent (basis points) or a fixed amount off the items or the shipping, with
a minimum spend, a validity window, a total and a per-customer usage limit, and optionally one seller's orders
only. Codes live on the cart (PRM-3); the pricing engine applies them (checkout/pricing.py).

Usage (PRM-2) is counted by conditional writes that ``redeem`` adds to the caller's transaction, the one that
creates the checkout's orders: ``used_count < usage_limit`` on the promotion, ``used < per_customer_limit`` on the
customer's counter, and one usage record per checkout. So a limit of one is used once under any concurrency: of
two transactions that both read 0, DynamoDB lets one through and cancels the other. A promotion with a
per-customer limit needs a customer: a guest is simply not eligible (CHK-12).

Layout (PromotionsTable): ``PROMO#<CODE>`` / ``META`` (the promotion, its ``used_count``), ``/ CUSTOMER#<id>``
(``used``), ``/ USE#<checkout_id>`` (who used it in which checkout: give_back's proof and redeem's idempotency).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.catalog.models import Product
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import ConcurrentUpdate, Conflict, DomainError, NotFound, field_error
from patungan.core.ids import new_id
from patungan.core.inputs import MAX_AMOUNT, ResourceId

BASIS_POINTS = 10_000
PromotionKind = Literal["percent", "fixed"]
PromotionTarget = Literal["items", "shipping"]
Code = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z0-9_-]{3,32}$")]
Count = Annotated[int, Field(strict=True, ge=1, le=10**9)]


class CouponNotEligible(DomainError):
    """The coupon cannot be used here and now; the message says why (API.md: 422 coupon_not_eligible)."""

    status, code = 422, "coupon_not_eligible"

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"coupon {code}: {reason}", details=[{"field": "code", "code": code, "reason": reason}])
        self.reason = reason


class PromotionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code = Field(description="3-32 letters, digits, _ or -; stored upper case")
    kind: PromotionKind
    target: PromotionTarget
    value: Annotated[int, Field(strict=True, ge=1, le=MAX_AMOUNT)] = Field(
        description="percent: basis points (1000 = 10 %, at most 10000); fixed: minor units"
    )
    min_spend: Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT)] = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: Count | None = None
    per_customer_limit: Count | None = None
    seller_id: ResourceId | None = Field(None, description="only this seller's orders")

    @model_validator(mode="after")
    def _sensible(self) -> PromotionInput:
        if self.kind == "percent" and self.value > BASIS_POINTS:
            raise ValueError("a percent value is basis points: at most 10000 (100 %)")
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("starts_at and ends_at need a time zone (2026-12-01T00:00:00Z)")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Promotion(BaseModel):
    id: str
    code: str
    kind: PromotionKind
    target: PromotionTarget
    value: int
    min_spend: int = 0
    starts_at: str | None = None
    ends_at: str | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None
    seller_id: str | None = None
    used_count: int = 0
    created_at: str


def normalise_code(code: object) -> str:
    return str(code).strip().upper()


class PromotionRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    @staticmethod
    def key(code: str, sk: str = "META") -> dict[str, str]:
        return {"pk": f"PROMO#{code}", "sk": sk}

    def add(self, promotion: Promotion) -> None:
        self.table.put(
            {**self.key(promotion.code), **promotion.model_dump()},
            condition="attribute_not_exists(pk)",
            on_fail=Conflict(f"a promotion with code {promotion.code} exists", code="promotion_exists"),
        )

    def find(self, code: str) -> Promotion | None:
        item = self.table.get(self.key(code))
        return Promotion.model_validate(item) if item else None

    def customer_uses(self, code: str, customer_id: str) -> int:
        item = self.table.get(self.key(code, f"CUSTOMER#{customer_id}"))
        return item["used"] if item else 0

    def usage(self, code: str, checkout_id: str) -> dict | None:
        return self.table.get(self.key(code, f"USE#{checkout_id}"))


class PromotionService:
    def __init__(
        self,
        repository: PromotionRepository,
        products: Callable[[str], Product],
        seller_exists: Callable[[str], bool],
        clock: Clock,
    ) -> None:
        self.repository = repository
        self.products = products
        self.seller_exists = seller_exists
        self.clock = clock

    # ------------------------------------------------------------------ admin (PRM-1)
    def create(self, request: PromotionInput) -> Promotion:
        """A new promotion (409 promotion_exists when the code is taken; 422 naming ``seller_id`` when it names no
        seller: a coupon no order could ever use is a typo, not a promotion)."""
        if request.seller_id is not None and not self.seller_exists(request.seller_id):
            raise field_error("seller_id", f"no seller {request.seller_id}")
        promotion = Promotion(
            id=new_id("promo"),
            **request.model_dump(exclude={"starts_at", "ends_at"}),
            starts_at=to_iso(request.starts_at) if request.starts_at else None,
            ends_at=to_iso(request.ends_at) if request.ends_at else None,
            created_at=to_iso(self.clock.now()),
        )
        self.repository.add(promotion)
        return promotion

    def get(self, code: str) -> Promotion:
        promotion = self.repository.find(normalise_code(code))
        if promotion is None:
            raise NotFound(f"no promotion {normalise_code(code)}")
        return promotion

    # ------------------------------------------------------------------ eligibility
    def usable(self, code: str, customer_id: str | None) -> Promotion:
        """The promotion of ``code`` if this customer (None: a guest) may use it now, whatever the order:
        it exists, its window is open, it is not used up, and the customer has not used it up. Otherwise
        CouponNotEligible with the reason. (The spend and the seller are the pricing engine's to check.)"""
        code = normalise_code(code)
        promotion = self.repository.find(code)
        if promotion is None:
            raise CouponNotEligible(code, "no such coupon")
        now = to_iso(self.clock.now())
        if promotion.starts_at and now < promotion.starts_at:
            raise CouponNotEligible(code, f"valid from {promotion.starts_at}")
        if promotion.ends_at and now >= promotion.ends_at:
            raise CouponNotEligible(code, f"expired at {promotion.ends_at}")
        if promotion.usage_limit is not None and promotion.used_count >= promotion.usage_limit:
            raise CouponNotEligible(code, "fully used")
        if promotion.per_customer_limit is not None:
            if customer_id is None:
                raise CouponNotEligible(code, "sign in to use this coupon: it is limited per customer")
            if self.repository.customer_uses(code, customer_id) >= promotion.per_customer_limit:
                raise CouponNotEligible(code, "you have used this coupon as often as it allows")
        return promotion

    def check_for_cart(self, code: str, customer_id: str | None, lines: Iterable[tuple[str, int]]) -> str:
        """The normalised code, once the coupon is usable by this customer and the cart's ``lines``
        ((product_id, amount) pairs) reach its minimum spend (its seller's lines only, when it is for one seller);
        CouponNotEligible with the reason otherwise."""
        promotion = self.usable(code, customer_id)
        spend = sum(
            amount
            for product_id, amount in lines
            if promotion.seller_id is None or self.products(product_id).seller_id == promotion.seller_id
        )
        if spend == 0 and promotion.seller_id is not None:
            raise CouponNotEligible(promotion.code, "the cart holds nothing from this coupon's seller")
        if spend < promotion.min_spend:
            raise CouponNotEligible(promotion.code, f"spend at least {promotion.min_spend} to use it")
        return promotion.code

    # ------------------------------------------------------------------ usage (PRM-2), for the confirm saga
    def redeem(self, tx: Transaction, codes: Iterable[str], customer_id: str | None, checkout_id: str) -> None:
        """Add to the caller's ``tx`` the usage of each coupon in ``codes`` by checkout ``checkout_id``:

        - the promotion's ``used_count`` + 1, conditional on it existing, being inside its validity window now and
          (with a usage limit) ``used_count < usage_limit``;
        - with a per-customer limit, the customer's ``used`` + 1, conditional on ``used < per_customer_limit``
          (a guest, ``customer_id`` None, is refused at once: CouponNotEligible);
        - the usage record ``USE#<checkout_id>``, conditional on not existing.

        When ``tx`` commits, the coupons are used exactly once by this checkout. When any condition fails, the
        whole ``tx`` is cancelled and raises: CouponNotEligible (the limit was reached, the window closed) or
        Conflict ``coupon_already_redeemed`` (this checkout redeemed it already: a retry after a commit; see
        ``is_redeemed``). Reads nothing but the promotions' immutable terms."""
        now = to_iso(self.clock.now())
        for code in dict.fromkeys(normalise_code(c) for c in codes):
            promotion = self.repository.find(code)
            if promotion is None:
                raise CouponNotEligible(code, "no such coupon")
            conditions = ["attribute_exists(pk)"]
            values: dict[str, object] = {":one": 1}
            if promotion.usage_limit is not None:
                conditions.append("used_count < usage_limit")
            if promotion.starts_at:
                conditions.append("starts_at <= :now")
                values[":now"] = now
            if promotion.ends_at:
                conditions.append("ends_at > :now")
                values[":now"] = now
            tx.update(
                self.repository.table,
                self.repository.key(code),
                "ADD used_count :one",
                condition=" AND ".join(conditions),
                values=values,
                on_fail=lambda old, code=code: _refusal(code, old, now),
            )
            if promotion.per_customer_limit is not None:
                if customer_id is None:
                    raise CouponNotEligible(code, "sign in to use this coupon: it is limited per customer")
                tx.update(
                    self.repository.table,
                    self.repository.key(code, f"CUSTOMER#{customer_id}"),
                    "ADD used :one",
                    condition="attribute_not_exists(used) OR used < :limit",
                    values={":one": 1, ":limit": promotion.per_customer_limit},
                    on_fail=CouponNotEligible(code, "you have used this coupon as often as it allows"),
                )
            tx.put(
                self.repository.table,
                {
                    **self.repository.key(code, f"USE#{checkout_id}"),
                    "code": code,
                    "checkout_id": checkout_id,
                    "customer_id": customer_id,
                    "used_at": now,
                },
                condition="attribute_not_exists(pk)",
                on_fail=Conflict(f"checkout {checkout_id} redeemed {code} already", code="coupon_already_redeemed"),
            )

    def is_redeemed(self, code: str, checkout_id: str) -> bool:
        """Whether checkout ``checkout_id`` holds a use of ``code`` (redeemed and not given back)."""
        return self.repository.usage(normalise_code(code), checkout_id) is not None

    def give_back(self, tx: Transaction, codes: Iterable[str], checkout_id: str) -> None:
        """Add to ``tx`` the undoing of each use of ``codes`` by checkout ``checkout_id`` (ORD-3: an expired or
        cancelled checkout): the usage record deleted (conditional on existing), the promotion's ``used_count`` and
        the customer's ``used`` - 1. A code this checkout holds no use of adds nothing, so giving back twice
        gives back once; two give-backs racing: one commits, the other's ``tx`` fails with ConcurrentUpdate and,
        run again, adds nothing."""
        for code in dict.fromkeys(normalise_code(c) for c in codes):
            usage = self.repository.usage(code, checkout_id)
            if usage is None:
                continue
            tx.delete(
                self.repository.table,
                self.repository.key(code, f"USE#{checkout_id}"),
                condition="attribute_exists(pk)",
                on_fail=ConcurrentUpdate(f"the use of {code} by {checkout_id} was given back meanwhile; retry"),
            )
            tx.update(self.repository.table, self.repository.key(code), "ADD used_count :minus", values={":minus": -1})
            if usage.get("customer_id"):
                promotion = self.repository.find(code)
                if promotion is not None and promotion.per_customer_limit is not None:
                    tx.update(
                        self.repository.table,
                        self.repository.key(code, f"CUSTOMER#{usage['customer_id']}"),
                        "ADD used :minus",
                        values={":minus": -1},
                    )


def _refusal(code: str, old: dict | None, now: str) -> DomainError:
    if old is None:
        return CouponNotEligible(code, "no such coupon")
    if old.get("ends_at") and now >= old["ends_at"]:
        return CouponNotEligible(code, f"expired at {old['ends_at']}")
    if old.get("starts_at") and now < old["starts_at"]:
        return CouponNotEligible(code, f"valid from {old['starts_at']}")
    return CouponNotEligible(code, "fully used")
