"""Stock as the API shows it (API.md "Sellers, warehouses and inventory"): inventory items per warehouse x
product x variant (WH-1), their audit records (WH-2), cycle counts (WH-3) and reservations (CHK-3, WH-5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from patungan.core.inputs import MAX_QUANTITY, Quantity, ResourceId, single_line
from patungan.core.pagination import ListOf

AuditAction = Literal["receipt", "adjustment", "reservation", "release", "commit", "cycle_count", "po_receipt"]
ReservationStatus = Literal["held", "released", "committed"]
# A transaction holds at most 100 items: a reservation writes one stock item and one audit record per distinct
# item, plus the reservation itself.
MAX_RESERVATION_ITEMS = 40
MAX_PACK_SIZE = 10_000
MAX_TTL_SECONDS = 7 * 24 * 3600
# A transaction holds at most 100 items: one update per extended reservation.
MAX_EXTENDED = 100


@dataclass(frozen=True)
class StockLine:
    """``quantity`` items of a product (variant) drawn from its stock item. ``pack_size`` is how many units of
    that stock item one ordered item takes (WH-5): a "6-pack" variant sold from single units is the line
    ``StockLine(product_id, unit_variant_id, k, pack_size=6)`` and holds 6 x k units. The caller (checkout)
    knows its pack sizes from the product it priced, so reserving reads no catalog."""

    product_id: str
    variant_id: str | None
    quantity: int
    pack_size: int = 1

    @property
    def units(self) -> int:
        return self.quantity * self.pack_size


@dataclass(frozen=True)
class StockKey:
    warehouse_id: str
    product_id: str
    variant_id: str | None


class Levels(BaseModel):
    on_hand: int
    reserved: int


class StockItem(BaseModel):
    """``available = on_hand - reserved`` is stored beside them so a condition can test it (DynamoDB conditions
    do no arithmetic); every write sets all three together."""

    warehouse_id: str
    product_id: str
    variant_id: str | None = None
    seller_id: str | None = None
    on_hand: int = 0
    reserved: int = 0
    available: int = 0
    updated_at: str = ""
    version: int = 0

    @property
    def key(self) -> StockKey:
        return StockKey(self.warehouse_id, self.product_id, self.variant_id)

    @property
    def levels(self) -> Levels:
        return Levels(on_hand=self.on_hand, reserved=self.reserved)

    def view(self) -> dict:
        return self.model_dump(exclude={"seller_id", "version"})


class InventoryItemView(BaseModel):
    warehouse_id: str
    product_id: str
    variant_id: str | None
    on_hand: int
    reserved: int
    available: int
    updated_at: str


class InventoryItemList(ListOf[InventoryItemView]):
    pass


class AuditRecord(BaseModel):
    id: str
    at: str
    actor_id: str
    action: AuditAction
    warehouse_id: str
    product_id: str
    variant_id: str | None = None
    before: Levels
    after: Levels
    reason: str | None = None
    reference: str | None = None


class AuditRecordList(ListOf[AuditRecord]):
    pass


class CycleCount(BaseModel):
    id: str
    warehouse_id: str
    product_id: str
    variant_id: str | None
    expected_on_hand: int
    counted_quantity: int
    discrepancy: int
    at: str
    actor_id: str


class DiscrepancyLine(BaseModel):
    warehouse_id: str
    product_id: str
    variant_id: str | None
    counts: int
    net_discrepancy: int
    value: int


class DiscrepancyReport(BaseModel):
    items: list[DiscrepancyLine]
    total_net_discrepancy: int
    total_value: int
    currency: str


class ReservedLine(BaseModel):
    product_id: str
    variant_id: str | None = None
    units: int


class Reservation(BaseModel):
    id: str
    owner_id: str
    warehouse_id: str
    lines: list[ReservedLine]
    status: ReservationStatus
    expires_at: str | None = Field(None, description="none: held until committed or released (a purchase order's)")
    created_at: str
    updated_at: str


# ---- request bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ItemRef(_Body):
    warehouse_id: ResourceId
    product_id: ResourceId
    variant_id: ResourceId | None = None


class ReceiptBody(_ItemRef):
    quantity: Quantity
    reference: single_line(200) | None = None


class AdjustmentBody(_ItemRef):
    delta: int = Field(strict=True, ge=-MAX_QUANTITY, le=MAX_QUANTITY, description="units added (negative: removed)")
    reason: single_line(500)


class CycleCountBody(_ItemRef):
    counted_quantity: int = Field(strict=True, ge=0, le=MAX_QUANTITY)
    note: single_line(500) | None = None


class ReservationLineBody(_Body):
    product_id: ResourceId
    variant_id: ResourceId | None = None
    quantity: Quantity
    pack_size: int = Field(1, strict=True, ge=1, le=MAX_PACK_SIZE, description="units of stock per item (WH-5)")


class ReservationBody(_Body):
    warehouse_id: ResourceId | None = Field(None, description="default: the one warehouse holding every line")
    lines: list[ReservationLineBody] = Field(min_length=1, max_length=MAX_RESERVATION_ITEMS)
    ttl_seconds: int | None = Field(
        None, strict=True, ge=1, le=MAX_TTL_SECONDS, description="capped at the server's maximum hold"
    )
