"""Shipments as the API shows them (API.md "Fulfilment"), and the order of the courier's statuses (LOG-2).

A shipment is ``booking`` (ours: written before the courier is called) until the courier answers; from then on
its status is Biteship's. Statuses only move forward (``is_forward``): a courier's late or repeated webhook never
takes a parcel back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from patungan.core.ids import keyed_id
from patungan.logistics.models import CourierStatus

BOOKING = "booking"
# Ours, then Biteship's as the courier adapter names them (one list of the courier's statuses).
ShipmentStatus = Literal[BOOKING, *(status.value for status in CourierStatus)]  # type: ignore[valid-type]

# Forward-only order of the statuses (session decisions): a status may replace only one of lower rank.
COURIER_STATUS_RANK: dict[str, int] = {
    "booking": 0,
    "confirmed": 1,
    "scheduled": 2,
    "allocated": 3,
    "picking_up": 4,
    "picked": 5,
    "on_hold": 6,
    "dropping_off": 6,
    "return_in_transit": 7,
    "delivered": 8,
    "returned": 8,
    "disposed": 8,
    "cancelled": 8,
    "rejected": 8,
    "courier_not_found": 8,
}
TERMINAL_STATUSES = frozenset({"delivered", "returned", "disposed", "cancelled", "rejected", "courier_not_found"})
# The courier gives a parcel up only before it has it: once picked, a parcel is delivered or returned.
CALLED_OFF_STATUSES = frozenset({"cancelled", "rejected", "courier_not_found"})
PICKED_RANK = COURIER_STATUS_RANK["picked"]


def is_forward(old: str, new: str) -> bool:
    """Whether ``new`` may replace ``old``: never out of a terminal status, never to an unknown one, never back;
    ``on_hold`` and ``dropping_off`` (one rank) may follow each other; a called-off status only before pickup. A
    parcel on its way back is returned or disposed of, never delivered: a ``delivered`` then would book a COD
    collection for cash the buyer never handed over (CHK-9)."""
    if old in TERMINAL_STATUSES or new == old or new not in COURIER_STATUS_RANK or old not in COURIER_STATUS_RANK:
        return False
    if old == "return_in_transit" and new == "delivered":
        return False
    if new in CALLED_OFF_STATUSES:
        return COURIER_STATUS_RANK[old] < PICKED_RANK
    return COURIER_STATUS_RANK[new] >= COURIER_STATUS_RANK[old]


def shipment_id_for(order_id: str) -> str:
    """One shipment per order: a retried booking finds the shipment the first attempt wrote."""
    return keyed_id("shp", order_id)


def label_path(shipment_id: str) -> str:
    return f"/v1/shipments/{shipment_id}/label"


class ShipmentEvent(BaseModel):
    status: str
    note: str | None = None
    at: str


class Shipment(BaseModel):
    id: str
    order_id: str
    user_id: str = Field(description="the order's buyer")
    seller_id: str | None = None
    factory_id: str | None = None
    warehouse_id: str
    courier: str
    service: str
    waybill_id: str | None = None
    status: ShipmentStatus
    label_url: str
    cod_amount: int | None = Field(None, description="collected by the courier on delivery (CHK-9), minor units")
    address: dict = Field(description="where the parcel goes: the order's address, as it was at booking")
    weight_grams: int = 0
    items_count: int = 0
    history: list[ShipmentEvent] = Field(default_factory=list)
    courier_order_id: str | None = None
    tracking_id: str | None = None
    courier_updated_at: str | None = Field(None, description="the courier's last updated_at applied")
    stock_committed: bool = Field(False, description="the order's stock left the warehouse's books (audited)")
    booking_attempt: int = Field(0, description="bookings begun again after the courier refused one")
    created_at: str
    updated_at: str
    version: int = 0

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_booked(self) -> bool:
        return self.status != "booking"

    @property
    def is_called_off(self) -> bool:
        """The courier refused its booking or gave the pickup up (before it had the parcel): it is booked again."""
        return self.status in CALLED_OFF_STATUSES

    @property
    def courier_reference(self) -> str:
        """The ``reference_id`` the courier books it under: a new one per attempt, as a courier may answer a
        reference it refused with the same refusal."""
        return self.id if self.booking_attempt == 0 else f"{self.id}-{self.booking_attempt}"


class ShipmentBody(BaseModel):
    """POST /v1/orders/{id}/shipments."""

    model_config = ConfigDict(extra="forbid")

    shipping_method_id: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[a-z0-9_]+:[a-z0-9_]+$",
        description="courier:service; a retail order ships as it was bought, a group-buying order by default with "
        "the platform's method",
    )


class TrackingEntry(BaseModel):
    status: str
    note: str | None = None
    at: str


class Tracking(BaseModel):
    """GET /v1/orders/{id}/tracking: with no shipment, ``awaiting_shipment`` (no waybill) while the order can ship,
    else the order's own status."""

    status: str
    waybill_id: str | None = None
    courier: str | None = None
    history: list[TrackingEntry] = Field(default_factory=list)
