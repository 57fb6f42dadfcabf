"""Group-buying requests and resources as the API shows them (API.md "Group buying")."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model, model_validator

from patungan.core.inputs import MAX_AMOUNT, Price, Quantity, ResourceId, StrictBool
from patungan.core.pagination import ListOf
from patungan.groupbuy.pricing import fill_percent, highest_tier_reached, unit_price_at

SessionStatus = Literal[
    "forming",
    "active",
    "moq_reached",
    "closing",
    "succeeded",
    "in_production",
    "delivered",
    "completed",
    "failed",
    "cancelled",
]
ParticipationStatus = Literal["pending_payment", "paid", "expired", "left", "refunded", "ordered"]

JOINABLE: frozenset[str] = frozenset({"active", "moq_reached"})
CANCELLABLE: frozenset[str] = frozenset({"forming", "active", "moq_reached"})
CLAIMABLE: frozenset[str] = frozenset({"forming", "active", "moq_reached"})
PLATFORM_USER_ID = "platform"
# A session's lifecycle is one Step Functions execution, which lives at most a year (GB-1).
MAX_SESSION_DAYS = 360


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_fill_percent: int = Field(strict=True, gt=0, le=100)
    unit_price: Price


class SessionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ResourceId
    variant_id: ResourceId | None = None
    moq: Quantity = Field(description="minimum paid units for the session to succeed")
    target_quantity: Quantity = Field(description="the quantity tiers' fill percentages refer to; also the cap")
    base_price: Price = Field(description="unit price below the first tier (minor units)")
    tiers: list[Tier] = Field(default_factory=list, max_length=10)
    starts_at: AwareDatetime | None = Field(None, description="default: now")
    deadline: AwareDatetime = Field(description=f"at most {MAX_SESSION_DAYS} days ahead")
    max_per_buyer: Quantity
    payment_window_seconds: Annotated[int, Field(strict=True, ge=60, le=7 * 86_400)] = 3600
    allow_leave_after_payment: StrictBool = True

    @model_validator(mode="after")
    def _consistent(self) -> SessionInput:
        if self.moq > self.target_quantity:
            raise ValueError("moq cannot exceed target_quantity")
        if self.max_per_buyer > self.target_quantity:
            raise ValueError("max_per_buyer cannot exceed target_quantity")
        if self.base_price * self.target_quantity > MAX_AMOUNT:
            raise ValueError(f"base_price x target_quantity (the session's whole value) cannot exceed {MAX_AMOUNT}")
        percents = [t.min_fill_percent for t in self.tiers]
        if percents != sorted(percents) or len(set(percents)) != len(percents):
            raise ValueError("tiers must be listed by strictly increasing min_fill_percent")
        prices = [self.base_price, *(t.unit_price for t in self.tiers)]
        if any(later >= earlier for earlier, later in itertools.pairwise(prices)):
            raise ValueError("each tier must be strictly cheaper than the one before it and than base_price")
        if self.starts_at is not None and self.starts_at >= self.deadline:
            raise ValueError("starts_at must be before the deadline")
        return self


# Kept from the API: who opened it (staff ids), the settlement outcome (its state machine's), the write version and
# the capacity shards the counters are summed from.
_INTERNAL_SESSION_FIELDS = frozenset({"version", "outcome", "created_by", "shard_count", "shards"})
# The counters a session's capacity shards hold (summed into the session read); never stored on the session item.
COUNTER_FIELDS = frozenset({"paid_quantity", "reserved_quantity", "participant_count"})


class CapacityShard(BaseModel):
    """One share of a session's target (repository.py): what of it is still open, reserved by unpaid joins and
    paid; ``open`` until the session closes. remaining + reserved + paid is the share, the shares sum to the
    target, and ``remaining`` never goes below 0: so the session's reserved + paid never exceeds its target."""

    index: int
    remaining: int
    reserved: int = 0
    paid: int = 0
    participants: int = 0
    open: bool = True

    @property
    def share(self) -> int:
        return self.remaining + self.reserved + self.paid


class Session(BaseModel):
    """A session as stored; ``view()`` adds what the API derives live (GB-16)."""

    id: str
    product_id: str
    variant_id: str | None = None
    factory_id: str
    product_name: str
    category: str
    product_version: int = Field(1, description="the catalog version of the product copied above")
    status: SessionStatus
    moq: int
    target_quantity: int
    base_price: int
    currency: str
    tiers: list[Tier]
    starts_at: str
    deadline: str
    max_per_buyer: int
    payment_window_seconds: int
    allow_leave_after_payment: bool
    paid_quantity: int = 0
    reserved_quantity: int = 0
    participant_count: int = 0
    platform_topup_quantity: int = 0
    price_locked_at_fill_percent: int | None = Field(
        None,
        description="the highest tier fill paid fill has reached: its price stays in force when paid buyers "
        "leave, so nobody is charged above what they paid (PAY-7)",
    )
    moq_reached_at: str | None = Field(None, description="when paid quantity first reached the MOQ (GB-6)")
    final_unit_price: int | None = None
    outcome: Literal["succeed", "fail"] | None = None
    escrow_release_status: Literal["pending", "failed", "released"] | None = None
    # Written by RecordSessionStuck when a lifecycle step keeps failing (SYS-6): shown so it is not silent.
    stuck_step: str | None = Field(None, description="the lifecycle step that kept failing, e.g. settle.SettlePage")
    lifecycle_error: dict[str, str] | None = Field(None, description="that step's last error and cause")
    stuck_at: str | None = None
    created_by: str
    created_at: str
    updated_at: str
    version: int = 1
    # None: a session stored before its capacity was sharded, its counters on the session item (migrated on the
    # first write that needs them, repository.py).
    shard_count: int | None = None
    shards: list[CapacityShard] = Field(default_factory=list, exclude=True)

    @property
    def current_unit_price(self) -> int:
        """The tier of the paid fill, or the cheaper tier paid fill reached before buyers left (defect 3)."""
        return unit_price_at(
            self.base_price, self.tiers, self.paid_quantity, self.target_quantity, self.price_locked_at_fill_percent
        )

    def fill_changes(self, now: str) -> dict[str, Any]:
        """What the paid fill (summed over the shards) has reached that the session item does not show yet: the
        tier it locks in (only ever raised: PAY-7) and ``moq_reached``, once (GB-6). Empty once shown, or closed."""
        if self.status not in JOINABLE:
            return {}
        changes: dict[str, Any] = {}
        reached = highest_tier_reached(self.tiers, self.paid_quantity, self.target_quantity)
        if reached is not None and reached > (self.price_locked_at_fill_percent or 0):
            changes["price_locked_at_fill_percent"] = reached
        if self.status == "active" and self.moq_reached_at is None and self.paid_quantity >= self.moq:
            changes.update(status="moq_reached", moq_reached_at=now)
        return changes

    @property
    def fill_can_rise(self) -> bool:
        """Whether more paid units could still change the session item (``fill_changes``)."""
        top_tier = max((t.min_fill_percent for t in self.tiers), default=None)
        return self.status in JOINABLE and (
            self.status == "active" or (top_tier is not None and (self.price_locked_at_fill_percent or 0) < top_tier)
        )

    @property
    def open_quantity(self) -> int:
        return self.target_quantity - self.paid_quantity - self.reserved_quantity

    def view(self, now: datetime) -> dict:
        body = self.model_dump(exclude=_INTERNAL_SESSION_FIELDS)
        deadline = datetime.fromisoformat(self.deadline.replace("Z", "+00:00"))
        body.update(
            current_unit_price=self.current_unit_price,
            fill_percent=fill_percent(self.paid_quantity, self.target_quantity),
            time_left_seconds=max(int((deadline - now).total_seconds()), 0),
            available_quantity=max(self.open_quantity, 0),
        )
        return body


_DERIVED_SESSION_FIELDS: dict[str, Any] = {
    "current_unit_price": (int, Field(description="the tier in force at the current paid fill")),
    "fill_percent": (float, Field(description="paid quantity / target quantity x 100")),
    "time_left_seconds": (int, Field(description="until the deadline; 0 once passed")),
    "available_quantity": (int, Field(description="units still open to join")),
}
SessionView = create_model(
    "SessionView",
    __doc__="A session as the API answers it (Session.view): what is stored, less internals, and what is derived.",
    **{name: (f.annotation, f) for name, f in Session.model_fields.items() if name not in _INTERNAL_SESSION_FIELDS},
    **_DERIVED_SESSION_FIELDS,
)


class JoinInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Quantity
    unit_price: Price | None = Field(None, description="what the app showed; refused (400) if it differs")
    total: Price | None = Field(None, description="what the app showed; refused (400) if it differs")


class PaymentSummary(BaseModel):
    id: str
    status: str
    invoice_id: str | None = None
    invoice_url: str | None = None
    amount: int
    expires_at: str | None = None


class Participation(BaseModel):
    id: str
    session_id: str
    user_id: str
    quantity: int
    unit_price: int
    amount: int
    currency: str
    status: ParticipationStatus
    payment: PaymentSummary
    order_id: str | None = None
    tier_refund_amount: int | None = None
    is_platform: bool = False
    # When the near-expiry reminder went out (GB-13): a retried walk does not send it again. Not shown.
    reminded_at: str | None = Field(None, exclude=True)
    # The capacity shard its quantity was reserved on (repository.py); None: stored before the shards (shard 0),
    # or the platform's top-up, taken from several and never given back. Not shown.
    shard: int | None = Field(None, exclude=True)
    created_at: str
    updated_at: str


class SessionDetail(SessionView):  # type: ignore[misc,valid-type]
    """GET /v1/sessions/{id} (GB-16): the session with the caller's own (latest) participation in it; null
    when the caller is anonymous or never joined."""

    my_participation: Participation | None = None


class SessionList(ListOf[SessionView]):  # type: ignore[misc,valid-type]
    pass


class ParticipationList(ListOf[Participation]):
    pass
